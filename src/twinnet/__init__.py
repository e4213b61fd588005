"""twinnet: a neural network written from scratch in NumPy, its Keras twin, and a lab comparing them.

Public names
------------
- :class:`Network`, and the :class:`History` its ``fit`` returns; :func:`gradcheck` (from :mod:`twinnet.nn`).
- :class:`TwinNetClassifier`, :class:`TwinNetRegressor`: scikit-learn estimators over ``Network``.
- :class:`DivergenceWarning`: what ``fit`` warns when the training loss climbs (a ``UserWarning``).
- Modules: :mod:`~twinnet.functional` (the notebook's functions), :mod:`~twinnet.data`, :mod:`~twinnet.nn`,
  :mod:`~twinnet.estimator`, :mod:`~twinnet.keras_twin`, :mod:`~twinnet.lab`, :mod:`~twinnet.bench`,
  :mod:`~twinnet.cli`.

``import twinnet`` stays light: each name loads on first use, and TensorFlow, Dask and matplotlib
only when a feature needs them.
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
    "DivergenceWarning": "twinnet.nn.divergence",
}
_SUBMODULES = ("functional", "data", "nn", "estimator", "keras_twin", "lab", "bench", "cli")

__all__ = ["__version__", *_SUBMODULES, *_LAZY]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"twinnet.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'twinnet' has no attribute {name!r}")


def __dir__():
    # dir() and help() list the lazy names without importing them (PEP 562)
    return sorted({*globals(), *__all__})
