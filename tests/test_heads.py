"""The softmax and linear output heads of ``Network``, checked against independent references.

References: the loss written out in NumPy/SciPy from the notebook's columns layout (scipy's
``log_softmax``, ``np.mean`` of squared errors), central finite differences (``gradcheck``),
scikit-learn's ``r2_score``, and the sigmoid head (a softmax of two units is a sigmoid of their
difference). Keras and PyTorch from the same weights are in the twins' tests.
"""

import json
import pickle
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from problems import binary_problem, multiclass_problem, regression_problem
from scipy.special import log_softmax, softmax

from twinnet import Network
from twinnet.nn import gradcheck
from twinnet.nn.gradcheck import count_kinks
from twinnet.nn.heads import HEADS

ACTIVATIONS = ["relu", "tanh", "sigmoid", "leaky_relu"]


def _logits(net, X):
    """The output layer's pre-activations, columns (K, m), computed the notebook's way in float64."""
    g = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
         "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z)}[net.hidden_activation]
    P = {k: v.astype(np.float64) for k, v in net.parameters.items()}
    L = len(net.layer_dims) - 1
    A = X.T.astype(np.float64)
    for l in range(1, L):
        A = g(P[f"W{l}"] @ A + P[f"b{l}"])
    return P[f"W{L}"] @ A + P[f"b{L}"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_softmax_loss_probabilities_and_predictions_match_scipy(activation):
    X, y = multiclass_problem(80, 5, 4)
    net = Network([5, 9, 4], output="softmax", hidden_activation=activation, init="he", seed=1)
    Z = _logits(net, X)
    # float64 rounding of a few dozen operations per value: 1e-13 relative
    assert net.evaluate(X, y)["loss"] == pytest.approx(-log_softmax(Z, axis=0)[y, np.arange(80)].mean(), rel=1e-13)
    assert_allclose(net.predict_proba(X), softmax(Z, axis=0).T, rtol=1e-13, atol=1e-16)
    assert_allclose(net.decision_function(X), Z.T, rtol=1e-13, atol=1e-15)
    assert_array_equal(net.predict(X), np.argmax(softmax(Z, axis=0), axis=0))
    assert net.evaluate(X, y)["accuracy"] == np.mean(net.predict(X) == y)


@pytest.mark.parametrize("k", [1, 3])
def test_linear_loss_metrics_and_predictions_match_numpy_and_sklearn(k):
    from sklearn.metrics import r2_score

    X, Y = regression_problem(70, 4, k)
    net = Network([4, 6, k], output="linear", hidden_activation="tanh", seed=2)
    Z = _logits(net, X)
    pred = net.predict(X)
    assert pred.shape == Y.shape
    assert_allclose(pred, Z[0] if k == 1 else Z.T, rtol=1e-13, atol=1e-15)
    scores = net.evaluate(X, Y)
    mse = np.mean((Z.T.reshape(Y.shape) - Y) ** 2)
    assert scores["loss"] == pytest.approx(mse, rel=1e-13)
    assert scores["rmse"] == pytest.approx(np.sqrt(mse), rel=1e-13)
    assert scores["r2"] == pytest.approx(r2_score(Y, pred), rel=1e-12)
    # r2 of constant targets: scikit-learn's 1.0 when predicted exactly, else 0.0
    assert net.evaluate(X, np.full(Y.shape, 3.0))["r2"] == r2_score(np.full(Y.shape, 3.0), pred) == 0.0


@pytest.mark.parametrize("output, width", [("softmax", 3), ("linear", 1), ("linear", 2)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradients_match_finite_differences(output, width, activation, dtype):
    X, y = (multiclass_problem(30, 4, width) if output == "softmax" else regression_problem(30, 4, width))
    P = Network([4, 5, 3, width], output=output, init="he", seed=3).parameters
    rng = np.random.default_rng(3)
    P.update({key: 0.1 * rng.standard_normal(value.shape) for key, value in P.items() if key[0] == "b"})
    net = Network.from_parameters(P, output=output, hidden_activation=activation, dtype=dtype)
    # zero biases would put a whole dead layer's next pre-activations exactly on relu's kink
    assert count_kinks(net, X, 1e-5) == 0
    errors = gradcheck(net, X, y)
    # float64: the differences' truncation (~1e-9); float32: float32 rounding of backpropagation
    assert max(errors.values()) < (1e-6 if dtype == "float64" else 1e-3), errors


def test_softmax_of_two_units_is_the_sigmoid_of_their_difference():
    # an independent check of loss, gradients and training: softmax(z0, z1)[1] = sigmoid(z1 - z0)
    X, y = binary_problem(50, 3, rule="square")
    sig = Network([3, 6, 1], hidden_activation="tanh", seed=4)
    P = sig.parameters
    two = dict(P, W2=np.vstack([np.zeros_like(P["W2"]), P["W2"]]), b2=np.vstack([[0.0], P["b2"]]))
    soft = Network.from_parameters(two, output="softmax", hidden_activation="tanh")
    assert_allclose(soft.predict_proba(X)[:, 1], sig.predict_proba(X), rtol=1e-14)
    assert soft.evaluate(X, y)["loss"] == pytest.approx(sig.evaluate(X, y)["loss"], rel=1e-14)
    g_soft, g_sig = soft.gradients(X, y), sig.gradients(X, y)
    assert_allclose(g_soft["dW1"], g_sig["dW1"], rtol=1e-12, atol=1e-16)
    # the two output units get opposite gradients, each that of the sigmoid's unit
    assert_allclose(g_soft["dW2"][1], g_sig["dW2"][0], rtol=1e-12)
    assert_allclose(g_soft["dW2"][0], -g_sig["dW2"][0], rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_is_safe_for_any_finite_logits(dtype):
    # logits of +-1e4: exp(z - max) underflows to 0 for the others (ignored, the right value)
    X = np.array([[1.0], [-1.0], [0.0]])
    P = {"W1": np.array([[1e4], [-1e4], [0.0]]), "b1": np.zeros((3, 1))}
    net = Network.from_parameters(P, output="softmax", dtype=dtype)
    y = np.array([0, 0, 2])
    with np.errstate(all="raise"):
        p = net.predict_proba(X)
        scores = net.evaluate(X, y)
        grads = net.gradients(X, y)
    assert_array_equal(p[:2], [[1, 0, 0], [0, 1, 0]])
    assert_allclose(p[2], [1 / 3] * 3, rtol=1e-6)
    # example 1 puts its mass on class 1 with logit 1e4 where its label's is -1e4: loss 2e4
    assert scores["loss"] == pytest.approx((0 + 2e4 + np.log(3)) / 3, rel=1e-6)
    assert all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize("output, width, make", [
    ("softmax", 3, lambda: multiclass_problem(64, 4, 3)),
    ("linear", 2, lambda: regression_problem(64, 4, 2)),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_reduces_the_loss_and_history_has_the_heads_metric(output, width, make, dtype):
    X, y = make()
    net = Network([4, 16, width], output=output, seed=5, dtype=dtype)
    metric = HEADS[output].metric_name
    h = net.fit(X, y, epochs=60, learning_rate=0.01, batch_size=16, optimizer="adam", seed=0,
                validation_data=(X[:20], y[:20]))
    assert list(h.history) == ["loss", metric, "val_loss", f"val_{metric}"]
    assert h.history["loss"][-1] < 0.6 * h.history["loss"][0]
    final = net.evaluate(X[:20], y[:20])
    assert h.history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-12)
    assert h.history[f"val_{metric}"][-1] == pytest.approx(final[metric], rel=1e-12)
    assert net.predict(X).dtype == (np.int64 if output == "softmax" else np.dtype(dtype))


@pytest.mark.exact
@pytest.mark.parametrize("output, width", [("softmax", 3), ("linear", 2)])
def test_full_batch_history_is_the_loss_before_each_update(output, width):
    # Keras's convention, for every head: the full-batch loss of epoch k is computed before its update
    X, y = multiclass_problem(40, 4, 3) if output == "softmax" else regression_problem(40, 4, 2)
    net = Network([4, 6, width], output=output, seed=6)
    before = [net.evaluate(X, y)["loss"]]
    step = Network.from_parameters(net.parameters, output=output)
    for _ in range(3):
        step.fit(X, y, epochs=1, learning_rate=0.1)
        before.append(step.evaluate(X, y)["loss"])
    h = net.fit(X, y, epochs=4, learning_rate=0.1)
    assert_array_equal(h.history["loss"], before)


@pytest.mark.exact
@pytest.mark.parametrize("output, width", [("softmax", 4), ("linear", 3)])
def test_save_load_and_pickle_keep_the_head(tmp_path, output, width):
    X, y = multiclass_problem(30, 4, 4) if output == "softmax" else regression_problem(30, 4, 3)
    net = Network([4, 5, width], output=output, seed=7)
    net.fit(X, y, epochs=3, learning_rate=0.1)
    net.save(tmp_path / "net.npz")
    for copy in (Network.load(tmp_path / "net.npz"), pickle.loads(pickle.dumps(net))):
        assert copy.output == output and repr(copy) == repr(net)
        assert_array_equal(copy.predict(X), net.predict(X))
    with zipfile.ZipFile(tmp_path / "net.npz") as zf, zf.open("__metadata__.npy") as f:
        meta = np.lib.format.read_array(f)
    assert json.loads(str(meta[()]))["output"] == output


def test_a_version_1_file_is_a_sigmoid_network(tmp_path):
    net = Network([3, 2, 1], seed=8)
    meta = {**net._metadata(), "format_version": 1}
    del meta["output"]
    np.savez(tmp_path / "old.npz", **net.parameters, __metadata__=np.array(json.dumps(meta)))
    old = Network.load(tmp_path / "old.npz")
    assert old.output == "sigmoid" and old.layer_dims == [3, 2, 1]


BAD_TARGETS = [
    ("label-out-of-range", "softmax", 3, np.array([0, 1, 3, 2]), r"y must contain the class labels 0 .. 2 of this "
     r"softmax head of width 3; got also: 3"),
    ("negative-label", "softmax", 3, np.array([0, -1, 1, 2]), r"got also: -1"),
    ("fractional-label", "softmax", 3, np.array([0, 1.5, 1, 2]), r"got also: 1.5"),
    ("nan-label", "softmax", 3, np.array([0, np.nan, 1, 2]), r"y contains NaN or inf"),
    ("string-label", "softmax", 3, np.array(["a", "b", "c", "a"]), r"y must hold the labels 0 .. 2; got dtype <U1"),
    ("nan-target", "linear", 1, np.array([0.5, np.nan, 1.0, 2.0]), r"y contains NaN or inf \(first at example 1"),
    ("inf-in-float32", "linear", 1, np.array([0.5, 1e39, 1.0, 2.0]), r"y contains NaN or inf .* in float32"),
    ("wrong-width", "linear", 2, np.ones((4, 3)), r"y must be of shape \(m, 2\), one column per output of this "
     r"linear head of width 2; got y.shape=\(4, 3\)"),
    ("1-d-for-2-outputs", "linear", 2, np.ones(4), r"y must be of shape \(m, 2\)"),
    ("wrong-length", "linear", 1, np.ones(5), r"X and y have different numbers of examples: X.shape=\(4, 3\), "
     r"y.shape=\(5,\)"),
    ("complex-target", "linear", 1, np.ones(4) * 1j, r"y must hold real numbers \(regression targets\)"),
]


@pytest.mark.parametrize("output, width, y, match", [c[1:] for c in BAD_TARGETS], ids=[c[0] for c in BAD_TARGETS])
def test_bad_targets_are_named(output, width, y, match):
    net = Network([3, 4, width], output=output, seed=0, dtype="float32" if "float32" in match else "float64")
    X = np.zeros((4, 3))
    for call in (net.evaluate, net.gradients, lambda X, y: net.fit(X, y, epochs=1, learning_rate=0.1)):
        with pytest.raises(ValueError, match=match):
            call(X, y)


def test_classifier_methods_refuse_a_linear_head():
    net = Network([3, 4, 2], output="linear", seed=0)
    for method in (net.predict_proba, net.decision_function):
        with pytest.raises(ValueError, match=r"is for classifiers; this Network has a linear head"):
            method(np.zeros((2, 3)))


def test_training_loop_allocates_nothing_per_epoch_for_every_head_l2_and_dropout_too():
    import tracemalloc

    for output, width, (X, y), extra in [("softmax", 5, multiclass_problem(4000, 6, 5), {}),
                                         ("linear", 3, regression_problem(4000, 6, 3), {}),
                                         ("softmax", 5, multiclass_problem(4000, 6, 5), {"l2": 0.1, "dropout": 0.3})]:
        net = Network([6, 12, width], output=output, seed=0, **extra)
        net.fit(X, y, epochs=1, learning_rate=0.01, batch_size=500)  # warm up
        tracemalloc.start()
        try:
            net.fit(X, y, epochs=1, learning_rate=0.01, batch_size=500)
            one = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            net.fit(X, y, epochs=20, learning_rate=0.01, batch_size=500)
            twenty = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # the same buffers for 1 or 20 epochs: no array per epoch or per batch (a batch's is 500 x 12 x 8 = 48 kB)
        assert twenty < one + 20_000, (output, one, twenty)
