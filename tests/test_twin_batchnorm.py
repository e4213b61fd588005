"""Batch normalization in the twins: Keras (``model.fit`` and the ``tf.function`` loop) and PyTorch, built
from the same parameters and trained on the same batches, follow ``Network.fit``: loss and metric curves
(training mode, the batch's statistics), validation curves and predictions (inference, the moving
statistics), final weights with the moving statistics; and their gradients through the batch statistics
equal Network's.

Tolerances, relative, and why:
- float64: 1e-12 on curves, predictions, final weights and gradients, with an absolute 1e-12 of the
  array's largest element (an element near zero is the difference of larger terms and carries their
  rounding). The three compute the same expression in the same order (TensorFlow's
  ``Z * inv + (beta - mean * inv)``, Keras's update of the moving statistics); what differs is the
  order of the sums over the batch, so the agreement is a few ulps of the values (measured, every
  head, optimizer, batch mode and twin, five epochs: at most 2.2e-15 on the curves, 3.6e-15 on a
  prediction, 6.8e-15 absolute and 1.7e-14 relative to its array's largest on a final weight, 1e-16
  on a gradient).
- float32: 1e-4, absolute 1e-4 of the array's largest (measured at most 1.7e-6 on the curves, 9e-7 on a
  prediction, 4e-6 relative to the array's largest on a weight after five epochs of mini-batches, 1e-7
  on a gradient: the sums rounded in another order, through 1 / sqrt(variance + epsilon)).
Cases rotate (tests/twins.py): each twin runs both batch modes in both dtypes, the heads, optimizers
and BatchNorm options in turn; Keras's ``model.fit`` gets one case.
"""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from problems import binary_problem
from twins import LOOPS, M, TOL, build, import_keras_twin, rotate, train, weights
from twins import PROBLEMS as TWIN_PROBLEMS

from twinnet import Network, torch_twin
from twinnet.nn import BatchNorm
from twinnet.validation import OPTIMIZERS as OPTIMIZER_NAMES
from twinnet.validation import InvalidArgument

EPOCHS = 5
#: Head -> (output, widths, data): two hidden layers, so that one normalization feeds another.
PROBLEMS = {head: TWIN_PROBLEMS[name] for head, name in
            (("sigmoid", "sigmoid"), ("softmax", "softmax"), ("linear", "linear-2"))}
HEADS = sorted(PROBLEMS)
RATES = {"sgd": 0.1, "momentum": 0.1, "adam": 0.02, "rmsprop": 0.01}
OPTIMIZERS = sorted(RATES)
DTYPES = ["float64", "float32"]
OPTIONS = {"defaults": True, "momentum-0.9": BatchNorm(momentum=0.9, epsilon=1e-2),
           "no-center": BatchNorm(center=False), "no-scale": BatchNorm(scale=False)}
#: The twins' gradients, one per library ("keras" carries the tf mark, see twins.py).
LIBRARIES = ["keras", "torch"]


def _assert_arrays(actual, desired, dtype, what):
    """Equal to the dtype's tolerance, relative to each element and to the array's largest (module notes)."""
    assert actual.keys() == desired.keys(), what
    for key in desired:
        assert actual[key].dtype == np.dtype(dtype), (what, key)
        scale = np.max(np.abs(desired[key]), initial=0.0)
        assert_allclose(actual[key], desired[key], rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=f"{what}: {key}")


def _outputs(twin, model, output, X):
    """The twin's inference outputs: probabilities (classifiers) or values, as Network's predict_proba / predict."""
    if twin == "torch":
        import torch

        with torch.no_grad():
            z = model.model(torch.as_tensor(X.astype(str(model.model[0].weight.dtype).removeprefix("torch."))))
        z = {"sigmoid": torch.sigmoid, "softmax": lambda t: torch.softmax(t, dim=1), "linear": lambda t: t}[output](z)
        return z.numpy()
    return model.predict(X, verbose=0, batch_size=len(X))


def _network_outputs(net, X):
    return (net.predict(X) if net.output == "linear" else net.predict_proba(X)).reshape(len(X), -1)


def test_the_rotation_covers_every_optimizer():
    assert sorted(OPTIMIZER_NAMES) == OPTIMIZERS


@pytest.mark.exact
@pytest.mark.parametrize("twin, batch_size, dtype, head, optimizer, options", rotate(
    [(twin, batch_size, dtype) for twin in LOOPS for batch_size in [None, 12] for dtype in DTYPES]
    + [("keras-fit", 12, "float64")], head=HEADS, optimizer=OPTIMIZERS, options=sorted(OPTIONS)))
def test_batch_norm_twin_reproduces_network_fit(twin, batch_size, dtype, head, optimizer, options):
    # each twin has its own normalization layer, batch loop and dtype handling: twin x batch x dtype;
    # the head, the optimizer and the options act after or around the normalization: they rotate
    output, dims, (X, y) = PROBLEMS[head]
    X_val, y_val = X[:15], y[:15]
    net = Network(dims, output=output, batch_norm=OPTIONS[options], seed=1, dtype=dtype)
    model = build(twin, net.parameters, learning_rate=RATES[optimizer], optimizer=optimizer, output=output,
                  batch_norm=OPTIONS[options], dtype=dtype)
    theirs = train(twin, model, X, y, epochs=EPOCHS, batch_size=batch_size, seed=3, validation_data=(X_val, y_val))
    ours = net.fit(X, y, epochs=EPOCHS, learning_rate=RATES[optimizer], batch_size=batch_size, optimizer=optimizer,
                   seed=3, validation_data=(X_val, y_val)).history
    assert list(theirs) == list(ours)
    for key in ours:  # loss and metric in training mode, val_ ones in inference mode
        assert_allclose(theirs[key], ours[key], rtol=TOL[dtype], atol=0, err_msg=f"{twin}, {head}: {key} curve")
    _assert_arrays(weights(twin, model), net.parameters, dtype, f"final weights, {twin} vs Network")
    _assert_arrays({"outputs": _outputs(twin, model, output, X).astype(dtype)}, {"outputs": _network_outputs(net, X)},
                   dtype, f"inference, {twin} vs Network")


@pytest.mark.exact
@pytest.mark.parametrize("library, dtype, head, options", rotate(
    [(library, dtype) for library in LIBRARIES for dtype in DTYPES], head=HEADS, options=sorted(OPTIONS)))
def test_gradients_through_the_batch_statistics_equal_networks(library, dtype, head, options):
    output, dims, (X, y) = PROBLEMS[head]
    net = Network(dims, output=output, batch_norm=OPTIONS[options], hidden_activation="tanh", seed=1, dtype=dtype)
    net.fit(X, y, epochs=3, learning_rate=0.1, batch_size=12, seed=0)  # gamma, beta and the statistics moved
    model = build(library, net.parameters, learning_rate=0.1, output=output, batch_norm=OPTIONS[options],
                  hidden_activation="tanh", dtype=dtype)
    before = weights(library, model)
    if library == "torch":
        theirs = torch_twin.gradients(model, X, y)
    else:
        theirs = import_keras_twin().gradients(model, X, y)
    _assert_arrays(theirs, net.gradients(X, y), dtype, f"{library} gradients (autograd) vs Network")
    # the training-mode pass that computed them left the moving statistics alone
    _assert_arrays(weights(library, model), before, dtype, "weights after gradients")
    assert all(np.array_equal(before[key], value) for key, value in weights(library, model).items())


def test_torch_running_var_uncorrected_is_unbiased_and_parts_from_keras(monkeypatch):
    # torch's BatchNorm1d stores the unbiased batch variance, m / (m - 1) times the biased one it
    # normalizes with; train's hooks put Keras's back. Without them (patched out below), training is the
    # same (the running statistics do not enter it), but running_var and every inference output part.
    output, dims, (X, y) = PROBLEMS["sigmoid"]
    net = Network(dims, batch_norm=True, seed=1)
    parameters = net.parameters
    Z = X @ parameters["W1"].T  # the first step's batch, full: m = 40
    corrected = torch_twin.to_torch(parameters, learning_rate=0.1, batch_norm=True)
    plain = torch_twin.to_torch(parameters, learning_rate=0.1, batch_norm=True)
    torch_twin.train(corrected, X, y, epochs=1)
    assert_allclose(corrected.parameters["moving_variance1"][:, 0], 0.99 * 1 + (1 - 0.99) * Z.var(axis=0), rtol=1e-14)
    torch_twin.train(corrected, X, y, epochs=99)
    monkeypatch.setattr(torch_twin, "_keep_running_var", lambda norm, inputs: None)
    monkeypatch.setattr(torch_twin, "_keras_running_var", lambda norm, inputs, output: None)
    torch_twin.train(plain, X, y, epochs=1)
    assert_allclose(plain.parameters["moving_variance1"][:, 0], 0.99 * 1 + (1 - 0.99) * Z.var(axis=0, ddof=1),
                    rtol=1e-14)
    torch_twin.train(plain, X, y, epochs=99)
    net.fit(X, y, epochs=100, learning_rate=0.1)
    # corrected: Network's run to rounding (measured 2e-16 on a weight, 1e-16 on an output)
    _assert_arrays(corrected.parameters, net.parameters, "float64", "corrected torch twin")
    assert_allclose(_outputs("torch", corrected, output, X)[:, 0], net.predict_proba(X), rtol=1e-12)
    # uncorrected, after 100 full-batch steps (measured): the same training, running_var up to 9.1e-4
    # above Keras's (1.3e-3 relative, on its way to m / (m - 1) = 1.0256: 1.018 to 1.021 after 300
    # steps), output probabilities 2.0e-4 apart (6.7e-3 after 300 steps; 9e-6 and 1.3e-8 after one)
    gap = {key: np.max(np.abs(plain.parameters[key] - net.parameters[key])) for key in net.parameters}
    assert max(gap[key] for key in gap if not key.startswith("moving_variance")) < 1e-12
    assert 5e-4 < gap["moving_variance1"] < 2e-3
    ratio = plain.parameters["moving_variance1"] / corrected.parameters["moving_variance1"]
    assert ((1 < ratio) & (ratio < M / (M - 1))).all()
    outputs_gap = np.max(np.abs(_outputs("torch", plain, output, X)[:, 0] - net.predict_proba(X)))
    assert 1e-4 < outputs_gap < 1e-3


@pytest.mark.parametrize("twin", LOOPS)
def test_a_last_batch_of_one_as_keras_does_or_refused_by_torch(twin):
    # m = 40, batch_size = 13: batches of 13, 13, 13 and 1. Keras normalizes the one example to beta (variance
    # 0), as Network does; torch's BatchNorm1d raises in training, and the torch twin refuses up front.
    output, dims, (X, y) = PROBLEMS["softmax"]
    net = Network(dims, output=output, batch_norm=True, seed=1)
    model = build(twin, net.parameters, learning_rate=0.1, output=output, batch_norm=True)
    if twin == "torch":
        with pytest.raises(InvalidArgument, match=r"batch_size=13 leaves a batch of one example \(m=40\): torch's "
                                                  r"BatchNorm1d refuses to normalize it in training"):
            train(twin, model, X, y, epochs=1, batch_size=13, seed=3)
        return
    theirs = train(twin, model, X, y, epochs=2, batch_size=13, seed=3)
    ours = net.fit(X, y, epochs=2, learning_rate=0.1, batch_size=13, seed=3).history
    assert_allclose(theirs["loss"], ours["loss"], rtol=1e-12)
    _assert_arrays(weights(twin, model), net.parameters, "float64", "after batches of one")


@pytest.mark.tf
def test_the_keras_twin_is_dense_without_bias_then_batch_normalization_then_activation():
    keras_twin = import_keras_twin()
    net = Network([4, 6, 5, 3], output="softmax", batch_norm=BatchNorm(momentum=0.9, scale=False), dropout=0.5,
                  seed=0)
    model = keras_twin.to_keras(net.parameters, learning_rate=0.1, output="softmax", dropout=0.5,
                                batch_norm=BatchNorm(momentum=0.9, scale=False))
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "BatchNormalization", "Activation", "Dropout", "Dense", "BatchNormalization", "Activation",
        "Dropout", "Dense"]
    assert [layer.use_bias for layer in model.layers if type(layer).__name__ == "Dense"] == [False, False, True]
    config = model.layers[1].get_config()
    assert (config["momentum"], config["epsilon"], config["center"], config["scale"]) == (0.9, 1e-3, True, False)
    parameters = keras_twin.from_keras(model)
    assert parameters.keys() == net.parameters.keys()
    assert all(np.array_equal(parameters[key], value) for key, value in net.parameters.items())


def test_the_torch_twin_is_linear_without_bias_then_batchnorm1d_then_activation():
    net = Network([4, 6, 1], batch_norm=BatchNorm(momentum=0.9, center=False), seed=0)
    twin = torch_twin.to_torch(net.parameters, learning_rate=0.1, batch_norm=BatchNorm(momentum=0.9, center=False))
    assert [type(module).__name__ for module in twin.model] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    norm = twin.model[1]
    assert twin.model[0].bias is None and (norm.momentum, norm.eps) == (1 - 0.9, 1e-3)
    assert norm.weight.requires_grad and not norm.bias.requires_grad  # center=False: beta frozen at 0
    assert sum(p.numel() for group in twin.optimizer.param_groups for p in group["params"]) == net.n_params
    X, y = binary_problem(M, 4)
    torch_twin.train(twin, X, y, epochs=2, batch_size=12)
    assert not norm._forward_hooks and not norm._forward_pre_hooks and not twin.model.training
    assert not norm.bias.any()
    copy = pickle.loads(pickle.dumps(twin))
    assert all(np.array_equal(copy.parameters[key], value) for key, value in twin.parameters.items())


@pytest.mark.parametrize("library", [pytest.param("keras", marks=pytest.mark.tf), "torch"])
@pytest.mark.parametrize("value, match", [
    ("yes", "batch_norm must be True, False or twinnet.nn.BatchNorm"),
    ({"momentum": 1.5}, r"momentum must be a number in \[0, 1\); got momentum=1.5"),
])
def test_bad_batch_norm_is_refused_in_networks_words(library, value, match):
    parameters = Network([3, 4, 1], batch_norm=True, seed=0).parameters
    with pytest.raises(InvalidArgument, match=match):
        build(library, parameters, learning_rate=0.1, batch_norm=value)


@pytest.mark.exact
@pytest.mark.parametrize("twin", LOOPS)
def test_early_stopping_restores_the_moving_statistics_as_network(twin):
    # Keras's restore_best_weights puts back every weight, the moving statistics too; so do Network's and the
    # torch twin's (through their parameters dict)
    from twinnet.nn import EarlyStopping

    output, dims, (X, y) = PROBLEMS["softmax"]
    net = Network(dims, output=output, batch_norm=True, seed=1)
    model = build(twin, net.parameters, learning_rate=0.5, output=output, batch_norm=True)
    stops = [EarlyStopping(monitor="val_accuracy", patience=1, restore_best_weights=True) for _ in range(2)]
    theirs = train(twin, model, X, y, epochs=30, batch_size=12, seed=3, validation_data=(X[:15], y[:15]),
                   callbacks=[stops[0]])
    ours = net.fit(X, y, epochs=30, learning_rate=0.5, batch_size=12, seed=3, validation_data=(X[:15], y[:15]),
                   callbacks=[stops[1]]).history
    assert stops[1].stopped_epoch > 0 and stops[0].stopped_epoch == stops[1].stopped_epoch
    assert_allclose(theirs["val_loss"], ours["val_loss"], rtol=1e-12)
    _assert_arrays(weights(twin, model), net.parameters, "float64", "restored weights")
    _assert_arrays(stops[0].best_weights, stops[1].best_weights, "float64", "best weights")


@pytest.mark.tf
def test_from_keras_names_what_to_keras_does_not_build():
    import keras

    keras_twin = import_keras_twin()

    def model(*layers):
        return keras.Sequential([keras.Input((3,)), *layers])

    dense = keras.layers.Dense
    cases = [
        (model(dense(2, use_bias=False), dense(1)), "a Dense layer without bias and no BatchNormalization after it"),
        (model(dense(2, use_bias=False), keras.layers.BatchNormalization(), keras.layers.Activation("relu"), dense(1),
               keras.layers.BatchNormalization()), "Dense layers with biases only; layer '.*' is a BatchNormalization"),
        (model(dense(2, use_bias=False), keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
               dense(2), dense(1)), "all be batch-normalized alike, or none"),
    ]
    for case, match in cases:
        with pytest.raises(ValueError, match=match):
            keras_twin.from_keras(case)


def test_from_torch_names_what_to_torch_does_not_build():
    import torch

    nn = torch.nn
    cases = [
        (nn.Sequential(nn.Linear(3, 2, bias=False), nn.ReLU(), nn.Linear(2, 1)), "layer 1 has none, nor a BatchNorm1d"),
        (nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Linear(2, 1)), "a BatchNorm1d only after a Linear layer "
                                                                             "without bias"),
        (nn.Sequential(nn.Linear(3, 2, bias=False), nn.BatchNorm1d(2), nn.Linear(2, 1, bias=False),
                       nn.BatchNorm1d(1)), "output layer is followed by a BatchNorm1d"),
        (nn.Sequential(nn.Linear(3, 2, bias=False), nn.BatchNorm1d(2), nn.Linear(2, 2), nn.Linear(2, 1)),
         "all be batch-normalized alike, or none"),
    ]
    for case, match in cases:
        with pytest.raises(ValueError, match=match):
            torch_twin.from_torch(case)
