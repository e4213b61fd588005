"""The project's vocabularies and the argument checks every layer uses: one wording, one rule.

Each check takes the argument's name as the user wrote it and the value received, and either
returns the value in its canonical form or raises ``ValueError`` with the Keras-style message:
the argument, what was expected, what was received.

>>> choice("optimizer", "adam", OPTIMIZERS)
'adam'
>>> positive_number("learning_rate", -0.1)
Traceback (most recent call last):
...
ValueError: learning_rate must be a finite number > 0; got learning_rate=-0.1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

#: The dtypes every engine computes in.
DTYPES = ("float32", "float64")
#: Hidden activations, named as Keras names them (``leaky_relu`` has Keras 3's slope 0.2).
ACTIVATIONS = ("leaky_relu", "relu", "sigmoid", "tanh")
#: Weight initializers of ``Network`` (``normal`` is the notebook's ``randn * 0.1``).
INITIALIZERS = ("glorot", "he", "normal")
#: Optimizers, each reproduced exactly from Keras's ``SGD``, ``SGD(momentum=0.9)`` and ``Adam``.
OPTIMIZERS = ("adam", "momentum", "sgd")
#: Seeds reach scikit-learn's ``random_state`` and Keras's global seed, which take 32-bit integers.
MAX_SEED = 2**32 - 1


def is_int(value) -> bool:
    """True for Python and NumPy integers, not for ``bool``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def choice(argument, value, options):
    """``value`` if it is one of ``options``; else ``Unknown <argument> ...``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"Unknown {argument} {value!r}. Expected one of: "
                         + ", ".join(repr(name) for name in sorted(options)) + ".")
    return value


def positive_number(argument, value) -> float:
    """A finite real number > 0 (a learning rate, a tolerance), as a Python float."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{argument} must be a finite number > 0; got {argument}={value!r}.")
    return float(value)


def positive_int(argument, value, *, allow_none=False):
    """An integer >= 1 (or ``None`` where allowed), as a Python int."""
    if allow_none and value is None:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(f"{argument} must be an integer >= 1{' or None' if allow_none else ''}; "
                         f"got {argument}={value!r}.")
    return int(value)


def seed(value, argument="seed"):
    """``None`` or an integer in ``0 .. MAX_SEED``."""
    if value is not None and not (is_int(value) and 0 <= value <= MAX_SEED):
        raise ValueError(f"{argument} must be None or an integer between 0 and {MAX_SEED}; "
                         f"got {argument}={value!r}.")
    return None if value is None else int(value)


def dtype(value, argument="dtype") -> np.dtype:
    """``"float32"`` / ``"float64"`` (or the NumPy dtypes) as a ``np.dtype``."""
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"{argument} must be 'float32' or 'float64'; got {argument}={value!r}.")
    return np.dtype(name)


def layer_widths(argument, value, *, output_width=None) -> list[int]:
    """At least two positive integer widths, input first: ``[100, 20, 5, 1]``.

    ``output_width``, when given, is the width the output layer must have (1 for one sigmoid unit).
    """
    dims = list(value) if np.ndim(value) == 1 else []
    if len(dims) < 2 or not all(is_int(d) for d in dims):
        raise ValueError(f"{argument} must be a list of at least two integers, e.g. [100, 20, 5, 1]; "
                         f"got {argument}={value!r}.")
    dims = [int(d) for d in dims]
    if min(dims) < 1:
        raise ValueError(f"{argument} must contain only positive widths; got {argument}={dims}.")
    if output_width is not None and dims[-1] != output_width:
        raise ValueError(f"the output layer must have width {output_width} (one sigmoid unit); "
                         f"got {argument}={dims}.")
    return dims


def parameters_widths(parameters, argument="parameters") -> list[int]:
    """The widths ``[n_0, ..., n_L]`` of a parameters dict, the project's common currency.

    ``parameters`` is a mapping ``{"W1": (n_1, n_0), "b1": (n_1, 1), ..., "WL", "bL"}`` of real,
    finite arrays; the bias is a column ``(n_l, 1)``, as the notebook's ``initialize_parameters``
    makes it.
    """
    if not isinstance(parameters, Mapping) or not parameters:
        raise ValueError(f"{argument} must be a dict {{'W1', 'b1', ...}}; got {type(parameters).__name__}.")
    L = len(parameters) // 2
    expected = [f"{kind}{l}" for l in range(1, L + 1) for kind in "Wb"]
    if len(parameters) % 2 or set(parameters) != set(expected):
        raise ValueError(f"{argument} must have the keys {', '.join(expected) or 'W1, b1'} (as many W as b, "
                         f"numbered from 1); got {sorted(parameters)}.")
    dims = []
    for l in range(1, L + 1):
        W, b = np.asarray(parameters[f"W{l}"]), np.asarray(parameters[f"b{l}"])
        for name, array in ((f"W{l}", W), (f"b{l}", b)):
            if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
                raise ValueError(f"{argument}[{name!r}] must hold real numbers; got dtype {array.dtype}.")
        if W.ndim != 2 or min(W.shape) < 1 or (dims and W.shape[1] != dims[-1]):
            previous = dims[-1] if dims else "n_0"
            raise ValueError(f"{argument}[{f'W{l}'!r}] must have shape (n_{l}, {previous}); got {W.shape}.")
        if b.shape != (W.shape[0], 1):
            raise ValueError(f"{argument}[{f'b{l}'!r}] must have shape ({W.shape[0]}, 1); got {b.shape}.")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"{argument} W{l} or b{l} contains NaN or inf.")
        if not dims:
            dims.append(W.shape[1])
        dims.append(W.shape[0])
    return dims
