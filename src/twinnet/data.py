"""Data sets: built-in ones by name, safe loaders for user files, validation and splits.

This module is the trust boundary: data from users enters twinnet only through :func:`load`, which
never unpickles anything but NumPy arrays and plain containers, and always validates what it read.
Rows are examples: ``X`` has shape ``(m, n_features)`` and ``y`` has shape ``(m,)``.

Example
-------
>>> from twinnet import data
>>> X, y = data.load("moons")
>>> s = data.split(X, y, test_size=0.2, seed=0, standardize=True)
>>> s.X_train.shape, s.X_test.shape
((320, 2), (80, 2))
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["DATASETS", "load", "load_file", "check_dataset", "split", "Split", "save_pickle", "describe"]


# --------------------------------------------------------------------------- built-in data sets
def _synthetic():
    # Shaped like the notebook's data.pickle: 2000 examples x 100 features, two balanced classes.
    # Chosen so that the notebook's run (layers 100-20-5-1, rate 0.1, 250 full-batch steps) behaves
    # as it printed: the cost sits near log 2 for some 40 steps, then falls to about 0.1, and the
    # test accuracy ends near 0.96 (measured over seeds 0-2: final cost 0.08-0.10, accuracy 0.94-0.96).
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


class Dataset(NamedTuple):
    make: Callable[[], tuple]
    description: str


DATASETS = {
    "synthetic": Dataset(_synthetic, "2000 x 100, deterministic, shaped like the notebook's data.pickle (default)"),
    "breast_cancer": Dataset(_breast_cancer, "569 x 30, scikit-learn's Wisconsin breast cancer"),
    "digits": Dataset(_digits, "1797 x 64, scikit-learn's 8x8 digits, label = digit >= 5"),
    "moons": Dataset(_moons, "400 x 2, two interleaving half-moons (for pictures)"),
    "circles": Dataset(_circles, "400 x 2, a circle inside a circle (for pictures)"),
}
DEFAULT_DATASET = "synthetic"


# --------------------------------------------------------------------------- validation
def check_dataset(X, y, *, source="data"):
    """Validate a binary classification data set and return it as ``(float array, 0/1 array)``.

    Parameters
    ----------
    X : array-like of shape (m, n_features)
    y : array-like of shape (m,) or (m, 1)
        Two distinct label values; they are mapped to 0 and 1 in sorted order.
    source : str
        Named in error messages (a file path or a data set name).

    Returns
    -------
    X : ndarray of shape (m, n_features), float64 (float32 is kept)
    y : ndarray of shape (m,), int64 of 0 and 1

    Raises
    ------
    ValueError
        With a message naming the problem and the source.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{source}: features must be numeric; got dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(
            f"{source}: features must be 2-D of shape (m, n_features); got shape {X.shape}."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{source}: labels must be 1-D of shape (m,); got shape {y.shape}.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"{source}: features and labels have different numbers of examples: "
            f"features.shape={X.shape}, labels.shape={y.shape}."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{source}: the data set is empty (features.shape={X.shape}).")
    X = X.astype(np.float32 if X.dtype == np.float32 else np.float64, copy=False)
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(
            f"{source}: features contain NaN or inf (first at row {bad[0]}, column {bad[1]})."
        )
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise ValueError(f"{source}: labels must be numeric; got dtype {y.dtype}.")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError(f"{source}: labels contain NaN or inf.")
    classes = np.unique(y)
    if classes.size != 2:
        shown = ", ".join(str(c) for c in classes[:5]) + (", ..." if classes.size > 5 else "")
        raise ValueError(
            f"{source}: labels must be binary (exactly two distinct values); got {classes.size} "
            f"distinct values: {shown}."
        )
    return X, (y == classes[1]).astype(np.int64)


# --------------------------------------------------------------------------- safe pickle
# Exactly what pickling NumPy arrays needs (NumPy 1.x and 2.x module names); plain containers,
# numbers and strings need no class lookup at all. Anything else is refused before it is built.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _Refused(pickle.UnpicklingError):
    pass


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise _Refused(
                f"refusing to unpickle {module}.{name}: only NumPy arrays and plain containers "
                "are allowed"
            )
        # Pickles written by NumPy 1.x name numpy.core, a deprecated alias of numpy._core in 2.x.
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = module.replace("numpy.core", "numpy._core", 1)
        return super().find_class(module, name)


def _safe_unpickle(raw: bytes, source: str):
    try:
        return _SafeUnpickler(io.BytesIO(raw)).load()
    except _Refused as exc:
        raise ValueError(f"{source}: not a safe data pickle ({exc}).") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError, MemoryError, OverflowError) as exc:
        raise ValueError(f"{source}: empty, truncated or corrupted pickle ({type(exc).__name__}: {exc}).") from None


def _from_mapping(obj, source, keys=("features", "labels")):
    if not isinstance(obj, dict):
        raise ValueError(
            f"{source}: expected a dict with keys 'features' and 'labels'; got {type(obj).__name__}."
        )
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(
            f"{source}: missing key(s) {', '.join(repr(k) for k in missing)}; expected 'features' "
            f"and 'labels', found {sorted(map(str, obj))}."
        )
    return obj["features"], obj["labels"]


# --------------------------------------------------------------------------- file formats
def _read_pickle(path: Path, source: str):
    return _from_mapping(_safe_unpickle(path.read_bytes(), source), source)


def _read_npz(path: Path, source: str):
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{source}: not a valid .npz file (not a zip archive).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ValueError(f"{source}: the .npz holds object arrays, which are refused.") from None
        raise ValueError(f"{source}: not a valid .npz file ({exc}).") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{source}: not a valid .npz file ({type(exc).__name__}: {exc}).") from None
    return _from_mapping(arrays, source)


def _read_csv(path: Path, source: str):
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = [line for line in text.splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{source}: the CSV file is empty.")
    cells = [[c.strip() for c in line.split(",")] for line in rows]

    def numeric(row):
        try:
            [float(c) for c in row]
        except ValueError:
            return False
        return True

    start = 0 if numeric(cells[0]) else 1  # an optional header row
    width = len(cells[0])
    values = np.empty((len(cells) - start, width))
    for i, row in enumerate(cells[start:], start=start + 1):
        if len(row) != width:
            raise ValueError(f"{source}: line {i} has {len(row)} cells, expected {width}.")
        for j, c in enumerate(row):
            try:
                values[i - start - 1, j] = float(c)
            except ValueError:
                raise ValueError(
                    f"{source}: line {i}, column {j + 1} is not a number: {c!r}."
                ) from None
    if values.shape[0] == 0:
        raise ValueError(f"{source}: the CSV file has a header but no data rows.")
    if width < 2:
        raise ValueError(f"{source}: a CSV needs feature columns and a last label column; got {width} column.")
    return values[:, :-1], values[:, -1]


READERS = {
    ".pickle": _read_pickle,
    ".pkl": _read_pickle,
    ".npz": _read_npz,
    ".csv": _read_csv,
}


def load_file(path):
    """Load ``(X, y)`` from a ``.pickle``/``.pkl`` (the notebook's format), ``.npz`` or ``.csv`` file.

    The pickle and ``.npz`` files hold ``{"features": (m, n), "labels": (m,)}``; a CSV holds one
    example per line, the label in the last column, with an optional header line. Pickles are read
    with an allow-list unpickler that builds NumPy arrays and plain containers only.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Anything else: a directory, an unknown suffix, an empty, truncated, unsafe or malformed
        file, or data that fails :func:`check_dataset`.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file.")
    if path.is_dir():
        raise ValueError(f"{source}: is a directory, expected a data file.")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"{source}: unknown file type {path.suffix!r}; expected one of "
            + ", ".join(sorted(READERS)) + "."
        )
    if path.stat().st_size == 0:
        raise ValueError(f"{source}: the file is empty.")
    X, y = reader(path, source)
    return check_dataset(X, y, source=source)


def load(source=DEFAULT_DATASET):
    """Load a data set by built-in name or file path; returns validated ``(X, y)``.

    Parameters
    ----------
    source : str or path-like
        A name from :data:`DATASETS` (``synthetic``, the default, ``breast_cancer``, ``digits``,
        ``moons``, ``circles``) or a path accepted by :func:`load_file`.
    """
    name = str(source)
    if name in DATASETS:
        X, y = DATASETS[name].make()
        return check_dataset(X, y, source=name)
    path = Path(name)
    if path.suffix or path.exists() or "/" in name or "\\" in name:
        return load_file(path)
    raise ValueError(
        f"Unknown data set {name!r}. Expected a file path or one of: "
        + ", ".join(repr(n) for n in DATASETS) + "."
    )


def save_pickle(path, X, y):
    """Write ``(X, y)`` in the notebook's ``data.pickle`` format: ``{"features", "labels"}``."""
    X, y = check_dataset(X, y)
    with open(path, "wb") as f:
        pickle.dump({"features": X, "labels": y}, f, protocol=pickle.HIGHEST_PROTOCOL)


def describe(X, y):
    """A small summary of a data set: shape, dtype and class balance."""
    counts = np.bincount(y, minlength=2)
    return {
        "examples": int(X.shape[0]),
        "features": int(X.shape[1]),
        "dtype": str(X.dtype),
        "class_0": int(counts[0]),
        "class_1": int(counts[1]),
        "fraction_1": float(counts[1] / X.shape[0]),
    }


# --------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class Split:
    """A train/test split; with standardization, the scaler was fitted on the training part only."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def split(X, y, *, test_size=0.2, seed=0, stratify=True, standardize=False, dtype=None):
    """Split into train and test parts, stratified by label, optionally standardized.

    Parameters
    ----------
    X : ndarray of shape (m, n_features)
    y : ndarray of shape (m,)
    test_size : float in (0, 1)
    seed : int
        Seed of the shuffle.
    stratify : bool
        Keep the class balance in both parts.
    standardize : bool
        Scale each feature to mean 0 and variance 1, using the training part's statistics.
    dtype : {"float32", "float64"}, optional
        Cast the features.

    Returns
    -------
    Split
    """
    from sklearn.model_selection import train_test_split

    if not (isinstance(test_size, float) and 0 < test_size < 1):
        raise ValueError(f"test_size must be a float in (0, 1); got test_size={test_size!r}.")
    m = X.shape[0]
    n_test = int(np.ceil(test_size * m))
    min_class = int(np.bincount(y).min()) if stratify else 1
    if n_test < 2 or m - n_test < 2 or (stratify and (min_class < 2 or n_test < 2)):
        raise ValueError(
            f"too few examples to split: {m} examples (smallest class {min_class}) with "
            f"test_size={test_size}; need at least 2 per part and 2 per class."
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
    if standardize:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if dtype is not None:
        X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
    return Split(X_train, X_test, y_train, y_test)
