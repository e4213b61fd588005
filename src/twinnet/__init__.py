"""twinnet: a neural network written from scratch in NumPy, its Keras twin, and a lab comparing them.

``import twinnet`` stays light: TensorFlow, Dask and matplotlib load only when a feature needs them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it, imported on first access
_LAZY = {
    "Network": "twinnet.nn",
    "History": "twinnet.nn",
    "TwinNetClassifier": "twinnet.estimator",
    "TwinNetRegressor": "twinnet.estimator",
    "gradcheck": "twinnet.nn",
}
_SUBMODULES = ("functional", "data", "nn", "estimator", "keras_twin", "lab", "bench", "cli")

__all__ = ["__version__", *_SUBMODULES, *_LAZY]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"twinnet.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'twinnet' has no attribute {name!r}")
