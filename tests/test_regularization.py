"""L2, dropout, learning-rate schedules and callbacks in ``Network``, checked against independent references.

References: the penalty written out in NumPy, central finite differences of the loss (with the
penalty, under fixed dropout masks), PyTorch's autograd of the same network under the same masks,
and training split into single epochs. The Keras and PyTorch twins' agreement is in their tests.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from problems import binary_problem, multiclass_problem, regression_problem

from twinnet import Network

HEADS = [("sigmoid", 1, lambda: binary_problem(40, 4, rule="square")),
         ("softmax", 3, lambda: multiclass_problem(40, 4, 3)),
         ("linear", 2, lambda: regression_problem(40, 4, 2))]


def _central_differences(net, X, y, masks=None, eps=1e-6):
    """Every parameter's central difference of the loss, per element (gradcheck's, before its norms)."""
    from twinnet.nn.gradcheck import _central_differences as differences

    theta, loss, as_gradients = net.loss_function(X, y, masks)
    return as_gradients(differences(theta, loss, eps))


def _masks(net, m, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((m, n)) >= rate if rate else None for n, rate in zip(net.layer_dims[1:-1], net._rates)]


@pytest.mark.parametrize("output, width, make", HEADS, ids=[h[0] for h in HEADS])
def test_l2_loss_is_the_data_loss_plus_the_penalty_and_its_gradient_matches_differences(output, width, make):
    X, y = make()
    plain = Network([4, 6, 5, width], output=output, hidden_activation="tanh", seed=1)
    net = Network.from_parameters(plain.parameters, output=output, hidden_activation="tanh", l2=0.03)
    P = net.parameters
    # as Keras's L2 regularizer, whose Python float becomes a float32 tensor
    penalty = float(np.float32(0.03)) * sum(np.sum(P[f"W{l}"] ** 2) for l in (1, 2, 3))
    assert net.evaluate(X, y)["loss"] == pytest.approx(plain.evaluate(X, y)["loss"] + penalty, rel=1e-14)
    for key in ("accuracy", "rmse"):  # the metrics are the data's alone
        if key in plain.evaluate(X, y):
            assert net.evaluate(X, y)[key] == plain.evaluate(X, y)[key]
    grads, data_grads = net.gradients(X, y), plain.gradients(X, y)
    for l in (1, 2, 3):  # 2 l2 W on the weights, nothing on the biases
        assert_allclose(grads[f"dW{l}"], data_grads[f"dW{l}"] + 2 * float(np.float32(0.03)) * P[f"W{l}"], rtol=1e-14,
                        atol=1e-17)
        assert_array_equal(grads[f"db{l}"], data_grads[f"db{l}"])
    numeric = _central_differences(net, X, y)
    for key, value in grads.items():  # central differences of a smooth loss: ~1e-9
        assert_allclose(value, numeric[key], rtol=1e-6, atol=1e-8, err_msg=key)


@pytest.mark.parametrize("output, width, make", HEADS, ids=[h[0] for h in HEADS])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_dropout_gradients_under_given_masks_match_differences(output, width, make, activation):
    X, y = make()
    P = Network([4, 6, 5, width], output=output, init="he", seed=2).parameters
    rng = np.random.default_rng(2)
    P.update({k: 0.1 * rng.standard_normal(v.shape) for k, v in P.items() if k[0] == "b"})  # off the kink
    net = Network.from_parameters(P, output=output, hidden_activation=activation, dropout=[0.3, 0.5], l2=0.01)
    masks = _masks(net, X.shape[0])
    grads = net.gradients(X, y, masks=masks)
    numeric = _central_differences(net, X, y, masks)
    for key, value in grads.items():
        assert_allclose(value, numeric[key], rtol=1e-5, atol=1e-8, err_msg=key)
    # a dropped unit passes nothing on: W2's column of a unit dropped for every example gets only the penalty
    always = masks[0].copy()
    always[:, 0] = False
    dead = net.gradients(X, y, masks=[always, masks[1]])
    assert_allclose(dead["dW2"][:, 0], 2 * float(np.float32(0.01)) * P["W2"][:, 0], rtol=1e-14)


def test_dropout_gradients_match_pytorch_autograd_under_the_same_masks():
    torch = pytest.importorskip("torch")
    X, y = multiclass_problem(50, 4, 3)
    net = Network([4, 7, 6, 3], output="softmax", init="he", dropout=[0.25, 0.5], seed=3)
    masks = _masks(net, 50, seed=3)
    ours = net.gradients(X, y, masks=masks)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in net.parameters.items()}
    A = torch.tensor(X)
    for l, (mask, rate) in enumerate(zip(masks, [0.25, 0.5]), start=1):
        A = torch.relu(A @ P[f"W{l}"].T + P[f"b{l}"].T) * (1 / (1 - rate)) * torch.tensor(mask, dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy(A @ P["W3"].T + P["b3"].T, torch.tensor(y))
    loss.backward()
    for key, value in P.items():  # the same operations in another order: rounding, 1e-12
        assert_allclose(ours["d" + key], value.grad.numpy(), rtol=1e-12, atol=1e-16, err_msg=key)


def test_dropout_acts_in_fit_only_and_is_reproducible():
    X, y = binary_problem(200, 4, rule="square")
    net = Network([4, 32, 1], dropout=0.5, seed=4)
    before = net.predict_proba(X)
    assert_array_equal(net.predict_proba(X), before)  # inference never drops
    a = Network.from_parameters(net.parameters, dropout=0.5)
    b = Network.from_parameters(net.parameters, dropout=0.5)
    ha = a.fit(X, y, epochs=5, learning_rate=0.1, batch_size=50, seed=7)
    hb = b.fit(X, y, epochs=5, learning_rate=0.1, batch_size=50, seed=7)
    assert ha.history == hb.history and all(np.array_equal(a.parameters[k], b.parameters[k]) for k in a.parameters)
    c = Network.from_parameters(net.parameters, dropout=0.5)
    hc = c.fit(X, y, epochs=5, learning_rate=0.1, batch_size=50, seed=8)
    assert hc.history["loss"] != ha.history["loss"]  # other masks
    none = Network.from_parameters(net.parameters)
    zero = Network.from_parameters(net.parameters, dropout=0.0)
    assert (none.fit(X, y, epochs=3, learning_rate=0.1, batch_size=50, seed=7).history
            == zero.fit(X, y, epochs=3, learning_rate=0.1, batch_size=50, seed=7).history)


def test_dropout_keeps_the_expected_fraction_and_scales_the_kept_units():
    from twinnet.nn import engine

    buf = engine.allocate([4, 300, 200, 1], 500, np.float64, dropout=(0.2, 0.6))
    engine.draw_masks(np.random.default_rng(0), (0.2, 0.6), buf)
    for M, rate in zip(buf.M, (0.2, 0.6)):
        assert set(np.unique(M)) == {0.0, 1 / (1 - rate)}
        kept = np.mean(M > 0)  # 1e5 draws or more: the standard error is under 0.002
        assert abs(kept - (1 - rate)) < 0.01, kept


@pytest.mark.exact
def test_a_schedule_gives_each_update_its_own_rate():
    # full-batch SGD keeps no state, so one fit with a schedule equals one-epoch fits at each rate
    from twinnet.nn import ExponentialDecay

    X, y = binary_problem(60, 4, rule="product")
    schedule = ExponentialDecay(0.3, decay_steps=1, decay_rate=0.5)
    net = Network([4, 6, 1], seed=5)
    stepwise = Network.from_parameters(net.parameters)
    history = net.fit(X, y, epochs=4, learning_rate=schedule)
    losses = [stepwise.fit(X, y, epochs=1, learning_rate=schedule(k)).history["loss"][0] for k in range(4)]
    assert history.history["loss"] == losses
    for key, value in net.parameters.items():
        assert_array_equal(value, stepwise.parameters[key])


def test_callbacks_are_called_as_keras_calls_them_and_can_stop_the_fit():
    X, y = binary_problem(40, 3)
    calls = []

    from twinnet.nn import Callback

    class Recorder(Callback):
        def set_model(self, model):
            calls.append(("set_model", type(model).__name__))

        def set_params(self, params):
            calls.append(("set_params", params["epochs"]))

        def on_train_begin(self, logs=None):
            calls.append(("train_begin",))

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            calls.append(("epoch_end", epoch, sorted(logs)))
            if epoch == 2:
                self.model_ref.stop_training = True

        def on_train_end(self, logs=None):
            calls.append(("train_end", sorted(logs)))

    net = Network([3, 4, 1], seed=6)
    recorder = Recorder()
    recorder.model_ref = net
    history = net.fit(X, y, epochs=10, learning_rate=0.1, validation_data=(X, y), callbacks=[recorder])
    keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert calls == [("set_model", "Network"), ("set_params", 10), ("train_begin",),
                     ("epoch_begin", 0), ("epoch_end", 0, keys), ("epoch_begin", 1), ("epoch_end", 1, keys),
                     ("epoch_begin", 2), ("epoch_end", 2, keys), ("train_end", keys)]
    assert history.epoch == [0, 1, 2] and len(history.history["loss"]) == 3
    assert net.fit(X, y, epochs=2, learning_rate=0.1).epoch == [0, 1]  # stop_training is reset


@pytest.mark.exact
def test_set_parameters_restores_a_snapshot():
    X, y = multiclass_problem(30, 4, 3)
    net = Network([4, 5, 3], output="softmax", seed=7)
    snapshot = net.parameters
    net.fit(X, y, epochs=3, learning_rate=0.5)
    net.set_parameters(snapshot)
    for key, value in snapshot.items():
        assert_array_equal(net.parameters[key], value)


BAD = [
    ("negative-l2", lambda: Network([3, 4, 1], l2=-0.1), r"l2 must be a finite number >= 0; got l2=-0.1"),
    ("nan-l2", lambda: Network([3, 4, 1], l2=float("nan")), r"l2 must be a finite number >= 0; got l2=nan"),
    ("dropout-1", lambda: Network([3, 4, 1], dropout=1.0), r"dropout must be a number in \[0, 1\); got dropout=1.0"),
    ("dropout-negative", lambda: Network([3, 4, 1], dropout=-0.2), r"dropout must be a number in \[0, 1\)"),
    ("dropout-list-length", lambda: Network([3, 4, 5, 1], dropout=[0.1]),
     r"dropout must be a number in \[0, 1\) or a list of 2 of them, one per hidden layer; got 1"),
    ("dropout-list-item", lambda: Network([3, 4, 5, 1], dropout=[0.1, 1.5]), r"dropout\[1\] must be a number in"),
    ("masks-without-dropout", lambda: Network([3, 4, 1]).gradients(np.zeros((2, 3)), [0, 1], masks=[np.ones((2, 4))]),
     r"this Network has no dropout"),
    ("mask-shape", lambda: Network([3, 4, 1], dropout=0.5).gradients(np.zeros((2, 3)), [0, 1],
                                                                     masks=[np.ones((4, 2))]),
     r"masks\[0\] must be 0/1 of shape \(2, 4\) .* got shape \(4, 2\)"),
    ("callbacks-not-list", lambda: Network([3, 1]).fit(np.zeros((2, 3)), [0, 1], epochs=1, learning_rate=0.1,
                                                       callbacks=print), r"callbacks must be a list"),
    ("callback-methods", lambda: Network([3, 1]).fit(np.zeros((2, 3)), [0, 1], epochs=1, learning_rate=0.1,
                                                     callbacks=[object()]),
     r"callbacks\[0\] must be a twinnet.nn.callbacks.Callback \(such as EarlyStopping or LambdaCallback\); "
     r"got builtins.object"),
    ("schedule-not-a-schedule", lambda: Network([3, 1]).fit(np.zeros((2, 3)), [0, 1], epochs=1,
                                                            learning_rate=lambda step: 0.1),
     r"learning_rate must be a finite number > 0 or a schedule such as twinnet.nn.schedules.ExponentialDecay"),
    ("snapshot-widths", lambda: Network([3, 2, 1]).set_parameters(Network([3, 4, 1]).parameters),
     r"parameters have the widths \[3, 4, 1\]; this Network has \[3, 2, 1\]"),
]


@pytest.mark.parametrize("call, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("output, width, make", HEADS, ids=[h[0] for h in HEADS])
def test_save_load_keeps_l2_and_dropout(tmp_path, output, width, make):
    import pickle

    net = Network([4, 5, 6, width], output=output, l2=0.01, dropout=[0.1, 0.2], seed=8)
    net.save(tmp_path / "n.npz")
    for copy in (Network.load(tmp_path / "n.npz"), pickle.loads(pickle.dumps(net))):
        assert (copy.l2, copy.dropout, repr(copy)) == (0.01, [0.1, 0.2], repr(net))


@pytest.mark.exact
def test_early_stopping_stops_a_fit_and_restores_the_best_weights():
    from twinnet.nn import EarlyStopping, LambdaCallback

    X, y = binary_problem(60, 4, rule="square", seed=9)
    X_val, y_val = binary_problem(60, 4, rule="square", seed=10)
    snapshots = []
    net = Network([4, 64, 1], seed=9)
    stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    keep = LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(net.parameters))
    history = net.fit(X, y, epochs=500, learning_rate=0.5, validation_data=(X_val, y_val), callbacks=[keep, stop])
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) == best + 4 < 500  # patience 3: three epochs without improvement, then the stop
    assert stop.stopped_epoch == best + 3 and stop.best_epoch == best
    for key, value in snapshots[best].items():
        assert_array_equal(net.parameters[key], value)
    with pytest.raises(ValueError, match=r"no 'val_rmse' in this fit's logs; available: loss, accuracy"):
        Network([4, 3, 1]).fit(X, y, epochs=2, learning_rate=0.1, callbacks=[EarlyStopping(monitor="val_rmse")])
