"""Data sets: built-in ones by name, safe loaders for user files, validation and splits.

This module is the trust boundary: data from users enters twinnet only through :func:`load` and
:func:`load_dataset`, which never unpickle anything but NumPy arrays and plain containers, and
always validate what they read. Rows are examples: ``X`` has shape ``(m, n_features)``; ``y`` has
shape ``(m,)`` for the classifier heads (``sigmoid``: labels 0/1, ``softmax``: labels 0..K-1) and
``(m,)`` or ``(m, k)`` for regression targets (``linear``). Built-ins declare their head; a file's
head is inferred from its labels (:func:`infer_output`) unless it is given.

Examples
--------
>>> from twinnet import data
>>> X, y = data.load("moons")
>>> s = data.split(X, y, test_size=0.2, seed=0, standardize=True)
>>> s.X_train.shape, s.X_test.shape
((320, 2), (80, 2))
"""

from __future__ import annotations

import array
import codecs
import errno
import io
import itertools
import math
import os
import pickle
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from twinnet import validation
from twinnet.nn.heads import DEFAULT_OUTPUT, head

__all__ = [
    "DATASETS", "MAX_INFERRED_CLASSES", "Loaded", "Split", "check_dataset", "describe", "infer_output", "load",
    "load_dataset", "load_file", "save_pickle", "split", "standardized", "unit_scale",
]


# --------------------------------------------------------------------------- built-in data sets
def _synthetic():
    # Shaped like the notebook's data.pickle: 2000 examples x 100 features, two balanced classes.
    # Chosen so that the notebook's run (layers 100-20-5-1, rate 0.1, 250 full-batch steps) behaves
    # as it printed: the cost sits near log 2 for some 40 steps, then falls to about 0.1, and the
    # test accuracy ends near 0.95.
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2000, n_features=100, n_informative=10, n_redundant=10, n_clusters_per_class=2,
        class_sep=2.0, flip_y=0.01, random_state=0,
    )
    return X, y


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return d.data, d.target


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, (d.target >= 5).astype(np.int64)


def _moons():
    from sklearn.datasets import make_moons

    return make_moons(n_samples=400, noise=0.2, random_state=0)


def _circles():
    from sklearn.datasets import make_circles

    return make_circles(n_samples=400, noise=0.1, factor=0.5, random_state=0)


def _digits10():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target


def _iris():
    from sklearn.datasets import load_iris

    d = load_iris()
    return d.data, d.target


def _wine():
    from sklearn.datasets import load_wine

    d = load_wine()
    return d.data, d.target


def _diabetes():
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    return d.data, d.target


def _synthetic_multiclass():
    # Four well-separated classes in 20 features, 8 of them informative: a one-hidden-layer ReLU
    # net of 16 units gets some 0.9 test accuracy (chance: 0.25), a linear model noticeably less.
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2000, n_features=20, n_informative=8, n_redundant=4, n_classes=4,
        n_clusters_per_class=1, class_sep=1.5, flip_y=0.01, random_state=0,
    )
    return X, y


def _synthetic_regression():
    # Friedman #1: y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise, 5 of 10 features
    # unused; nonlinear, so a small ReLU net explains some 0.9 of the variance and a linear model 0.7.
    from sklearn.datasets import make_friedman1

    return make_friedman1(n_samples=2000, n_features=10, noise=1.0, random_state=0)


class Dataset(NamedTuple):
    make: Callable[[], tuple]
    description: str
    #: The head the data set is meant for, one of ``validation.OUTPUTS``; built-ins never infer it.
    output: str


DATASETS = {
    "synthetic": Dataset(_synthetic, "2000 x 100, deterministic, shaped like the notebook's data.pickle (default)",
                         "sigmoid"),
    "breast_cancer": Dataset(_breast_cancer, "569 x 30, scikit-learn's Wisconsin breast cancer", "sigmoid"),
    "digits": Dataset(_digits, "1797 x 64, scikit-learn's 8x8 digits, label = digit >= 5", "sigmoid"),
    "moons": Dataset(_moons, "400 x 2, two interleaving half-moons (for pictures)", "sigmoid"),
    "circles": Dataset(_circles, "400 x 2, a circle inside a circle (for pictures)", "sigmoid"),
    "digits10": Dataset(_digits10, "1797 x 64, scikit-learn's 8x8 digits, ten classes 0..9", "softmax"),
    "iris": Dataset(_iris, "150 x 4, scikit-learn's iris, three species", "softmax"),
    "wine": Dataset(_wine, "178 x 13, scikit-learn's wine, three cultivars", "softmax"),
    "synthetic_multiclass": Dataset(_synthetic_multiclass, "2000 x 20, deterministic, four classes", "softmax"),
    "diabetes": Dataset(_diabetes, "442 x 10, scikit-learn's diabetes, a regression target from 25 to 346",
                        "linear"),
    "synthetic_regression": Dataset(_synthetic_regression,
                                    "2000 x 10, deterministic, Friedman's nonlinear regression target", "linear"),
}
DEFAULT_DATASET = "synthetic"


# --------------------------------------------------------------------------- heads
#: The most distinct whole-number label values that :func:`infer_output` reads as classes; more are
#: read as a regression target (counts, ages, prices in whole units). 50 is far above the class
#: counts of the data sets twinnet is used with and far below the distinct values of a real target.
MAX_INFERRED_CLASSES = 50


def _override(output, purpose):
    """The way to choose ``output`` over an inferred head, in the command line's and Python's words."""
    return f"pass --output {output} (output={output!r}) {purpose}"


def _shown(values, n=5):
    """The first ``n`` of ``values``, as text (labels in messages and notes)."""
    values = np.asarray(values).ravel()
    return ", ".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in values[:n].tolist()) + (
        ", ..." if values.size > n else "")


def _check_labels(y, source):
    """``y`` as a real, finite array of shape (m,) or (m, k): the checks every head shares."""
    if y.dtype.kind not in "biuf":  # complex would be cast to its real part, silently
        raise ValueError(f"{source}: labels must be real numbers; got dtype {y.dtype}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise ValueError(f"{source}: labels must be of shape (m,) or (m, k); got shape {y.shape}.")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        bad = np.argwhere(~np.isfinite(y))[0]
        raise ValueError(f"{source}: labels contain NaN or inf (first at row {bad[0]}).")
    return y


def infer_output(y, *, source="data"):
    """The head that labels ``y`` call for, and a sentence saying so and how to choose another.

    The rules are scikit-learn's ``type_of_target``'s: a target of shape (m, k > 1) and real values
    that are not whole numbers are regression targets (``"linear"``); whole numbers (of any dtype,
    ``bool`` included) with exactly two distinct values are binary labels (``"sigmoid"``), with 3 to
    :data:`MAX_INFERRED_CLASSES` distinct values classes (``"softmax"``), and with more a regression
    target.

    Parameters
    ----------
    y : array-like of shape (m,) or (m, k)
        Real, finite values.
    source : str
        Named in the note and in error messages (a file path or a data set name).

    Returns
    -------
    output : {"linear", "sigmoid", "softmax"}
    note : str
        One line: what was inferred, from what, and the ``--output`` / ``output=`` that chooses
        otherwise.

    Raises
    ------
    ValueError
        Labels that are not real numbers, contain NaN or inf, are empty, or hold a single whole
        number (no head can be inferred from one value).

    Examples
    --------
    >>> infer_output([0.0, 1.0, 2.0, 1.0], source="d.csv")[0]
    'softmax'
    >>> infer_output(np.arange(200))[0]
    'linear'
    """
    try:
        y = np.asarray(y)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: labels must be an array ({str(exc)[:120]}).") from None
    y = _check_labels(y, source)
    if y.shape[0] == 0:
        raise ValueError(f"{source}: labels are empty; expected at least one example.")
    if y.ndim == 2:
        return "linear", (f"{source}: labels of shape {y.shape}: treated as {y.shape[1]} regression targets "
                          "(output 'linear'); a classifier's labels have shape (m,).")
    whole = y.dtype.kind in "biu" or bool(np.all(y == np.trunc(y)))
    if not whole:
        example = y[y != np.trunc(y)][0]
        return "linear", (f"{source}: labels are not whole numbers (e.g. {float(example):g}): treated as a "
                          "regression target (output 'linear'); "
                          + _override("softmax", "to make each distinct value a class") + ".")
    classes = np.unique(y)
    k, kind = classes.size, ("whole numbers stored as floats" if y.dtype.kind == "f" else "whole-number labels")
    if k == 1:
        raise ValueError(
            f"{source}: labels hold one value only ({_shown(classes)}): no head can be inferred; "
            "a classifier needs at least two classes (" + _override("linear", "for a constant target") + ")."
        )
    if k > MAX_INFERRED_CLASSES:
        return "linear", (f"{source}: {k} distinct {kind}: treated as a regression target (output 'linear'), "
                          f"more than the {MAX_INFERRED_CLASSES} read as classes; "
                          + _override("softmax", "for classes") + ".")
    output = "sigmoid" if k == 2 else "softmax"
    what = "binary labels mapped to 0 and 1" if k == 2 else f"{k} classes"
    other = (_override("linear", "to make them a regression target") if y.dtype.kind == "f" else
             _override("linear", "for a regression target"))
    if k == 2:
        other = _override("softmax", "for a two-class softmax") + ", or " + other.removeprefix("pass ")
    return output, f"{source}: {k} distinct {kind} ({_shown(classes)}): treated as {what} (output {output!r}); {other}."


# --------------------------------------------------------------------------- validation
class Loaded(NamedTuple):
    """A validated data set and the head it is for (what :func:`load_dataset` returns).

    Attributes
    ----------
    X : ndarray of shape (m, n_features), float64 (float32 kept)
    y : ndarray
        int64 of shape (m,), 0/1 or 0..K-1, for a classifier; float64 (float32 kept) of shape
        (m,) or (m, k) for ``"linear"``.
    output : {"linear", "sigmoid", "softmax"}
    classes : ndarray of shape (K,) or None
        A classifier's original label values in sorted order (label ``i`` of ``y`` stands for
        ``classes[i]``); None for ``"linear"``.
    note : str or None
        :func:`infer_output`'s note when the head was inferred; None when it was given or declared.
    """

    X: np.ndarray
    y: np.ndarray
    output: str
    classes: np.ndarray | None
    note: str | None


def _check_features(X, y, source):
    """``X`` as a finite real (m, n) float array (:func:`twinnet.validation.features`); ``y`` as an
    array with as many rows. A refusal names ``source``."""
    try:
        X = validation.features(X, "features")
        try:
            y = np.asarray(y)
        except (ValueError, TypeError) as exc:  # ragged lists, or nested past NumPy's 64 dimensions
            raise validation.InvalidArgument("labels", "an array", type(y).__name__,
                                             f"labels must be an array ({str(exc)[:120]}).") from None
        validation.same_examples(X.shape, y.shape, "features", "labels")
    except validation.InvalidArgument as exc:
        raise validation.InvalidArgument(exc.argument, exc.expected, exc.value, f"{source}: {exc}") from None
    return X.astype(np.float32 if X.dtype == np.float32 else np.float64, copy=False), y


def _classes(y, source, output):
    """A classifier's labels as int64 0..K-1 in the sorted order of their values, and those values."""
    if y.ndim != 1:
        raise ValueError(
            f"{source}: labels must be 1-D of shape (m,) for output {output!r}; got shape {y.shape} "
            "(a target of shape (m, k) needs output 'linear')."
        )
    classes, index = np.unique(y, return_inverse=True)
    if head(output).binary and classes.size != 2:
        hint = ""
        if classes.size > 2:
            whole = y.dtype.kind in "biu" or bool(np.all(classes == np.trunc(classes)))
            hint = " (" + _override("softmax", f"for {classes.size} classes")
            if not whole or classes.size > MAX_INFERRED_CLASSES:
                hint += ", or --output linear (output='linear') for a regression target"
            hint += ")"
        raise ValueError(
            f"{source}: labels must be binary (exactly two distinct values); got {classes.size} "
            f"distinct values: {_shown(classes)}{hint}."
        )
    if classes.size < 2:
        raise ValueError(
            f"{source}: labels must hold at least two classes for output {output!r}; got 1 distinct "
            f"value: {_shown(classes)}."
        )
    return index.reshape(-1).astype(np.int64), classes


def _validated(X, y, source, output):
    """What :func:`check_dataset` does, with ``output=None`` inferred; returns a :class:`Loaded`."""
    if output is not None:
        validation.choice("output", output, validation.OUTPUTS)
    X, y = _check_features(X, y, source)
    y = _check_labels(y, source)
    note = None
    if output is None:
        output, note = infer_output(y, source=source)
    if not head(output).classifier:
        y = y.astype(np.float32 if y.dtype == np.float32 else np.float64, copy=False)
        return Loaded(X, y, output, None, note)
    labels, classes = _classes(y, source, output)
    return Loaded(X, labels, output, classes, note)


def check_dataset(X, y, *, source="data", output=DEFAULT_OUTPUT):
    """Validate a data set for one output head and return it as ``(features, labels)`` arrays.

    Parameters
    ----------
    X : array-like of shape (m, n_features)
        Real, finite values.
    y : array-like of shape (m,), (m, 1) or, for ``output="linear"``, (m, k)
        Real, finite values. ``"sigmoid"``: exactly two distinct values, mapped to 0 and 1 in
        sorted order; ``"softmax"``: K >= 2 distinct values, mapped to 0..K-1 in sorted order;
        ``"linear"``: regression targets, kept as they are.
    source : str
        Named in error messages (a file path or a data set name).
    output : {"sigmoid", "softmax", "linear"}
        The head the data is for (``validation.OUTPUTS``). :func:`infer_output` tells it from the
        labels; :func:`load_dataset` infers it when it is not given.

    Returns
    -------
    X : ndarray of shape (m, n_features), float64 (float32 is kept)
    y : ndarray
        Classifiers: int64 of shape (m,), 0/1 (sigmoid) or 0..K-1 (softmax). Linear: float64
        (float32 is kept) of shape (m,) (from (m,) or (m, 1)) or (m, k).

    Raises
    ------
    ValueError
        With a message naming the problem and the source; an unknown ``output`` is a
        ``validation.InvalidArgument``.
    """
    validation.choice("output", output, validation.OUTPUTS)
    loaded = _validated(X, y, source, output)
    return loaded.X, loaded.y


# --------------------------------------------------------------------------- the limit
#: The default of ``max_bytes``: the most memory a loaded data set may take, counted as 8 bytes (one
#: float64, as twinnet holds data) per value. 4 GiB is over a thousand times the largest data set the
#: project itself uses and fits the machines it runs on; a file that declares more (an .npz header
#: saying a petabyte, a zip bomb) is refused before anything that size is allocated.
DEFAULT_MAX_BYTES = 4 * 2**30
MAX_BYTES_ENV = "TWINNET_MAX_BYTES"


def check_max_bytes(max_bytes):
    """``max_bytes`` as given, else ``$TWINNET_MAX_BYTES``, else 4 GiB; checked."""
    name = "max_bytes"
    if max_bytes is None:
        max_bytes, name = os.environ.get(MAX_BYTES_ENV) or DEFAULT_MAX_BYTES, MAX_BYTES_ENV
    try:
        value = int(max_bytes)
    except (TypeError, ValueError):
        value = 0
    if value <= 0 or isinstance(max_bytes, (bool, float)):
        raise ValueError(f"{name} must be a positive whole number of bytes; got {name}={max_bytes!r}.")
    return value


def _too_big(source, what, nbytes, max_bytes):
    return ValueError(
        f"{source}: {what} would take {nbytes:,} bytes, more than the limit max_bytes={max_bytes:,} "
        f"(raise it with --max-bytes or {MAX_BYTES_ENV} if the data is meant to be that big)."
    )


# --------------------------------------------------------------------------- safe pickle
class _Refused(pickle.UnpicklingError):
    pass


class _NdarrayName:
    """What a pickle gets for ``numpy.ndarray``: only ``_reconstruct``'s first argument."""

    def __call__(self, *args, **kwargs):
        raise _Refused("refusing to call numpy.ndarray (it allocates any shape it is given)")


_NDARRAY = _NdarrayName()


def _checked_dtype(dtype):
    # Data is numeric: refusing object, text and structured dtypes keeps every array a flat block
    # of bytes whose size the file itself holds.
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or dtype.fields or dtype.subdtype:
        raise _Refused(f"refusing dtype {dtype!r}: only arrays of real numbers are allowed")
    return dtype


def _checked_shape(shape):
    if not (isinstance(shape, tuple) and len(shape) <= 32
            and all(type(n) is int and n >= 0 for n in shape)):
        raise _Refused(f"refusing array shape {str(shape)[:80]}")
    return math.prod(shape)


class _SafeUnpickler(pickle._Unpickler):
    """An allow-list unpickler whose memory and time are bounded by the size of its input.

    It is pickle's own pure-Python unpickler (one step per opcode; no opcode allocates more than its
    argument's size) with the steps that could do more replaced: the NumPy constructors charge the
    array data they build to a budget of twice the file's size (every array of an honest pickle is
    stored once in the file, so a pickle whose memo references make NumPy copy one buffer many
    times is refused), dict keys must be strings (a key made of tuples that share one another takes
    exponential time to hash), and sets are refused.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: RUF012  (pickle's own per-class table, edited below)

    def __init__(self, raw: bytes):
        super().__init__(io.BytesIO(raw))
        # Twice the file: protocol 2 stores an array's data as a str that _codecs.encode turns into
        # bytes, which the array's state then copies; protocols 3-5 copy each byte once.
        self.budget = 2 * len(raw)
        self.globals = {
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): self._dtype,
            ("_codecs", "encode"): self._encode,
        }
        for core in ("numpy.core", "numpy._core"):  # NumPy 1.x pickles name numpy.core
            self.globals[(f"{core}.multiarray", "_reconstruct")] = self._reconstruct
            self.globals[(f"{core}.multiarray", "scalar")] = self._scalar
            self.globals[(f"{core}.numeric", "_frombuffer")] = self._frombuffer

    def find_class(self, module, name):
        try:
            return self.globals[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(
                f"refusing to unpickle {str(module)[:80]}.{str(name)[:80]}: only NumPy arrays and "
                "plain containers are allowed"
            ) from None

    def _charge(self, nbytes):
        self.budget -= nbytes
        if self.budget < 0:
            raise _Refused(
                "refusing a pickle that builds more array data than the file holds (its memo "
                "references copy one buffer many times)"
            )

    def _dtype(self, obj, align=False, copy=False):
        if not isinstance(obj, str) or len(obj) > 8:
            raise _Refused(f"refusing dtype {str(obj)[:80]!r}")
        return _checked_dtype(np.dtype(obj, align=bool(align), copy=bool(copy)))

    def _encode(self, obj, encoding="utf-8"):
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
            raise _Refused("refusing _codecs.encode other than of a str to latin1")
        self._charge(len(obj))
        return codecs.encode(obj, encoding)

    def _reconstruct(self, subtype, shape, typecode):
        # NumPy pickles an array as an empty one, _reconstruct(ndarray, (0,), b'b'), whose data
        # and shape come with its state (load_build); any other shape would be allocated here.
        if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
            raise _Refused("refusing numpy _reconstruct other than of an empty ndarray")
        return np._core.multiarray._reconstruct(np.ndarray, (0,), b"b")

    def _scalar(self, dtype, data):
        _checked_dtype(dtype)
        self._charge(dtype.itemsize)
        return np._core.multiarray.scalar(dtype, data)

    def _frombuffer(self, buf, dtype, shape, order, axis_order=None):
        dtype = _checked_dtype(np.dtype(dtype) if isinstance(dtype, str) and len(dtype) <= 8 else dtype)
        self._charge(_checked_shape(shape) * dtype.itemsize)
        return np._core.numeric._frombuffer(buf, dtype, shape, order, axis_order)

    def load_build(self):
        state, inst = self.stack.pop(), self.stack[-1]
        if isinstance(inst, np.dtype):  # byte order; anything that makes it non-numeric is refused
            inst.__setstate__(state)
            _checked_dtype(inst)
        elif type(inst) is np.ndarray and isinstance(state, tuple) and len(state) == 5:
            _, shape, dtype, _, raw = state
            nbytes = _checked_shape(shape) * _checked_dtype(dtype).itemsize
            if not isinstance(raw, (bytes, bytearray)) or len(raw) != nbytes:
                raise _Refused(f"refusing an array of shape {shape} whose data is not {nbytes} bytes")
            self._charge(nbytes)  # __setstate__ copies the data
            inst.__setstate__(state)
        else:
            raise _Refused(f"refusing to set the state of a {type(inst).__name__}")

    def load_setitem(self):
        self._check_keys(self.stack[-3], self.stack[-2:-1])
        super().load_setitem()

    def load_setitems(self):
        self._check_keys(self.metastack[-1][-1], self.stack[::2])
        super().load_setitems()

    def load_dict(self):
        self._check_keys({}, self.stack[::2])
        super().load_dict()

    def load_set(self):
        raise _Refused("refusing a set: only NumPy arrays and plain containers are allowed")

    @staticmethod
    def _check_keys(target, keys):
        if type(target) is not dict or not all(type(k) is str for k in keys):
            raise _Refused("refusing a dict whose keys are not strings")

    for _opcode, _method in [(pickle.BUILD, load_build), (pickle.SETITEM, load_setitem),
                             (pickle.SETITEMS, load_setitems), (pickle.DICT, load_dict),
                             (pickle.EMPTY_SET, load_set), (pickle.ADDITEMS, load_set),
                             (pickle.FROZENSET, load_set)]:
        dispatch[_opcode[0]] = _method
    del _opcode, _method


def _safe_unpickle(raw: bytes, source: str):
    try:
        return _SafeUnpickler(raw).load()
    except _Refused as exc:
        raise ValueError(f"{source}: not a safe data pickle ({exc}).") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError, MemoryError, OverflowError, struct.error, RecursionError) as exc:
        raise ValueError(
            f"{source}: empty, truncated or corrupted pickle ({type(exc).__name__}: {str(exc)[:200]})."
        ) from None


def _count_values(obj, source):
    """The number of values ``np.asarray(obj)`` would hold, without building it.

    Lists that reference one another are counted as many times as they are referenced (that is
    what the array would hold), each list once (so the walk is linear in the pickle's size); a list
    that contains itself is an error.
    """
    counts, stack = {}, [(obj, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (list, tuple)):
            continue
        key = id(node)
        if done:
            counts[key] = sum(counts.get(id(c), c.size if isinstance(c, np.ndarray) else 1) for c in node)
        elif key not in counts:
            counts[key] = None  # on the path: met again before it is done means a cycle
            stack.append((node, True))
            stack.extend((c, False) for c in node)
        elif counts[key] is None:
            raise ValueError(f"{source}: a list in the pickle contains itself.")
    if isinstance(obj, np.ndarray):
        return obj.size
    return counts[id(obj)] if isinstance(obj, (list, tuple)) else 1


def _from_mapping(obj, source, keys=("features", "labels")):
    if not isinstance(obj, dict):
        raise ValueError(  # noqa: TRY004  (a file's content, not a caller's argument: a user error)
            f"{source}: expected a dict with keys 'features' and 'labels'; got {type(obj).__name__}."
        )
    missing = [k for k in keys if k not in obj]
    if missing:
        found = sorted(str(k)[:40] for k in obj)
        raise ValueError(
            f"{source}: missing key(s) {', '.join(repr(k) for k in missing)}; expected 'features' "
            f"and 'labels', found {found[:10]}{' ...' if len(found) > 10 else ''}."
        )
    return obj["features"], obj["labels"]


# --------------------------------------------------------------------------- file formats
def _read_pickle(file, size, source, max_bytes):
    # Unpickling makes Python objects in proportion to the file, before values can be counted; an
    # honest pickle is at most about twice its data (protocol 2 stores bytes as UTF-8 text) plus
    # its structure (some hundred bytes; 64 KiB allowed).
    if size > 2 * max_bytes + 2**16:
        raise ValueError(
            f"{source}: a pickle of {size:,} bytes is more than twice the limit max_bytes={max_bytes:,} "
            f"(raise it with --max-bytes or {MAX_BYTES_ENV} if the data is meant to be that big)."
        )
    features, labels = _from_mapping(_safe_unpickle(file.read(size), source), source)
    values = _count_values(features, source) + _count_values(labels, source)
    # Every value of an honest pickle takes at least one byte of the file; more values than bytes
    # means lists that reference one another, the shape of a pickle bomb.
    if values > size:
        raise ValueError(
            f"{source}: the pickle declares {values:,} values in {size:,} bytes: its lists "
            "reference one another; save the data as arrays (twinnet.data.save_pickle)."
        )
    if 8 * values > max_bytes:
        raise _too_big(source, f"its {values:,} values", 8 * values, max_bytes)
    return features, labels


def npz_member(zf, key, source, max_bytes, values_before=0, check=None):
    """One array of an .npz, its header checked before NumPy allocates what it declares.

    ``check(shape, dtype)``, when given, sees the header first and raises to refuse the array.
    """
    fmt = np.lib.format
    infos = [info for info in zf.infolist() if info.filename == f"{key}.npy"]
    if len(infos) != 1:
        raise ValueError(
            f"{source}: " + (f"holds {key!r} {len(infos)} times." if infos else
                             f"missing key(s) {key!r}; expected 'features' and 'labels', found "
                             f"{sorted(n.removesuffix('.npy')[:40] for n in zf.namelist())[:10]}.")
        )
    info = infos[0]
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{source}: {key!r} is an .npy of unsupported version {version}.")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(f)
        header = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{source}: the .npz holds object arrays, which are refused.")
    if check is not None:
        check(shape, dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    need = 8 * values_before + max(nbytes, 8 * math.prod(shape))  # as read, or as float64
    if need > max_bytes:
        what = f"{key!r} of shape {shape}" + (" with the arrays before it" if values_before else "")
        raise _too_big(source, what, need, max_bytes)
    if header + nbytes != info.file_size:
        raise ValueError(
            f"{source}: {key!r} declares shape {shape} ({nbytes:,} bytes of {dtype}) but holds "
            f"{info.file_size - header:,} bytes: truncated or corrupted."
        )
    with zf.open(info) as f:
        return fmt.read_array(f, allow_pickle=False)


def _read_npz(file, size, source, max_bytes):
    try:
        with zipfile.ZipFile(file) as zf:
            features = npz_member(zf, "features", source, max_bytes)
            labels = npz_member(zf, "labels", source, max_bytes, features.size)
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, NotImplementedError,
            zlib.error) as exc:
        if str(exc).startswith(source):
            raise
        raise ValueError(f"{source}: not a valid .npz file ({type(exc).__name__}: {str(exc)[:200]}).") from None
    return features, labels


def _fields(line):
    """The comma-separated fields of ``line``, stripped, one at a time (a line may be long)."""
    start = 0
    while True:
        end = line.find(",", start)
        yield line[start:None if end < 0 else end].strip()
        if end < 0:
            return
        start = end + 1


def _is_number(field):
    try:  # the same parser as the rows', so that a header is told apart by the rule rows follow
        # NumPy reads the text as a C string: a NUL would end the field early.
        return np.fromstring(field, sep=",").size == 1 and "," not in field and "\0" not in field
    except ValueError:
        return False


def _read_csv(file, size, source, max_bytes):
    # Line by line, each line parsed by NumPy into one row of floats: memory is the values read
    # (8 bytes each, checked against max_bytes before a line is parsed) plus one line of text.
    values, width = array.array("d"), None
    with io.TextIOWrapper(file, encoding="utf-8-sig", errors="replace", newline=None) as text:
        for number in itertools.count(1):
            line = text.readline(max_bytes + 1)
            if not line:
                break
            if len(line) > max_bytes:
                raise ValueError(
                    f"{source}: line {number} is longer than the limit max_bytes={max_bytes:,} characters "
                    f"(raise it with --max-bytes or {MAX_BYTES_ENV} if the data is meant to be that big)."
                )
            if not line.strip():
                continue
            cells = line.count(",") + 1
            if width is None:
                width = cells
                numbers = [_is_number(f) for f in _fields(line)]
                if not any(numbers):  # a header: every field a name
                    continue
                if not all(numbers):
                    bad = numbers.index(False)
                    field = next(itertools.islice(_fields(line), bad, None))
                    raise ValueError(
                        f"{source}: line {number}, column {bad + 1} is not a number: {field[:40]!r} "
                        "(a header line must have no numbers, a data line only numbers)."
                    )
            if cells != width:
                raise ValueError(f"{source}: line {number} has {cells} cells, expected {width}.")
            if 8 * (len(values) + cells) > max_bytes:
                raise _too_big(source, f"its values up to line {number}", 8 * (len(values) + cells), max_bytes)
            try:
                row = np.fromstring(line, sep=",")
            except ValueError:
                row = np.empty(0)
            if row.size != cells:
                bad, field = next((j, f) for j, f in enumerate(_fields(line)) if not _is_number(f))
                raise ValueError(f"{source}: line {number}, column {bad + 1} is not a number: {field[:40]!r}.")
            values.frombytes(row.tobytes())
    if width is None:
        raise ValueError(f"{source}: the CSV file is empty.")
    if not values:
        raise ValueError(f"{source}: the CSV file has a header but no data rows.")
    if width < 2:
        raise ValueError(f"{source}: a CSV needs feature columns and a last label column; got {width} column.")
    table = np.frombuffer(values, dtype=np.float64).reshape(-1, width)
    return table[:, :-1], table[:, -1]


READERS = {
    ".pickle": _read_pickle,
    ".pkl": _read_pickle,
    ".npz": _read_npz,
    ".csv": _read_csv,
}


def open_regular(path, expected="a data file"):
    """Open ``path`` to read bytes, refusing what is not a regular file; return the file and its size.

    A FIFO, device or socket (or a link to one) is refused at once rather than read forever or
    waited on; the messages name ``path`` and say what was ``expected``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a regular file, or it cannot be opened (the system's reason is in the message).
    """
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once (to be refused), not never.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FileNotFoundError(f"{source}: no such file.") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket
            raise ValueError(f"{source}: is not a regular file (a socket); expected {expected}.") from None
        raise ValueError(f"{source}: cannot be opened ({exc.strerror}).") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{source}: is a directory, expected {expected}.")
        raise ValueError(f"{source}: is not a regular file (a FIFO, device or socket); expected {expected}.")
    return open(fd, "rb"), st.st_size


def _load_file(path, max_bytes, output):
    path = Path(path)
    source = str(path)
    max_bytes = check_max_bytes(max_bytes)
    reader = READERS.get(path.suffix.lower())
    file, size = open_regular(path)
    with file:
        if reader is None:
            raise ValueError(
                f"{source}: unknown file type {path.suffix!r}; expected one of "
                + ", ".join(sorted(READERS)) + "."
            )
        if size == 0:
            raise ValueError(f"{source}: the file is empty.")
        X, y = reader(file, size, source, max_bytes)
    return _validated(X, y, source, output)


def load_file(path, *, output=None, max_bytes=None):
    """Load ``(X, y)`` from a ``.pickle``/``.pkl`` (the notebook's format), ``.npz`` or ``.csv`` file.

    The pickle and ``.npz`` files hold ``{"features": (m, n), "labels": (m,) or (m, k)}``; a CSV
    holds one example per line, the label in the last column (one label column only: a target of
    shape (m, k) needs a pickle or an ``.npz``), with an optional header line (one whose fields are
    all names, none a number). Pickles are read with an allow-list unpickler that builds NumPy
    arrays of numbers and plain containers only.

    Parameters
    ----------
    path : str or path-like
        A regular file (not a directory, FIFO or device).
    output : {"sigmoid", "softmax", "linear"}, optional
        The head the labels are for (see :func:`check_dataset`); inferred from them by default
        (see :func:`infer_output`, and :func:`load_dataset` for the note that says what it inferred).
    max_bytes : int, optional
        The most memory the data may take, counted as 8 bytes per value. Default:
        ``$TWINNET_MAX_BYTES``, else 4 GiB. A file that declares more is refused before anything
        that size is allocated, and no reader's work grows faster than the file's size or this limit.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Anything else: not a regular file, an unknown suffix, an empty, truncated, unsafe,
        malformed or too large file, or data that fails :func:`check_dataset`.
    """
    loaded = _load_file(path, max_bytes, output)
    return loaded.X, loaded.y


def load_dataset(source=DEFAULT_DATASET, *, output=None, max_bytes=None):
    """Load a data set by built-in name or file path, with the head it is for.

    Parameters
    ----------
    source : str or path-like
        A name from :data:`DATASETS` or a path accepted by :func:`load_file`.
    output : {"sigmoid", "softmax", "linear"}, optional
        The head the labels are for. Default: a built-in's declared head (``DATASETS[name].output``),
        or, for a file, the head :func:`infer_output` infers from its labels.
    max_bytes : int, optional
        For a file: the most memory its data may take (see :func:`load_file`; default 4 GiB or
        ``$TWINNET_MAX_BYTES``).

    Returns
    -------
    Loaded
        ``(X, y, output, classes, note)``: the validated arrays (see :func:`check_dataset`), the
        head, a classifier's original label values in sorted order (None for ``"linear"``), and the
        inference note (None unless the head was inferred).

    Examples
    --------
    >>> d = load_dataset("iris")
    >>> d.X.shape, d.output, d.classes.tolist(), d.note
    ((150, 4), 'softmax', [0, 1, 2], None)
    """
    if output is not None:
        validation.choice("output", output, validation.OUTPUTS)
    name = str(source)
    if name in DATASETS:
        X, y = DATASETS[name].make()
        return _validated(X, y, name, output or DATASETS[name].output)
    path = Path(name)
    if path.suffix or path.exists() or "/" in name or "\\" in name:
        return _load_file(path, max_bytes, output)
    raise ValueError(
        f"Unknown data set {name!r}. Expected a file path or one of: "
        + ", ".join(repr(n) for n in DATASETS) + "."
    )


def load(source=DEFAULT_DATASET, *, output=None, max_bytes=None):
    """Load a data set by built-in name or file path; returns validated ``(X, y)``.

    :func:`load_dataset` with only the arrays: a built-in's labels are for its declared head, a
    file's for the head inferred from them unless ``output`` is given.

    Parameters
    ----------
    source : str or path-like
        A name from :data:`DATASETS` (``synthetic``, the default, ``breast_cancer``, ``digits``,
        ``moons``, ``circles``, ``digits10``, ``iris``, ``wine``, ``synthetic_multiclass``,
        ``diabetes``, ``synthetic_regression``) or a path accepted by :func:`load_file`.
    output : {"sigmoid", "softmax", "linear"}, optional
        The head the labels are for (see :func:`load_dataset`).
    max_bytes : int, optional
        For a file: the most memory its data may take (see :func:`load_file`; default 4 GiB or
        ``$TWINNET_MAX_BYTES``).
    """
    loaded = load_dataset(source, output=output, max_bytes=max_bytes)
    return loaded.X, loaded.y


def save_pickle(path, X, y, *, output=None, overwrite=True):
    """Write ``(X, y)`` in the notebook's ``data.pickle`` format: ``{"features", "labels"}``.

    The labels are written as :func:`check_dataset` returns them for ``output``: 0 and 1 for
    ``"sigmoid"`` (the notebook's format), 0..K-1 for ``"softmax"``, real targets of shape (m,) or
    (m, k) for ``"linear"``; by default the head is inferred from ``y`` (:func:`infer_output`).
    With ``overwrite=False`` an existing ``path`` raises ``FileExistsError`` and is left as it was.

    Returns
    -------
    Loaded
        What was written, with the head, the original label values and the inference note.
    """
    loaded = _validated(X, y, "data", output)
    with open(path, "wb" if overwrite else "xb") as f:
        pickle.dump({"features": loaded.X, "labels": loaded.y}, f, protocol=pickle.HIGHEST_PROTOCOL)
    return loaded


def describe(X, y, output=None):
    """A small summary of a data set: its shape and dtype, and its classes or its target's range.

    Parameters
    ----------
    X : array-like of shape (m, n_features)
    y : array-like of shape (m,) or (m, k)
    output : {"sigmoid", "softmax", "linear"}, optional
        The head the labels are for; inferred from them by default (:func:`infer_output`).

    Returns
    -------
    dict
        ``examples``, ``features``, ``dtype`` and ``output``. A classifier adds ``classes`` (K),
        ``labels`` (the label values, sorted) and, for each class ``i`` (the ``i``-th label value,
        as :func:`check_dataset` numbers them), ``class_i`` (its count) and ``fraction_i``. A
        regression target adds ``targets`` (k) and ``target_min``, ``target_max``,
        ``target_mean``, ``target_std``: floats for one target, lists of k floats for k > 1.
    """
    loaded = _validated(X, y, "data", output)
    X, y = loaded.X, loaded.y
    info = {"examples": int(X.shape[0]), "features": int(X.shape[1]), "dtype": str(X.dtype),
            "output": loaded.output}
    if loaded.classes is None:
        target = y.reshape(y.shape[0], -1).astype(np.float64)
        info["targets"] = target.shape[1]
        for key, stat_ in (("min", np.min), ("max", np.max), ("mean", np.mean), ("std", np.std)):
            values = [float(v) for v in stat_(target, axis=0)]
            info[f"target_{key}"] = values[0] if y.ndim == 1 else values
        return info
    counts = np.bincount(y, minlength=loaded.classes.size)
    info["classes"] = int(loaded.classes.size)
    info["labels"] = loaded.classes.tolist()
    for i, count in enumerate(counts):
        info[f"class_{i}"] = int(count)
        info[f"fraction_{i}"] = float(count / X.shape[0])
    return info


# --------------------------------------------------------------------------- splits
def unit_scale(values):
    """Per column, the power of two that brings the largest magnitude of ``values`` (m, n) into [0.5, 1).

    Multiplying by it is exact (short of subnormals), so statistics of ``values * unit_scale(values)``
    are those of ``values`` scaled, bit for bit, without the overflow of squaring 1e300 or the
    underflow of squaring 1e-300. An all-zero column gets 1.
    """
    largest = np.max(np.abs(values), axis=0, initial=0)
    return np.ldexp(np.ones_like(largest), -np.frexp(largest)[1])


def standardized(train, *others):
    """``train`` and ``others`` with each column scaled to mean 0 and variance 1 by ``train``'s statistics.

    scikit-learn's ``StandardScaler`` fitted on ``train`` (a constant column is only centred), applied
    to the columns scaled by :func:`unit_scale` first: for any finite values, its very numbers
    wherever it does not overflow, and no overflow where it would.

    >>> standardized(np.array([[1e300], [3e300]]), np.array([[2e300]]))
    (array([[-1.],
           [ 1.]]), array([[0.]]))
    """
    from sklearn.preprocessing import StandardScaler

    power = unit_scale(train)
    scaler = StandardScaler().fit(train * power)
    return tuple(scaler.transform(values * power) for values in (train, *others))


@dataclass(frozen=True)
class Split:
    """A train/test split; with standardization, the scaler was fitted on the training part only."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def split(X, y, *, test_size=0.2, seed=0, stratify=True, standardize=False, dtype=None):
    """Split into train and test parts, stratified by class for a classifier, optionally standardized.

    Parameters
    ----------
    X : ndarray of shape (m, n_features)
    y : ndarray of shape (m,) or (m, k)
        Class labels (integers or booleans, shape (m,)) or regression targets (floats, or any
        array of shape (m, k)), as :func:`check_dataset` returns them.
    test_size : float in (0, 1)
    seed : int
        Seed of the shuffle.
    stratify : bool
        Keep the class balance in both parts; regression targets are never stratified.
    standardize : bool
        Scale each feature to mean 0 and variance 1, using the training part's statistics. The
        labels and targets are never changed.
    dtype : {"float32", "float64"}, optional
        Cast the features.

    Returns
    -------
    Split
    """
    from sklearn.model_selection import train_test_split

    test_size = validation.fraction("test_size", test_size)
    X, y = validation.features(X), np.asarray(y)
    validation.same_examples(X.shape, y.shape)
    if y.ndim > 2:
        raise validation.InvalidArgument("y", "of shape (m,) or (m, k)", y.shape,
                                         f"y must be of shape (m,) or (m, k); got y.shape={y.shape}.")
    m = X.shape[0]
    n_test = int(np.ceil(test_size * m))
    classes = y.ndim == 1 and y.dtype.kind in "biu"  # floats and (m, k) targets are regression targets
    stratify = stratify and classes
    counts = np.unique(y, return_counts=True)[1] if stratify else np.ones(1)
    min_class, n_classes = int(counts.min()), counts.size
    if n_test < 2 or m - n_test < 2 or (stratify and (min_class < 2 or min(n_test, m - n_test) < n_classes)):
        raise ValueError(
            f"too few examples to split: {m} examples"
            + (f" in {n_classes} classes (smallest class {min_class})" if stratify else "")
            + f" with test_size={test_size}; need at least 2 per part"
            + (", 2 per class and one of each class in each part" if stratify else "") + "."
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
    if standardize:
        X_train, X_test = standardized(X_train, X_test)
    if dtype is not None:
        X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
    return Split(X_train, X_test, y_train, y_test)
