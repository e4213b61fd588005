"""L2, dropout, learning-rate schedules and early stopping in the twins: Keras (``model.fit`` and the
``tf.function`` loop) and PyTorch, built from the same weights and trained on the same batches, follow
``Network.fit``.

Tolerances, relative, and why:
- float64, 1e-12 on loss and metric curves, final weights and gradients (measured, every head,
  optimizer, batch mode and twin: at most 5e-16 on the curves, and relative to the array's largest
  element 3e-14 on a final weight, 5e-15 on a gradient). Weights and gradients also get an absolute
  1e-12 of their array's largest element: an element near zero is the difference of larger terms
  and carries their rounding.
- float32: 1e-4 relative, absolute 1e-4 of the array's largest (measured 1e-6: the same formulas
  rounded in another order).
- L2: Keras's ``L2`` weighs its penalty by ``l2`` rounded through float32 (``ops.cast`` of a Python
  float), and so do ``Network`` and the PyTorch twin: the agreement tests hand ``Network`` Keras's
  rounded weight, ``KERAS_L2``, and the twins ``L2`` (the same arithmetic), and one test gives both
  sides the same ``l2``, which float32 does not hold, at the float64 tolerance.
- Schedules: the rate of every step is checked bit for bit (the float32 values Keras's compiled step
  uses), then the curves at the float64 tolerance.
- Dropout: no two libraries draw the same masks, so training curves are not compared; gradients under
  given masks are, at the float64 tolerance.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from problems import binary_problem
from twins import LOOPS, M, PROBLEMS, TOL, TWINS, build, import_keras_twin, rotate, train, weights

from twinnet import Network, torch_twin
from twinnet.nn import Callback, EarlyStopping
from twinnet.nn.schedules import (
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
)

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)

L2 = 0.01
KERAS_L2 = float(np.float32(L2))  # 0.009999999776482582: the weight Keras's L2(0.01) applies
EPOCHS = 5
HEADS = sorted(PROBLEMS)
#: The twins' gradients: one per library.
LIBRARIES = [pytest.param("keras", marks=pytest.mark.tf), "torch"]
RATES = {"sgd": 0.1, "momentum": 0.1, "adam": 0.02, "rmsprop": 0.02}
OPTIMIZERS = sorted(RATES)
BATCH_SIZES = [None, 12]  # full batch, mini-batches
DTYPES = ["float64", "float32"]




def _gradients(library, model, X, y, masks=None):
    if library == "torch":
        return torch_twin.gradients(model, X, y, masks=masks)
    return import_keras_twin().gradients(model, X, y, masks=masks)


def _assert_arrays(actual, desired, dtype, what):
    """Equal to the dtype's tolerance, relative to each element and to the array's largest (module notes)."""
    assert actual.keys() == desired.keys(), what
    for key in desired:
        assert actual[key].dtype == np.dtype(dtype), (what, key)
        scale = np.max(np.abs(desired[key]), initial=0.0)
        assert_allclose(actual[key], desired[key], rtol=TOL[dtype], atol=TOL[dtype] * scale,
                        err_msg=f"{what}: {key}")


def _assert_histories(theirs, ours, dtype, what):
    assert list(theirs) == list(ours), f"{what}: the twin's history has Network's keys in Network's order"
    for key in ours:
        assert_allclose(theirs[key], ours[key], rtol=TOL[dtype], atol=0, err_msg=f"{what}: {key} curve")


def _masks(dims, rates, m, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((m, n)) >= rate if rate else None for n, rate in zip(dims[1:-1], rates)]


# --------------------------------------------------------------------------- L2
def _run_l2(head, twin, optimizer, batch_size, dtype="float64", network_l2=KERAS_L2):
    output, dims, (X, y) = PROBLEMS[head]
    net = Network(dims, output=output, seed=1, l2=network_l2, dtype=dtype)
    model = build(twin, net.parameters, learning_rate=RATES[optimizer], optimizer=optimizer, output=output,
                   l2=L2, dtype=dtype)
    theirs = train(twin, model, X, y, epochs=EPOCHS, batch_size=batch_size, seed=3)
    ours = net.fit(X, y, epochs=EPOCHS, learning_rate=RATES[optimizer], batch_size=batch_size, optimizer=optimizer,
                   seed=3).history
    return ours, theirs, net.parameters, weights(twin, model)


@pytest.mark.exact
@pytest.mark.parametrize("twin, batch_size, dtype, head, optimizer", rotate(
    [(twin, batch_size, dtype) for twin in LOOPS for batch_size in BATCH_SIZES for dtype in DTYPES]
    + [("keras-fit", 12, "float64")], head=HEADS, optimizer=OPTIMIZERS))
def test_l2_twin_reproduces_network_fit(twin, batch_size, dtype, head, optimizer):
    # each twin adds the penalty in its own batch loop, weighed in its dtype: twin x batch x dtype;
    # the penalty is one term of the loss before the optimizer, whatever the head: those rotate.
    # float32: float32(l2) is l2 in the network's dtype, on both sides
    ours, theirs, params, twin_params = _run_l2(head, twin, optimizer, batch_size, dtype=dtype,
                                                network_l2=KERAS_L2 if dtype == "float64" else L2)
    _assert_histories(theirs, ours, dtype, f"{twin}, {head}, {optimizer}")
    _assert_arrays(twin_params, params, dtype, f"final weights, {twin} vs Network")


@pytest.mark.exact
@pytest.mark.parametrize("twin", LOOPS)
def test_the_same_l2_on_both_sides_gives_the_same_run(twin):
    # Network(l2=0.01) weighs by float32(0.01), as Keras and the PyTorch twin do (before Network
    # rounded it, the curves parted by 1.2e-9 on the loss and 9e-8 on a weight)
    ours, theirs, params, twin_params = _run_l2("softmax", twin, "momentum", 12, network_l2=L2)
    _assert_histories(theirs, ours, "float64", twin)
    _assert_arrays(twin_params, params, "float64", f"final weights, {twin} vs Network")


@pytest.mark.tf
def test_keras_weighs_the_l2_penalty_by_l2_rounded_through_float32():
    # the measurement behind KERAS_L2: Keras's L2 penalty and its gradient, on a float64 twin
    import tensorflow as tf

    keras_twin = import_keras_twin()
    output, dims, _ = PROBLEMS["sigmoid"]
    parameters = Network(dims, seed=1).parameters
    model = keras_twin.to_keras(parameters, learning_rate=0.1, l2=L2)
    squares = [np.sum(parameters[f"W{l}"] ** 2) for l in (1, 2, 3)]
    penalties = [float(loss) for loss in model.losses]
    assert len(penalties) == 3
    # float32(l2) times the same sum (summed in another order: 1e-15)
    assert_allclose(penalties, [KERAS_L2 * s for s in squares], rtol=1e-15)
    assert all(abs(p / (L2 * s) - 1) > 1e-8 for p, s in zip(penalties, squares))  # 0.01 itself: 2.2e-8 more
    kernel = model.layers[0].kernel
    with tf.GradientTape() as tape:
        penalty = model.layers[0].kernel_regularizer(kernel)
    assert_array_equal(tape.gradient(penalty, kernel).numpy(), (2 * KERAS_L2) * kernel.numpy())


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("head", HEADS)
def test_evaluate_and_gradients_include_the_penalty(head, library):
    output, dims, (X, y) = PROBLEMS[head]
    parameters = Network(dims, output=output, seed=1).parameters
    net = Network.from_parameters(parameters, output=output, l2=KERAS_L2)
    model = build(library, parameters, learning_rate=0.1, output=output, l2=L2)
    _assert_arrays(_gradients(library, model, X, y), net.gradients(X, y), "float64", f"{library} gradients")
    if library == "keras":  # Keras's own evaluate: the loss with the penalty, the metric without
        scores = model.evaluate(X, y, verbose=0, return_dict=True)
        expected = net.evaluate(X, y)
        for key in scores:
            assert scores[key] == pytest.approx(expected[key], rel=1e-12, abs=0), key
        assert expected["loss"] > Network.from_parameters(parameters, output=output).evaluate(X, y)["loss"]


# --------------------------------------------------------------------------- dropout
#: Dropout rates of the two hidden layers: both drop, or only the second (the first's mask is None).
DROPOUTS = {"both": [0.3, 0.5], "second": [0.0, 0.5]}


@pytest.mark.exact
@pytest.mark.parametrize("library, dtype, dropout, head, activation", rotate(
    [(library, dtype, dropout) for library in ("keras", "torch") for dtype in DTYPES for dropout in DROPOUTS],
    head=HEADS, activation=["relu", "tanh", "sigmoid"]))
def test_gradients_under_given_masks_equal_networks(library, dtype, dropout, head, activation):
    # each library replays the masks, and which layers drop, in its own dtype: library x dtype x
    # dropout; the mask multiplies the activation's output, whatever the activation and the head
    rates = DROPOUTS[dropout]
    output, dims, (X, y) = PROBLEMS[head]
    parameters = Network(dims, output=output, init="he", seed=2, dtype=dtype).parameters
    options = {"output": output, "hidden_activation": activation, "dropout": rates, "dtype": dtype}
    net = Network.from_parameters(parameters, l2=KERAS_L2 if dtype == "float64" else L2, **options)
    model = build(library, parameters, learning_rate=0.1, l2=L2, **options)
    masks = _masks(dims, rates, M)
    ours = net.gradients(X, y, masks=masks)
    _assert_arrays(_gradients(library, model, X, y, masks=masks), ours, dtype, f"{library} gradients under masks")
    # without masks, no dropout: Network's gradients without masks
    _assert_arrays(_gradients(library, model, X, y), net.gradients(X, y), dtype, f"{library} gradients, no masks")
    # the masks matter: other masks, other gradients
    others = _gradients(library, model, X, y, masks=_masks(dims, rates, M, seed=1))
    assert max(np.max(np.abs(others[k] - ours[k])) for k in ours) > 1e-3


@pytest.mark.tf
@pytest.mark.parametrize("head, loop", [pytest.param("linear-1", "fit", marks=pytest.mark.model_fit),
                                        ("sigmoid", "tf-loop")])
def test_the_keras_twin_drops_in_training_only(head, loop):
    keras_twin = import_keras_twin()
    output, dims, (X, y) = PROBLEMS[head]
    parameters = Network(dims, output=output, seed=2).parameters
    net = Network.from_parameters(parameters, output=output)
    model = keras_twin.to_keras(parameters, learning_rate=0.1, output=output, dropout=0.5)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    predicted = model.predict(X, batch_size=M, verbose=0)
    expected = net.predict_proba(X) if output != "linear" else net.predict(X)
    assert_allclose(predicted.reshape(expected.shape), expected, rtol=1e-12, atol=1e-15)
    assert model.evaluate(X, y, verbose=0) == pytest.approx(list(net.evaluate(X, y).values())[:2], rel=1e-12)
    training = np.asarray(model(X, training=True))
    assert np.max(np.abs(training.reshape(expected.shape) - expected)) > 1e-3  # the layers do drop when training
    history = keras_twin.train(model, X, y, epochs=2, batch_size=12, loop=loop)  # with Keras's own masks
    assert np.isfinite(history["loss"]).all()


@pytest.mark.parametrize("head", ["linear-2", "softmax"])  # the Keras twin's test has the other two
def test_the_torch_twin_drops_in_training_only_with_masks_seeded_by_train(head):
    import torch

    output, dims, (X, y) = PROBLEMS[head]
    parameters = Network(dims, output=output, seed=2).parameters
    net = Network.from_parameters(parameters, output=output)

    def twin():
        return torch_twin.to_torch(parameters, learning_rate=0.1, output=output, dropout=0.5)

    first = twin()
    assert [type(m).__name__ for m in first.model] == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout",
                                                       "Linear"]
    assert not first.model.training  # to_torch returns it in eval mode: no dropout
    with torch.no_grad():
        assert_allclose(first.model(torch.as_tensor(X)).numpy().T, _logits(net, X), rtol=1e-12, atol=1e-15)
    state = torch.random.get_rng_state()
    a = torch_twin.train(first, X, y, epochs=3, batch_size=12, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's generator is left alone
    assert not first.model.training  # its mode is restored
    b = torch_twin.train(twin(), X, y, epochs=3, batch_size=12, seed=5)
    c = torch_twin.train(twin(), X, y, epochs=3, batch_size=12, seed=6)
    plain = torch_twin.train(torch_twin.to_torch(parameters, learning_rate=0.1, output=output), X, y, epochs=3,
                             batch_size=12, seed=5)
    assert a == b  # the same seed, the same masks
    assert a["loss"] != c["loss"] and a["loss"] != plain["loss"]


def _logits(net, X):
    """Network's output-layer logits (n_L, m), before the head's activation."""
    z = net.decision_function(X) if net.output != "linear" else net.predict(X)
    return np.atleast_2d(z.T) if z.ndim == 1 else z.T


# --------------------------------------------------------------------------- learning-rate schedules
#: One schedule of each kind and form; long enough (200 steps below) to reach the steps where Keras's
#: eager and compiled values differ by an ulp (ExponentialDecay, InverseTimeDecay, CosineDecay).
SCHEDULES = {
    "exponential": ExponentialDecay(0.1, decay_steps=7, decay_rate=0.3),
    "exponential-staircase": ExponentialDecay(0.1, decay_steps=30, decay_rate=0.5, staircase=True),
    "inverse-time": InverseTimeDecay(0.1, decay_steps=13, decay_rate=0.7),
    "piecewise": PiecewiseConstantDecay([40, 90], [0.1, 0.05, 0.02]),
    "cosine": CosineDecay(0.1, decay_steps=150, alpha=0.1),
    "cosine-warm-up": CosineDecay(0.01, decay_steps=120, warmup_target=0.1, warmup_steps=50),
}


def _bias_after_each_epoch(twin, schedule, epochs=10, steps=20):
    """A saturated sigmoid unit trained by SGD with ``schedule``: its bias after each epoch.

    One weight, no input (X = 0), bias -100: the logit stays below -37, where the gradient of the
    log-loss for label 1 is exactly -1 in float64, so each SGD step adds the step's learning rate
    to the bias: ``b_{k+1} = b_k + rate_k``, one rounding, the same in every library. A rate one
    float32 ulp off (about 7e-9 at 0.1) moves the bias by far more than its ulp (1.4e-14).
    """
    parameters = {"W1": np.zeros((1, 1)), "b1": np.array([[-100.0]])}
    X, y = np.zeros((steps, 1)), np.ones(steps, np.int64)
    seen = []
    if twin == "network":
        net = Network.from_parameters(parameters)
        net.fit(X, y, epochs=epochs, batch_size=1, learning_rate=schedule,
                on_epoch_end=lambda epoch, logs: seen.append(float(net.parameters["b1"][0, 0])))
        return seen
    model = build(twin, parameters, learning_rate=schedule)
    train(twin, model, X, y, epochs=epochs, batch_size=1,
           on_epoch_end=lambda epoch, logs: seen.append(float(weights(twin, model)["b1"][0, 0])))
    return seen


def _expected_biases(rates, epochs=10, steps=20):
    b, out = -100.0, []
    for k in range(epochs * steps):
        b += rates[k]
        if k % steps == steps - 1:
            out.append(b)
    return out


@pytest.mark.exact
@pytest.mark.parametrize("twin, name", rotate(
    [(twin, name) for twin in ["network", *LOOPS] for name in sorted(SCHEDULES)] + [("keras-fit", "exponential")]))
def test_every_step_uses_the_schedules_rate_bit_for_bit(twin, name):
    schedule = SCHEDULES[name]
    expected = _expected_biases([schedule(k) for k in range(200)])
    assert _bias_after_each_epoch(twin, schedule) == expected


@pytest.mark.tf
def test_the_rate_check_tells_keras_eager_values_from_its_compiled_ones():
    # the check above can fail: Keras's schedule called eagerly differs from its compiled step by an ulp
    # at many steps, and the biases those rates give are not the ones the twins reach
    keras_twin = import_keras_twin()
    schedule = SCHEDULES["exponential"]
    eager = [float(keras_twin.keras_schedule(schedule)(k)) for k in range(200)]
    assert _expected_biases(eager) != _expected_biases([schedule(k) for k in range(200)])


def _run_schedule(head, twin, optimizer, schedule, dtype="float64"):
    output, dims, (X, y) = PROBLEMS[head]
    net = Network(dims, output=output, seed=1, dtype=dtype)
    model = build(twin, net.parameters, learning_rate=schedule, optimizer=optimizer, output=output, dtype=dtype)
    theirs = train(twin, model, X, y, epochs=EPOCHS, batch_size=12, seed=3)
    ours = net.fit(X, y, epochs=EPOCHS, learning_rate=schedule, batch_size=12, optimizer=optimizer, seed=3).history
    return ours, theirs, net.parameters, weights(twin, model)


#: Short schedules for 20-step trainings, each scaled for the optimizer (Adam's and RMSprop's steps are
#: about the rate, whatever the gradient).
def _short_schedule(name, optimizer):
    scale = RATES[optimizer] / RATES["sgd"]
    return {
        "exponential": ExponentialDecay(0.1 * scale, decay_steps=3, decay_rate=0.5),
        "exponential-staircase": ExponentialDecay(0.1 * scale, decay_steps=7, decay_rate=0.3, staircase=True),
        "inverse-time": InverseTimeDecay(0.1 * scale, decay_steps=3, decay_rate=0.7),
        "piecewise": PiecewiseConstantDecay([4, 9], [0.1 * scale, 0.05 * scale, 0.02 * scale]),
        "cosine": CosineDecay(0.1 * scale, decay_steps=13, alpha=0.1),
        "cosine-warm-up": CosineDecay(0.01 * scale, decay_steps=11, warmup_target=0.1 * scale, warmup_steps=5),
    }[name]


@pytest.mark.exact
@pytest.mark.parametrize("twin, optimizer, name, head, dtype", rotate(
    [(twin, optimizer) for twin in LOOPS for optimizer in OPTIMIZERS] + [("keras-fit", "adam")],
    name=sorted(SCHEDULES), head=HEADS, dtype=DTYPES))
def test_schedule_twin_reproduces_network_fit(twin, optimizer, name, head, dtype):
    # each twin's optimizer reads the rate at each step (torch's momentum and Adam correct for a rate
    # that changes): twin x optimizer; every step's rate of each schedule in each twin is the test above
    ours, theirs, params, twin_params = _run_schedule(head, twin, optimizer, _short_schedule(name, optimizer),
                                                      dtype=dtype)
    _assert_histories(theirs, ours, dtype, f"{twin}, {name}, {head}")
    _assert_arrays(twin_params, params, dtype, f"final weights, {twin} vs Network")


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_keras_twin_trains_with_keras_own_schedule(name):
    keras = pytest.importorskip("keras")
    keras_twin = import_keras_twin()
    schedule = SCHEDULES[name]
    model = keras_twin.to_keras(Network([3, 1], seed=0).parameters, learning_rate=schedule)
    theirs = model.optimizer._learning_rate  # Keras keeps the schedule object there
    assert type(theirs) is getattr(keras.optimizers.schedules, type(schedule).__name__)
    assert theirs.get_config() == schedule.get_config()


def test_the_torch_twin_steps_a_lambda_scheduler_with_the_schedules_values():
    import torch

    schedule = SCHEDULES["cosine"]
    twin = torch_twin.to_torch(Network([3, 1], seed=0).parameters, learning_rate=schedule)
    assert isinstance(twin.scheduler, torch.optim.lr_scheduler.LambdaLR)
    assert twin.optimizer.param_groups[0]["lr"] == schedule(0)
    import copy
    import pickle

    for copied in (copy.deepcopy(twin), pickle.loads(pickle.dumps(twin))):  # the scheduler drives the copy's optimizer
        assert copied.scheduler.optimizer is copied.optimizer and copied.output == twin.output


def test_torchs_own_schedulers_compute_the_same_formulas_in_float64():
    # Why the torch twin uses LambdaLR: ExponentialLR, StepLR and CosineAnnealingLR are the same
    # formulas (the cosine only up to decay_steps, after which torch's climbs again), computed in
    # float64, recursively; Keras's are float32. They agree to float32's resolution, not to the bit
    # (measured: 1.1e-7 of the initial rate, 1.3e-6 relative where the rate has decayed a millionfold;
    # bound: 1e-6 of the initial rate), so they would move the trajectory by ~1e-7.
    import torch

    def native(make, steps):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=make.lr)
        scheduler = make.scheduler(optimizer)
        rates = []
        for _ in range(steps):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return np.array(rates)

    class Native:
        def __init__(self, lr, scheduler):
            self.lr, self.scheduler = lr, scheduler

    steps = 150
    cases = [
        (ExponentialDecay(0.1, decay_steps=7, decay_rate=0.3),
         Native(0.1, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.3 ** (1 / 7)))),
        (ExponentialDecay(0.1, decay_steps=30, decay_rate=0.5, staircase=True),
         Native(0.1, lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=30, gamma=0.5))),
        (CosineDecay(0.1, decay_steps=150, alpha=0.1),
         Native(0.1, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=150, eta_min=0.01))),
    ]
    for schedule, make in cases:
        ours = np.array([schedule(k) for k in range(steps)])
        theirs = native(make, steps)
        assert_allclose(theirs, ours, rtol=1e-6, atol=1e-6 * make.lr, err_msg=repr(schedule))
        assert not np.array_equal(theirs, ours), repr(schedule)  # but not Keras's values


@pytest.mark.tf
def test_keras_refuses_a_schedule_it_has_no_class_for():
    keras_twin = import_keras_twin()

    class Halving(LearningRateSchedule):
        def __call__(self, step):
            return 0.1 / 2 ** step

        def get_config(self):
            return {}

    with pytest.raises(ValueError, match=r"learning_rate must be a float or a schedule with a Keras twin "
                                         r"\(ExponentialDecay, .*\); got .*Halving"):
        keras_twin.to_keras(Network([3, 1], seed=0).parameters, learning_rate=Halving())
    # torch's LambdaLR takes any schedule
    twin = torch_twin.to_torch(Network([3, 1], seed=0).parameters, learning_rate=Halving())
    assert twin.optimizer.param_groups[0]["lr"] == 0.1


# --------------------------------------------------------------------------- early stopping and other callbacks
def _split(head):
    output, dims, (X, y) = PROBLEMS[head]
    return output, dims, (X[:20], y[:20]), (X[20:], y[20:])


#: (head, optimizer, learning rate, monitor, batch size): each stops early (from epoch 3 to 12) with a
#: best epoch before the last, so that restoring the best weights matters; accuracy has ties, which
#: are no improvement.
STOPS = {
    "sigmoid-val_loss-full-batch": ("sigmoid", "momentum", 0.1, "val_loss", None),
    "sigmoid-val_accuracy": ("sigmoid", "momentum", 0.1, "val_accuracy", 8),
    "softmax-val_loss": ("softmax", "sgd", 0.5, "val_loss", 8),
    "softmax-val_accuracy-full-batch": ("softmax", "momentum", 0.1, "val_accuracy", None),
    "linear-2-val_rmse": ("linear-2", "sgd", 0.5, "val_rmse", 8),
    "linear-1-val_loss": ("linear-1", "adam", 0.03, "val_loss", 8),
}


def _run_stop(case, twin, **stop_options):
    head, optimizer, learning_rate, monitor, batch_size = STOPS[case]
    output, dims, (X, y), validation = _split(head)
    widths = [dims[0], 32, dims[-1]]
    net = Network(widths, output=output, seed=9, l2=KERAS_L2)
    options = {"monitor": monitor, "patience": 2, "restore_best_weights": True, **stop_options}
    ours_stop, their_stop = EarlyStopping(**options), EarlyStopping(**options)
    model = build(twin, net.parameters, learning_rate=learning_rate, optimizer=optimizer, output=output, l2=L2)
    theirs = train(twin, model, X, y, epochs=60, batch_size=batch_size, seed=3, validation_data=validation,
                    callbacks=[their_stop])
    ours = net.fit(X, y, epochs=60, learning_rate=learning_rate, batch_size=batch_size, optimizer=optimizer, seed=3,
                   validation_data=validation, callbacks=[ours_stop]).history
    return ours, theirs, ours_stop, their_stop, net.parameters, weights(twin, model)


@pytest.mark.exact
@pytest.mark.parametrize("twin, case", rotate(
    [(twin, case) for twin in LOOPS for case in sorted(STOPS)] + [("keras-fit", "softmax-val_loss")]))
def test_early_stopping_stops_and_restores_as_network(twin, case):
    ours, theirs, ours_stop, their_stop, params, twin_params = _run_stop(case, twin)
    assert 0 < ours_stop.best_epoch < ours_stop.stopped_epoch < 59, "the case stops early and restores"
    assert len(theirs["loss"]) == len(ours["loss"]) == ours_stop.stopped_epoch + 1
    assert (their_stop.stopped_epoch, their_stop.best_epoch, their_stop.wait) == (
        ours_stop.stopped_epoch, ours_stop.best_epoch, ours_stop.wait)
    assert their_stop.best == pytest.approx(ours_stop.best, rel=1e-12, abs=0)
    _assert_histories(theirs, ours, "float64", twin)
    _assert_arrays(twin_params, params, "float64", f"restored weights, {twin} vs Network")
    _assert_arrays(their_stop.best_weights, ours_stop.best_weights, "float64", "best_weights")


@pytest.mark.tf
@pytest.mark.parametrize("loop", ["keras-fit", "keras-tf-loop"])
def test_the_keras_twin_stops_with_keras_own_early_stopping(loop, monkeypatch):
    keras = pytest.importorskip("keras")
    made = []

    class Spy(keras.callbacks.EarlyStopping):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            made.append((self, kwargs))

    monkeypatch.setattr(keras.callbacks, "EarlyStopping", Spy)
    _, _, _, their_stop, _, _ = _run_stop("softmax-val_accuracy-full-batch", loop, min_delta=1e-3, start_from_epoch=1)
    (keras_stop, arguments), = made
    assert arguments == {"monitor": "val_accuracy", "min_delta": 1e-3, "patience": 2, "verbose": 0, "mode": "max",
                         "baseline": None, "restore_best_weights": True, "start_from_epoch": 1}
    assert keras_stop.stopped_epoch == their_stop.stopped_epoch > 0


@pytest.mark.tf
@pytest.mark.parametrize("head, monitor", [("sigmoid", "val_accuracy"), ("linear-2", "val_rmse"),
                                           ("softmax", "val_loss")])
def test_mode_auto_is_resolved_as_keras_resolves_it(head, monitor):
    # twinnet passes mode="auto" resolved (METRIC_MODES); Keras's own resolution, from a fitted twin's
    # compiled metrics, is the same direction
    keras = pytest.importorskip("keras")
    keras_twin = import_keras_twin()
    from twinnet.nn.callbacks import METRIC_MODES

    output, dims, (X, y), validation = _split(head)
    model = keras_twin.to_keras(Network(dims, output=output, seed=0).parameters, learning_rate=0.01, output=output)
    stop = keras.callbacks.EarlyStopping(monitor=monitor, mode="auto", patience=100)
    model.fit(X, y, epochs=1, verbose=0, validation_data=validation, callbacks=[stop])
    expected = {"min": keras.ops.less, "max": keras.ops.greater}[METRIC_MODES[monitor.removeprefix("val_")]]
    assert stop.monitor_op is expected


class _Recorder(Callback):
    """Records the weights its model shows after each epoch, and stops the training after epoch 2."""

    def __init__(self):
        self.seen, self.calls = [], []

    def set_params(self, params):
        self.calls.append(("set_params", params["epochs"]))

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, list(logs)))
        self.seen.append(self.model.parameters)
        if epoch == 2:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", list(logs)))


@pytest.mark.parametrize("twin", TWINS)
def test_other_callbacks_see_the_twin_as_they_see_network(twin):
    output, dims, (X, y), validation = _split("softmax")
    net = Network(dims, output=output, seed=4)
    model = build(twin, net.parameters, learning_rate=0.1, output=output)
    ours, theirs = _Recorder(), _Recorder()
    history = train(twin, model, X, y, epochs=10, batch_size=8, seed=3, validation_data=validation,
                     callbacks=[theirs])
    net.fit(X, y, epochs=10, learning_rate=0.1, batch_size=8, seed=3, validation_data=validation, callbacks=[ours])
    keys = ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert theirs.calls == ours.calls == [("set_params", 10), ("train_begin",), ("epoch_end", 0, keys),
                                          ("epoch_end", 1, keys), ("epoch_end", 2, keys), ("train_end", keys)]
    assert len(history["loss"]) == 3
    for mine, yours in zip(theirs.seen, ours.seen):
        _assert_arrays(mine, yours, "float64", "the weights a callback sees")
    # set_parameters restores a snapshot in place, as Network's
    view = theirs.model
    view.set_parameters(theirs.seen[0])
    _assert_arrays(weights(twin, model), theirs.seen[0], "float64", "set_parameters")


@pytest.mark.parametrize("twin", TWINS)
def test_a_monitor_that_is_not_logged_is_named_as_network_names_it(twin):
    output, dims, (X, y), validation = _split("sigmoid")
    net = Network(dims, seed=0)
    with pytest.raises(ValueError) as network_error:
        net.fit(X, y, epochs=2, learning_rate=0.1, callbacks=[EarlyStopping(monitor="val_rmse")])
    model = build(twin, net.parameters, learning_rate=0.1)
    with pytest.raises(ValueError) as twin_error:
        train(twin, model, X, y, epochs=2, callbacks=[EarlyStopping(monitor="val_rmse")])
    assert str(twin_error.value) == str(network_error.value)
    assert "no 'val_rmse' in this fit's logs" in str(twin_error.value)


# --------------------------------------------------------------------------- bad input, in Network's words
def _parameters():
    return Network([3, 4, 2, 1], seed=0).parameters


BAD_BUILDS = {
    "l2-negative": {"l2": -0.1},
    "l2-nan": {"l2": float("nan")},
    "dropout-1": {"dropout": 1.0},
    "dropout-list-length": {"dropout": [0.1]},
    "dropout-item": {"dropout": [0.1, 1.5]},
}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("case", sorted(BAD_BUILDS))
def test_bad_l2_and_dropout_are_refused_in_networks_words(case, library):
    with pytest.raises(ValueError) as network_error:
        Network.from_parameters(_parameters(), **BAD_BUILDS[case])
    with pytest.raises(ValueError) as twin_error:
        build(library, _parameters(), learning_rate=0.1, **BAD_BUILDS[case])
    assert str(twin_error.value) == str(network_error.value)


BAD_MASKS = {
    "no-dropout": (0.0, lambda m: [np.ones((m, 4)), np.ones((m, 2))]),
    "wrong-count": (0.5, lambda m: [np.ones((m, 4))]),
    "transposed": (0.5, lambda m: [np.ones((4, m)), np.ones((m, 2))]),
    "not-0-1": (0.5, lambda m: [np.full((m, 4), 0.5), np.ones((m, 2))]),
    "none-for-a-dropped-layer": (0.5, lambda m: [None, np.ones((m, 2))]),
}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("case", sorted(BAD_MASKS))
def test_bad_masks_are_refused_in_networks_words(case, library):
    rate, make = BAD_MASKS[case]
    X, y = binary_problem(6, 3)
    net = Network.from_parameters(_parameters(), dropout=rate)
    with pytest.raises(ValueError) as network_error:
        net.gradients(X, y, masks=make(6))
    model = build(library, _parameters(), learning_rate=0.1, dropout=rate)
    with pytest.raises(ValueError) as twin_error:
        _gradients(library, model, X, y, masks=make(6))
    assert str(twin_error.value) == str(network_error.value)


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("options, match", [
    ({"validation_data": np.zeros((3, 3))}, r"validation_data must be a tuple \(X_val, y_val\)"),
    ({"validation_data": (np.zeros((3, 2)), [0, 1, 0])}, r"X_val has 2 features, but this Network expects 3"),
    ({"validation_data": (np.zeros((3, 3)), [0, 2, 0])}, r"y_val must contain only the labels 0 and 1"),
    ({"callbacks": [print]}, r"callbacks\[0\] must be a twinnet.nn.callbacks.Callback"),
], ids=["validation-not-a-tuple", "validation-features", "validation-labels", "callback-not-a-callback"])
def test_bad_training_options_are_refused_in_networks_words(twin, options, match):
    X, y = binary_problem(6, 3)
    with pytest.raises(ValueError, match=match):
        Network.from_parameters(_parameters()).fit(X, y, epochs=1, learning_rate=0.1, **options)
    with pytest.raises(ValueError, match=match):
        train(twin, build(twin, _parameters(), learning_rate=0.1), X, y, epochs=1, **options)
