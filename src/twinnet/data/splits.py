"""Train/test splits, stratified for a classifier, and standardization without overflow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinnet import validation


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
