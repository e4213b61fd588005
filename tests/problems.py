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
