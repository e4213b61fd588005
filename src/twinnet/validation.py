"""The project's vocabularies and the argument checks every layer uses: one wording, one rule.

Each check takes the argument's name as the user wrote it and the value received, and either
returns the value in its canonical form or raises :class:`InvalidArgument`, a ``ValueError`` with
the Keras-style message: the argument, what was expected, what was received. The command line
(``twinnet.cli._args``) runs the same checks and words their ``expected`` part as argparse does.

>>> choice("optimizer", "adam", OPTIMIZERS)
'adam'
>>> positive_number("learning_rate", -0.1)
Traceback (most recent call last):
...
twinnet.validation.InvalidArgument: learning_rate must be a finite number > 0; got learning_rate=-0.1.

The parameters dict, the project's common currency, is any mapping ``{"W1", "b1", ..., "WL",
"bL"}`` with ``W_l`` of shape ``(n_l, n_{l-1})`` and the bias a column ``b_l`` of shape ``(n_l, 1)``,
as the notebook's ``initialize_parameters`` makes it; a bias of shape ``(n_l,)`` is refused, because
the notebook's ``W @ A + b`` would broadcast it along the examples (see :func:`parameters_widths`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

#: The dtypes every engine computes in.
DTYPES = ("float32", "float64")
#: Hidden activations, named as Keras names them (``leaky_relu`` has Keras 3's slope 0.2).
ACTIVATIONS = ("leaky_relu", "relu", "sigmoid", "tanh")
#: Output heads, each with its loss: one sigmoid unit with log-loss (binary), a softmax over K >= 2
#: units with categorical cross-entropy (K classes), linear units with the mean squared error
#: (regression, any number of targets).
OUTPUTS = ("linear", "sigmoid", "softmax")
#: Weight initializers of ``Network`` (``normal`` is the notebook's ``randn * 0.1``).
INITIALIZERS = ("glorot", "he", "normal")
#: Optimizers, each reproduced exactly from Keras's ``SGD``, ``SGD(momentum=0.9)``, ``Adam`` and ``RMSprop``.
OPTIMIZERS = ("adam", "momentum", "rmsprop", "sgd")
#: Seeds reach scikit-learn's ``random_state`` and Keras's global seed, which take 32-bit integers.
MAX_SEED = 2**32 - 1
#: The largest float32: an ``l2`` is weighed in float32 (Keras's ``L2`` makes it a float32 tensor), where beyond
#: this it is inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: The largest step count: Keras counts steps (``optimizer.iterations``, a schedule's step arguments) in int64.
MAX_STEPS = 2**63 - 1
#: The smallest normal float32: below it TensorFlow flushes to 0.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
#: The parts of the unit interval a fraction is checked against, each with its test.
INTERVALS = {"(0, 1)": lambda v: 0 < v < 1, "[0, 1)": lambda v: 0 <= v < 1, "[0, 1]": lambda v: 0 <= v <= 1}


class InvalidArgument(ValueError):
    """A value its argument does not accept.

    ``str(error)`` is the sentence for a Python caller; ``expected`` is the rule alone (``"an
    integer >= 1"``), which the command line words as ``expected <rule>, got <text>``.
    """

    def __init__(self, argument, expected, value, message=None):
        self.argument, self.expected, self.value = argument, expected, value
        super().__init__(message or f"{argument} must be {expected}; got {argument}={value!r}.")


def is_int(value) -> bool:
    """True for Python and NumPy integers, not for ``bool``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    """True for Python and NumPy integers and floats, not for ``bool`` (nor complex, strings, arrays)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def flag(argument, value) -> bool:
    """``True`` or ``False`` (NumPy's too), as a Python bool; not 0 and 1."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgument(argument, "True or False", value)
    return bool(value)


def name(argument, value) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(argument, "a non-empty string", value)
    return value


def choice(argument, value, options, *, alternative=None, ordered=False):
    """``value`` if it is one of ``options``; else ``Unknown <argument> ...``.

    ``alternative`` names what else is accepted, e.g. ``"an Optimizer object"``; the caller
    handles it before calling. The options are listed sorted, or in their own order when
    ``ordered`` (engines in the order they run, grid keys in the order of a run's description).
    """
    if not isinstance(value, str) or value not in options:
        expected = "one of: " + ", ".join(repr(name) for name in (options if ordered else sorted(options)))
        if alternative:
            expected += f", or {alternative}"
        raise InvalidArgument(argument, expected, value, f"Unknown {argument} {value!r}. Expected {expected}.")
    return value


def positive_number(argument, value, *, dtype=None) -> float:
    """A finite real number > 0 (a learning rate, a tolerance, a step), as a Python float.

    With ``dtype``, also at most that dtype's largest number (an engine holds it in ``dtype``).
    """
    if not (is_real(value) and math.isfinite(value) and value > 0):
        raise InvalidArgument(argument, "a finite number > 0", value)
    largest = float(np.finfo(dtype).max) if dtype is not None else math.inf
    if value > largest:
        raise InvalidArgument(argument, f"a number > 0 and at most {largest:.3g}", value,
                              f"{argument}={value:g} is beyond the range of {np.dtype(dtype).name} (largest "
                              f"{largest:.3g}); give a smaller {argument}.")
    return float(value)


def at_most(argument, value, largest):
    """``value``, already checked by another check of this module, if it is at most ``largest``.

    >>> at_most("time_limit", positive_number("time_limit", 1e10), 86400)
    Traceback (most recent call last):
    ...
    twinnet.validation.InvalidArgument: time_limit must be at most 86400; got time_limit=10000000000.0.
    """
    if value > largest:
        raise InvalidArgument(argument, f"at most {largest}", value,
                              f"{argument} must be at most {largest}; got {argument}={_digits(value)}.")
    return value


def non_negative_number(argument, value) -> float:
    """A finite real number >= 0 (a penalty's weight), as a Python float."""
    if not (is_real(value) and math.isfinite(value) and value >= 0):
        raise InvalidArgument(argument, "a finite number >= 0", value)
    return float(value)


def finite_number(argument, value, *, allow_none=False):
    """A finite real number of either sign (a tolerance, a baseline), as a Python float; or ``None`` where allowed."""
    if allow_none and value is None:
        return None
    if not (is_real(value) and math.isfinite(value)):
        raise InvalidArgument(argument, "None or a finite number" if allow_none else "a finite number", value)
    return float(value)


def float32_rate(argument, value, *, allow_zero=False) -> float:
    """A rate Keras computes with in float32 (a schedule's learning or decay rate): finite, > 0 (or 0
    where allowed) and a normal float32, between :data:`FLOAT32_TINY` and :data:`FLOAT32_MAX`."""
    if not (is_real(value) and math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
        raise InvalidArgument(argument, f"a finite number {'>=' if allow_zero else '>'} 0", value)
    if value != 0 and not (FLOAT32_TINY <= value <= FLOAT32_MAX):
        raise InvalidArgument(
            argument, "a number between 1.2e-38 and 3.4e38", value,
            f"{argument} must be between 1.2e-38 and 3.4e38, the range of float32 in which Keras computes "
            f"schedules; got {argument}={value!r}.")
    return float(value)


def fraction(argument, value, interval="(0, 1)") -> float:
    """A number in a part of the unit interval, one of :data:`INTERVALS`, as a Python float.

    ``(0, 1)``: a part held out (``test_size``, ``validation_fraction``); ``[0, 1)``: a dropout
    rate, Adam's ``beta_1``; ``[0, 1]``: ``momentum``, a schedule's ``alpha``.
    """
    if not (is_real(value) and INTERVALS[interval](value)):
        raise InvalidArgument(argument, f"a number in {interval}", value)
    return float(value)


def penalty(argument, value) -> float:
    """An L2 penalty's weight: a finite number >= 0 that float32 holds (at most :data:`FLOAT32_MAX`)."""
    value = non_negative_number(argument, value)
    if value > FLOAT32_MAX:
        raise InvalidArgument(argument, f"a number between 0 and {FLOAT32_MAX:.2g} (float32's range, in which the "
                              "penalty is weighed)", value,
                              f"{argument} must be at most {FLOAT32_MAX:.2g}, float32's largest number: Network "
                              f"and Keras weigh the penalty in float32, where {argument}={value!r} is inf.")
    return value


def rate(argument, value) -> float:
    """A probability in ``[0, 1)`` (a dropout rate), as a Python float."""
    return fraction(argument, value, "[0, 1)")


def rates(argument, value, count) -> tuple:
    """One rate in ``[0, 1)`` for ``count`` layers, or a sequence of ``count`` of them: a tuple of floats."""
    if np.ndim(value) == 0:
        return (rate(argument, value),) * count
    values = list(value)
    if len(values) != count:
        raise InvalidArgument(argument, f"a number in [0, 1) or a list of {count} (one per hidden layer)", value,
                              f"{argument} must be a number in [0, 1) or a list of {count} of them, one per hidden "
                              f"layer; got {len(values)}: {argument}={value!r}.")
    return tuple(rate(f"{argument}[{i}]", v) for i, v in enumerate(values))


def positive_int(argument, value, *, allow_none=False):
    """An integer >= 1 (or ``None`` where allowed), as a Python int."""
    if allow_none and value is None:
        return None
    if not is_int(value) or value < 1:
        raise InvalidArgument(argument, "an integer >= 1", value,
                              f"{argument} must be an integer >= 1{' or None' if allow_none else ''}; "
                              f"got {argument}={value!r}.")
    return int(value)


def non_negative_int(argument, value) -> int:
    """An integer >= 0, not a bool (a count that may be zero, a patience), as a Python int."""
    if not is_int(value) or value < 0:
        raise InvalidArgument(argument, "an integer >= 0", value)
    return int(value)


def seed(value, argument="seed", *, allow_none=True):
    """``None`` (where allowed) or an integer in ``0 .. MAX_SEED``."""
    if not ((allow_none and value is None) or (is_int(value) and 0 <= value <= MAX_SEED)):
        expected = f"an integer between 0 and {MAX_SEED}"
        raise InvalidArgument(argument, expected, value,
                              f"{argument} must be {'None or ' if allow_none else ''}{expected}; "
                              f"got {argument}={value!r}.")
    return None if value is None else int(value)


def patience(argument, value):
    """``None`` (no early stopping) or a patience, an integer >= 0 (not a bool: ``True`` is no patience)."""
    if value is not None and not (is_int(value) and value >= 0):
        raise InvalidArgument(argument, "None or a patience, an integer >= 0", value)
    return None if value is None else int(value)


def steps(argument, value, minimum=1) -> int:
    """A step count: an integer from ``minimum`` (0 or 1) to :data:`MAX_STEPS`, as a Python int."""
    value = (positive_int if minimum else non_negative_int)(argument, value)
    if value > MAX_STEPS:
        expected = f"an integer between {minimum} and {MAX_STEPS} (Keras counts steps in int64)"
        raise InvalidArgument(argument, expected, value,
                              f"{argument} must be {expected}; got {argument}={_digits(value)}.")
    return value
    return value


def _digits(value):
    """An integer as a message echoes it: in full up to 20 digits, else its first digits and its length."""
    try:
        text = str(value)
    except ValueError:  # past Python's limit on converting integers to text
        return "an integer of more than 4300 digits"
    return text if len(text) <= 20 else f"{text[:10]}...({len(text)} digits)"


def positive_int_or_inf(argument, value):
    """An integer >= 1 or ``numpy.inf`` (scikit-learn's ``n_iter_no_change``): an int, or ``inf``."""
    if not ((is_int(value) and value >= 1) or (isinstance(value, (float, np.floating)) and value == np.inf)):
        raise InvalidArgument(argument, "an integer >= 1 or numpy.inf", value)
    return value if value == np.inf else int(value)


def hidden_sizes(argument, value) -> list[int]:
    """Hidden layers' widths as scikit-learn's MLPs take them: a positive int or a sequence of them."""
    sizes = [value] if is_int(value) else value
    try:
        sizes = list(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(is_int(s) and s >= 1 for s in sizes):
        raise InvalidArgument(argument, "a positive int or a tuple of positive ints, e.g. (20, 5)", value)
    return [int(s) for s in sizes]


def dtype(value, argument="dtype") -> np.dtype:
    """``"float32"`` / ``"float64"`` (or the NumPy dtypes) as a ``np.dtype``."""
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise InvalidArgument(argument, "'float32' or 'float64'", value)
    return np.dtype(name)


def layer_widths(argument, value, *, output_width=None) -> list[int]:
    """At least two positive integer widths, input first: ``[100, 20, 5, 1]``.

    ``output_width``, when given, is the width the output layer must have (1 for one sigmoid unit).
    """
    dims = list(value) if np.ndim(value) == 1 else []
    if len(dims) < 2 or not all(is_int(d) for d in dims):
        raise InvalidArgument(argument, "a list of at least two integers, e.g. [100, 20, 5, 1]", value)
    dims = [int(d) for d in dims]
    if min(dims) < 1:
        raise InvalidArgument(argument, "positive widths", dims,
                              f"{argument} must contain only positive widths; got {argument}={dims}.")
    if output_width is not None and dims[-1] != output_width:
        raise InvalidArgument(argument, f"an output layer of width {output_width} (one sigmoid unit)", dims,
                              f"the output layer must have width {output_width} (one sigmoid unit); "
                              f"got {argument}={dims}.")
    return dims


def features(X, argument="X", *, dtype=None) -> np.ndarray:
    """Examples as rows: ``X`` as a dense, real, finite ndarray of shape ``(m, n_features)``, both >= 1.

    The one check of every ``X`` (``Network``, the twins, :mod:`twinnet.data`); scikit-learn's
    estimators keep ``validate_data``, whose messages its estimator checks expect. The array keeps its
    dtype; with ``dtype`` its values must be finite once cast to it (1e39 is inf in float32).

    >>> features([[1.0, 2.0]]).shape
    (1, 2)
    >>> features([[1.0, float("nan")]])
    Traceback (most recent call last):
    ...
    twinnet.validation.InvalidArgument: X contains NaN or inf (first at row 0, column 1).
    """
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise InvalidArgument(argument, "a dense array", type(X).__name__,
                              f"{argument} is a sparse matrix; pass a dense array ({argument}.toarray()).")
    try:
        X = np.asarray(X)
    except (ValueError, TypeError) as exc:  # ragged lists, or nested past NumPy's 64 dimensions
        raise InvalidArgument(argument, "an array", type(X).__name__,
                              f"{argument} must be an array ({str(exc)[:120]}).") from None
    if X.dtype.kind not in "biuf":  # complex would be cast to its real part, silently
        raise InvalidArgument(argument, "real numbers", X.dtype,
                              f"{argument} must hold real numbers; got dtype {X.dtype}.")
    if X.ndim != 2:
        hint = f" (a single example? use {argument}.reshape(1, -1))" if X.ndim == 1 else ""
        raise InvalidArgument(argument, "2-D of shape (m, n_features)", X.shape,
                              f"{argument} must be 2-D of shape (m, n_features), rows as examples; got "
                              f"{argument}.shape={X.shape}{hint}.")
    if 0 in X.shape:
        raise InvalidArgument(argument, "at least one example and one feature", X.shape,
                              f"{argument} is empty: {argument}.shape={X.shape}; need at least one example "
                              "and one feature.")
    cast = X
    if dtype is not None:
        with np.errstate(over="ignore"):  # beyond the dtype's range becomes inf: reported below
            cast = X.astype(dtype, copy=False)
    if not np.isfinite(cast).all():
        row, col = np.argwhere(~np.isfinite(cast))[0]
        where = f", in {np.dtype(dtype).name}" if dtype is not None else ""
        raise InvalidArgument(argument, "finite", "NaN or inf",
                              f"{argument} contains NaN or inf (first at row {row}, column {col}{where}).")
    return X


def binary_labels(argument, y, *, hint=""):
    """Check that every value of the array ``y`` is 0 or 1; the error names the others, then ``hint``."""
    ok = (y == 0) | (y == 1)
    if not np.all(ok):
        others = np.unique(y[~ok])
        shown = ", ".join(str(v) for v in others[:5]) + (", ..." if others.size > 5 else "")
        raise InvalidArgument(argument, "the labels 0 and 1", shown, f"{argument} must contain only the labels 0 "
                              f"and 1 (binary); got also: {shown}.{hint}")


def same_examples(x_shape, y_shape, x_argument="X", y_argument="y"):
    """Check that the targets of shape ``y_shape`` have one row per example of the ``X`` of shape ``x_shape``."""
    if len(y_shape) == 0 or y_shape[0] != x_shape[0]:
        raise InvalidArgument(y_argument, f"{x_shape[0]} rows, one per example of {x_argument}", y_shape,
                              f"{x_argument} and {y_argument} have different numbers of examples: "
                              f"{x_argument}.shape={x_shape}, {y_argument}.shape={y_shape}.")


def parameters_widths(parameters, argument="parameters", *, dtype=None, output_width=1, finite=True,
                      batch_norm=()) -> list[int]:
    """The widths ``[n_0, ..., n_L]`` of a parameters dict, the project's common currency.

    ``parameters`` is any mapping (a dict, an ``.npz`` archive) with exactly the keys ``W1, b1,
    ..., WL, bL``: ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, real and
    finite. With ``dtype`` the values must be finite once cast to it (1e39 is inf in float32);
    ``finite=False`` lets NaN and inf through, for the notebook's ``L_layer_model``, which trains on
    and leaves divergence to be seen in its cost. The widths are checked by :func:`layer_widths`
    (named ``layer_dims``), with ``output_width``. ``batch_norm``, the names of a batch-normalized
    layer's weights (``("gamma", "beta", "moving_mean", "moving_variance")``), replaces each hidden
    layer's ``b_l`` by those names numbered ``l``, each of shape ``(n_l, 1)``; a ``moving_variance``
    must be >= 0.
    """
    if not isinstance(parameters, Mapping):
        raise InvalidArgument(argument, "a dict like {'W1': ..., 'b1': ..., ...}", parameters,
                              f"{argument} must be a dict like {{'W1': ..., 'b1': ..., ...}}; "
                              f"got {type(parameters).__name__}.")
    L = sum(1 for key in parameters if isinstance(key, str) and key.startswith("W"))
    hidden_kinds = ("W", *batch_norm) if batch_norm else "Wb"
    expected = [f"{kind}{l}" for l in range(1, L + 1) for kind in (hidden_kinds if l < L else "Wb")]
    if L == 0 or set(parameters) != set(expected):
        missing = [key for key in expected if key not in parameters]
        extra = sorted(str(key) for key in parameters if key not in expected)
        names = f"W1, {', '.join(f'{kind}1' for kind in hidden_kinds[1:])}, ..., WL, bL"
        normalized = any(str(key).startswith(("gamma", "beta", "moving_")) for key in extra)
        hint = ("; these are a batch-normalized network's weights: pass batch_norm=True (or the BatchNorm it "
                "was made with)") if normalized and not batch_norm else ""
        raise InvalidArgument(argument, f"exactly {names}", sorted(map(str, parameters)),
                              f"{argument} must hold exactly {names}"
                              + (f"; missing {missing}" if missing else "")
                              + (f"; unexpected {extra}" if extra else "")
                              + (f"; got keys {sorted(map(str, parameters))}" if L == 0 else "") + hint + ".")
    arrays = {key: _real_array(argument, key, parameters[key]) for key in expected}
    dims = [arrays["W1"].shape[1] if arrays["W1"].ndim == 2 else None]
    for l in range(1, L + 1):
        W = arrays[f"W{l}"]
        if W.ndim != 2 or W.shape[1] != dims[-1]:
            raise InvalidArgument(f"{argument}['W{l}']", f"of shape (n_{l}, {dims[-1]})", W.shape,
                                  f"{argument}['W{l}'] must have shape (n_{l}, {dims[-1]}) to follow the "
                                  f"previous layer; got shape {W.shape}.")
        for kind in (hidden_kinds if l < L else "Wb")[1:]:
            b = arrays[f"{kind}{l}"]
            if b.shape != (W.shape[0], 1):
                hint = f" (a column: {argument}['{kind}{l}'].reshape(-1, 1))" if b.shape == (W.shape[0],) else ""
                raise InvalidArgument(f"{argument}['{kind}{l}']", f"of shape ({W.shape[0]}, 1)", b.shape,
                                      f"{argument}['{kind}{l}'] must have shape ({W.shape[0]}, 1) to match W{l}; "
                                      f"got shape {b.shape}{hint}.")
        dims.append(W.shape[0])
    dims = layer_widths("layer_dims", dims, output_width=output_width)
    for key, array in arrays.items() if finite else ():
        _finite(argument, key, array, dtype)
        if key.startswith("moving_variance") and (array < 0).any():
            raise InvalidArgument(f"{argument}[{key!r}]", ">= 0", "a negative value",
                                  f"{argument}[{key!r}] must be >= 0 (a variance); got {array.min()!r}.")
    return dims


def _real_array(argument, key, value):
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidArgument(f"{argument}[{key!r}]", "real numbers", array.dtype,
                              f"{argument}[{key!r}] must hold real numbers; got dtype {array.dtype}.")
    return array


def _finite(argument, key, array, dtype):
    if dtype is not None:
        with np.errstate(over="ignore"):  # beyond the dtype's range becomes inf: reported below
            array = array.astype(dtype)
    if not np.isfinite(array).all():
        where = f" (in {np.dtype(dtype).name})" if dtype is not None else ""
        raise InvalidArgument(f"{argument}[{key!r}]", "finite", "NaN or inf",
                              f"{argument}[{key!r}] contains NaN or inf{where}.")
