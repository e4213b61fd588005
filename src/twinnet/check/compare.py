"""Compare what the learner's function returned with what the reference returned.

Tolerances, for float64: a correct function computes the reference's formulas, perhaps in another
order (``np.mean`` or ``np.sum / m``, ``1 / (1 + exp(-Z))`` or the stable branch): each value then
differs by a few units of rounding (~1e-16 relative) per operation, and the cases are at most a few
layers and iterations deep, so a correct function stays below ~1e-13 (measured: ~1e-15). ``RTOL =
1e-7`` leaves a margin of a million over that, while the smallest classic mistake changes values by
tens of percent (a missing ``1/m`` with m >= 2 halves them). ``ATOL`` covers values that are zero in
exact arithmetic and come out as rounding noise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from twinnet.check._worker import Other

RTOL = 1e-7
ATOL = 1e-10


class Difference(NamedTuple):
    ok: bool
    error: float  # largest |received - expected| / max |expected| over the arrays compared (nan: none)
    message: str  # where and how they differ, for the first difference; "" when ok


def _fmt(value):
    return np.array2string(np.asarray(value), precision=6, threshold=12, edgeitems=2,
                           max_line_width=10_000).replace("\n", "")


def _type_name(value):
    """The type of ``value`` in a message; a value that was not data arrives as a stand-in that
    names its own type."""
    return value.name if isinstance(value, Other) else type(value).__name__


def _is_array_like(value):
    return isinstance(value, (np.ndarray, np.generic, int, float, bool))


def compare(expected, received, where="the result") -> Difference:
    """``received`` against ``expected`` (the reference's output): structure, shapes, then values.

    ``where`` names the value in messages; a tuple of names names the items of a returned tuple.
    """
    names, where = (where, "the result") if isinstance(where, tuple) else (None, where)
    if isinstance(expected, dict):
        if not isinstance(received, dict):
            return Difference(False, np.nan, f"{where}: expected a dict, got {_type_name(received)}")
        missing = sorted(set(expected) - set(received), key=str)
        extra = sorted(set(received) - set(expected), key=str)
        if missing or extra:
            parts = ([f"missing keys {', '.join(map(str, missing))}"] if missing else []) + \
                    ([f"unexpected keys {', '.join(map(str, extra))}"] if extra else [])
            return Difference(False, np.nan, f"{where}: {'; '.join(parts)}")
        return _all([compare(expected[k], received[k], f"{where}[{k!r}]") for k in expected])
    if isinstance(expected, (tuple, list)):
        if not isinstance(received, (tuple, list)) or len(received) != len(expected):
            got = f"a {type(received).__name__} of {len(received)}" if isinstance(received, (tuple, list)) \
                else _type_name(received)
            return Difference(False, np.nan, f"{where}: expected a {type(expected).__name__} of "
                              f"{len(expected)}, got {got}")
        return _all([compare(e, r, names[k] if names else f"{where}[{k}]")
                     for k, (e, r) in enumerate(zip(expected, received))])
    if not _is_array_like(received) or np.asarray(received).dtype.kind not in "biuf":
        return Difference(False, np.nan, f"{where}: expected a number or an array of numbers, got "
                          f"{_type_name(received)}")
    e, r = np.asarray(expected, dtype=float), np.asarray(received, dtype=float)
    if e.shape != r.shape:
        return Difference(False, np.nan, f"{where}: expected shape {e.shape}, got shape {r.shape}")
    with np.errstate(all="ignore"):
        scale = np.max(np.abs(e), initial=0.0)
        gap = np.abs(r - e)
        gap = np.where(np.isnan(r) & np.isnan(e), 0.0, gap)
        error = float(np.max(gap, initial=0.0) / scale) if scale > 0 else float(np.max(gap, initial=0.0))
        close = np.isclose(r, e, rtol=RTOL, atol=ATOL, equal_nan=True)
    if close.all():
        return Difference(True, error, "")
    index = tuple(int(i) for i in np.argwhere(~close)[0])
    at = f"{where}[{', '.join(map(str, index))}]" if index else where
    if r.size <= 12:
        return Difference(False, error, f"{at}: expected {_fmt(e)}, got {_fmt(r)}")
    return Difference(False, error, f"{at}: expected {_fmt(e[index])}, got {_fmt(r[index])}")


def _all(differences):
    errors = [d.error for d in differences if not np.isnan(d.error)]
    error = max(errors) if errors else np.nan
    failed = next((d for d in differences if not d.ok), None)
    return Difference(failed is None, error, failed.message if failed else "")


def mutated(before, after) -> bool:
    """Whether an argument changed in place (compared with its copy taken before the call)."""
    if isinstance(before, dict):
        return not isinstance(after, dict) or set(before) != set(after) or \
            any(mutated(before[k], after[k]) for k in before)
    if isinstance(before, (tuple, list)):
        return not isinstance(after, (tuple, list)) or len(before) != len(after) or \
            any(mutated(b, a) for b, a in zip(before, after))
    if isinstance(before, np.ndarray):
        return not isinstance(after, np.ndarray) or before.shape != after.shape or \
            not np.array_equal(before, after, equal_nan=True)
    return type(before) is not type(after) or before != after
