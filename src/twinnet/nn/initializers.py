"""Weight initializers as a table: ``INITIALIZERS[name](rng, fan_in, fan_out) -> W``.

Each returns a float64 array of shape ``(fan_out, fan_in)`` (the notebook's layout) drawn from the
``numpy.random.Generator`` it is given; biases always start at zero. ``Network`` draws the layers
in order ``W1, W2, ...`` from ``np.random.default_rng(seed)`` and casts them to its dtype, so a
float32 and a float64 network built with the same seed start from the same weights up to rounding.
``np.random.seed`` does not affect them.

Examples
--------
>>> import numpy as np
>>> from twinnet.nn import INITIALIZERS
>>> W = INITIALIZERS["glorot"](np.random.default_rng(0), 4, 3)
>>> W.shape, bool(np.abs(W).max() <= np.sqrt(6 / 7))
((3, 4), True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["INITIALIZERS"]


def normal(rng, fan_in, fan_out):
    """The notebook's ``randn(n_l, n_{l-1}) * 0.1``."""
    return rng.standard_normal((fan_out, fan_in)) * 0.1


def he(rng, fan_in, fan_out):
    """He et al. (2015): ``N(0, 1) * sqrt(2 / fan_in)``, suited to ReLU layers."""
    return rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)


def glorot(rng, fan_in, fan_out):
    """Glorot and Bengio (2010), uniform: ``U(-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))``."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_out, fan_in))


#: Initializer name -> function ``(rng, fan_in, fan_out) -> W`` of shape ``(fan_out, fan_in)``.
INITIALIZERS = {
    "glorot": glorot,
    "he": he,
    "normal": normal,
}
