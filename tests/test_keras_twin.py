"""The Keras twin: built from the same parameters, trained the same way, it follows Network.

Its training over every optimizer, batch mode and dtype, in both loops, is test_twin_heads.py's
(the sigmoid head among the others); here: the hidden activations, plain Keras use, floatx, input.

Tolerances (loss curve and final weights, relative): 1e-9 in float64, 1e-4 in float32.
Measured: ~1e-15 in float64 and ~1e-7 in float32; the margins cover other BLAS builds. A plain
``model.fit`` / ``evaluate`` / ``predict`` on a float64 twin is held to 1e-12 (see PLAIN_RTOL).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from twinnet import Network, keras_twin, validation

pytestmark = [pytest.mark.tf, pytest.mark.slow]  # half a minute or more in CI: started first (tests/conftest.py)

keras = pytest.importorskip("keras")  # TensorFlow is installed wherever these tests run (CI)

LAYERS = [4, 5, 3, 1]
TOL = {"float64": {"rtol": 1e-9, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-6}}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((48, 4))
    y = (X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.standard_normal(48) > 0).astype(np.int64)
    return X, y


def _twins(data, *, optimizer="sgd", batch_size=None, dtype="float64", loop="fit",
           hidden_activation="relu", epochs=12):
    X, y = data
    learning_rate = 0.02 if optimizer == "adam" else 0.3
    net = Network(LAYERS, hidden_activation=hidden_activation, seed=1, dtype=dtype)
    model = keras_twin.to_keras(net.parameters, learning_rate=learning_rate, optimizer=optimizer,
                                hidden_activation=hidden_activation, dtype=dtype)
    ours = net.fit(X, y, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                   optimizer=optimizer, seed=3)
    theirs = keras_twin.train(model, X, y, epochs=epochs, batch_size=batch_size, seed=3, loop=loop)
    return ours.history, theirs, net.parameters, keras_twin.from_keras(model)


def _assert_twins(ours, theirs, params, keras_params, dtype):
    assert_allclose(theirs["loss"], ours["loss"], **TOL[dtype], err_msg="loss curve: Keras vs Network")
    assert_allclose(theirs["accuracy"], ours["accuracy"], atol=1e-6, err_msg="accuracy curve")
    for key in params:
        assert keras_params[key].dtype == np.dtype(dtype)
        assert_allclose(keras_params[key], params[key], **TOL[dtype], err_msg=f"final {key}")


# The twin as Keras users use it: a plain model.fit, evaluate and predict, with no floatx set. Keras's
# data adapter casts float inputs to floatx() (float32), which put these curves ~1e-6 apart; the
# twin keeps its own dtype. Measured ~1e-15 (loss, weights) and ~1e-13 (predictions near 0 or 1);
# 1e-12 leaves room for other BLAS kernels, and an input rounded to float32 anywhere breaks it.
PLAIN_RTOL = 1e-12
#: Epochs of the plain model.fit cases: each step's arithmetic is the claim, so 20 epochs (100 Adam
#: steps in mini-batches) hold it at the same tolerances as 80 did, in a quarter of Keras's time.
PLAIN_EPOCHS = 20


@pytest.mark.exact
@pytest.mark.parametrize("batch_size, optimizer", [(None, "sgd"), (10, "adam")], ids=["full-batch", "mini-batch"])
def test_plain_model_fit_reproduces_network_fit(data, optimizer, batch_size):
    # Keras's own batching, full or mini: the optimizers rotate (momentum: test_twin_heads.py's heads)
    X, y = data
    net = Network(LAYERS, seed=1)
    model = keras_twin.to_keras(net.parameters, learning_rate=0.03, optimizer=optimizer)
    history = model.fit(X, y, epochs=PLAIN_EPOCHS, batch_size=batch_size or len(X), shuffle=False, verbose=0)
    ours = net.fit(X, y, epochs=PLAIN_EPOCHS, learning_rate=0.03, optimizer=optimizer, batch_size=batch_size,
                   shuffle=False)
    assert keras.config.floatx() == "float32"
    assert_allclose(history.history["loss"], ours.history["loss"], rtol=PLAIN_RTOL, atol=0,
                    err_msg="loss curve: model.fit vs Network.fit")
    assert_allclose(history.history["accuracy"], ours.history["accuracy"], rtol=PLAIN_RTOL)
    for key, value in keras_twin.from_keras(model).items():
        assert_allclose(value, net.parameters[key], rtol=PLAIN_RTOL, atol=0, err_msg=f"final {key}")
    evaluated = model.evaluate(X, y, verbose=0, return_dict=True)
    expected = net.evaluate(X, y)
    assert evaluated["loss"] == pytest.approx(expected["loss"], rel=PLAIN_RTOL, abs=0)
    assert evaluated["accuracy"] == expected["accuracy"]
    proba = model.predict(X, batch_size=len(X), verbose=0)[:, 0]
    assert proba.dtype == np.float64
    assert_allclose(proba, net.predict_proba(X), rtol=PLAIN_RTOL, atol=0, err_msg="predict")


@pytest.mark.exact
def test_plain_model_fit_float32_twin(data):
    # a float32 twin: Keras and Network both compute in float32, with their own kernels
    X, y = data
    optimizer = "adam"  # the one with most hyperparameters to hold in float32
    net = Network(LAYERS, seed=1, dtype="float32")
    model = keras_twin.to_keras(net.parameters, learning_rate=0.03, optimizer=optimizer, dtype="float32")
    history = model.fit(X, y, epochs=PLAIN_EPOCHS, batch_size=len(X), shuffle=False, verbose=0)
    ours = net.fit(X, y, epochs=PLAIN_EPOCHS, learning_rate=0.03, optimizer=optimizer)
    assert model.optimizer.learning_rate.dtype == "float32"
    assert_allclose(history.history["loss"], ours.history["loss"], **TOL["float32"])
    for key, value in keras_twin.from_keras(model).items():
        assert value.dtype == np.float32
        assert_allclose(value, net.parameters[key], **TOL["float32"], err_msg=f"final {key}")
    assert_allclose(model.predict(X, verbose=0)[:, 0], net.predict_proba(X), **TOL["float32"])


@pytest.fixture
def callers_floatx(request):
    """The caller's own floatx (the parameter), set for the test and restored after it."""
    previous = keras.config.floatx()
    keras.config.set_floatx(request.param)
    yield request.param
    keras.config.set_floatx(previous)


def _raise(*args, **kwargs):
    raise RuntimeError("boom")


# the caller's floatx is never the twin's dtype, where leaving it changed would show: each floatx
# (one twinnet never uses among them) and each dtype once
@pytest.mark.parametrize("callers_floatx, dtype", [("float32", "float64"), ("float64", "float32"),
                                                   ("float16", "float64")], indirect=["callers_floatx"])
def test_twinnet_leaves_the_callers_floatx_alone(data, callers_floatx, dtype, monkeypatch):
    X, y = data
    model = keras_twin.to_keras(Network(LAYERS, seed=0).parameters, learning_rate=0.1, dtype=dtype)
    assert keras.config.floatx() == callers_floatx
    assert all(v.dtype == dtype for v in [*model.weights, model.optimizer.learning_rate])
    calls = [
        lambda: keras_twin.train(model, X, y, epochs=1),
        lambda: keras_twin.train(model, X, y, epochs=1, batch_size=10, loop="tf-loop"),
        lambda: keras_twin.from_keras(model),
        lambda: model.fit(X, y, epochs=1, verbose=0),
        lambda: model.evaluate(X, y, verbose=0),
        lambda: model.predict(X, verbose=0),
    ]
    for call in calls:
        call()
        assert keras.config.floatx() == callers_floatx
    # and when they fail half-way, inside Keras
    failures = [
        lambda: keras_twin.train(model, X, y, epochs=2, on_epoch_end=_raise),
        lambda: keras_twin.train(model, X, y, epochs=2, loop="tf-loop", on_epoch_end=_raise),
        lambda: model.fit(X, y, epochs=1, verbose=0, callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=_raise)]),
        lambda: model.predict(X, verbose=0, callbacks=[keras.callbacks.LambdaCallback(on_predict_end=_raise)]),
        lambda: model.evaluate(X, y, verbose=0, callbacks=[keras.callbacks.LambdaCallback(on_test_end=_raise)]),
    ]
    for call in failures:
        with pytest.raises(RuntimeError, match="boom"):
            call()
        assert keras.config.floatx() == callers_floatx
    monkeypatch.setattr(keras.optimizers, "SGD", _raise)  # fails while the optimizer is made
    with pytest.raises(RuntimeError, match="boom"):
        keras_twin.to_keras(Network(LAYERS, seed=0).parameters, learning_rate=0.1, dtype=dtype)
    assert keras.config.floatx() == callers_floatx


# Keras's saving calls np.array on its variables without numpy 2's copy keyword: Keras's warning
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_a_saved_twin_loads_as_a_twin(data, tmp_path):
    X, y = data
    model = keras_twin.to_keras(Network(LAYERS, seed=0).parameters, learning_rate=0.03, optimizer="adam")
    model.fit(X, y, epochs=2, verbose=0)
    model.save(tmp_path / "twin.keras")
    loaded = keras.models.load_model(tmp_path / "twin.keras")
    assert type(loaded) is type(model)
    assert loaded.optimizer.learning_rate.dtype == "float64"
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))


@pytest.mark.exact
@pytest.mark.parametrize("hidden_activation", sorted(set(validation.ACTIVATIONS) - {"leaky_relu"}))
def test_twin_reproduces_every_hidden_activation(data, hidden_activation):
    _assert_twins(*_twins(data, hidden_activation=hidden_activation, batch_size=10, loop="tf-loop",
                          epochs=6), "float64")


def test_leaky_relu_slope_is_float32_in_tensorflow(data):
    # TensorFlow's LeakyRelu op keeps its slope in a float32 attribute, even for float64 inputs:
    # Keras's 0.2 is 0.20000000298..., a relative difference of 1.5e-8 from Network's 0.2, which
    # training carries into the curves (measured 8e-9 after 6 epochs): agreement to 1e-7 here.
    slope = -float(keras.activations.leaky_relu(np.array([-1.0]))[0])
    assert slope == float(np.float32(0.2)) != 0.2
    ours, theirs, params, keras_params = _twins(data, hidden_activation="leaky_relu", batch_size=10,
                                                loop="tf-loop", epochs=6)
    assert_allclose(theirs["loss"], ours["loss"], rtol=1e-7)
    for key in params:
        assert_allclose(keras_params[key], params[key], rtol=1e-7, atol=1e-10, err_msg=key)


def test_the_twins_optimizers_are_the_projects():
    assert sorted(keras_twin.KERAS_OPTIMIZERS) == sorted(validation.OPTIMIZERS)


# each loop once, each batch mode once: the callback is the loop's, whatever its batches
@pytest.mark.parametrize("loop, batch_size", list(zip(keras_twin.TRAIN_LOOPS, [10, None])))
def test_on_epoch_end_gets_epoch_and_logs_like_a_keras_callback(data, loop, batch_size):
    X, y = data
    model = keras_twin.to_keras(Network(LAYERS, seed=0).parameters, learning_rate=0.1)
    seen = []
    history = keras_twin.train(model, X, y, epochs=3, batch_size=batch_size, loop=loop,
                               on_epoch_end=lambda epoch, logs: seen.append((epoch, logs)))
    assert seen == [(epoch, {"loss": loss}) for epoch, loss in enumerate(history["loss"])]
    assert all(type(logs["loss"]) is float for _, logs in seen)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_and_predictions(data, dtype):
    X, _ = data
    net = Network(LAYERS, hidden_activation="tanh", init="glorot", seed=0, dtype=dtype)
    model = keras_twin.to_keras(net.parameters, learning_rate=0.1, hidden_activation="tanh", dtype=dtype)
    back = keras_twin.from_keras(model)
    for key, value in net.parameters.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    assert model.layers[0].get_weights()[0].shape == (4, 5)  # Keras holds W1.T
    proba = model.predict(X, verbose=0)[:, 0]  # float64 X: the twin casts it to its own dtype
    assert proba.dtype == np.dtype(dtype)
    assert_allclose(proba, net.predict_proba(X), **TOL[dtype])


def test_float64_twin_is_float64_throughout():
    model = keras_twin.to_keras(Network([3, 2, 1], seed=0).parameters, learning_rate=0.1, optimizer="adam")
    assert model.optimizer.learning_rate.dtype == "float64"  # 0.1 rounded to float32 moves the curve
    assert all(v.dtype == "float64" for v in model.weights)
    assert model.compute_loss(y=np.ones((1, 1)), y_pred=np.full((1, 1), 0.5)).dtype == "float64"
    assert keras.config.floatx() == "float32"  # never changed for the caller


def test_loss_is_computed_from_the_logits(data):
    # Saturate the output: logit = 30 for every example. From the logits, the loss of a label 0
    # is 30 + log1p(exp(-30)); clipping probabilities at 1 - 1e-7 would give -log(1e-7) = 16.1.
    X, y = data
    parameters = Network([4, 1], seed=0).parameters
    parameters["W1"][:] = 0.0
    parameters["b1"][:] = 30.0
    model = keras_twin.to_keras(parameters, learning_rate=0.1)
    expected = np.mean(np.where(y == 0, 30.0 + np.log1p(np.exp(-30.0)), np.log1p(np.exp(-30.0))))
    loss = model.evaluate(X, y.reshape(-1, 1).astype(float), verbose=0)[0]
    assert loss == pytest.approx(expected, rel=1e-12)
    for options in ({"loop": "fit"}, {"loop": "tf-loop"}):
        model = keras_twin.to_keras(parameters, learning_rate=1e-12)
        first = keras_twin.train(model, X, y, epochs=1, **options)["loss"][0]
        assert first == pytest.approx(expected, rel=1e-9), options


def test_keras_model_is_the_notebooks_with_the_learning_rate_fixed():
    model = keras_twin.keras_model([10, 4, 3, 1], learning_rate=0.1)
    assert [layer.units for layer in model.layers] == [4, 3, 1]
    assert [layer.activation.__name__ for layer in model.layers] == ["relu", "relu", "sigmoid"]
    assert isinstance(model.layers[0].kernel_initializer, keras.initializers.GlorotUniform)
    for layer in model.layers[1:]:
        assert isinstance(layer.kernel_initializer, keras.initializers.RandomNormal)
        assert layer.kernel_initializer.stddev == 0.05
        assert isinstance(layer.bias_initializer, keras.initializers.Zeros)
    assert isinstance(model.optimizer, keras.optimizers.SGD) and model.optimizer.momentum == 0
    # the notebook's SGD(learning_rate==learning_rate) passed True: a learning rate of 1.0
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)
    assert model.loss == "binary_crossentropy"


def test_keras_model_trains_at_the_given_rate():
    # one full-batch SGD step moves the weights by exactly learning_rate * gradient
    model = keras_twin.keras_model([3, 2, 1], learning_rate=0.05)
    X = np.random.default_rng(0).standard_normal((20, 3)).astype("float32")
    y = (X[:, 0] > 0).astype("float32")
    net = Network.from_parameters(keras_twin.from_keras(model), dtype="float32")
    expected = {k: v - 0.05 * net.gradients(X, y)["d" + k] for k, v in net.parameters.items()}
    model.fit(X, y, batch_size=20, epochs=1, verbose=0)
    for key, value in keras_twin.from_keras(model).items():
        assert_allclose(value, expected[key], rtol=1e-4, atol=1e-6, err_msg=key)


def _parameters():
    return Network([3, 2, 1], seed=0).parameters


@pytest.mark.parametrize("call, match", [
    (lambda: keras_twin.to_keras(_parameters(), learning_rate=0),
     r"learning_rate must be a finite number > 0 or a schedule such as .*; got learning_rate=0"),
    (lambda: keras_twin.to_keras(_parameters(), learning_rate=0.1, optimizer="adamw"),
     r"Unknown optimizer 'adamw'. Expected one of: 'adam', 'momentum', 'rmsprop', 'sgd'"),
    (lambda: keras_twin.to_keras(_parameters(), learning_rate=0.1, hidden_activation="elu"),
     r"Unknown hidden_activation 'elu'"),
    (lambda: keras_twin.to_keras(_parameters(), learning_rate=0.1, dtype="float16"),
     r"dtype must be 'float32' or 'float64'; got dtype='float16'"),
    (lambda: keras_twin.keras_model([3, 0, 1], 0.1), r"only positive widths; got layers_dims=\[3, 0, 1\]"),
    (lambda: keras_twin.keras_model([3, 2.5, 1], 0.1), r"layers_dims must be a list of at least two integers"),
    (lambda: keras_twin.keras_model([3, True, 1], 0.1), r"layers_dims must be a list of at least two integers"),
    (lambda: keras_twin.keras_model([3, 2], 0.1), r"output layer must have width 1"),
    (lambda: keras_twin.keras_model([3, 2, 1], True),
     r"learning_rate must be a finite number > 0; got learning_rate=True"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _replace(key, value):
    return {**_parameters(), key: value}


def _zero_width():
    # a hidden layer of no units: W1 (0, 3), W2 (1, 0)
    return {"W1": np.zeros((0, 3)), "b1": np.zeros((0, 1)), "W2": np.zeros((1, 0)), "b2": np.zeros((1, 1))}


# to_keras checks its parameters as Network.from_parameters does, in Network's words
@pytest.mark.parametrize("parameters, options, match", [
    ([np.zeros((1, 3))], {}, r"parameters must be a dict like \{'W1': \.\.\., 'b1': \.\.\., \.\.\.\}; got list"),
    ({"W1": np.zeros((1, 3))}, {}, r"parameters must hold exactly W1, b1, \.\.\., WL, bL; missing \['b1'\]"),
    (_replace("W3", np.zeros((1, 1))), {}, r"parameters must hold exactly .*; missing \['b3'\]"),
    (_replace("b1", np.zeros((3, 1))), {},
     r"parameters\['b1'\] must have shape \(2, 1\) to match W1; got shape \(3, 1\)"),
    (_replace("W2", np.zeros((1, 3))), {},
     r"parameters\['W2'\] must have shape \(n_2, 2\) to follow the previous layer; got shape \(1, 3\)"),
    ({"W1": np.zeros((2, 3)), "b1": np.zeros((2, 1))}, {},
     r"output must be given for an output layer of width 2: output='softmax' for 2 classes or output='linear'"),
    (_zero_width(), {}, r"only positive widths; got layer_dims=\[3, 0, 1\]"),
    (_replace("W1", np.full((2, 3), np.nan)), {}, r"parameters\['W1'\] contains NaN or inf \(in float64\)"),
    (_replace("b2", np.array([[np.inf]])), {}, r"parameters\['b2'\] contains NaN or inf \(in float64\)"),
    (_replace("W1", np.full((2, 3), 1e39)), {"dtype": "float32"},
     r"parameters\['W1'\] contains NaN or inf \(in float32\)"),
    (_replace("W1", np.full((2, 3), "a")), {}, r"parameters\['W1'\] must hold real numbers; got dtype <U1"),
], ids=["list", "missing-b1", "missing-b3", "b1-shape", "W2-shape", "two-outputs", "zero-width", "W1-nan",
        "b2-inf", "W1-beyond-float32", "W1-strings"])
def test_to_keras_checks_parameters_as_network_does(parameters, options, match):
    with pytest.raises(ValueError, match=match):
        keras_twin.to_keras(parameters, learning_rate=0.1, **options)
    with pytest.raises(ValueError, match=match):
        Network.from_parameters(parameters, **options)


# train checks X, y and its options as Network.fit does, in Network's words
@pytest.mark.parametrize("change, match", [
    (lambda X, y: (X, np.where(y == 1, 2, 0)), r"y must contain only the labels 0 and 1 \(binary\); got also: 2"),
    (lambda X, y: (X, y - 1), r"y must contain only the labels 0 and 1 \(binary\); got also: -1"),
    (lambda X, y: (X, np.where(y == 1, np.nan, 0.0)), r"y contains NaN or inf\."),
    (lambda X, y: (X, y[:-1]), r"X and y have different numbers of examples: X.shape=\(48, 4\), y.shape=\(47,\)"),
    (lambda X, y: (X, y.astype(str)), r"y must hold the labels 0 and 1; got dtype <U"),
    (lambda X, y: (X, np.stack([y, y], axis=1)),
     r"y must be of shape \(m,\) \(or a column \(m, 1\)\).*; got y.shape=\(48, 2\)"),
    (lambda X, y: (X[0], y), r"X must be 2-D of shape \(m, n_features\).*got X.shape=\(4,\) \(a single example"),
    (lambda X, y: (X[:, :3], y), r"X has 3 features, but this Network expects 4"),
    (lambda X, y: (np.where(X > 2, np.inf, X), y),
     r"X contains NaN or inf \(first at row \d+, column \d+, in float64\)"),
    (lambda X, y: (np.where(X > 2, np.nan, X), y), r"X contains NaN or inf"),
    (lambda X, y: (X.astype(str), y), r"X must hold real numbers; got dtype <U"),
    (lambda X, y: (X[:0], y[:0]), r"X is empty"),
], ids=["label-2", "label-minus-1", "label-nan", "y-too-short", "y-strings", "y-2d", "X-1d", "X-3-features",
        "X-inf", "X-nan", "X-strings", "X-empty"])
def test_train_checks_data_as_network_does(data, change, match):
    X, y = change(*data)
    model = keras_twin.to_keras(Network(LAYERS, seed=0).parameters, learning_rate=0.1)
    with pytest.raises(ValueError, match=match):
        keras_twin.train(model, X, y, epochs=1)
    with pytest.raises(ValueError, match=match):
        Network(LAYERS, seed=0).fit(X, y, epochs=1, learning_rate=0.1)


def test_train_checks_x_in_the_models_dtype(data):
    # 1e39 is finite in float64 and inf in float32: a float32 twin cannot be fed it
    X, y = data
    X = np.where(X > 2, 1e39, X)
    model = keras_twin.to_keras(Network(LAYERS, seed=0).parameters, learning_rate=0.1, dtype="float32")
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(first at row \d+, column \d+, in float32\)"):
        keras_twin.train(model, X, y, epochs=1)


@pytest.mark.parametrize("options, match", [
    ({"loop": "eager"}, r"Unknown loop 'eager'. Expected one of: 'fit', 'tf-loop'"),
    ({"epochs": 0}, r"epochs must be an integer >= 1; got epochs=0"),
    ({"epochs": 2.0}, r"epochs must be an integer >= 1; got epochs=2.0"),
    ({"batch_size": 0}, r"batch_size must be an integer >= 1 or None; got batch_size=0"),
    ({"seed": -1}, r"seed must be None or an integer between 0 and 4294967295; got seed=-1"),
    ({"on_epoch_end": "print"}, r"on_epoch_end must be a callable \(epoch, logs\); got 'print'"),
])
def test_train_rejects_bad_options(data, options, match):
    model = keras_twin.to_keras(Network(LAYERS, seed=0).parameters, learning_rate=0.1)
    with pytest.raises(ValueError, match=match):
        keras_twin.train(model, *data, **{"epochs": 1, **options})


def test_from_keras_rejects_other_layers():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization(),
                              keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"Dense layers with biases only; layer '.*' is a BatchNormalization"):
        keras_twin.from_keras(model)
