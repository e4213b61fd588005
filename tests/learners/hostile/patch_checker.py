"""Hostile: patches the checker's comparisons (numpy.isclose, twinnet's compare) to fake its PASS."""
import sys

import numpy as np

np.isclose = lambda *args, **kwargs: np.ones(np.broadcast(*args[:2]).shape, dtype=bool)
np.allclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True
for module in list(sys.modules.values()):  # the checker's own functions, wherever they are loaded
    for name in ("compare", "mutated", "check_function", "run_case"):
        if hasattr(module, name):
            try:
                setattr(module, name, lambda *args, **kwargs: None)
            except Exception:
                pass
main = sys.modules.get("__main__")
for name in ("call", "send", "encode"):
    if main is not None and hasattr(main, name):
        setattr(main, name, getattr(main, name))


def linear_backward(dZ, cache):  # wrong: missing 1/m in dW
    A_prev, W, b = cache
    return np.dot(W.T, dZ), np.dot(dZ, A_prev.T), np.mean(dZ, axis=1, keepdims=True)
