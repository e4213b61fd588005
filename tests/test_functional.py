"""The notebook's functional network: a hand-worked example, finite differences, numerical safety."""

import exact_reference
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal, assert_array_max_ulp

from twinnet import data
from twinnet import functional as F


# --------------------------------------------------------------------------- the notebook, verbatim
# The exercise's own formulas, copied from seed/numpy_vs_tensorflow_notebook.txt: the reference
# that the safe versions must equal wherever the notebook computes correctly.
def notebook_sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def notebook_cost(AL, Y):
    return np.squeeze(-1 * np.mean(np.multiply(np.log(AL), Y) + np.multiply(np.log(1 - AL), (1 - Y))))


def notebook_dAL(AL, Y):
    return -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))


# --------------------------------------------------------------------------- a network by hand
# Layers [2, 2, 1]; two examples as columns: x1 = (1, 2), x2 = (-1, 0); labels y = (1, 0).
HAND_X = np.array([[1.0, -1.0], [2.0, 0.0]])
HAND_Y = np.array([[1.0, 0.0]])
HAND_PARAMETERS = {
    "W1": np.array([[0.5, -0.25], [-1.0, 0.5]]),
    "b1": np.array([[0.1], [0.2]]),
    "W2": np.array([[1.0, -0.5]]),
    "b2": np.array([[0.0]]),
}


def test_forward_backward_by_hand():
    AL, caches = F.L_model_forward(HAND_X, HAND_PARAMETERS)
    # Z1 = W1 X + b1:  x1: 0.5*1 - 0.25*2 + 0.1 = 0.1 ; -1*1 + 0.5*2 + 0.2 = 0.2
    #                  x2: 0.5*-1 - 0 + 0.1 = -0.4   ; -1*-1 + 0 + 0.2 = 1.2
    Z1 = caches[0][1]
    assert_allclose(Z1, [[0.1, -0.4], [0.2, 1.2]], rtol=1e-15)
    # A1 = relu(Z1) = [[0.1, 0], [0.2, 1.2]];  Z2 = W2 A1 = [0.1 - 0.1, 0 - 0.6] = [0, -0.6]
    assert_allclose(caches[1][1], [[0.0, -0.6]], atol=1e-15)
    # A2 = sigmoid(Z2) = [0.5, 1 / (1 + e^0.6)] = [0.5, 0.3543437]
    assert_allclose(AL, [[0.5, 0.3543437]], rtol=1e-7)
    # cost = -(log 0.5 + log(1 - 0.3543437)) / 2 = (0.6931472 + 0.4374880) / 2 = 0.5653176
    assert_allclose(F.compute_cost(AL, HAND_Y), 0.5653176, rtol=1e-7)

    grads = F.L_model_backward(AL, HAND_Y, caches)
    # dZ2 = A2 - Y = [-0.5, 0.3543437]
    # dW2 = dZ2 A1^T / 2 = [(-0.05 + 0) / 2, (-0.1 + 0.4252124) / 2] = [-0.025, 0.1626062]
    assert_allclose(grads["dW2"], [[-0.025, 0.1626062]], rtol=1e-6)
    # db2 = (-0.5 + 0.3543437) / 2 = -0.0728282
    assert_allclose(grads["db2"], [[-0.0728282]], rtol=1e-6)
    # dA1 (gradient w.r.t. the input of layer 2) = W2^T dZ2 = [[-0.5, 0.3543437], [0.25, -0.1771718]]
    assert_allclose(grads["dA2"], [[-0.5, 0.3543437], [0.25, -0.1771718]], rtol=1e-6)
    # dZ1 = dA1 * (Z1 > 0) = [[-0.5, 0], [0.25, -0.1771718]]
    # dW1 = dZ1 X^T / 2 = [[-0.5 / 2, -1 / 2], [(0.25 + 0.1771718) / 2, 0.5 / 2]]
    assert_allclose(grads["dW1"], [[-0.25, -0.5], [0.2135859, 0.25]], rtol=1e-6)
    # db1 = [-0.5 / 2, (0.25 - 0.1771718) / 2] = [-0.25, 0.0364141]
    assert_allclose(grads["db1"], [[-0.25], [0.0364141]], rtol=1e-6)
    # gradient w.r.t. X: W1^T dZ1 = [[-0.25 - 0.25, 0 + 0.1771718], [0.125 + 0.125, -0.0885859]]
    assert_allclose(grads["dA1"], [[-0.5, 0.1771718], [0.25, -0.0885859]], rtol=1e-6)

    # one step at rate 0.1: W2 = [1 + 0.0025, -0.5 - 0.0162606]
    new = F.update_parameters(dict(HAND_PARAMETERS), grads, 0.1)
    assert_allclose(new["W2"], [[1.0025, -0.5162606]], rtol=1e-7)
    assert_allclose(new["b1"], [[0.125], [0.1963586]], rtol=1e-6)
    # accuracy: p = [0.5 > 0.5, 0.354 > 0.5] = [0, 0] against y = [1, 0] -> 1 right of 2
    assert F.accuracy(HAND_X, HAND_Y, HAND_PARAMETERS) == 0.5
    assert F.accuracy(HAND_X, HAND_Y.ravel(), HAND_PARAMETERS) == 0.5


# --------------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("layer_dims", [[4, 1], [4, 3, 1], [5, 4, 3, 1], [3, 6, 4, 2, 1]])
def test_backward_matches_central_differences(layer_dims):
    rng = np.random.default_rng(len(layer_dims))
    m = 7
    X = rng.standard_normal((layer_dims[0], m))
    Y = rng.integers(0, 2, (1, m)).astype(float)
    parameters = F.initialize_parameters(layer_dims, rng=rng)
    for key in parameters:  # non-zero biases, weights large enough to matter
        parameters[key] = rng.standard_normal(parameters[key].shape)
    AL, caches = F.L_model_forward(X, parameters)
    grads = F.L_model_backward(AL, Y, caches)

    eps = 1e-5  # central differences: truncation O(eps^2) ~ 1e-10, rounding ~ 1e-16 / eps ~ 1e-11
    for key, value in parameters.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + eps
            plus = F.compute_cost(F.L_model_forward(X, parameters)[0], Y)
            value[index] = saved - eps
            minus = F.compute_cost(F.L_model_forward(X, parameters)[0], Y)
            value[index] = saved
            numeric[index] = (plus - minus) / (2 * eps)
        analytic = grads["d" + key]
        assert analytic.shape == value.shape
        assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9, err_msg=f"d{key}, layers {layer_dims}")


def test_grads_keys_follow_the_notebook():
    parameters = F.initialize_parameters([3, 4, 2, 1], rng=np.random.default_rng(0))
    X = np.ones((3, 5))
    AL, caches = F.L_model_forward(X, parameters)
    grads = F.L_model_backward(AL, np.ones((1, 5)), caches)
    assert sorted(grads) == sorted(["dA1", "dA2", "dA3", "dW1", "dW2", "dW3", "db1", "db2", "db3"])
    assert grads["dA1"].shape == X.shape  # dA1: gradient w.r.t. the input of layer 1


# --------------------------------------------------------------------------- the notebook's API
def test_initialize_parameters_is_reproduced_by_np_random_seed():
    np.random.seed(3)
    first = F.initialize_parameters([100, 20, 5, 1])
    np.random.seed(3)
    expected_W1 = np.random.randn(20, 100) * 0.1
    np.random.seed(3)
    second = F.initialize_parameters([100, 20, 5, 1])
    assert_array_equal(first["W1"], expected_W1)
    for key in first:
        assert_array_equal(first[key], second[key])
    assert {k: v.shape for k, v in first.items()} == {
        "W1": (20, 100), "b1": (20, 1), "W2": (5, 20), "b2": (5, 1), "W3": (1, 5), "b3": (1, 1)
    }
    assert not first["b2"].any()


def test_caches_have_the_notebook_structure():
    A, cache = F.linear_activation_forward(HAND_X, HAND_PARAMETERS["W1"], HAND_PARAMETERS["b1"], "relu")
    (A_prev, W, b), Z = cache
    assert A_prev is HAND_X and W is HAND_PARAMETERS["W1"] and b is HAND_PARAMETERS["b1"]
    assert_array_equal(A, np.maximum(0, Z))


def test_print_cost_prints_every_ten_iterations(capsys):
    np.random.seed(0)
    F.L_layer_model(HAND_X, HAND_Y, [2, 3, 1], 0.1, 25, True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Cost after iteration 0", "Cost after iteration 10", "Cost after iteration 20"
    ]
    assert all(len(line.split(": ")[1].split(".")[1]) == 6 for line in lines)  # "%f"


def test_initial_parameters_and_cost_history():
    _, costs = F.L_layer_model(HAND_X, HAND_Y, [2, 2, 1], 0.1, 3, False,
                               initial_parameters=HAND_PARAMETERS, return_costs=True)
    assert_allclose(costs[0], 0.5653176, rtol=1e-7)  # cost before the first update (hand example)
    assert costs[2] < costs[1] < costs[0]
    assert HAND_PARAMETERS["W1"][0, 0] == 0.5  # the caller's dict was copied, not updated


def test_training_on_synthetic_reproduces_the_notebook():
    X, y = data.load("synthetic")
    s = data.split(X, y, test_size=0.2, seed=0)
    np.random.seed(1)
    parameters, costs = F.L_layer_model(s.X_train.T, s.y_train.reshape(1, -1), [100, 20, 5, 1],
                                        learning_rate=0.1, num_iterations=250, return_costs=True)
    # The notebook's run: cost starts near log(2) = 0.693 and falls steadily below 0.2.
    assert abs(costs[0] - np.log(2)) < 0.05
    assert costs[-1] < 0.2
    assert all(later < earlier for earlier, later in zip(costs[::10], costs[10::10]))
    assert F.accuracy(s.X_test.T, s.y_test.reshape(1, -1), parameters) > 0.9


# --------------------------------------------------------------------------- numerical safety
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_does_not_overflow(dtype):
    Z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        A, cache = F.sigmoid(Z)
        dZ = F.sigmoid_backward(np.ones_like(Z), Z)
    assert A.dtype == dtype and dZ.dtype == dtype
    assert cache is Z
    assert A[0, 0] == 0.0 and A[0, -1] == 1.0 and A[0, 2] == 0.5
    assert np.isfinite(dZ).all()


@pytest.mark.exact
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_equals_the_notebook_where_it_is_safe(dtype):
    # scipy's expit against NumPy's exp in the notebook's formula: measured at most 2 ulps apart on
    # 10**6 logits in [-40, 40] (float32; 0 in float64, where both exps are the C library's on this
    # AVX2 CPU). 4 leaves room for NumPy's AVX-512 exp, which rounds differently.
    Z = np.linspace(-30, 30, 600, dtype=dtype).reshape(3, -1)
    assert_array_max_ulp(F.sigmoid(Z)[0], notebook_sigmoid(Z), maxulp=4)


def _logit(name, dtype):
    tiny = np.finfo(dtype).tiny
    return dtype({"tiny": tiny, "-tiny": -tiny}.get(name, name))


LOGITS = [-1000.0, -100.0, -1.5, "-tiny", 0.0, "tiny", 1.5, 100.0, 1000.0]


@pytest.mark.exact
@pytest.mark.parametrize("logit", LOGITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_public_path_is_quiet_and_right_at_any_logit(dtype, logit):
    # a logistic network whose logit is its input: W = 1, b = 0, X = Z; labels 0 and 1
    Z = np.full((1, 2), _logit(logit, dtype))
    Y = np.array([[0, 1]], dtype)
    parameters = {"W1": np.ones((1, 1), dtype), "b1": np.zeros((1, 1), dtype)}
    with np.errstate(all="raise"):  # underflow included
        A, _ = F.sigmoid(Z)
        dZ = F.sigmoid_backward(np.ones_like(Z), Z)
        cost = F.compute_cost(A, Y)
        AL, caches = F.L_model_forward(Z, parameters)
        grads = F.L_model_backward(AL, Y, caches)
        trained = F.L_layer_model(Z, Y, [1, 1], learning_rate=0.01, num_iterations=2,
                                  initial_parameters=parameters)
    assert A.dtype == dtype and dZ.dtype == dtype and cost.dtype == dtype
    # expit: measured within 1 ulp of the correctly rounded sigmoid here (2 on 10**6 logits)
    exact_reference.assert_within_ulps(A[0], exact_reference.sigmoid(Z[0], dtype), maxulp=2)
    assert_array_equal(AL, A)
    assert np.isfinite(cost) and np.isfinite(dZ).all()
    assert all(np.isfinite(g).all() for g in grads.values())
    assert all(np.isfinite(w).all() for w in trained.values())
    if abs(float(Z[0, 0])) <= 1.5:
        # away from saturation the log of the rounded probability is well conditioned: the cost
        # is within a few ulps of the exact mean log-loss (measured: 0 at these logits)
        exact = exact_reference.log_loss(Z[0], Y[0], np.float64).mean()
        exact_reference.assert_within_ulps(cost, dtype(exact), maxulp=8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cost_is_finite_at_exact_zero_and_one(dtype):
    AL = np.array([[0.0, 1.0, 0.0, 1.0, 0.3]], dtype=dtype)
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        cost = F.compute_cost(AL, Y)
    assert np.isfinite(cost)
    # right and certain predictions cost exactly 0; wrong and certain ones are large but finite
    assert F.compute_cost(AL[:, :2], Y[:, :2]) == 0
    assert F.compute_cost(AL[:, 2:3], Y[:, 2:3]) > 80


@pytest.mark.exact
def test_cost_equals_the_notebook_inside_the_open_interval():
    rng = np.random.default_rng(0)
    AL = rng.uniform(1e-12, 1 - 1e-12, (1, 1000))
    AL[0, :3] = [1e-300, 0.5, 1 - 2**-52]
    Y = rng.integers(0, 2, (1, 1000)).astype(float)
    assert_array_equal(F.compute_cost(AL, Y), notebook_cost(AL, Y))


def _caches(rng, layer_dims, m):
    parameters = F.initialize_parameters(layer_dims, rng=rng)
    _, caches = F.L_model_forward(rng.standard_normal((layer_dims[0], m)), parameters)
    return caches


def test_backward_is_the_textbook_chain_rule_for_arbitrary_AL():
    rng = np.random.default_rng(1)
    caches = _caches(rng, [3, 4, 1], 50)
    AL = rng.uniform(0, 1, (1, 50))  # not the forward's output: the chain rule takes any AL
    tiny = np.finfo(float).tiny
    AL[0, :4] = [1e-300, 1 - 2**-53, 0.999999, tiny]  # down to the smallest normal: untouched
    Y = rng.integers(0, 2, (1, 50)).astype(float)
    Y[0, :4] = 1
    grads = F.L_model_backward(AL, Y, caches)
    dZ = notebook_dAL(AL, Y) * notebook_sigmoid(caches[1][1]) * (1 - notebook_sigmoid(caches[1][1]))
    assert_allclose(grads["dW2"], dZ @ caches[1][0][0].T / 50, rtol=1e-12)
    assert_allclose(grads["dA2"], caches[1][0][1].T @ dZ, rtol=1e-12)
    # a subnormal AL would make Y / AL overflow: it counts as the smallest normal number
    subnormal = AL.copy()
    subnormal[0, 3] = tiny / 2**20
    with np.errstate(all="raise"):
        assert_array_equal(F.L_model_backward(subnormal, Y, caches)["dW2"], grads["dW2"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_has_no_division_by_zero_at_exact_zero_and_one(dtype):
    rng = np.random.default_rng(2)
    caches = _caches(rng, [3, 4, 1], 4)
    AL = np.array([[0.0, 1.0, 0.0, 1.0]], dtype=dtype)
    Y = np.array([[0.0, 1.0, 1.0, 0.0]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        grads = F.L_model_backward(AL, Y, caches)
    for key, value in grads.items():
        assert np.isfinite(value).all(), key
    # dAL = -(Y/AL - (1-Y)/(1-AL)): certain and right -> -(0 - 1) = 1 or -(1 - 0) = -1; the two
    # wrong ones are huge with the right sign. Check through the sigmoid layer with Z = 0 (s = 1/2).
    linear_cache = (np.ones((1, 4), dtype), np.ones((1, 1), dtype), np.zeros((1, 1), dtype))
    grads = F.L_model_backward(AL, Y, [(linear_cache, np.zeros((1, 4), dtype))])
    dZ = grads["dA1"]  # W = 1: dA1 = dZ = dAL * s * (1 - s) = dAL / 4
    assert_allclose(dZ[0, :2], [0.25, -0.25])
    assert dZ[0, 2] < -1e30 and dZ[0, 3] > 1e30


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layers_dims": [3, 0, 1]}, "positive widths"),
        ({"layers_dims": [5]}, "at least two integers"),
        ({"layers_dims": [2, 3, 1]}, r"layers_dims\[0\]=2 does not match the 3 features"),
        ({"layers_dims": [3, 4, 2]},
         r"the output layer must have width 1 \(one sigmoid unit\); got layers_dims=\[3, 4, 2\]"),
        ({"learning_rate": 0.0}, r"learning_rate must be a finite number > 0; got learning_rate=0.0"),
        ({"learning_rate": np.inf}, r"learning_rate must be a finite number > 0; got learning_rate=inf"),
        ({"num_iterations": 0}, "num_iterations must be an integer >= 1"),
        ({"Y": np.ones((1, 4))}, "different numbers of examples"),
        ({"initial_parameters": {"W1": np.ones((4, 3)), "b1": np.zeros(4),
                                 "W2": np.ones((1, 4)), "b2": np.zeros((1, 1))}},
         r"initial_parameters\['b1'\] must have shape \(4, 1\)"),
        ({"initial_parameters": {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1)),
                                 "W2": np.ones((1, 2)), "b2": np.zeros((1, 1))}},
         r"initial_parameters have the widths \[3, 2, 1\], but layers_dims=\[3, 4, 1\]"),
        ({"X": np.ones((3, 0)), "Y": np.ones((1, 0))}, r"X.T is empty: X.T.shape=\(0, 3\)"),
        ({"X": np.full((3, 5), np.nan)}, r"X.T contains NaN or inf \(first at row 0, column 0\)"),
        ({"X": np.full((3, 5), "a")}, "X.T must hold real numbers; got dtype <U1"),
        ({"Y": np.array([[0, 2, 0, 2, 0]])}, r"Y must contain only the labels 0 and 1 \(binary\); got also: 2"),
        ({"Y": np.array([[-1, 1, 1, -1, 1]])}, r"Y must contain only the labels 0 and 1 \(binary\); got also: -1"),
    ],
    ids=["zero-width", "one-layer", "wrong-input-width", "output-width", "learning-rate", "learning-rate-inf",
         "iterations", "Y-length", "initial-bias-shape", "initial-widths", "no-examples", "X-nan", "X-strings",
         "labels-0-2", "labels-minus-1"],
)
def test_L_layer_model_rejects_bad_input(kwargs, match):
    args = {"X": np.ones((3, 5)), "Y": np.ones((1, 5)), "layers_dims": [3, 4, 1], "learning_rate": 0.1,
                "num_iterations": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        F.L_layer_model(**args)


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown activation 'tanhh'. Expected one of: 'relu', 'sigmoid'"):
        F.linear_activation_forward(HAND_X, HAND_PARAMETERS["W1"], HAND_PARAMETERS["b1"], "tanhh")
