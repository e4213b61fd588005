"""The PyTorch twin: built from the same parameters, trained on the same batches, it follows Network.

Its training over every optimizer, batch mode and dtype is test_twin_heads.py's (the sigmoid head
among the others); here: the hidden activations, Adam's correction, torch's own RMSprop, round trips,
input.

Tolerances (loss curve and final weights, relative): 1e-12 in float64, 1e-4 in float32.
Measured: ~1e-15 in float64 and ~1e-6 in float32 (the update rules are the same, only the
order of rounding differs); the margins cover other BLAS builds and torch's own kernels.
"""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import twinnet
from twinnet import Network, torch_twin

LAYERS = [4, 5, 3, 1]
TOL = {"float64": {"rtol": 1e-12, "atol": 1e-14}, "float32": {"rtol": 1e-4, "atol": 1e-6}}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((48, 4))
    y = (X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.standard_normal(48) > 0).astype(np.int64)
    return X, y


def _twins(data, *, optimizer="sgd", batch_size=None, dtype="float64", hidden_activation="relu", epochs=12):
    X, y = data
    learning_rate = 0.02 if optimizer == "adam" else 0.3
    net = Network(LAYERS, hidden_activation=hidden_activation, seed=1, dtype=dtype)
    twin = torch_twin.to_torch(net.parameters, learning_rate=learning_rate, optimizer=optimizer,
                               hidden_activation=hidden_activation, dtype=dtype)
    ours = net.fit(X, y, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                   optimizer=optimizer, seed=3)
    theirs = torch_twin.train(twin, X, y, epochs=epochs, batch_size=batch_size, seed=3)
    return ours.history, theirs, net.parameters, torch_twin.from_torch(twin)


def _assert_twins(ours, theirs, params, torch_params, dtype):
    assert_allclose(theirs["loss"], ours["loss"], **TOL[dtype], err_msg="loss curve: torch vs Network")
    for key in params:
        assert torch_params[key].dtype == np.dtype(dtype)
        assert_allclose(torch_params[key], params[key], **TOL[dtype], err_msg=f"final {key}")


@pytest.mark.parametrize("hidden_activation", ["tanh", "sigmoid", "leaky_relu"])
def test_twin_reproduces_every_hidden_activation(data, hidden_activation):
    _assert_twins(*_twins(data, hidden_activation=hidden_activation, batch_size=10), "float64")


def test_adam_without_the_keras_correction_departs(data):
    # the per-step lr and eps of train() matter: torch's own Adam departs from Keras's by ~1e-5
    X, y = data
    net = Network(LAYERS, seed=1)
    model, optimizer = torch_twin.to_torch(net.parameters, learning_rate=0.02, optimizer="adam")
    ours = net.fit(X, y, epochs=5, learning_rate=0.02, optimizer="adam").history["loss"]
    loss_fn, Xt = torch.nn.BCEWithLogitsLoss(), torch.as_tensor(X)
    yt = torch.as_tensor(y, dtype=torch.float64).reshape(-1, 1)
    plain = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = loss_fn(model(Xt), yt)
        loss.backward()
        optimizer.step()
        plain.append(loss.item())
    assert np.max(np.abs(np.subtract(plain, ours)) / np.abs(ours)) > 1e-9


def test_torch_own_rmsprop_departs_from_keras_by_its_epsilon(data):
    # torch.optim.RMSprop(alpha=rho, eps=epsilon) divides by sqrt(v) + eps, Keras (and Network) by
    # sqrt(v + eps): the twin takes Keras's step itself, and here is what torch's own step costs.
    # Predicted to first order: the sum over the steps of Keras's update minus torch's,
    # lr g (1 / sqrt(v + eps) - 1 / (sqrt(v) + eps)), along Network's trajectory: relatively
    # eps / (2 v) where v >> eps, but where a gradient is small (v below eps) torch's step is
    # lr g / (sqrt(v) + eps), up to sqrt(v + eps) / sqrt(v) times Keras's. Measured after 20
    # full-batch steps at lr 0.01: 9.3e-02 on the worst weight, predicted 5.7e-02 (the first
    # order leaves out how the gap feeds back through the gradients); rounding would be ~1e-16.
    X, y = data
    steps, lr, rho, eps = 20, 0.01, 0.9, 1e-7
    net = Network(LAYERS, seed=1)
    params, v = net.parameters, {}
    predicted = {key: 0.0 for key in params}
    for _ in range(steps):  # Network's RMSprop spelled out, with torch's step beside it
        grads = Network.from_parameters(params).gradients(X, y)
        for key in params:
            g = grads["d" + key]
            v[key] = rho * v.get(key, 0.0) + (1 - rho) * g * g
            keras_step = lr * g / np.sqrt(v[key] + eps)
            predicted[key] += keras_step - lr * g / (np.sqrt(v[key]) + eps)
            params[key] = params[key] - keras_step
    net.fit(X, y, epochs=steps, learning_rate=lr, optimizer="rmsprop")
    for key, value in net.parameters.items():  # the trajectory spelled out is Network's
        assert_allclose(params[key], value, rtol=1e-12, atol=1e-14, err_msg=key)
    model, optimizer = torch_twin.to_torch(Network(LAYERS, seed=1).parameters, learning_rate=lr, optimizer="rmsprop")
    assert type(optimizer) is torch.optim.RMSprop and (optimizer.defaults["alpha"], optimizer.defaults["eps"]) == (
        rho, eps)
    loss_fn, Xt = torch.nn.BCEWithLogitsLoss(), torch.as_tensor(X)
    yt = torch.as_tensor(y, dtype=torch.float64).reshape(-1, 1)
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(Xt), yt).backward()
        optimizer.step()  # torch's own step
    own = torch_twin.from_torch(model)
    gap = max(np.max(np.abs(own[key] - params[key])) for key in params)
    expected = max(np.max(np.abs(p)) for p in predicted.values())
    assert gap > 1e-9 and 0.2 < gap / expected < 5, (gap, expected)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_and_predictions(data, dtype):
    X, _ = data
    net = Network(LAYERS, hidden_activation="tanh", init="glorot", seed=0, dtype=dtype)
    model, _ = torch_twin.to_torch(net.parameters, learning_rate=0.1, hidden_activation="tanh", dtype=dtype)
    for back in (torch_twin.from_torch(model), torch_twin.from_torch(torch_twin.TorchTwin(model, None))):
        for key, value in net.parameters.items():
            np.testing.assert_array_equal(back[key], value, err_msg=key)
    assert model[0].weight.shape == (5, 4)  # torch holds W1 as the notebook does, (n_1, n_0)
    with torch.no_grad():
        proba = torch.sigmoid(model(torch.as_tensor(X.astype(dtype))))[:, 0].numpy()
    assert proba.dtype == np.dtype(dtype)
    assert_allclose(proba, net.predict_proba(X), **TOL[dtype])


def test_on_epoch_end_gets_keras_arguments(data):
    seen = []
    twin = torch_twin.to_torch(Network(LAYERS, seed=0).parameters, learning_rate=0.1)
    history = torch_twin.train(twin, *data, epochs=3, on_epoch_end=lambda epoch, logs: seen.append((epoch, logs)))
    assert seen == [(k, {"loss": history["loss"][k]}) for k in range(3)]


def test_import_twinnet_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, twinnet, twinnet.torch_twin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and twinnet.torch_twin is torch_twin


def _parameters():
    return Network([3, 2, 1], seed=0).parameters


@pytest.mark.parametrize("call, match", [
    (lambda: torch_twin.to_torch(_parameters(), learning_rate=0),
     r"learning_rate must be a finite number > 0 or a schedule such as .*; got learning_rate=0"),
    (lambda: torch_twin.to_torch(_parameters(), learning_rate=True),
     r"learning_rate must be a finite number > 0 or a schedule such as .*; got learning_rate=True"),
    (lambda: torch_twin.to_torch(_parameters(), learning_rate=0.1, optimizer="adamw"),
     r"Unknown optimizer 'adamw'. Expected one of: 'adam', 'momentum', 'rmsprop', 'sgd'"),
    (lambda: torch_twin.to_torch(_parameters(), learning_rate=0.1, hidden_activation="elu"),
     r"Unknown hidden_activation 'elu'"),
    (lambda: torch_twin.to_torch(_parameters(), learning_rate=0.1, dtype="float16"),
     r"dtype must be 'float32' or 'float64'; got dtype='float16'"),
    (lambda: torch_twin.from_torch([1, 2]), r"from_torch expects a TorchTwin or a torch.nn.Module; got list"),
    (lambda: torch_twin.from_torch(torch.nn.Sequential(torch.nn.ReLU())),
     r"from_torch: the model has no Linear layers"),
    (lambda: torch_twin.from_torch(torch.nn.Linear(2, 1, bias=False)), r"Linear layers with biases; layer 1 has none"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _replace(key, value):
    return {**_parameters(), key: value}


# to_torch checks its parameters as Network.from_parameters does, in Network's words
@pytest.mark.parametrize("parameters, options", [
    ([np.zeros((1, 3))], {}),
    ({"W1": np.zeros((1, 3))}, {}),
    (_replace("b1", np.zeros((3, 1))), {}),
    (_replace("W2", np.zeros((1, 3))), {}),
    ({"W1": np.zeros((2, 3)), "b1": np.zeros((2, 1))}, {}),
    (_replace("W1", np.full((2, 3), np.nan)), {}),
    (_replace("W1", np.full((2, 3), 1e39)), {"dtype": "float32"}),
    (_replace("W1", np.full((2, 3), "a")), {}),
], ids=["list", "missing-b1", "b1-shape", "W2-shape", "two-outputs", "W1-nan", "W1-beyond-float32", "W1-strings"])
def test_to_torch_checks_parameters_as_network_does(parameters, options):
    with pytest.raises(ValueError) as network_error:
        Network.from_parameters(parameters, **options)
    with pytest.raises(ValueError) as twin_error:
        torch_twin.to_torch(parameters, learning_rate=0.1, **options)
    assert str(twin_error.value) == str(network_error.value)


# train checks X, y and its options as Network.fit does, in Network's words
@pytest.mark.parametrize("change", [
    lambda X, y: (X, np.where(y == 1, 2, 0)),
    lambda X, y: (X, y[:-1]),
    lambda X, y: (X, y.astype(str)),
    lambda X, y: (X[0], y),
    lambda X, y: (X[:, :3], y),
    lambda X, y: (np.where(X > 2, np.inf, X), y),
    lambda X, y: (X[:0], y[:0]),
], ids=["label-2", "y-too-short", "y-strings", "X-1d", "X-3-features", "X-inf", "X-empty"])
def test_train_checks_data_as_network_does(data, change):
    X, y = change(*data)
    with pytest.raises(ValueError) as network_error:
        Network(LAYERS, seed=0).fit(X, y, epochs=1, learning_rate=0.1)
    twin = torch_twin.to_torch(Network(LAYERS, seed=0).parameters, learning_rate=0.1)
    with pytest.raises(ValueError) as twin_error:
        torch_twin.train(twin, X, y, epochs=1)
    assert str(twin_error.value) == str(network_error.value)


@pytest.mark.parametrize("options, match", [
    ({"epochs": 0}, r"epochs must be an integer >= 1; got epochs=0"),
    ({"epochs": 2.0}, r"epochs must be an integer >= 1; got epochs=2.0"),
    ({"batch_size": 0}, r"batch_size must be an integer >= 1 or None; got batch_size=0"),
    ({"seed": -1}, r"seed must be None or an integer between 0 and \d+; got seed=-1"),
    ({"on_epoch_end": "print"}, r"on_epoch_end must be a callable \(epoch, logs\); got 'print'"),
])
def test_train_rejects_bad_options(data, options, match):
    twin = torch_twin.to_torch(Network(LAYERS, seed=0).parameters, learning_rate=0.1)
    with pytest.raises(ValueError, match=match):
        torch_twin.train(twin, *data, **{"epochs": 1, **options})


def test_train_rejects_what_is_not_a_twin(data):
    with pytest.raises(ValueError,
                       match=r"twin must be a TorchTwin \(model, optimizer\) from to_torch; got Sequential"):
        torch_twin.train(torch.nn.Sequential(torch.nn.Linear(4, 1)), *data, epochs=1)
