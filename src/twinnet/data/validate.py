"""A data set checked for one head: the features, the labels, and what :func:`check_dataset` returns."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from twinnet import validation
from twinnet.data.labels import check_labels, infer_output, label_classes
from twinnet.nn.heads import DEFAULT_OUTPUT, head


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


def check_features(X, y, source):
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


def validated(X, y, source, output):
    """What :func:`check_dataset` does, with ``output=None`` inferred; returns a :class:`Loaded`."""
    if output is not None:
        validation.choice("output", output, validation.OUTPUTS)
    X, y = check_features(X, y, source)
    y = check_labels(y, source)
    note = None
    if output is None:
        output, note = infer_output(y, source=source)
    if not head(output).classifier:
        y = y.astype(np.float32 if y.dtype == np.float32 else np.float64, copy=False)
        return Loaded(X, y, output, None, note)
    labels, classes = label_classes(y, source, output)
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
    loaded = validated(X, y, source, output)
    return loaded.X, loaded.y
