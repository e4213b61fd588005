"""Batch normalization of the hidden layers' pre-activations, as Keras's ``BatchNormalization``.

A hidden layer with batch normalization computes ``Z = W A_prev`` (no bias: the mean subtraction
would cancel it, and ``beta`` takes its place), normalizes it per unit and then applies its
activation: Keras's ``Dense(use_bias=False) -> BatchNormalization -> Activation``, Ioffe and
Szegedy's placement and the course's. In training (``fit``, ``gradients``, gradient checking) each
unit is normalized with its batch's mean and biased variance; in inference (``predict``,
``evaluate``, validation) with the moving mean and variance, which each training step updates as
Keras does::

    moving_mean = moving_mean * momentum + mean * (1 - momentum)
    moving_variance = moving_variance * momentum + variance * (1 - momentum)   # biased variance

Both modes compute TensorFlow's expression (``tf.nn.batch_normalization``), in its order::

    inv = 1 / sqrt(variance + epsilon) * gamma
    Y = Z * inv + (beta - mean * inv)

The kernels work in place on the engine's buffers, units as rows and examples as columns.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from twinnet import validation

__all__ = ["MOVING", "BatchNorm", "Norm", "backward", "check_batch_norm", "normalize", "update_moving", "views"]

#: The moving statistics of a layer, as Keras names its non-trainable weights, in Keras's order.
MOVING = ("moving_mean", "moving_variance")


class BatchNorm:
    """The options of batch normalization, Keras's ``BatchNormalization`` arguments and defaults.

    Parameters
    ----------
    momentum : float, default=0.99
        Weight of the moving statistics' past, in ``[0, 1)``: ``moving = moving * momentum +
        batch * (1 - momentum)``. (PyTorch's ``momentum`` is ``1 - momentum``.)
    epsilon : float, default=1e-3
        Added to the variance before its square root; > 0.
    center : bool, default=True
        Learn an offset ``beta`` (else it is 0).
    scale : bool, default=True
        Learn a factor ``gamma`` (else it is 1).

    Examples
    --------
    >>> BatchNorm(momentum=0.9).trainable
    ('gamma', 'beta')
    >>> BatchNorm(center=False).get_config()
    {'momentum': 0.99, 'epsilon': 0.001, 'center': False, 'scale': True}
    """

    #: Keras's defaults.
    DEFAULTS = {"momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True}

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True):
        self.momentum = validation.fraction("momentum", momentum, "[0, 1)")
        self.epsilon = validation.positive_number("epsilon", epsilon)
        self.center = validation.flag("center", center)
        self.scale = validation.flag("scale", scale)

    @property
    def trainable(self):
        """The names of the trainable weights, in Keras's order: ``gamma`` (with scale), ``beta`` (with center)."""
        return ("gamma",) * self.scale + ("beta",) * self.center

    @property
    def names(self):
        """Every weight of a layer, trainable ones first: the parameters dict's keys without their number."""
        return (*self.trainable, *MOVING)

    def get_config(self):
        return {"momentum": self.momentum, "epsilon": self.epsilon, "center": self.center, "scale": self.scale}

    def __eq__(self, other):
        return isinstance(other, BatchNorm) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(tuple(self.get_config().items()))

    def __repr__(self):
        changed = [f"{key}={value!r}" for key, value in self.get_config().items()
                   if value != BatchNorm.DEFAULTS[key]]
        return f"BatchNorm({', '.join(changed)})"


def check_batch_norm(value, argument="batch_norm"):
    """``batch_norm`` as given to ``Network``: ``False``/``None`` -> ``None``, ``True`` -> ``BatchNorm()``,
    a :class:`BatchNorm` or a dict of its arguments (a saved network's) -> a :class:`BatchNorm`."""
    if value is None or value is False:
        return None
    if value is True:
        return BatchNorm()
    if isinstance(value, BatchNorm):
        return value
    if isinstance(value, dict) and set(value) <= set(BatchNorm.DEFAULTS):
        return BatchNorm(**value)
    raise validation.InvalidArgument(
        argument, "True, False or a BatchNorm", value,
        f"{argument} must be True, False or twinnet.nn.BatchNorm(momentum=..., epsilon=..., center=..., scale=...); "
        f"got {argument}={value!r:.80}.")


class Norm(NamedTuple):
    """A network's batch normalization as the kernels see it: its options and, per hidden layer, views."""

    options: BatchNorm
    #: ``gamma_l``, ``beta_l`` of shape ``(n_l,)``: views into the flat parameter (or gradient) vector
    gamma: list
    beta: list
    #: ``(moving_mean_l, moving_variance_l)`` of shape ``(n_l,)`` (``None`` for gradients)
    moving: list | None = None


def size(hidden):
    """Entries of the flat parameter vector that ``gamma`` and ``beta`` of hidden layers ``hidden`` take."""
    return 2 * sum(hidden)


def views(options, flat, hidden, moving=None):
    """:class:`Norm` over ``flat`` (``[gamma_1, beta_1, gamma_2, ...]``) and ``moving``
    (``[moving_mean_1, moving_variance_1, ...]``), hidden layers of widths ``hidden``."""
    gamma, beta, stats, start = [], [], [], 0
    for n in hidden:
        gamma.append(flat[start:start + n])
        beta.append(flat[start + n:start + 2 * n])
        if moving is not None:
            stats.append((moving[start:start + n], moving[start + n:start + 2 * n]))
        start += 2 * n
    return Norm(options, gamma, beta, None if moving is None else stats)


# --------------------------------------------------------------------------- kernels
def normalize(Z, gamma, beta, epsilon, stats, xhat=None, moving=None):
    """Normalize ``Z`` of shape ``(n, m)`` in place (module notes); ``stats`` of shape ``(5, n)`` is written.

    Training (``moving=None``): the rows of ``stats`` get the batch's mean, biased variance,
    ``1 / sqrt(variance + epsilon)``, ``inv`` and the offset ``beta - mean * inv``, and ``xhat``
    (``(n, m)``) the normalized ``(Z - mean) / sqrt(variance + epsilon)``, which :func:`backward`
    needs. Inference: ``moving = (moving_mean, moving_variance)`` take the batch's place and
    ``xhat`` is not written. A batch of one example has variance 0: its ``Y`` is ``beta``, as in Keras.
    """
    mean, variance, inv_std, inv, offset = stats
    if moving is None:
        np.mean(Z, axis=1, out=mean)
        np.subtract(Z, mean[:, None], out=xhat)
        np.mean(np.square(xhat, out=xhat), axis=1, out=variance)  # TensorFlow's mean((Z - mean)**2)
    else:
        mean[...], variance[...] = moving
    np.add(variance, Z.dtype.type(epsilon), out=inv_std)
    np.sqrt(inv_std, out=inv_std)
    np.divide(1, inv_std, out=inv_std)
    np.multiply(inv_std, gamma, out=inv)
    np.multiply(mean, inv, out=offset)
    np.subtract(beta, offset, out=offset)
    if moving is None:  # xhat = (Z - mean) * inv_std, kept for the backward pass
        np.subtract(Z, mean[:, None], out=xhat)
        np.multiply(xhat, inv_std[:, None], out=xhat)
    np.multiply(Z, inv[:, None], out=Z)
    np.add(Z, offset[:, None], out=Z)


def update_moving(moving, stats, momentum):
    """Keras's update of ``moving = (moving_mean, moving_variance)`` from a training batch's ``stats``."""
    dtype = moving[0].dtype.type
    keep, take = dtype(momentum), dtype(1.0 - momentum)
    for value, batch in zip(moving, stats[:2]):
        np.multiply(value, keep, out=value)
        value += batch * take


def backward(dY, xhat, stats, dgamma, dbeta, options):
    """Gradients through a training batch's normalization: ``dY`` (at ``Y``) becomes ``dZ`` in place.

    ``dbeta = sum(dY)`` and ``dgamma = sum(dY * xhat)`` over the examples are written (as rows of
    the flat gradient vector); then, with ``inv = gamma / sqrt(variance + epsilon)``, the gradient
    through the batch's mean and variance::

        dZ = inv * (dY - dbeta / m - xhat * dgamma / m)

    ``xhat`` is overwritten. Without ``scale`` (``center``) the gradient of ``gamma`` (``beta``)
    is 0 once ``dZ`` is formed: the optimizers then leave it at 1 (0).
    """
    m = dY.shape[1]
    np.sum(dY, axis=1, out=dbeta)
    np.einsum("ij,ij->i", dY, xhat, out=dgamma)
    np.multiply(xhat, (dgamma / m)[:, None], out=xhat)
    np.subtract(dY, xhat, out=dY)
    np.subtract(dY, (dbeta / m)[:, None], out=dY)
    np.multiply(dY, stats[3][:, None], out=dY)
    if not options.scale:
        dgamma[...] = 0
    if not options.center:
        dbeta[...] = 0
