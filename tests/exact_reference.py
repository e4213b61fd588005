"""Correctly rounded sigmoid and log-loss for the tests, from the standard library's ``decimal``.

Independent of NumPy, SciPy and the CPU: 100 significant digits, then one rounding to the dtype
(through float64 for float32, a double rounding that can cost half an ulp in rare ties).
"""

from decimal import Decimal, localcontext

import numpy as np
from numpy.testing import assert_array_max_ulp


def _exact(formula, *columns, dtype):
    with localcontext() as context:
        context.prec = 100
        values = [float(formula(*(Decimal(float(v)) for v in row))) for row in zip(*columns)]
    return np.array(values, dtype=dtype)


def sigmoid(z, dtype):
    """``1 / (1 + exp(-z))`` for each element of the 1-d ``z``, correctly rounded to ``dtype``."""
    return _exact(lambda z: 1 / (1 + (-z).exp()), z, dtype=dtype)


def log_loss(z, y, dtype):
    """``-(y log p + (1 - y) log(1 - p))`` with ``p = sigmoid(z)``, written ``log(1 + exp(z)) - y z``."""
    return _exact(lambda z, y: (1 + z.exp()).ln() - y * z, z, y, dtype=dtype)


def assert_within_ulps(actual, desired, maxulp, err_msg=""):
    """At most ``maxulp`` units in the last place apart, where ``desired`` is a normal number.

    Where it is below the smallest normal number ``tiny`` (a subnormal or 0), an absolute
    difference up to ``tiny`` is allowed too: the float32 ``expit`` and NumPy's ``exp`` may flush
    such results to 0, which is an error of many ulps of a subnormal but never more than ``tiny``.
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.dtype == desired.dtype, err_msg
    tiny = np.finfo(desired.dtype).tiny
    normal = np.abs(desired) >= tiny
    try:
        assert_array_max_ulp(actual[normal], desired[normal], maxulp=maxulp)
    except AssertionError as error:
        raise AssertionError(f"{err_msg}\nactual={actual}\ndesired={desired}") from error
    assert np.all(np.abs(actual[~normal] - desired[~normal]) <= tiny), (err_msg, actual, desired)
