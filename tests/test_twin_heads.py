"""The twins' heads: Keras (``model.fit`` and the ``tf.function`` loop) and PyTorch, built from the
same parameters and trained on the same batches, follow ``Network.fit``.

Tolerances, loss curve, metric and final weights, relative:
- float64: 1e-12 (measured, every head, optimizer, batch mode and twin: at most 5e-16 on the
  loss, 2e-14 on a weight's element and 1e-14 relative to its array's largest; the margin covers
  other BLAS builds and CPU classes). The weights also get an absolute 1e-14, about 1e-13 of
  their scale: a weight that ends near zero carries the rounding of the larger terms it is the
  difference of (measured 3e-13 relative on such an element over 8 epochs).
- float32: 1e-4, absolute 1e-6 (measured at most 2e-6 on the loss and 6e-7 relative to the
  weights' scale: the same update rules, rounded in another order, over a few epochs).
  RMSprop: TensorFlow's float32 ``rsqrt`` is within about 2 ulps of ``1 / sqrt`` (Network's, torch's),
  and RMSprop divides each gradient by its own scale, so that a small gradient's rounding becomes
  a step's: measured 1e-6 absolute, 5.6e-6 (47 ulps) relative to the weights' scale after 20
  mini-batch steps (tf-loop and fit; torch 1.4e-6), 1.9e-7 full batch; float64 at most 9e-16.
Cases rotate (tests/twins.py): each twin runs every optimizer in each dtype (RMSprop as Keras's
defaults and with momentum, centered), the heads and batch modes in turn; Keras's ``model.fit``
gets two cases.
"""

import copy
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from problems import binary_problem, multiclass_problem, regression_problem
from twins import LOOPS, TWINS, build, import_keras_twin, rotate, train, weights

from twinnet import Network, torch_twin, validation
from twinnet.nn import RMSprop
from twinnet.nn.heads import HEADS

TOL = {"float64": {"rtol": 1e-12, "atol": 1e-14}, "float32": {"rtol": 1e-4, "atol": 1e-6}}
LOSS_TOL = {"float64": {"rtol": 1e-12, "atol": 0}, "float32": {"rtol": 1e-4, "atol": 0}}
EPOCHS = 5  # Keras's model.fit costs ~0.1 s an epoch here; five epochs of five batches show any drift
M = 40  # examples; batch_size=12 makes three batches of 12 and one of 4, shuffled with seed 3

#: Head -> (layer widths, data): 4 features, one hidden layer of 5 units.
PROBLEMS = {
    "sigmoid": ([4, 5, 1], binary_problem(M, 4, seed=0)),
    "softmax": ([4, 5, 3], multiclass_problem(M, 4, 3, seed=0)),
    "linear-1": ([4, 5, 1], regression_problem(M, 4, 1, seed=0)),
    "linear-2": ([4, 5, 2], regression_problem(M, 4, 2, seed=0)),
}


#: Optimizer cases: Network's names (Keras's defaults), and RMSprop with momentum, centered, as an object.
OPTIMIZERS = {name: name for name in validation.OPTIMIZERS} | {
    "rmsprop-momentum-centered": RMSprop(momentum=0.9, centered=True)}
#: Learning rates: Adam and RMSprop take steps of about the rate whatever the gradient.
RATES = {"adam": 0.02, "rmsprop": 0.02, "rmsprop-momentum-centered": 0.01}


def _output(head):
    return head.split("-")[0]




def _run(head, twin, optimizer, batch_size, dtype="float64", seed=3):
    """Network.fit and the twin from the same weights: (Network's history, the twin's, both final weights)."""
    dims, (X, y) = PROBLEMS[head]
    learning_rate, optimizer = RATES.get(optimizer, 0.1), OPTIMIZERS[optimizer]
    net = Network(dims, output=_output(head), seed=1, dtype=dtype)
    model = build(twin, net.parameters, learning_rate=learning_rate, optimizer=optimizer, output=_output(head),
                   dtype=dtype)
    theirs = train(twin, model, X, y, epochs=EPOCHS, batch_size=batch_size, seed=seed)
    assert list(theirs) == ["loss", list(theirs)[1]], "train's history puts the loss first, as Network's"
    ours = net.fit(X, y, epochs=EPOCHS, learning_rate=learning_rate, batch_size=batch_size, optimizer=optimizer,
                   seed=3).history
    return ours, theirs, net.parameters, weights(twin, model)


def _assert_twins(ours, theirs, params, twin_params, dtype, twin):
    assert sorted(theirs) == sorted(ours), "the twin's history has Network's keys"
    metric = list(ours)[1]
    assert_allclose(theirs["loss"], ours["loss"], **LOSS_TOL[dtype], err_msg=f"loss curve: {twin} vs Network")
    assert_allclose(theirs[metric], ours[metric], **LOSS_TOL[dtype], err_msg=f"{metric} curve: {twin} vs Network")
    assert params.keys() == twin_params.keys()
    for key in params:
        assert twin_params[key].dtype == np.dtype(dtype), key
        assert_allclose(twin_params[key], params[key], **TOL[dtype], err_msg=f"final {key}: {twin} vs Network")


@pytest.mark.exact
@pytest.mark.parametrize("twin, dtype, optimizer, head, batch_size", rotate(
    [(twin, dtype, optimizer) for twin in LOOPS for dtype in ["float64", "float32"] for optimizer in OPTIMIZERS]
    + [("keras-fit", "float64", "adam"), ("keras-fit", "float64", "rmsprop-momentum-centered")],
    head=sorted(PROBLEMS), batch_size=[12, None]))
def test_twin_reproduces_network_fit(twin, dtype, optimizer, head, batch_size):
    # each twin has its own optimizers, with hyperparameters rounded through float32, its own batch
    # loop and its own head table: twin x dtype x optimizer, the heads and batch modes in turn (three
    # optimizers a dtype: each twin runs both batch modes in each dtype, and every head)
    _assert_twins(*_run(head, twin, optimizer, batch_size, dtype=dtype), dtype, twin)


@pytest.mark.parametrize("head, twin", rotate([(head,) for head in sorted(PROBLEMS)], twin=LOOPS))
def test_a_different_batch_order_is_detected(head, twin):
    # the agreement above is not automatic: another seed gives another mini-batch trajectory
    ours, theirs, _, _ = _run(head, twin, "sgd", 12, seed=4)
    assert np.max(np.abs(np.subtract(ours["loss"], theirs["loss"]))) > 1e-6


# --------------------------------------------------------------------------- Keras as its users use it
@pytest.mark.tf
@pytest.mark.exact
@pytest.mark.parametrize("head", ["linear-1", "linear-2", "softmax"])  # sigmoid: test_keras_twin.py
def test_plain_keras_fit_evaluate_predict(head):
    # model.fit, evaluate and predict with no twinnet in between: Keras's own loss and metric
    keras_twin = import_keras_twin()
    dims, (X, y) = PROBLEMS[head]
    output = _output(head)
    net = Network(dims, output=output, seed=1)
    model = keras_twin.to_keras(net.parameters, learning_rate=0.1, optimizer="momentum", output=output)
    history = model.fit(X, y, epochs=EPOCHS, batch_size=len(X), shuffle=False, verbose=0).history
    ours = net.fit(X, y, epochs=EPOCHS, learning_rate=0.1, optimizer="momentum").history
    _assert_twins(ours, history, net.parameters, keras_twin.from_keras(model), "float64", "model.fit")
    evaluated = model.evaluate(X, y, verbose=0, return_dict=True)
    expected = net.evaluate(X, y)
    metric = list(ours)[1]
    assert evaluated["loss"] == pytest.approx(expected["loss"], rel=1e-12, abs=0)
    assert evaluated[metric] == pytest.approx(expected[metric], rel=1e-12, abs=0)
    predicted = model.predict(X, batch_size=len(X), verbose=0)
    assert predicted.dtype == np.float64
    if output == "softmax":  # Keras's output is the softmax: Network's probabilities
        assert_allclose(predicted, net.predict_proba(X), rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(predicted.argmax(axis=1), net.predict(X))
    else:
        assert_allclose(predicted.reshape(net.predict(X).shape), net.predict(X), rtol=1e-12, atol=1e-15)


@pytest.mark.tf
def test_keras_heads_are_written_as_keras_users_write_them():
    keras_twin = import_keras_twin()
    for head, (dims, _) in PROBLEMS.items():
        model = keras_twin.to_keras(Network(dims, output=_output(head), seed=0).parameters, learning_rate=0.1,
                                    output=_output(head))
        expected = HEADS[_output(head)].keras
        assert model.layers[-1].activation.__name__ == expected.activation
        assert model.loss == expected.loss
    # one row per head of the project's vocabulary, each with its Keras and PyTorch forms
    assert sorted(HEADS) == sorted(validation.OUTPUTS)
    assert all(head.keras.loss and head.torch.loss for head in HEADS.values())


SATURATED = 40.0  # a logit so large that the softmax's other probabilities are ~4e-18, below Keras's clip 1e-7


def _saturated_softmax():
    # one layer, W = 0, b = (40, 0, 0): every example gets the logits (40, 0, 0), whatever its features.
    # From the logits, the loss of label 0 is log(1 + 2 exp(-40)) and of labels 1, 2 it is 40 + the same;
    # from probabilities clipped to [1e-7, 1 - 1e-7] it would be -log(1e-7) = 16.1 for labels 1 and 2.
    X, y = multiclass_problem(M, 4, 3, seed=0)
    parameters = {"W1": np.zeros((3, 4)), "b1": np.array([[SATURATED], [0.0], [0.0]])}
    expected = np.mean(np.where(y == 0, 0.0, SATURATED) + np.log1p(2 * np.exp(-SATURATED)))
    return X, y, parameters, expected


@pytest.mark.parametrize("twin", TWINS)
def test_the_softmax_loss_is_computed_from_the_logits(twin):
    X, y, parameters, expected = _saturated_softmax()
    assert Network.from_parameters(parameters, output="softmax").evaluate(X, y)["loss"] == pytest.approx(
        expected, rel=1e-12)
    model = build(twin, parameters, learning_rate=1e-12, output="softmax")
    first = train(twin, model, X, y, epochs=1)["loss"][0]
    assert first == pytest.approx(expected, rel=1e-12)
    if twin == "keras-fit":  # and Keras's own evaluate
        assert model.evaluate(X, y, verbose=0)[0] == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- bad input, in Network's words
def _with_label(value):
    def change(y):
        y = y.astype(float)
        y[5] = value
        return y
    return change


#: (head, a change to its targets): each must be rejected by every twin exactly as by Network.fit.
BAD_TARGETS = {
    "softmax-label-3": ("softmax", lambda y: np.where(y == 2, 3, y)),
    "softmax-label-minus-1": ("softmax", lambda y: y - 1),
    "softmax-label-1.5": ("softmax", _with_label(1.5)),
    "softmax-label-nan": ("softmax", _with_label(np.nan)),
    "softmax-one-hot": ("softmax", lambda y: np.eye(3)[y]),
    "softmax-strings": ("softmax", lambda y: y.astype(str)),
    "softmax-too-short": ("softmax", lambda y: y[:-1]),
    "linear-2-one-column": ("linear-2", lambda y: y[:, 0]),
    "linear-2-three-columns": ("linear-2", lambda y: np.hstack([y, y[:, :1]])),
    "linear-2-nan": ("linear-2", lambda y: np.where(y > 0.9, np.nan, y)),
    "linear-2-inf": ("linear-2", lambda y: np.where(y > 0.9, np.inf, y)),
    "linear-2-strings": ("linear-2", lambda y: y.astype(str)),
    "linear-1-two-columns": ("linear-1", lambda y: np.stack([y, y], axis=1)),
    "linear-1-nan": ("linear-1", _with_label(np.nan)),
    "linear-1-complex": ("linear-1", lambda y: y + 1j),
}


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("case", sorted(BAD_TARGETS))
def test_bad_targets_are_rejected_in_networks_words(case, twin):
    head, change = BAD_TARGETS[case]
    dims, (X, y) = PROBLEMS[head]
    y = change(y)
    net = Network(dims, output=_output(head), seed=0)
    with pytest.raises(ValueError) as network_error:
        net.fit(X, y, epochs=1, learning_rate=0.1)
    model = build(twin, net.parameters, learning_rate=0.1, output=_output(head))
    with pytest.raises(ValueError) as twin_error:
        train(twin, model, X, y, epochs=1)
    assert str(twin_error.value) == str(network_error.value)
    assert "y" in str(twin_error.value)  # it names the argument


#: (parameters' widths, output): heads that do not fit the output layer.
BAD_HEADS = {
    "softmax-of-width-1": ([4, 5, 1], "softmax"),
    "sigmoid-of-width-3": ([4, 5, 3], "sigmoid"),
    "width-3-unnamed": ([4, 5, 3], None),
    "unknown-head": ([4, 5, 3], "softmx"),
}


@pytest.mark.parametrize("twin", [pytest.param("keras", marks=pytest.mark.tf), "torch"])
@pytest.mark.parametrize("case", sorted(BAD_HEADS))
def test_a_head_that_does_not_fit_is_rejected_in_networks_words(case, twin):
    dims, output = BAD_HEADS[case]
    parameters = Network(dims, output="linear", seed=0).parameters
    with pytest.raises(ValueError) as network_error:
        Network.from_parameters(parameters, output=output)
    with pytest.raises(ValueError) as twin_error:
        build(twin, parameters, learning_rate=0.1, output=output)
    assert str(twin_error.value) == str(network_error.value)
    assert "output" in str(twin_error.value)


@pytest.mark.tf
def test_keras_train_names_a_last_activation_that_is_no_head():
    keras = pytest.importorskip("keras")
    keras_twin = import_keras_twin()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    X, y = multiclass_problem(M, 4, 3, seed=0)
    with pytest.raises(ValueError, match=r"the model's last layer must have a head's activation: one of 'sigmoid', "
                                         r"'softmax', 'linear' .*; got 'relu'"):
        keras_twin.train(model, X, y, epochs=1)


@pytest.mark.tf
@pytest.mark.parametrize("head", ["softmax", "linear-2"])
def test_a_keras_model_of_another_head_reads_its_head_from_its_last_layer(head):
    # the notebook's kind of model, written by hand: train finds the head from the activation
    keras = pytest.importorskip("keras")
    keras_twin = import_keras_twin()
    dims, (X, y) = PROBLEMS[head]
    parameters = Network(dims, output=_output(head), seed=0).parameters
    twin = keras_twin.to_keras(parameters, learning_rate=0.1, output=_output(head), dtype="float32")
    activation = HEADS[_output(head)].keras.activation
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dense(dims[-1], activation=activation)])
    model.set_weights(twin.get_weights())
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=twin.loss)
    ours = keras_twin.train(twin, X, y, epochs=2, loop="tf-loop")
    theirs = keras_twin.train(model, X, y, epochs=2, loop="tf-loop")
    assert list(theirs) == list(ours)
    assert_allclose(theirs["loss"], ours["loss"], **LOSS_TOL["float32"])


# Keras's saving calls np.array on its variables without numpy 2's copy keyword: Keras's warning
@pytest.mark.tf
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_a_saved_linear_twin_loads_with_its_float64_metric(tmp_path):
    keras = pytest.importorskip("keras")
    keras_twin = import_keras_twin()
    dims, (X, y) = PROBLEMS["linear-2"]
    model = keras_twin.to_keras(Network(dims, output="linear", seed=0).parameters, learning_rate=0.03,
                                output="linear")
    model.fit(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "twin.keras")
    loaded = keras.models.load_model(tmp_path / "twin.keras")
    assert loaded.evaluate(X, y, verbose=0, return_dict=True) == model.evaluate(X, y, verbose=0, return_dict=True)
    assert list(keras_twin.train(loaded, X, y, epochs=1)) == ["loss", "rmse"]


# --------------------------------------------------------------------------- the torch twin's head
def test_a_torch_twin_carries_its_head_and_unpacks_as_model_and_optimizer():
    dims, _ = PROBLEMS["softmax"]
    twin = torch_twin.to_torch(Network(dims, output="softmax", seed=0).parameters, learning_rate=0.1,
                               output="softmax")
    model, optimizer = twin
    assert (twin.model, twin.optimizer, twin.output) == (model, optimizer, "softmax")
    for copied in (copy.deepcopy(twin), pickle.loads(pickle.dumps(twin))):
        assert type(copied) is torch_twin.TorchTwin and copied.output == "softmax"
    # a sigmoid twin, by default, as Network
    assert torch_twin.to_torch(Network([4, 1], seed=0).parameters, learning_rate=0.1).output == "sigmoid"


def test_a_plain_tuple_of_a_wide_model_must_name_its_head():
    dims, (X, y) = PROBLEMS["softmax"]
    model, optimizer = torch_twin.to_torch(Network(dims, output="softmax", seed=0).parameters, learning_rate=0.1,
                                           output="softmax")
    with pytest.raises(ValueError, match=r"the twin's output must be given for an output layer of width 3: "
                                         r"output='softmax' for 3 classes or output='linear'"):
        torch_twin.train((model, optimizer), X, y, epochs=1)
    history = torch_twin.train(torch_twin.TorchTwin(model, optimizer, "softmax"), X, y, epochs=1)
    assert list(history) == ["loss", "accuracy"]
    with pytest.raises(ValueError, match=r"Unknown output 'softmx'. Expected one of: 'linear', 'sigmoid', 'softmax'"):
        torch_twin.TorchTwin(model, optimizer, "softmx")


def test_a_plain_tuple_of_one_output_is_a_sigmoid_twin():
    X, y = binary_problem(M, 4, seed=0)
    net = Network([4, 3, 1], seed=0)
    model, optimizer = torch_twin.to_torch(net.parameters, learning_rate=0.1)
    theirs = torch_twin.train((model, optimizer), X, y, epochs=3)
    ours = net.fit(X, y, epochs=3, learning_rate=0.1).history
    assert_allclose(theirs["loss"], ours["loss"], **LOSS_TOL["float64"])
    assert theirs["accuracy"] == ours["accuracy"]
