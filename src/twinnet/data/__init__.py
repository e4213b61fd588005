"""Data sets: built-in ones by name, safe loaders for user files, validation and splits.

This package is the trust boundary: data from users enters twinnet only through :func:`load` and
:func:`load_dataset`, which never unpickle anything but NumPy arrays and plain containers, and
always validate what they read. Rows are examples: ``X`` has shape ``(m, n_features)``; ``y`` has
shape ``(m,)`` for the classifier heads (``sigmoid``: labels 0/1, ``softmax``: labels 0..K-1) and
``(m,)`` or ``(m, k)`` for regression targets (``linear``). Built-ins declare their head; a file's
head is inferred from its labels (:func:`infer_output`) unless it is given.

Modules: ``datasets`` (the built-ins), ``labels`` (label checks and head inference), ``validate``
(:func:`check_dataset`), ``unpickler`` (the allow-list unpickler), ``readers`` (one per file
format), ``loaders`` (:func:`load`, :func:`load_dataset`, :func:`save_pickle`, :func:`describe`),
``splits`` (:func:`split`); the bounded-file primitives under the readers are
:mod:`twinnet.safe_io`'s.

Examples
--------
>>> from twinnet import data
>>> X, y = data.load("moons")
>>> s = data.split(X, y, test_size=0.2, seed=0, standardize=True)
>>> s.X_train.shape, s.X_test.shape
((320, 2), (80, 2))
"""

from twinnet.data.datasets import DATASETS, DEFAULT_DATASET
from twinnet.data.labels import MAX_INFERRED_CLASSES, infer_output
from twinnet.data.loaders import describe, load, load_dataset, load_file, save_pickle
from twinnet.data.splits import Split, split, standardized, unit_scale
from twinnet.data.validate import Loaded, check_dataset
from twinnet.safe_io import DEFAULT_MAX_BYTES, MAX_BYTES_ENV

__all__ = [
    "DATASETS", "DEFAULT_DATASET", "DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "MAX_INFERRED_CLASSES", "Loaded", "Split",
    "check_dataset", "describe", "infer_output", "load", "load_dataset", "load_file", "save_pickle", "split",
    "standardized", "unit_scale",
]
