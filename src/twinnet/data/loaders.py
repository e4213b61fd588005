"""Loading a data set by built-in name or file path, validated; saving one in the notebook's format; describing one."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from twinnet import validation
from twinnet.data.datasets import DATASETS, DEFAULT_DATASET
from twinnet.data.readers import READERS
from twinnet.data.validate import validated
from twinnet.safe_io import check_max_bytes, open_regular


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
    return validated(X, y, source, output)


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
        return validated(X, y, name, output or DATASETS[name].output)
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
    loaded = validated(X, y, "data", output)
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
    loaded = validated(X, y, "data", output)
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
