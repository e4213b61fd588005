"""Labels: their checks, and the head they call for (:func:`infer_output`, scikit-learn's rules)."""

from __future__ import annotations

import numpy as np

from twinnet.nn.heads import head

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


def check_labels(y, source):
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
    y = check_labels(y, source)
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


def label_classes(y, source, output):
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
