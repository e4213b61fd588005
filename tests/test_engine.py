"""The training engine's blocked kernels: the way the work is cut changes no number."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from problems import binary_problem

from twinnet import functional as F
from twinnet.nn import ACTIVATIONS, Network, engine


@pytest.mark.exact
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_blocks_of_any_size_give_the_same_gradients(monkeypatch, name):
    # one row per block (the smallest) against every layer in one block: dZ = dA * g'(A) and the
    # output layer's outer product are computed value by value, so the results are bit for bit equal
    X, y = binary_problem(300, 7, rule="product")
    net = Network([7, 12, 9, 1], hidden_activation=name, init="he", seed=2)
    whole = net.gradients(X, y)
    monkeypatch.setattr(engine, "BLOCK", 1)
    blocked = net.gradients(X, y)
    for key in whole:
        assert_array_equal(blocked[key], whole[key], err_msg=key)


@pytest.mark.exact
def test_blocked_relu_gradients_equal_the_functional_reference(monkeypatch):
    X, y = binary_problem(300, 7, rule="product")
    net = Network([7, 12, 9, 1], seed=3)
    monkeypatch.setattr(engine, "BLOCK", 2 * X.shape[0])  # two rows per block: 6 and 5 blocks
    buf = engine.allocate(net.layer_dims, X.shape[0], net.dtype)
    assert buf.g.shape[0] == 2 and buf.h.shape == (2, X.shape[0])
    AL, caches = F.L_model_forward(X.T, net.parameters)
    reference = F.L_model_backward(AL, y.reshape(1, -1), caches)
    ours = net.gradients(X, y)
    for key, value in ours.items():
        assert_allclose(value, reference[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_training_scratch_is_one_hidden_layer():
    buf = engine.allocate([7, 12, 9, 1], 50, np.float64)
    # Z and dA of every layer share the largest layer's memory; so does the output layer's dA block
    scratch = buf.Z[0].base
    assert scratch is not None and scratch.size == 12 * 50
    assert all(np.shares_memory(a, scratch) for a in buf.Z + buf.dA + [buf.h])
    inference = engine.allocate([7, 12, 9, 1], 50, np.float64, backward=False)
    assert not np.shares_memory(inference.Z[0], inference.Z[1])  # gradcheck reads each layer's Z


@pytest.mark.exact
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pickles_hold_the_notebook_parameters_not_the_engine_layout(dtype):
    import pickle

    X, y = binary_problem(300, 7, rule="product")
    net = Network([7, 5, 1], hidden_activation="tanh", seed=4, dtype=dtype)
    net.fit(X, y, epochs=3, learning_rate=0.1)
    state = net.__getstate__()
    assert sorted(state) == ["meta", "parameters"] and sorted(state["parameters"]) == ["W1", "W2", "b1", "b2"]
    copy = pickle.loads(pickle.dumps(net))
    assert copy.dtype == net.dtype and copy.layer_dims == net.layer_dims
    for key, value in net.parameters.items():
        assert_array_equal(copy.parameters[key], value, err_msg=key)
    assert_array_equal(copy.predict_proba(X), net.predict_proba(X))
