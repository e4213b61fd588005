"""twinnet.Network: agreement with the functional reference, components, history, files, bad input."""

import io
import json
import pickle
import tracemalloc

import exact_reference
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal, assert_array_max_ulp
from problems import binary_problem

from twinnet import data, validation
from twinnet import functional as F
from twinnet.nn import (
    ACTIVATIONS,
    INITIALIZERS,
    OPTIMIZERS,
    SGD,
    Adam,
    History,
    Momentum,
    Network,
    NetworkFileError,
    RMSprop,
    engine,
    epoch_batches,
)


@pytest.fixture(scope="module")
def nn_synthetic_train():
    """The synthetic data set's 80% training part: 1600 x 100, as in the notebook."""
    X, y = data.load("synthetic")
    s = data.split(X, y, test_size=0.2, seed=0)
    return s.X_train, s.y_train


# --------------------------------------------------------------------------- the functional reference
@pytest.mark.exact
@pytest.mark.parametrize("layers", [[100, 20, 5, 1], [100, 1]], ids=["notebook-net", "logistic"])
def test_full_batch_training_equals_functional_L_layer_model(nn_synthetic_train, layers):
    X, y = nn_synthetic_train
    net = Network(layers, seed=1)
    initial = net.parameters
    reference, costs = F.L_layer_model(X.T, y.reshape(1, -1), layers, learning_rate=0.1,
                                       num_iterations=100, initial_parameters=initial,
                                       return_costs=True)
    history = net.fit(X, y, epochs=100, learning_rate=0.1)
    assert_allclose(history.history["loss"], costs, rtol=1e-12, atol=1e-12,
                    err_msg="Network's loss curve (actual) vs functional's costs (desired)")
    ours = net.parameters
    for key in reference:
        assert_allclose(ours[key], reference[key], rtol=1e-12, atol=1e-12,
                        err_msg=f"{key}: Network (actual) vs functional (desired) after 100 epochs")
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][0] == F.accuracy(X.T, y, initial)


@pytest.mark.exact
def test_gradients_equal_functional_backward(nn_synthetic_train):
    X, y = nn_synthetic_train
    net = Network([100, 20, 5, 1], seed=3)
    AL, caches = F.L_model_forward(X.T, net.parameters)
    reference = F.L_model_backward(AL, y.reshape(1, -1), caches)
    ours = net.gradients(X, y)
    assert sorted(ours) == ["dW1", "dW2", "dW3", "db1", "db2", "db3"]
    for key, value in ours.items():
        assert value.shape == reference[key].shape
        assert_allclose(value, reference[key], rtol=1e-12, atol=1e-15, err_msg=key)
    assert_allclose(net.predict_proba(X), AL[0], rtol=1e-14)
    assert net.evaluate(X, y)["loss"] == pytest.approx(float(F.compute_cost(AL, y.reshape(1, -1))), rel=1e-14)
    assert net.evaluate(X, y)["accuracy"] == pytest.approx(F.accuracy(X.T, y, net.parameters), abs=0)


def test_a_network_by_hand():
    # functional's hand-worked example in rows: x1 = (1, 2), x2 = (-1, 0); labels (1, 0).
    X = np.array([[1.0, 2.0], [-1.0, 0.0]])
    y = np.array([1, 0])
    net = Network.from_parameters({
        "W1": np.array([[0.5, -0.25], [-1.0, 0.5]]), "b1": np.array([[0.1], [0.2]]),
        "W2": np.array([[1.0, -0.5]]), "b2": np.array([[0.0]]),
    })
    # Z1 = [[0.1, 0.2], [-0.4, 1.2]], A1 = [[0.1, 0.2], [0, 1.2]], z = [0, -0.6]
    assert_allclose(net.decision_function(X), [0.0, -0.6], atol=1e-15)
    # p = [0.5, 1 / (1 + e^0.6)] = [0.5, 0.3543437]; 0.5 is not > 0.5, so both predict 0
    assert_allclose(net.predict_proba(X), [0.5, 0.3543437], rtol=1e-7)
    assert_array_equal(net.predict(X), [0, 0])
    # loss = (log 2 + log(1 + e^-0.6)) / 2 = (0.6931472 + 0.4374880) / 2 = 0.5653176; accuracy 1/2
    assert net.evaluate(X, y) == pytest.approx({"loss": 0.5653176, "accuracy": 0.5}, rel=1e-7)
    grads = net.gradients(X, y)
    # dz = (p - y) / 2 = [-0.25, 0.1771718]; dW2 = dz^T A1 = [-0.025, 0.1626062]; db2 = -0.0728282
    assert_allclose(grads["dW2"], [[-0.025, 0.1626062]], rtol=1e-6)
    assert_allclose(grads["db2"], [[-0.0728282]], rtol=1e-6)
    # dZ1 = (dz W2) * (Z1 > 0) = [[-0.25, 0.125], [0, -0.0885859]]
    # dW1 = dZ1^T X = [[-0.25, -0.5], [0.125 + 0.0885859, 0.25]]; db1 = [-0.25, 0.0364141]
    assert_allclose(grads["dW1"], [[-0.25, -0.5], [0.2135859, 0.25]], rtol=1e-6)
    assert_allclose(grads["db1"], [[-0.25], [0.0364141]], rtol=1e-5)
    # one SGD step at learning_rate 1: W2 = [1 + 0.025, -0.5 - 0.1626062]
    history = net.fit(X, y, epochs=1, learning_rate=1.0)
    assert history.history["loss"] == pytest.approx([0.5653176], rel=1e-7)
    assert_allclose(net.parameters["W2"], [[1.025, -0.6626062]], rtol=1e-6)


# --------------------------------------------------------------------------- components
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_and_derivative(name):
    Z = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    expected_A = {
        "relu": np.maximum(Z, 0),
        "leaky_relu": np.where(Z > 0, Z, 0.2 * Z),
        "sigmoid": 1 / (1 + np.exp(-Z)),
        "tanh": np.tanh(Z),
    }[name]
    # derivatives at 0: relu 0 and leaky_relu 0.2 (the notebook's Z <= 0 rule, TensorFlow's too)
    expected_dA = {
        "relu": (Z > 0).astype(float),
        "leaky_relu": np.where(Z > 0, 1.0, 0.2),
        "sigmoid": expected_A * (1 - expected_A),
        "tanh": 1 - np.tanh(Z) ** 2,
    }[name]
    act = ACTIVATIONS[name]
    A = act.forward(Z, out=np.empty_like(Z))
    assert_allclose(A, expected_A, rtol=1e-15)
    assert_allclose(act.derivative(A, out=np.empty_like(A)), expected_dA, rtol=1e-15)
    # numerically: central differences of the forward kernel, away from the kink at 0
    h = 1e-6
    Zs = np.array([[-2.0, -0.3, 0.4, 1.7]])
    numeric = (act.forward(Zs + h, out=np.empty_like(Zs)) - act.forward(Zs - h, out=np.empty_like(Zs))) / (2 * h)
    analytic = act.derivative(act.forward(Zs, out=np.empty_like(Zs)), out=np.empty_like(Zs))
    assert_allclose(analytic, numeric, rtol=1e-8)


@pytest.mark.tf
def test_leaky_relu_slope_is_keras_default():
    keras = pytest.importorskip("keras")
    x = np.array([-2.0, -0.5, 0.0, 1.5], dtype=np.float32)
    expected = np.asarray(keras.activations.leaky_relu(x))
    ours = ACTIVATIONS["leaky_relu"].forward(x, out=np.empty_like(x))
    assert_allclose(ours, expected, rtol=1e-7)


@pytest.mark.exact
def test_initializers_draw_layer_by_layer_from_the_seed():
    dims = [6, 4, 3, 1]
    for init, draw in [
        ("normal", lambda rng, a, b: rng.standard_normal((b, a)) * 0.1),
        ("he", lambda rng, a, b: rng.standard_normal((b, a)) * np.sqrt(2 / a)),
        ("glorot", lambda rng, a, b: rng.uniform(-np.sqrt(6 / (a + b)), np.sqrt(6 / (a + b)), (b, a))),
    ]:
        np.random.seed(123)  # has no effect on a Network
        params = Network(dims, init=init, seed=7).parameters
        rng = np.random.default_rng(7)
        for l in range(1, len(dims)):
            assert_array_equal(params[f"W{l}"], draw(rng, dims[l - 1], dims[l]), err_msg=f"{init} W{l}")
            assert_array_equal(params[f"b{l}"], np.zeros((dims[l], 1)))
    assert sorted(INITIALIZERS) == ["glorot", "he", "normal"]
    # float32 starts from the float64 draw, rounded
    assert_array_equal(Network(dims, seed=7, dtype="float32").parameters["W1"],
                       Network(dims, seed=7).parameters["W1"].astype(np.float32))
    # no seed: different draws
    assert not np.array_equal(Network(dims).parameters["W1"], Network(dims).parameters["W1"])


# Hand-computed single steps: w = (1, -2), g = (0.5, -0.25), learning_rate = 0.1.
W0, G = np.array([1.0, -2.0]), np.array([0.5, -0.25])


def steps(optimizer, n, dtype=np.float64):
    w = W0.astype(dtype)
    optimizer.build(w.size, w.dtype)
    for _ in range(n):
        optimizer.apply(w, G.astype(dtype), learning_rate=0.1)
    return w


@pytest.mark.exact
def test_sgd_step_by_hand():
    # w - 0.1 g = (1 - 0.05, -2 + 0.025)
    assert_allclose(steps(SGD(), 1), [0.95, -1.975], rtol=1e-15)


@pytest.mark.exact
def test_momentum_steps_by_hand():
    # Keras (TensorFlow) casts momentum through float32: mu = float32(0.9) = 0.8999999761581421.
    # v1 = -0.1 g = (-0.05, 0.025); w1 = (0.95, -1.975)
    assert_allclose(steps(Momentum(), 1), [0.95, -1.975], rtol=1e-15)
    # v2 = mu v1 - 0.1 g = (-0.0449999988 - 0.05, 0.0224999994 + 0.025) = (-0.0949999988, 0.0474999994)
    # w2 = w1 + v2 = (0.8550000011920929, -1.9275000005960465)   (0.855 and -1.9275 with mu = 0.9)
    assert_allclose(steps(Momentum(), 2), [0.8550000011920929, -1.9275000005960465], rtol=1e-15)
    # Nesterov: w1 = w0 + mu v1 - 0.1 g = (1 - 0.0449999988 - 0.05, -2 + 0.0224999994 + 0.025)
    assert_allclose(steps(Momentum(nesterov=True), 1), [0.9050000011920929, -1.9525000005960464], rtol=1e-15)


@pytest.mark.exact
def test_adam_steps_by_hand():
    # Keras (TensorFlow) casts the betas through float32 in the powers: b1 = 0.8999999761581421,
    # b2 = 0.9990000128746033; the factors 1 - 0.9 and 1 - 0.999 stay exact.
    # t = 1: m = 0.1 g = (0.05, -0.025); v = 0.001 g^2 = (2.5e-4, 6.25e-5)
    #   alpha = 0.1 sqrt(1 - b2) / (1 - b1) = 0.1 * 0.0316227562 / 0.1000000238 = 0.0316225655
    #   step = m alpha / (sqrt(v) + 1e-7) = (0.00158112827 / 0.0158114883, -0.000790564137 / 0.00790579415)
    #        = (0.0999986999788, -0.0999980675394)
    assert_allclose(steps(Adam(), 1), [1 - 0.0999986999788, -2 + 0.0999980675394], rtol=1e-11)
    # t = 2, same g: m = 0.9 m + 0.1 g = (0.095, -0.0475); v = 0.999 v + 0.001 g^2 = (4.9975e-4, 1.249375e-4)
    #   alpha = 0.1 sqrt(1 - b2^2) / (1 - b1^2) = 0.0235315158
    #   step = (0.095 * 0.0235315158 / (0.0223551 + 1e-7), ...) = (0.0999988866825, -0.0999984393660)
    assert_allclose(steps(Adam(), 2), [1 - 0.0999986999788 - 0.0999988866825,
                                       -2 + 0.0999980675394 + 0.0999984393660], rtol=1e-11)
    # float32 follows the same rule with float32 scalars (1 - b2**2 rounds at ~1e-5, as in Keras)
    assert_allclose(steps(Adam(), 2, np.float32), steps(Adam(), 2), rtol=1e-5)


@pytest.mark.exact
def test_rmsprop_steps_by_hand():
    # rho = 0.9 and 1 - rho stay exact (Keras does not cast them); epsilon = 1e-7 under the root.
    # t = 1: v = 0.1 g^2 = (0.025, 0.00625); sqrt(v + 1e-7) = (0.158114199235869, 0.0790575739572117)
    #   step = 0.1 g / sqrt(v + 1e-7) = (0.316227133563203, -0.316225236225067)
    assert_allclose(steps(RMSprop(), 1), [1 - 0.316227133563203, -2 + 0.316225236225067], rtol=1e-14)
    # t = 2: v = 0.9 v + 0.1 g^2 = (0.0475, 0.011875); step = (0.229415492380697, -0.229414767915678)
    assert_allclose(steps(RMSprop(), 2), [0.454357374056100, -1.454359995859255], rtol=1e-14)
    # centered, momentum 0.5: a = 0.1 g = (0.05, -0.025); v - a^2 + 1e-7 = (0.0225001, 0.0056251)
    #   t = 1: s = 0.1 g / sqrt(0.0225001, 0.0056251) = (0.333332592595062, -0.333330370409876)
    #   t = 2: a = (0.095, -0.0475), v - a^2 + 1e-7 = (0.0384751, 0.00961885),
    #   increment = (0.254906039705596, -0.254905045928261), s = 0.5 s + increment
    #   = (0.421572336003127, -0.421570231133199); w = w0 - s1 - s2
    assert_allclose(steps(RMSprop(momentum=0.5, centered=True), 2), [0.245095071401811, -1.245099398456925],
                    rtol=1e-14)
    # float32 follows the same rule with float32 scalars
    assert_allclose(steps(RMSprop(centered=True), 2, np.float32), steps(RMSprop(centered=True), 2), rtol=1e-6)


@pytest.mark.exact
@pytest.mark.tf
@pytest.mark.parametrize("name", [*sorted(OPTIMIZERS), "nesterov", "rmsprop-centered"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_optimizers_step_like_keras(name, dtype):
    keras = pytest.importorskip("keras")
    import tensorflow as tf

    kwargs = {"sgd": {}, "momentum": {"momentum": 0.9}, "adam": {}, "rmsprop": {},
              "nesterov": {"momentum": 0.9, "nesterov": True},
              "rmsprop-centered": {"momentum": 0.9, "centered": True}}[name]
    cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
           "rmsprop-centered": keras.optimizers.RMSprop}.get(name, keras.optimizers.SGD)
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(7).astype(dtype)
    grads = rng.standard_normal((5, 7)).astype(dtype)
    variable = keras.Variable(w0, dtype=dtype)
    rate = 2.0**-6  # exact in float32, to which Keras rounds its learning rate by default
    theirs = cls(learning_rate=rate, **kwargs)
    ours = {"nesterov": Momentum(nesterov=True), "rmsprop-centered": RMSprop(momentum=0.9, centered=True)}.get(
        name) or OPTIMIZERS[name]()
    w = w0.copy()
    ours.build(w.size, w.dtype)
    # compiled, as fit's step and the twin's tf-loop run it (TensorFlow's graph optimizer rewrites
    # RMSprop's division by a square root: see twinnet.nn.RMSprop)
    step = tf.function(lambda g: theirs.apply_gradients([(g, variable)]))
    for g in grads:
        step(tf.constant(g))
        ours.apply(w, g.copy(), learning_rate=rate)
    # The same rules with the same scalars (momentum and the betas go through float32 on both
    # sides), but not the same code: TensorFlow's kernels and NumPy's vector paths may round a step
    # differently on another CPU. Measured: bit for bit on AVX2 CPUs, float64 included (RMSprop too,
    # whose float32 rsqrt is exact on 7 elements, TensorFlow's scalar path); 1 ulp in float32 Adam on
    # an AVX-512 CPU (Zen 4). A rounding difference moves a weight by at most about one ulp per
    # step, so 5 steps bound it.
    assert_array_max_ulp(w, np.asarray(variable), maxulp=5)


@pytest.mark.exact
def test_optimizer_state_is_fresh_at_each_fit():
    X, y = binary_problem()
    opt = Adam()
    a = Network([3, 4, 1], seed=0)
    b = Network([3, 4, 1], seed=0)
    a.fit(X, y, epochs=3, learning_rate=0.01, optimizer=opt)
    a.fit(X, y, epochs=3, learning_rate=0.01, optimizer=opt)
    assert opt.iterations == 3
    b.fit(X, y, epochs=3, learning_rate=0.01, optimizer="adam")
    b.fit(X, y, epochs=3, learning_rate=0.01, optimizer="adam")
    assert_array_equal(a.parameters["W1"], b.parameters["W1"])


# --------------------------------------------------------------------------- history and batches
@pytest.mark.exact
def test_full_batch_history_follows_keras():
    X, y = binary_problem()
    Xv, yv = binary_problem(seed=1)
    net = Network([3, 5, 1], seed=0)
    twin = Network.from_parameters(net.parameters)
    history = net.fit(X, y, epochs=4, learning_rate=0.5, validation_data=(Xv, yv))
    assert isinstance(history, History) and history.epoch == [0, 1, 2, 3]
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.params["steps"] == 1 and history.params["batch_size"] == 40
    for k in range(4):
        before = twin.evaluate(X, y)  # the loss of epoch k is computed before its update
        assert history.history["loss"][k] == pytest.approx(before["loss"], rel=1e-14)
        assert history.history["accuracy"][k] == before["accuracy"]
        twin.fit(X, y, epochs=1, learning_rate=0.5)
        after = twin.evaluate(Xv, yv)  # validation comes after the update
        assert history.history["val_loss"][k] == pytest.approx(after["loss"], rel=1e-14)
        assert history.history["val_accuracy"][k] == after["accuracy"]


@pytest.mark.exact
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_mini_batch_training_equals_a_loop_over_epoch_batches(shuffle, optimizer):
    X, y = binary_problem(m=23)
    net = Network([3, 4, 3, 1], hidden_activation="tanh", seed=0)
    params = net.parameters
    history = net.fit(X, y, epochs=3, learning_rate=0.05, batch_size=5, optimizer=optimizer,
                      shuffle=shuffle, seed=11)
    # The same training spelled out with public pieces: epoch_batches, evaluate, gradients, and
    # one optimizer per parameter array (the update rules are elementwise).
    rng = np.random.default_rng(11)
    optimizers = {key: OPTIMIZERS[optimizer]() for key in params}
    for key, opt in optimizers.items():
        opt.build(params[key].size, params[key].dtype)
    for k in range(3):
        batches = epoch_batches(rng, 23, 5, shuffle)
        assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
        loss_sum = correct = 0.0
        for idx in batches:
            ref = Network.from_parameters(params, hidden_activation="tanh")
            scores = ref.evaluate(X[idx], y[idx])
            loss_sum += scores["loss"] * len(idx)  # Keras's Mean weighted by batch size
            correct += scores["accuracy"] * len(idx)
            grads = ref.gradients(X[idx], y[idx])
            for key, opt in optimizers.items():
                opt.apply(params[key].reshape(-1), grads["d" + key].ravel(), 0.05)
        assert history.history["loss"][k] == pytest.approx(loss_sum / 23, rel=1e-13)
        assert history.history["accuracy"][k] == pytest.approx(correct / 23, abs=1e-15)
    for key, value in params.items():
        assert_allclose(net.parameters[key], value, rtol=1e-13, atol=1e-15, err_msg=key)


def test_the_tables_are_keyed_by_the_vocabularies():
    # one vocabulary, in twinnet.validation: the engine's tables implement exactly its names
    assert sorted(ACTIVATIONS) == sorted(validation.ACTIVATIONS)
    assert sorted(INITIALIZERS) == sorted(validation.INITIALIZERS)
    assert sorted(OPTIMIZERS) == sorted(validation.OPTIMIZERS)


def test_epoch_batches():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    (full,) = epoch_batches(rng, 10, None, True)
    assert_array_equal(full, np.arange(10))
    assert_array_equal(epoch_batches(rng, 10, 10, True)[0], np.arange(10))
    assert rng.bit_generator.state == state  # a full batch draws nothing
    batches = epoch_batches(rng, 10, 4, True)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert_array_equal(np.concatenate(batches), np.random.default_rng(0).permutation(10))
    assert_array_equal(np.concatenate(epoch_batches(rng, 10, 4, False)), np.arange(10))


@pytest.mark.exact
def test_fit_seed_defaults_to_the_network_seed():
    X, y = binary_problem()
    a = Network([3, 4, 1], seed=5)
    b = Network([3, 4, 1], seed=5)
    a.fit(X, y, epochs=2, learning_rate=0.1, batch_size=7)
    b.fit(X, y, epochs=2, learning_rate=0.1, batch_size=7, seed=5)
    assert_array_equal(a.parameters["W1"], b.parameters["W1"])
    c = Network([3, 4, 1], seed=5)
    c.fit(X, y, epochs=2, learning_rate=0.1, batch_size=7, seed=6)
    assert not np.array_equal(a.parameters["W1"], c.parameters["W1"])


# --------------------------------------------------------------------------- dtype, speed design
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_float32_end_to_end(name):
    X, y = binary_problem(m=64)
    n32 = Network([3, 6, 1], hidden_activation=name, seed=0, dtype="float32")
    n64 = Network.from_parameters(n32.parameters, hidden_activation=name, dtype="float64")
    assert all(v.dtype == np.float32 for v in n32.parameters.values())
    assert n32.predict_proba(X).dtype == np.float32 and n32.decision_function(X).dtype == np.float32
    assert all(v.dtype == np.float32 for v in n32.gradients(X, y).values())
    h32 = n32.fit(X, y, epochs=20, learning_rate=0.1, batch_size=16, optimizer="adam", seed=0)
    h64 = n64.fit(X, y, epochs=20, learning_rate=0.1, batch_size=16, optimizer="adam", seed=0)
    assert_allclose(h32.history["loss"], h64.history["loss"], rtol=1e-4)
    assert all(v.dtype == np.float32 for v in n32.parameters.values())


LOGITS = [-1000.0, -100.0, -1.5, "-tiny", 0.0, "tiny", 1.5, 100.0, 1000.0]


@pytest.mark.exact
@pytest.mark.parametrize("logit", LOGITS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_public_path_is_quiet_and_right_at_any_logit(dtype, logit):
    dtype = np.dtype(dtype).type
    tiny = np.finfo(dtype).tiny
    z = dtype({"tiny": tiny, "-tiny": -tiny}.get(logit, logit))
    # logistic regression whose logit is its input (W = 1, b = 0), one example of each label
    net = Network.from_parameters({"W1": np.ones((1, 1), dtype), "b1": np.zeros((1, 1), dtype)})
    X, y = np.full((2, 1), z), np.array([0, 1])
    # the same logit through a sigmoid hidden unit: the engine's sigmoid kernel and its derivative
    hidden = Network.from_parameters({"W1": np.ones((1, 1), dtype), "b1": np.zeros((1, 1), dtype),
                                      "W2": np.ones((1, 1), dtype), "b2": np.zeros((1, 1), dtype)},
                                     hidden_activation="sigmoid")
    with np.errstate(all="raise"):  # underflow included
        p = net.predict_proba(X)
        losses = np.array([net.evaluate(X[i:i + 1], y[i:i + 1])["loss"] for i in range(2)], dtype)
        grads = net.gradients(X, y)
        hidden_grads = hidden.gradients(X, y)
        kernel = ACTIVATIONS["sigmoid"].forward(X.T, out=np.empty_like(X.T))[0]
        for model in (net, hidden):
            model.fit(X, y, epochs=2, learning_rate=0.01, optimizer="adam", validation_data=(X, y))
    # measured at most 1 ulp from the correctly rounded values on this AVX2 CPU: 4 leaves room for
    # NumPy's AVX-512 exp and log1p, which round differently
    exact_reference.assert_within_ulps(p, exact_reference.sigmoid(X[:, 0], dtype), maxulp=4)
    exact_reference.assert_within_ulps(losses, exact_reference.log_loss(X[:, 0], y, dtype), maxulp=4)
    exact_reference.assert_within_ulps(kernel, exact_reference.sigmoid(X[:, 0], dtype), maxulp=4)
    # db = sum((p - y) / m): the mean of p - y, to rounding (halving is exact above subnormals)
    assert_allclose(grads["db1"][0, 0], np.mean(p - y, dtype=dtype), rtol=2 * np.finfo(dtype).eps, atol=tiny)
    for model_grads in (grads, hidden_grads):
        assert all(np.isfinite(g).all() for g in model_grads.values())
    assert all(np.isfinite(w).all() for model in (net, hidden) for w in model.parameters.values())


@pytest.mark.exact
def test_output_is_safe_for_saturated_logits():
    net = Network.from_parameters({"W1": np.array([[1e3]]), "b1": np.array([[0.0]])})
    X = np.array([[-1e3], [1e3], [-1.0], [1.0]])
    y = np.array([1, 0, 0, 1])
    # z = (-1e6, 1e6, -1e3, 1e3): p exactly 0 and 1, the loss exactly |z| for the two wrong ones
    assert_array_equal(net.predict_proba(X), [0.0, 1.0, np.exp(-1e3) / (1 + np.exp(-1e3)), 1.0])
    scores = net.evaluate(X, y)
    assert scores["loss"] == pytest.approx((1e6 + 1e6 + 0 + 0) / 4, rel=1e-15)
    grads = net.gradients(X, y)  # (p - y) / m: finite where the textbook form divides by zero
    assert np.isfinite(grads["dW1"]).all() and grads["db1"][0, 0] == pytest.approx(0.0, abs=1e-15)


def test_training_loop_allocates_no_arrays(monkeypatch):
    # 20000 examples: any array per example (>= 160 kB in float64) in the loop would show up.
    m = 20_000
    X, y = binary_problem(m=m, n=4)
    seen = {}
    forward = engine.forward

    def spy(*args):
        if "start" not in seen:  # the first forward pass: every buffer exists by now
            tracemalloc.reset_peak()
            seen["start"] = tracemalloc.get_traced_memory()[0]
        return forward(*args)

    monkeypatch.setattr(engine, "forward", spy)
    for kwargs in [{}, {"batch_size": 5000, "optimizer": "adam"}, {"batch_size": 3000, "shuffle": False,
                                                                      "optimizer": "momentum"}]:
        seen.clear()
        net = Network([4, 16, 8, 1], seed=0)
        tracemalloc.start()
        try:
            net.fit(X, y, epochs=10, learning_rate=0.1, validation_data=(X[:100], y[:100]), **kwargs)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak - seen["start"] < 32_000, f"{kwargs}: the loop allocated {peak - seen['start']} bytes"


# --------------------------------------------------------------------------- parameters and files
def test_parameters_are_copies_and_from_parameters_round_trips():
    net = Network([4, 3, 2, 1], seed=0)
    params = net.parameters
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (3, 4), "b1": (3, 1), "W2": (2, 3), "b2": (2, 1), "W3": (1, 2), "b3": (1, 1)}
    params["W1"][...] = 0
    assert not np.all(net.parameters["W1"] == 0)
    twin = Network.from_parameters(net.parameters)
    for key, value in net.parameters.items():
        assert_array_equal(twin.parameters[key], value)
    assert twin.init is None and twin.dtype == np.float64
    f32 = Network.from_parameters({k: v.astype(np.float32) for k, v in net.parameters.items()})
    assert f32.dtype == np.float32
    # one layout for the common currency: a bias is a column, as the notebook's functions need it
    with pytest.raises(ValueError, match=r"parameters\['b1'\] must have shape \(3, 1\) to match W1; "
                       r"got shape \(3,\) \(a column: parameters\['b1'\].reshape\(-1, 1\)\)"):
        Network.from_parameters({**net.parameters, "b1": np.zeros(3)})
    assert net.n_params == 4 * 3 + 3 + 3 * 2 + 2 + 2 + 1
    assert repr(net) == "Network([4, 3, 2, 1], hidden_activation='relu', init='normal', seed=0, dtype='float64')"


def test_save_names_the_users_path_in_its_errors(tmp_path):
    net = Network([2, 1], seed=0)
    with pytest.raises(IsADirectoryError, match="is a directory, expected a file name"):
        net.save(tmp_path)
    path = tmp_path / "no" / "model.npz"
    with pytest.raises(FileNotFoundError) as info:
        net.save(path)
    assert info.value.filename == str(path) and str(path) in str(info.value)
    assert not any(tmp_path.rglob("*.tmp"))


@pytest.mark.exact
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_save_load_round_trip_is_bit_exact(tmp_path, dtype, name):
    X, y = binary_problem()
    net = Network([3, 5, 2, 1], hidden_activation=name, init="he", seed=4, dtype=dtype)
    net.fit(X, y, epochs=5, learning_rate=0.1)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = Network.load(path)
    assert repr(loaded) == repr(net)
    for key, value in net.parameters.items():
        assert loaded.parameters[key].dtype == value.dtype
        assert_array_equal(loaded.parameters[key], value)
    assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    # a plain .npz: readable without pickle, the weights under their dict names
    with np.load(path, allow_pickle=False) as npz:
        assert_array_equal(npz["W1"], net.parameters["W1"])
        assert json.loads(str(npz["__metadata__"][()]))["format"] == "twinnet.Network"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_pickle_keeps_the_flat_parameter_views():
    X, y = binary_problem()
    net = pickle.loads(pickle.dumps(Network([3, 4, 1], seed=0)))
    before = net.parameters["W1"]
    net.fit(X, y, epochs=3, learning_rate=0.5)
    assert not np.array_equal(net.parameters["W1"], before)  # training moved the viewed weights


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _metadata(**changes):
    meta = {"format": "twinnet.Network", "format_version": 1, "layer_dims": [2, 1],
            "hidden_activation": "relu", "init": "normal", "seed": None, "dtype": "float64"}
    meta.update(changes)
    return np.array(json.dumps(meta))


W_B = {"W1": np.ones((1, 2)), "b1": np.zeros((1, 1))}


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b"not a model at all" * 10), "not a twinnet Network file"),
    (lambda p: p.write_bytes(b""), "not a twinnet Network file"),
    (lambda p: p.write_bytes(_npy(np.ones(3))), "a single .npy array"),
    (lambda p: p.write_bytes(pickle.dumps({"W1": np.ones((1, 2))})), "not a twinnet Network file"),
    (lambda p: _write_npz(p, **W_B), "no '__metadata__' entry"),
    (lambda p: _write_npz(p, **W_B, __metadata__=np.array("{broken")), "not a twinnet Network file"),
    (lambda p: _write_npz(p, **W_B, __metadata__=_metadata(format="keras")), "metadata format is 'keras'"),
    (lambda p: _write_npz(p, **W_B, __metadata__=_metadata(format_version=99)), "format_version 99"),
    (lambda p: _write_npz(p, **W_B, __metadata__=_metadata(dtype="float32")), "is float64, the metadata says float32"),
    (lambda p: _write_npz(p, **W_B, __metadata__=_metadata(layer_dims=[2, 3, 1])), "layer_dims"),
    (lambda p: _write_npz(p, W1=np.ones((1, 2)), __metadata__=_metadata()), "missing"),
    (lambda p: _write_npz(p, **W_B, __metadata__=_metadata(hidden_activation="swish")), "Unknown hidden_activation"),
    (lambda p: _write_npz(p, W1=np.full((1, 2), np.nan), b1=np.zeros((1, 1)), __metadata__=_metadata()), "NaN"),
], ids=["random-bytes", "empty", "npy", "pickle", "no-metadata", "broken-json", "foreign-format",
        "newer-version", "dtype-mismatch", "dims-mismatch", "missing-array", "bad-activation", "nan-weights"])
def test_load_rejects_foreign_or_corrupted_files(tmp_path, make, match):
    path = tmp_path / "model.npz"
    make(path)
    with pytest.raises(NetworkFileError, match=match):
        Network.load(path)


def test_load_rejects_truncated_archives(tmp_path):
    path = tmp_path / "model.npz"
    Network([3, 4, 1], seed=0).save(path)
    raw = path.read_bytes()
    for cut in range(0, len(raw), max(1, len(raw) // 40)):
        path.write_bytes(raw[:cut])
        with pytest.raises(NetworkFileError, match="not a twinnet Network file"):
            Network.load(path)
    flipped = bytearray(raw)
    for i in range(len(raw) // 3, len(raw), 97):
        flipped[i] ^= 0xFF
    path.write_bytes(bytes(flipped))
    try:
        Network.load(path)  # a flipped byte inside an array's data may load as other numbers
    except NetworkFileError as exc:
        assert "not a twinnet Network file" in str(exc)


def test_load_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        Network.load(tmp_path / "absent.npz")
    with pytest.raises(IsADirectoryError):
        Network.load(tmp_path)
    with pytest.raises(IsADirectoryError):
        Network([2, 1]).save(tmp_path)


# --------------------------------------------------------------------------- bad input
X3, Y3 = binary_problem()
BAD_FIT = [
    ("wrong-features", lambda n: n.fit(X3[:, :2], Y3, epochs=1, learning_rate=0.1),
     r"X has 2 features, but this Network expects 3"),
    ("non-binary-labels", lambda n: n.fit(X3, np.arange(40) % 3, epochs=1, learning_rate=0.1),
     r"y must contain only the labels 0 and 1 \(binary\); got also: 2"),
    ("string-labels", lambda n: n.fit(X3, np.array(["a", "b"] * 20), epochs=1, learning_rate=0.1),
     r"y must hold the labels 0 and 1; got dtype <U1"),
    ("nan", lambda n: n.fit(np.where(np.eye(40, 3) > 0, np.nan, X3), Y3, epochs=1, learning_rate=0.1),
     r"X contains NaN or inf \(first at row 0, column 0"),
    ("inf", lambda n: n.predict(np.full((2, 3), np.inf)), r"X contains NaN or inf"),
    ("float32-overflow", lambda n: Network([3, 1], dtype="float32").predict(np.full((1, 3), 1e300)),
     r"X contains NaN or inf .* in float32"),
    ("empty", lambda n: n.fit(np.empty((0, 3)), np.empty(0), epochs=1, learning_rate=0.1), r"X is empty"),
    ("1-d", lambda n: n.predict(np.ones(3)), r"X must be 2-D .*reshape\(1, -1\)"),
    ("lengths", lambda n: n.fit(X3, Y3[:10], epochs=1, learning_rate=0.1),
     r"X and y have different numbers of examples: X.shape=\(40, 3\), y.shape=\(10,\)"),
    ("learning-rate-zero", lambda n: n.fit(X3, Y3, epochs=1, learning_rate=0),
     r"learning_rate must be a finite number > 0 or a schedule .*; got learning_rate=0\."),
    ("learning-rate-negative", lambda n: n.fit(X3, Y3, epochs=1, learning_rate=-0.1), r"learning_rate=-0.1"),
    ("epochs-zero", lambda n: n.fit(X3, Y3, epochs=0, learning_rate=0.1),
     r"epochs must be an integer >= 1; got epochs=0"),
    ("epochs-float", lambda n: n.fit(X3, Y3, epochs=2.5, learning_rate=0.1), r"epochs=2.5"),
    ("batch-size-zero", lambda n: n.fit(X3, Y3, epochs=1, learning_rate=0.1, batch_size=0),
     r"batch_size must be an integer >= 1 or None; got batch_size=0"),
    ("unknown-optimizer", lambda n: n.fit(X3, Y3, epochs=1, learning_rate=0.1, optimizer="adamw"),
     r"Unknown optimizer 'adamw'. Expected one of: 'adam', 'momentum', 'rmsprop', 'sgd'"),
    ("validation-shape", lambda n: n.fit(X3, Y3, epochs=1, learning_rate=0.1, validation_data=(X3,)),
     r"validation_data must be a tuple \(X_val, y_val\)"),
    ("validation-features", lambda n: n.fit(X3, Y3, epochs=1, learning_rate=0.1, validation_data=(X3[:, :1], Y3)),
     r"X_val has 1 features"),
    ("verbose", lambda n: n.fit(X3, Y3, epochs=1, learning_rate=0.1, verbose=-1),
     r"verbose must be 'auto', 0 \(nothing\), 1 \(a progress bar\), 2 \(one line per epoch\); got verbose=-1"),
    ("seed", lambda n: n.fit(X3, Y3, epochs=1, learning_rate=0.1, seed=-3),
     r"seed must be None or an integer between 0 and 4294967295; got seed=-3"),
    ("gradients-labels", lambda n: n.gradients(X3, Y3 + 5), r"got also: 5, 6"),
    ("sparse", lambda n: n.predict(__import__("scipy.sparse").sparse.csr_matrix(X3)), r"sparse matrix"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in BAD_FIT], ids=[c[0] for c in BAD_FIT])
def test_bad_input_to_methods(call, match):
    with pytest.raises(ValueError, match=match):
        call(Network([3, 4, 1], seed=0))


BAD_BUILD = [
    ("zero-width", lambda: Network([3, 0, 1]), r"positive widths; got layer_dims=\[3, 0, 1\]"),
    ("negative-width", lambda: Network([3, -2, 1]), r"positive widths"),
    ("output-width", lambda: Network([3, 4, 2]),
     r"output must be given for an output layer of width 2: output='softmax' for 2 classes or output='linear'"),
    ("sigmoid-width", lambda: Network([3, 4, 2], output="sigmoid"), r"a sigmoid head has one output unit; got .* 2"),
    ("softmax-width-1", lambda: Network([3, 4, 1], output="softmax"),
     r"a softmax head needs an output layer of width K >= 2 .* got width 1"),
    ("unknown-output", lambda: Network([3, 1], output="logistic"),
     r"Unknown output 'logistic'. Expected one of: 'linear', 'sigmoid', 'softmax'."),
    ("one-width", lambda: Network([3]), r"at least two integers"),
    ("unknown-activation", lambda: Network([3, 1], hidden_activation="tanhh"),
     r"Unknown hidden_activation 'tanhh'. Expected one of: 'leaky_relu', 'relu', 'sigmoid', 'tanh'."),
    ("unknown-init", lambda: Network([3, 1], init="xavier"),
     r"Unknown init 'xavier'. Expected one of: 'glorot', 'he', 'normal'."),
    ("dtype", lambda: Network([3, 1], dtype="float16"), r"dtype must be 'float32' or 'float64'; got dtype='float16'"),
    ("seed", lambda: Network([3, 1], seed="abc"), r"seed must be None or an integer"),
    ("momentum", lambda: Momentum(momentum=1.5), r"momentum must be a number in \[0, 1\]"),
    ("beta", lambda: Adam(beta_1=1.0), r"beta_1 must be a number in \[0, 1\)"),
    ("epsilon", lambda: Adam(epsilon=0), r"epsilon must be a finite number > 0"),
    ("rho", lambda: RMSprop(rho=1.0), r"rho must be a number in \[0, 1\); got rho=1.0"),
    ("rho-negative", lambda: RMSprop(rho=-0.1), r"rho must be a number in \[0, 1\); got rho=-0.1"),
    ("rmsprop-momentum", lambda: RMSprop(momentum=1), r"momentum must be a number in \[0, 1\); got momentum=1"),
    ("rmsprop-epsilon", lambda: RMSprop(epsilon=-1e-7), r"epsilon must be a finite number > 0; got epsilon=-1e-07"),
    ("rmsprop-epsilon-nan", lambda: RMSprop(epsilon=float("nan")), r"epsilon must be a finite number > 0; got"),
    ("rmsprop-centered", lambda: RMSprop(centered=1), r"centered must be True or False; got centered=1"),
    ("rmsprop-centered-str", lambda: RMSprop(centered="yes"), r"centered must be True or False; got centered='yes'"),
    ("params-not-dict", lambda: Network.from_parameters([1, 2]), r"parameters must be a dict"),
    ("params-keys", lambda: Network.from_parameters({"W1": np.ones((1, 2))}), r"missing \['b1'\]"),
    ("params-extra", lambda: Network.from_parameters({**W_B, "dW1": 1}), r"unexpected \['dW1'\]"),
    ("params-chain", lambda: Network.from_parameters({"W1": np.ones((3, 2)), "b1": np.zeros((3, 1)),
                                                      "W2": np.ones((1, 4)), "b2": np.zeros((1, 1))}),
     r"parameters\['W2'\] must have shape \(n_2, 3\)"),
    ("params-output", lambda: Network.from_parameters({"W1": np.ones((2, 2)), "b1": np.zeros((2, 1))}),
     r"output must be given for an output layer of width 2"),
    ("params-bias", lambda: Network.from_parameters({"W1": np.ones((1, 2)), "b1": np.zeros((2, 1))}),
     r"parameters\['b1'\] must have shape \(1, 1\)"),
    ("params-nan", lambda: Network.from_parameters({"W1": np.ones((1, 2)), "b1": np.full((1, 1), np.nan)}),
     r"parameters\['b1'\] contains NaN or inf \(in float64\)"),
    ("params-float32-overflow", lambda: Network.from_parameters({**W_B, "W1": np.full((1, 2), 1e300)}, dtype="float32"),
     r"parameters\['W1'\] contains NaN or inf \(in float32\)"),
]


@pytest.mark.parametrize("build, match", [c[1:] for c in BAD_BUILD], ids=[c[0] for c in BAD_BUILD])
def test_bad_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# the loss climbs before it overflows, which warns first (tests/test_feedback.py)
@pytest.mark.filterwarnings("ignore::twinnet.nn.divergence.DivergenceWarning")
def test_a_diverging_loss_stops_training_with_a_clear_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)) * 100
    y = (X[:, 0] > 0).astype(int)
    net = Network([3, 8, 8, 1], hidden_activation="leaky_relu", seed=0)
    with pytest.raises(FloatingPointError,
                       match=r"the loss became nan at epoch \d+ of 200 \(learning_rate=1000.0"
                             r".*try a smaller learning_rate"):
        net.fit(X, y, epochs=200, learning_rate=1e3)


def test_predict_before_fit_uses_the_initial_weights():
    # A Network is built with weights (like a Keras model): predicting needs no fit.
    X, _ = binary_problem()
    net = Network([3, 4, 1], seed=0)
    assert_array_equal(net.predict(X), (net.predict_proba(X) > 0.5).astype(int))
    assert net.predict(X).dtype == np.int64


def test_history_repr_names_the_logged_metrics():
    X, y = binary_problem()  # what verbose prints: tests/test_feedback.py
    history = Network([3, 4, 1], seed=0).fit(X, y, epochs=2, learning_rate=0.1, validation_data=(X, y))
    assert repr(history) == "History(epochs=2, keys=['loss', 'accuracy', 'val_loss', 'val_accuracy'])"


@pytest.mark.exact
@pytest.mark.parametrize("batch_size", [None, 7])
def test_on_epoch_end_sees_each_epoch_like_a_keras_callback(batch_size):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 3)), rng.integers(0, 2, 30)
    net = Network([3, 4, 1], seed=1)
    seen = []
    history = net.fit(X, y, epochs=3, learning_rate=0.1, batch_size=batch_size,
                      validation_data=(X, y),
                      on_epoch_end=lambda epoch, logs: seen.append((epoch, logs, net.parameters)))
    assert [epoch for epoch, _, _ in seen] == [0, 1, 2]
    for epoch, logs, parameters in seen:
        assert logs == {name: values[epoch] for name, values in history.history.items()}
        # the weights it sees are those after the epoch's updates: a fresh run of epoch + 1 epochs
        again = Network([3, 4, 1], seed=1)
        again.fit(X, y, epochs=epoch + 1, learning_rate=0.1, batch_size=batch_size)
        for key, value in again.parameters.items():
            np.testing.assert_array_equal(parameters[key], value, err_msg=f"{key} after epoch {epoch}")
    with pytest.raises(ValueError, match="on_epoch_end must be a callable"):
        net.fit(X, y, epochs=1, learning_rate=0.1, on_epoch_end="print")
