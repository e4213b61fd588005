"""Randomized cases for each of the exercise's functions: the arguments both implementations get.

Shapes vary on purpose: non-square layers (a transposed product fails or shows), square ones (a
transposed product runs and gives other numbers), one example, one feature, deep and shallow
networks, and the notebook's own shapes (layers 100-20-5-1, 1600 training examples), so that code
that only works for the notebook's shapes is recognised. ``saturated`` cases hold the extreme
values a training run can reach (logits of +-1000, probabilities of exactly 0 and 1): they test
numerical safety, not the formula.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from twinnet import functional as F

NOTEBOOK_DIMS = [100, 20, 5, 1]
NOTEBOOK_M = 1600  # the exercise's training examples: 80% of its 2000
# (n_prev, n, m) of a layer: non-square, square, one feature, one unit, one example
LAYER_SHAPES = [(3, 4, 5), (4, 4, 3), (1, 3, 2), (5, 1, 1), (2, 3, 7)]
NETWORKS = [[3, 4, 1], [2, 5, 3, 1], [1, 1], [4, 4, 4, 4, 1]]


class Case(NamedTuple):
    label: str  # how the case is shown to the learner: its shapes
    args: tuple
    seed: int | None = None  # np.random.seed(seed) before the call (initialize_parameters draws)
    saturated: bool = False
    notebook: bool = False  # the notebook's own shapes

    @property
    def size(self):
        return sum(np.size(a) for a in _arrays(self.args))


def _arrays(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)
    elif isinstance(value, (tuple, list)) and not all(isinstance(v, (int, float)) for v in value):
        for v in value:
            yield from _arrays(v)
    else:
        yield value


def _layer(rng, n_prev, n, m):
    return rng.standard_normal((n_prev, m)), rng.standard_normal((n, n_prev)), rng.standard_normal((n, 1))


def _shapes(extra=True):
    """(n_prev, n, m, notebook?) of the layer cases."""
    shapes = [(*s, False) for s in LAYER_SHAPES]
    if extra:
        shapes.append((NOTEBOOK_DIMS[0], NOTEBOOK_DIMS[1], NOTEBOOK_M, True))
    return shapes


def _with_zeros(rng, shape):
    # exact zeros: where ReLU's derivative is decided by a convention (0 in the exercise)
    Z = rng.standard_normal(shape)
    Z[rng.random(shape) < 0.3] = 0.0
    return Z


def _parameters(rng, dims, scale=1.0):
    return {key: value * scale / 0.1 if key[0] == "W" else rng.standard_normal(value.shape)
            for key, value in F.initialize_parameters(dims, rng=rng).items()}


def _labels(rng, m):
    Y = (rng.random((1, m)) < 0.5).astype(float)
    Y[0, 0] = 1.0 - Y[0, -1] if m > 1 else Y[0, 0]  # both classes where there is room
    return Y


def _net_label(dims, m):
    return f"layers {dims}, m={m}"


def _np_seed(rng):
    """A seed for ``np.random.seed`` before a call that draws, itself drawn with the cases."""
    return int(rng.integers(1 << 31))


def initialize_parameters(rng):
    networks = NETWORKS + [NOTEBOOK_DIMS]
    return [Case(f"layer_dims={dims}, np.random.seed({seed})", (list(dims),), seed=seed,
                 notebook=dims == NOTEBOOK_DIMS)
            for seed, dims in ((_np_seed(rng), dims) for dims in networks)]


def linear_forward(rng):
    return [Case(f"n_prev={p}, n={n}, m={m}", _layer(rng, p, n, m), notebook=nb)
            for p, n, m, nb in _shapes()]


def _activation(rng, relu):
    cases = [Case(f"Z of shape ({n}, {m})",
                  (_with_zeros(rng, (n, m)) * 3 if relu else rng.standard_normal((n, m)) * 3,),
                  notebook=nb)
             for _, n, m, nb in _shapes()]
    Z = np.array([[-1000.0, -745.0, -40.0, 0.0, 40.0, 745.0, 1000.0]])
    cases.append(Case("saturated Z = [-1000, -745, -40, 0, 40, 745, 1000]", (Z,), saturated=True))
    return cases


def sigmoid(rng):
    return _activation(rng, relu=False)


def relu(rng):
    return _activation(rng, relu=True)


def linear_activation_forward(rng):
    cases = [Case(f"{activation}, n_prev={p}, n={n}, m={m}", (*_layer(rng, p, n, m), activation),
                  notebook=nb)
             for p, n, m, nb in _shapes() for activation in ("relu", "sigmoid")]
    A, W, b = _layer(rng, 3, 2, 4)
    # whatever the draw, the first example reaches Z = [-1000, 1000]: exp(1000) overflows float64
    A[:, 0], b = 0.0, np.array([[-1000.0], [1000.0]])
    cases.append(Case("sigmoid, saturated: W * 1000, b = [-1000, 1000]", (A, W * 1000, b, "sigmoid"),
                      saturated=True))
    return cases


def L_model_forward(rng):
    cases = []
    for dims, m in [(d, k) for d, k in zip(NETWORKS, (5, 1, 3, 4))] + [(NOTEBOOK_DIMS, NOTEBOOK_M)]:
        cases.append(Case(_net_label(dims, m), (rng.standard_normal((dims[0], m)),
                                                 _parameters(rng, dims, scale=0.5)),
                          notebook=dims == NOTEBOOK_DIMS))
    dims = [3, 4, 1]
    parameters = _parameters(rng, dims)
    parameters["W2"] = parameters["W2"] * 1000
    # whatever the draw, the first example's hidden units are 0 (X = 0, b1 <= 0), so its output's
    # Z is b2 = -1000: exp(1000) overflows float64
    parameters["b1"], parameters["b2"] = -np.abs(parameters["b1"]), np.array([[-1000.0]])
    X = rng.standard_normal((3, 6))
    X[:, 0] = 0.0
    cases.append(Case(f"{_net_label(dims, 6)}, saturated: W2 * 1000, b2 = -1000", (X, parameters),
                      saturated=True))
    return cases


def compute_cost(rng):
    cases = [Case(f"m={m}", (rng.uniform(0.01, 0.99, (1, m)), _labels(rng, m)), notebook=m == NOTEBOOK_M)
             for m in (1, 2, 7, NOTEBOOK_M)]
    AL = np.array([[1.0, 0.0, 0.3, 1.0 - 1e-17, 1e-320]])
    Y = np.array([[1.0, 0.0, 1.0, 1.0, 0.0]])
    cases.append(Case("saturated AL = [1, 0, 0.3, 1, 1e-320], Y = [1, 0, 1, 1, 0]", (AL, Y),
                      saturated=True))
    return cases


def linear_backward(rng):
    cases = []
    for p, n, m, nb in _shapes():
        A, W, b = _layer(rng, p, n, m)
        cases.append(Case(f"n_prev={p}, n={n}, m={m}", (rng.standard_normal((n, m)), (A, W, b)),
                          notebook=nb))
    return cases


def _activation_backward(rng, relu):
    cases = [Case(f"dA and Z of shape ({n}, {m})",
                  (rng.standard_normal((n, m)),
                   _with_zeros(rng, (n, m)) if relu else rng.standard_normal((n, m)) * 3),
                  notebook=nb)
             for _, n, m, nb in _shapes()]
    Z = np.array([[-1000.0, -745.0, -40.0, 0.0, 40.0, 745.0, 1000.0]])
    cases.append(Case("saturated Z = [-1000, -745, -40, 0, 40, 745, 1000]",
                      (rng.standard_normal(Z.shape), Z), saturated=True))
    return cases


def sigmoid_backward(rng):
    return _activation_backward(rng, relu=False)


def relu_backward(rng):
    return _activation_backward(rng, relu=True)


def linear_activation_backward(rng):
    cases = []
    for p, n, m, nb in _shapes():
        for activation in ("relu", "sigmoid"):
            A, W, b = _layer(rng, p, n, m)
            Z = _with_zeros(rng, (n, m)) if activation == "relu" else rng.standard_normal((n, m))
            cases.append(Case(f"{activation}, n_prev={p}, n={n}, m={m}",
                              (rng.standard_normal((n, m)), ((A, W, b), Z), activation), notebook=nb))
    A, W, b = _layer(rng, 3, 2, 4)
    Z = np.array([[-1000.0, 1.0, 1000.0, 0.0], [-745.0, -40.0, 40.0, 745.0]])
    cases.append(Case("sigmoid, saturated Z of +-1000", (rng.standard_normal((2, 4)), ((A, W, b), Z), "sigmoid"),
                      saturated=True))
    return cases


def _unsaturated(rng, dims, m):
    """A forward pass whose outputs are none of them 0 or 1 in float64 (nor subnormal): an ordinary
    case, where the exercise's dAL is finite. Drawn again when not (measured: 4% of the notebook's
    1600 outputs draws hold one; the saturated case tests those)."""
    while True:
        AL, caches = F.L_model_forward(rng.standard_normal((dims[0], m)), _parameters(rng, dims, scale=0.5))
        if np.all((AL >= np.finfo(AL.dtype).tiny) & (AL < 1)):
            return AL, caches


def L_model_backward(rng):
    cases = []
    for dims, m in [(d, k) for d, k in zip(NETWORKS, (5, 1, 3, 4))] + [(NOTEBOOK_DIMS, NOTEBOOK_M)]:
        AL, caches = _unsaturated(rng, dims, m)
        cases.append(Case(_net_label(dims, m), (AL, _labels(rng, m), caches),
                          notebook=dims == NOTEBOOK_DIMS))
    dims = [3, 4, 1]
    parameters = _parameters(rng, dims)
    parameters["W2"] = np.abs(parameters["W2"]) * 1000  # outputs of exactly 1.0 (and 0.5 where A1 = 0)
    parameters["b2"] = np.abs(parameters["b2"]) * 1000
    AL, caches = F.L_model_forward(rng.standard_normal((3, 6)), parameters)
    cases.append(Case(f"{_net_label(dims, 6)}, saturated: AL = 1 exactly", (AL, np.ones((1, 6)), caches),
                      saturated=True))
    return cases


def update_parameters(rng):
    cases = []
    for dims, rate in zip(NETWORKS + [NOTEBOOK_DIMS], (0.1, 0.5, 1.0, 0.05, 0.1)):
        parameters = _parameters(rng, dims)
        grads = {"d" + k: rng.standard_normal(v.shape) for k, v in parameters.items()}
        cases.append(Case(f"layers {dims}, learning_rate={rate}", (parameters, grads, rate),
                          notebook=dims == NOTEBOOK_DIMS))
    return cases


def L_layer_model(rng):
    cases = []
    for dims, m, rate, iterations in [([3, 4, 1], 6, 0.5, 8), ([2, 5, 3, 1], 9, 0.3, 5), ([1, 1], 1, 0.1, 3),
                                      ([4, 3, 3, 2, 1], 7, 0.5, 10)]:
        seed, X = _np_seed(rng), rng.standard_normal((dims[0], m))
        cases.append(Case(f"{_net_label(dims, m)}, learning_rate={rate}, num_iterations={iterations}, "
                          f"np.random.seed({seed})", (X, _labels(rng, m), dims, rate, iterations, False),
                          seed=seed))
    return cases


def accuracy(rng):
    cases = []
    for dims, m in [(d, k) for d, k in zip(NETWORKS, (9, 1, 4, 6))] + [(NOTEBOOK_DIMS, 400)]:
        cases.append(Case(f"{_net_label(dims, m)}", (rng.standard_normal((dims[0], m)), _labels(rng, m),
                                                     _parameters(rng, dims, scale=0.5)),
                          notebook=dims == NOTEBOOK_DIMS))
    return cases


CASES = {name: globals()[name] for name in F.__all__}


def cases_for(name, seed):
    """The cases of function ``name``, drawn from ``seed`` (:func:`twinnet.check.check` draws a
    new one for each run unless it is given one: cases that can be predicted can be hard-coded)."""
    return CASES[name](np.random.default_rng(seed))
