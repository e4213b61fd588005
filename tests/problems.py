"""The small problems the tests train on, shared by the test files (``from problems import ...``).

Each is standard normal features and 0/1 labels from a fixed rule of the first features: a line
(linearly separable), a product or a square (not), so that a test can pick how hard its data is.
"""

import numpy as np

RULES = {
    "line": lambda X: X[:, 0] - 0.5 * X[:, 1] > 0,
    "product": lambda X: X[:, 0] + X[:, 1] * X[:, 2] > 0,
    "square": lambda X: X[:, 0] + X[:, 1] ** 2 > 0.5,
}


def binary_problem(m=40, n=3, seed=0, *, rule="line"):
    """``X`` of shape (m, n) from ``default_rng(seed)`` and ``y`` of shape (m,), int64 labels by ``rule``."""
    X = np.random.default_rng(seed).standard_normal((m, n))
    return X, RULES[rule](X).astype(np.int64)


def multiclass_problem(m=60, n=4, k=3, seed=0):
    """``X`` of shape (m, n) and int64 labels ``0 .. k-1``: the class whose random direction ``X`` points most to."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    return X, np.argmax(X @ rng.standard_normal((n, k)), axis=1).astype(np.int64)


def regression_problem(m=60, n=4, k=1, seed=0):
    """``X`` of shape (m, n) and real targets, ``(m,)`` for ``k=1`` else ``(m, k)``: a smooth function plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    Y = np.sin(X @ rng.standard_normal((n, k))) + 0.1 * rng.standard_normal((m, k))
    return X, Y[:, 0] if k == 1 else Y
