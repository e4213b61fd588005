"""Hidden-layer activations as a table of in-place kernels.

Each entry pairs a forward kernel with its derivative, so the two cannot drift apart. Both write
into a caller's buffer (``out=``) and allocate nothing. Every derivative here is expressed through
the activation's *output* ``A = g(Z)``, as scikit-learn's ``DERIVATIVES`` are, so once the forward
pass is done the engine may reuse the ``Z`` buffer as scratch for the derivative.

Examples
--------
>>> import numpy as np
>>> from twinnet.nn import ACTIVATIONS
>>> Z = np.array([[-1.0, 0.0, 2.0]])
>>> A = ACTIVATIONS["leaky_relu"].forward(Z, out=np.empty_like(Z))
>>> A
array([[-0.2,  0. ,  2. ]])
>>> ACTIVATIONS["leaky_relu"].derivative(A, out=np.empty_like(A))
array([[0.2, 0.2, 1. ]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.special import expit

__all__ = ["ACTIVATIONS", "LEAKY_RELU_SLOPE", "Activation"]

#: Slope of ``leaky_relu`` for negative inputs: Keras 3's ``keras.activations.leaky_relu`` default.
LEAKY_RELU_SLOPE = 0.2


class Activation(NamedTuple):
    """A hidden activation: ``forward(Z, out) -> out`` and ``derivative(A, out) -> out``.

    ``forward`` writes ``g(Z)`` into ``out``, a buffer of Z's shape and dtype other than ``Z``;
    ``derivative`` writes ``g'(Z)`` into ``out``, computed from ``A = g(Z)`` alone (``out`` may be
    any buffer but ``A``).
    """

    forward: Callable[[np.ndarray, np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]


def relu(Z, out):
    return np.maximum(Z, 0, out=out)


def relu_derivative(A, out):
    # A = max(Z, 0) >= 0, so A > 0 exactly where Z > 0: the derivative at exactly 0 is 0, as in
    # the notebook's relu_backward and in TensorFlow. The comparison's bool-to-float cast goes
    # through a small buffer (8192 values) and is still faster than np.sign.
    return np.greater(A, 0, out=out)


def tanh(Z, out):
    return np.tanh(Z, out=out)


def tanh_derivative(A, out):
    # d tanh = 1 - tanh^2
    np.multiply(A, A, out=out)
    return np.subtract(1, out, out=out)


def sigmoid(Z, out):
    # scipy's expit never overflows: exp is evaluated only where it is safe.
    return expit(Z, out=out)


def sigmoid_derivative(A, out):
    # d sigmoid = s (1 - s)
    np.subtract(1, A, out=out)
    return np.multiply(out, A, out=out)


def leaky_relu(Z, out):
    # max(Z, slope Z) equals Z for Z >= 0 and slope Z below, for 0 < slope < 1 (TensorFlow's form).
    np.multiply(Z, LEAKY_RELU_SLOPE, out=out)
    return np.maximum(out, Z, out=out)


def leaky_relu_derivative(A, out):
    # A has the sign of Z, so max([A > 0], slope) is 1 where Z > 0 and the slope elsewhere,
    # including Z = 0 (TensorFlow's gradient there).
    np.greater(A, 0, out=out)
    return np.maximum(out, LEAKY_RELU_SLOPE, out=out)


#: Hidden activation name (:data:`twinnet.validation.ACTIVATIONS`) -> kernels. The output layer is
#: its head's (:data:`twinnet.nn.heads.HEADS`).
ACTIVATIONS = {
    "leaky_relu": Activation(leaky_relu, leaky_relu_derivative),
    "relu": Activation(relu, relu_derivative),
    "sigmoid": Activation(sigmoid, sigmoid_derivative),
    "tanh": Activation(tanh, tanh_derivative),
}
