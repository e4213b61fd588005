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
#: Optimizers, each reproduced exactly from Keras's ``SGD``, ``SGD(momentum=0.9)`` and ``Adam``.
OPTIMIZERS = ("adam", "momentum", "sgd")
#: Seeds reach scikit-learn's ``random_state`` and Keras's global seed, which take 32-bit integers.
MAX_SEED = 2**32 - 1
#: The largest float32: an ``l2`` is weighed in float32 (Keras's ``L2`` makes it a float32 tensor), where beyond
#: this it is inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


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


def positive_number(argument, value) -> float:
    """A finite real number > 0 (a learning rate, a tolerance, a step), as a Python float."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise InvalidArgument(argument, "a finite number > 0", value)
    return float(value)


def non_negative_number(argument, value) -> float:
    """A finite real number >= 0 (a penalty's weight), as a Python float."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value >= 0):
        raise InvalidArgument(argument, "a finite number >= 0", value)
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
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and 0 <= value < 1):
        raise InvalidArgument(argument, "a number in [0, 1)", value)
    return float(value)


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
    """An integer >= 0 (a count that may be zero, a verbosity level), as a Python int."""
    if not (is_int(value) or isinstance(value, bool)) or value < 0:
        raise InvalidArgument(argument, "an integer >= 0", value)
    return int(value)


def seed(value, argument="seed"):
    """``None`` or an integer in ``0 .. MAX_SEED``."""
    if value is not None and not (is_int(value) and 0 <= value <= MAX_SEED):
        expected = f"an integer between 0 and {MAX_SEED}"
        raise InvalidArgument(argument, expected, value,
                              f"{argument} must be None or {expected}; got {argument}={value!r}.")
    return None if value is None else int(value)


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


def parameters_widths(parameters, argument="parameters", *, dtype=None, output_width=1, finite=True) -> list[int]:
    """The widths ``[n_0, ..., n_L]`` of a parameters dict, the project's common currency.

    ``parameters`` is any mapping (a dict, an ``.npz`` archive) with exactly the keys ``W1, b1,
    ..., WL, bL``: ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, real and
    finite. With ``dtype`` the values must be finite once cast to it (1e39 is inf in float32);
    ``finite=False`` lets NaN and inf through, for the notebook's ``L_layer_model``, which trains on
    and leaves divergence to be seen in its cost. The widths are checked by :func:`layer_widths`
    (named ``layer_dims``), with ``output_width``.
    """
    if not isinstance(parameters, Mapping):
        raise InvalidArgument(argument, "a dict like {'W1': ..., 'b1': ..., ...}", parameters,
                              f"{argument} must be a dict like {{'W1': ..., 'b1': ..., ...}}; "
                              f"got {type(parameters).__name__}.")
    L = sum(1 for key in parameters if isinstance(key, str) and key.startswith("W"))
    expected = [f"{kind}{l}" for l in range(1, L + 1) for kind in "Wb"]
    if L == 0 or set(parameters) != set(expected):
        missing = [key for key in expected if key not in parameters]
        extra = sorted(str(key) for key in parameters if key not in expected)
        raise InvalidArgument(argument, "exactly W1, b1, ..., WL, bL", sorted(map(str, parameters)),
                              f"{argument} must hold exactly W1, b1, ..., WL, bL"
                              + (f"; missing {missing}" if missing else "")
                              + (f"; unexpected {extra}" if extra else "")
                              + (f"; got keys {sorted(map(str, parameters))}" if L == 0 else "") + ".")
    arrays = {key: _real_array(argument, key, parameters[key]) for key in expected}
    dims = [arrays["W1"].shape[1] if arrays["W1"].ndim == 2 else None]
    for l in range(1, L + 1):
        W, b = arrays[f"W{l}"], arrays[f"b{l}"]
        if W.ndim != 2 or W.shape[1] != dims[-1]:
            raise InvalidArgument(f"{argument}['W{l}']", f"of shape (n_{l}, {dims[-1]})", W.shape,
                                  f"{argument}['W{l}'] must have shape (n_{l}, {dims[-1]}) to follow the "
                                  f"previous layer; got shape {W.shape}.")
        if b.shape != (W.shape[0], 1):
            hint = f" (a column: {argument}['b{l}'].reshape(-1, 1))" if b.shape == (W.shape[0],) else ""
            raise InvalidArgument(f"{argument}['b{l}']", f"of shape ({W.shape[0]}, 1)", b.shape,
                                  f"{argument}['b{l}'] must have shape ({W.shape[0]}, 1) to match W{l}; "
                                  f"got shape {b.shape}{hint}.")
        dims.append(W.shape[0])
    dims = layer_widths("layer_dims", dims, output_width=output_width)
    for key, array in arrays.items() if finite else ():
        _finite(argument, key, array, dtype)
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
