"""Scalar float32 arithmetic as TensorFlow's CPU kernels round it, for Keras-exact schedules.

Values are Python floats holding float32 values; each function is one TensorFlow op: the result
rounded to float32, subnormals flushed to zero (TensorFlow's threads run with flush-to-zero set),
``cos`` and ``pow`` through the C library's ``cosf`` and ``powf`` as TensorFlow's scalar kernels
call them. Why each choice, in ``docs/verification.md``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import struct

from twinnet import validation

__all__ = ["cast32", "cos32", "pow32", "reciprocal32", "round32"]

# Values are Python floats holding float32 values. One op of two float32 values computed in float64
# and rounded once to float32 is the float32 op exactly (53 >= 2 * 24 + 2 bits), so ``round32(a * b)``
# is TensorFlow's float32 product, without NumPy's scalar overhead and overflow warnings.
_FLOAT32 = struct.Struct("f")
_TINY = validation.FLOAT32_TINY  # below it TensorFlow flushes to 0


def cast32(x):
    """``x`` as a float32 tensor made from a Python float holds it: rounded to nearest, beyond range infinite."""
    try:
        return _FLOAT32.unpack(_FLOAT32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def round32(x):
    """``x`` rounded to float32 as a TensorFlow kernel leaves it: a subnormal flushed to a signed zero."""
    x = cast32(x)
    if x != 0 and -_TINY < x < _TINY:
        return math.copysign(0.0, x)
    return x


@functools.cache
def _libm():
    """``(cosf, powf)`` from the C library TensorFlow's kernels call, or ``None`` where it cannot be loaded."""
    for name in ("libm.so.6", ctypes.util.find_library("m")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            cosf, powf = lib.cosf, lib.powf
        except (OSError, AttributeError):
            continue
        cosf.restype, cosf.argtypes = ctypes.c_float, [ctypes.c_float]
        powf.restype, powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
        return cosf, powf
    return None


def cos32(x):
    """``cos(x)`` in float32, with the C library's ``cosf`` (float64 rounded where it cannot be loaded)."""
    lib = _libm()
    return round32(lib[0](x) if lib else math.cos(x))


def pow32(x, y):
    """``x ** y`` in float32, with the C library's ``powf`` (float64 rounded where it cannot be loaded)."""
    lib = _libm()
    if lib:
        return round32(lib[1](x, y))
    try:
        return round32(x ** y)
    except OverflowError:
        return math.inf


def reciprocal32(c):
    """``1 / c`` for a constant divisor: grappler's rewrite of ``x / c`` into ``x * (1 / c)``."""
    return round32(1.0 / round32(c))
