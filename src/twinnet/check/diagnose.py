"""The classic mistakes, each written as the output it produces, to be recognised in a learner's.

A variant takes a case and the reference's output for it and returns what a function with that one
mistake would have returned (or raises what it would have raised). A learner's function whose
outputs equal a variant's on every case, at the comparison's tolerance, made that mistake. Variants
of one function compose, so two mistakes at once are recognised as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from twinnet import functional as F


class Variant(NamedTuple):
    diagnosis: str
    apply: Callable  # (case, reference output) -> output with the mistake


#: What each function returns, to name the values in messages.
OUTPUTS = {
    "linear_forward": ("Z", "cache"), "sigmoid": ("A", "cache"), "relu": ("A", "cache"),
    "linear_activation_forward": ("A", "cache"), "L_model_forward": ("AL", "caches"),
    "linear_backward": ("dA_prev", "dW", "db"), "linear_activation_backward": ("dA_prev", "dW", "db"),
}

#: Arguments a function is expected to change in place.
MAY_CHANGE = {"update_parameters": {"parameters"}}


def _m(case):
    return case.args[1][0].shape[1]  # linear_backward's A_prev: (n_prev, m)


def _redraw(case, order):
    """initialize_parameters drawing as ``order(layer_dims, randn)`` does: the draw-order mistakes.
    ``randn`` draws what ``np.random.randn`` draws after ``np.random.seed(case.seed)``, without
    touching NumPy's global state (several files are judged at once)."""
    return order(case.args[0], np.random.RandomState(case.seed).randn)


def _w_transposed(dims, randn):
    parameters = {}
    for l in range(1, len(dims)):
        parameters["W" + str(l)] = randn(dims[l - 1], dims[l]).T * 0.1
        parameters["b" + str(l)] = np.zeros((dims[l], 1))
    return parameters


def _last_layer_first(dims, randn):
    parameters = {}
    for l in reversed(range(1, len(dims))):
        parameters["W" + str(l)] = randn(dims[l], dims[l - 1]) * 0.1
        parameters["b" + str(l)] = np.zeros((dims[l], 1))
    return parameters


def _b_drawn(dims, randn):
    parameters = {}
    for l in range(1, len(dims)):
        parameters["W" + str(l)] = randn(dims[l], dims[l - 1]) * 0.1
        parameters["b" + str(l)] = randn(dims[l], 1) * 0.1
    return parameters


def _scaled(out, factor, prefix="W"):
    return {k: v * factor if k.startswith(prefix) else v for k, v in out.items()}


def _shift_keys(grads, prefixes, by):
    return {(k[:2] + str(int(k[2:]) + by)) if k[:2] in prefixes else k: v for k, v in grads.items()}


def _update_layers(case, layers):
    parameters, grads, rate = case.args
    out = dict(parameters)
    for l in layers(len(parameters) // 2):
        for p in "Wb":
            out[p + str(l)] = parameters[p + str(l)] - rate * grads["d" + p + str(l)]
    return out


def _sigmoid_backward_of_A(case, out):
    dA, Z = case.args
    return dA * Z * (1 - Z)


#: Each activation's name -> the other's: the mistake of calling the wrong one.
_SWAPPED = {"relu": "sigmoid", "sigmoid": "relu"}


def _relu_mask(case, mask):
    dA, Z = case.args
    return np.where(mask(Z), dA, 0.0)


VARIANTS = {
    "initialize_parameters": [
        Variant("weights scaled by 0.01 instead of 0.1", lambda c, o: _scaled(o, 0.1)),
        Variant("weights not scaled by 0.1 (np.random.randn alone)", lambda c, o: _scaled(o, 10.0)),
        Variant("draw order: W drawn as randn(n_prev, n).T; draw randn(layer_dims[l], layer_dims[l-1])",
                lambda c, o: _redraw(c, _w_transposed)),
        Variant("draw order: layers drawn last to first; draw W1 first", lambda c, o: _redraw(c, _last_layer_first)),
        Variant("b drawn at random instead of zeros (and the next draws shift)", lambda c, o: _redraw(c, _b_drawn)),
    ],
    "linear_forward": [
        Variant("transposed product: np.dot(W.T, A) instead of np.dot(W, A)",
                lambda c, o: (np.dot(c.args[1].T, c.args[0]) + c.args[2], o[1])),
        Variant("b not added", lambda c, o: (o[0] - c.args[2], o[1])),
    ],
    "sigmoid": [
        Variant("cache holds A instead of Z", lambda c, o: (o[0], o[0])),
        Variant("sign: 1 / (1 + exp(Z)) instead of 1 / (1 + exp(-Z))", lambda c, o: (1 - o[0], o[1])),
    ],
    "relu": [
        Variant("cache holds A instead of Z", lambda c, o: (o[0], o[0])),
    ],
    "linear_activation_forward": [
        Variant("activations swapped: relu where sigmoid is asked and sigmoid where relu is",
                lambda c, o: F.linear_activation_forward(*c.args[:3], _SWAPPED[c.args[3]])),
        Variant("cache in the wrong order: (activation_cache, linear_cache)", lambda c, o: (o[0], o[1][::-1])),
    ],
    "L_model_forward": [
        Variant("the output layer uses relu instead of sigmoid",
                lambda c, o: (np.maximum(o[1][-1][1], 0), o[1])),
    ],
    "compute_cost": [
        Variant("missing 1/m: the sum instead of the mean", lambda c, o: o * c.args[1].shape[1]),
        Variant("1/m applied twice", lambda c, o: o / c.args[1].shape[1]),
        Variant("cost not squeezed: shape (1, 1) instead of a scalar; apply np.squeeze",
                lambda c, o: np.reshape(o, (1, 1))),
        Variant("sign: the cost is negated (missing the leading minus)", lambda c, o: -o),
    ],
    "linear_backward": [
        Variant("missing 1/m in dW: divide np.dot(dZ, A_prev.T) by m", lambda c, o: (o[0], o[1] * _m(c), o[2])),
        Variant("missing 1/m in db: take the mean over the examples, not the sum",
                lambda c, o: (o[0], o[1], o[2] * _m(c))),
        Variant("1/m applied twice in dW: divide by m once", lambda c, o: (o[0], o[1] / _m(c), o[2])),
        Variant("1/m applied twice in db: np.mean already divides by m", lambda c, o: (o[0], o[1], o[2] / _m(c))),
        Variant("dA_prev divided by m (only dW and db take 1/m)", lambda c, o: (o[0] / _m(c), o[1], o[2])),
        Variant("transposed product: dW = A_prev dZ.T instead of dZ A_prev.T", lambda c, o: (o[0], o[1].T, o[2])),
        Variant("db lost its (n, 1) shape: use keepdims=True", lambda c, o: (o[0], o[1], o[2].reshape(-1))),
        Variant("db summed over every axis: use axis=1, keepdims=True",
                lambda c, o: (o[0], o[1], o[2].mean() * o[2].size)),
    ],
    "sigmoid_backward": [
        Variant("fed the activation A instead of Z: the cache is Z, take s = sigmoid(Z)", _sigmoid_backward_of_A),
        Variant("missing the factor dA", lambda c, o: o / c.args[0]),
    ],
    "relu_backward": [
        Variant("derivative 1 at Z == 0 (Z < 0 masked instead of Z <= 0)",
                lambda c, o: _relu_mask(c, lambda Z: Z >= 0)),
        Variant("derivative 1/2 at Z == 0", lambda c, o: np.where(c.args[1] == 0, c.args[0] / 2, o)),
        Variant("missing the factor dA: returns the derivative 0/1 alone", lambda c, o: (c.args[1] > 0).astype(float)),
    ],
    "linear_activation_backward": [
        Variant("activations swapped: relu_backward where sigmoid is asked and sigmoid_backward where relu is",
                lambda c, o: F.linear_activation_backward(c.args[0], c.args[1], _SWAPPED[c.args[2]])),
    ],
    "L_model_backward": [
        Variant("gradient keys off by one: dA0 ... dA(L-1) instead of dA1 ... dAL (dA + str(l) is the "
                "gradient of layer l's input)", lambda c, o: _shift_keys(o, ("dA",), -1)),
        Variant("gradient keys off by one: dW0, db0 ... instead of dW1, db1 ...",
                lambda c, o: _shift_keys(o, ("dW", "db"), -1)),
        Variant("1/m applied twice: dAL divided by m, and linear_backward divides again",
                lambda c, o: {k: v / c.args[0].shape[1] for k, v in o.items()}),
        Variant("sign: dAL negated", lambda c, o: {k: -v for k, v in o.items()}),
    ],
    "update_parameters": [
        Variant("the loop skips the last layer: layers are numbered 1 .. L",
                lambda c, o: _update_layers(c, lambda L: range(1, L))),
        Variant("the loop skips the first layer", lambda c, o: _update_layers(c, lambda L: range(2, L + 1))),
        Variant("adds the gradient instead of subtracting it",
                lambda c, o: {k: 2 * c.args[0][k] - v for k, v in o.items()}),
    ],
}

#: What a failure on saturated inputs means, by function.
SAFETY = {
    "sigmoid": "sigmoid overflows: np.exp(-Z) overflows for Z below about -709; use np.exp(-np.abs(Z)) "
               "(as twinnet.functional does)",
    "sigmoid_backward": "sigmoid overflows: np.exp(-Z) overflows for Z below about -709; use "
                        "np.exp(-np.abs(Z)) (as twinnet.functional does)",
    "compute_cost": "log(0) at saturated outputs: an AL of exactly 1 (or 0) gives 0 * log(0) = nan; "
                    "take np.log(np.maximum(AL, tiny)) and np.log(np.maximum(1 - AL, tiny))",
    "L_model_backward": "divides by zero where AL is exactly 1 (or 0): 0 / 0 in dAL; replace a zero "
                        "denominator by a tiny number",
}
