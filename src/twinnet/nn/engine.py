"""The training engine: preallocated buffers, the in-place kernels that fill them, and the batch order.

Rows are examples: a batch ``X`` has shape ``(m, n_0)`` and each layer computes
``Z_l = A_{l-1} K_l + b_l`` of shape ``(m, n_l)``, where the *kernel* ``K_l = W_l^T`` of shape
``(n_{l-1}, n_l)`` is stored as Keras's ``Dense`` stores it. With that layout the two products
that dominate an epoch, ``X K_1`` and the weight gradient ``X^T dZ_1``, are plain C-ordered GEMMs
(the transpose is a BLAS flag, never a copy) with a contiguous output, measured fastest among the
layouts tried; every result lands in a buffer allocated once per ``fit`` (``out=``). The kernels
and biases of all layers are views into one flat vector, and so are their gradients, so an
optimizer step is a few calls over the whole network. ``Network.parameters`` converts to the
notebook's ``W_l`` of shape ``(n_l, n_{l-1})`` at the edge.

The kernels trust their callers: ``Network`` validates at its public methods.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = ["epoch_batches", "Buffers", "allocate", "unflatten", "n_params", "forward", "log_loss",
           "count_correct", "backward"]


# --------------------------------------------------------------------------- batch order
def epoch_batches(rng, m, batch_size, shuffle):
    """The batches of one epoch, as ``Network.fit`` visits them.

    Parameters
    ----------
    rng : numpy.random.Generator
        Created once per ``fit`` as ``np.random.default_rng(seed)`` and passed to every epoch.
    m : int
        Number of training examples.
    batch_size : int or None
        ``None`` or ``>= m``: one full batch, and ``rng`` is not used.
    shuffle : bool
        Permute the examples (``rng.permutation(m)``) before cutting the batches.

    Returns
    -------
    batches : list of ndarray of int
        Index arrays ``order[i:i + batch_size]`` for ``i = 0, batch_size, ...``; the last one may
        be shorter. The Keras twin feeds its batches in this order.

    Example
    -------
    >>> import numpy as np
    >>> [b.tolist() for b in epoch_batches(np.random.default_rng(0), 5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    if batch_size is None or batch_size >= m:
        return [np.arange(m)]
    order = rng.permutation(m) if shuffle else np.arange(m)
    return [order[i:i + batch_size] for i in range(0, m, batch_size)]


# --------------------------------------------------------------------------- parameter layout
def n_params(layer_dims):
    """Number of weights and biases of a network of widths ``layer_dims``."""
    return sum((n_prev + 1) * n for n_prev, n in zip(layer_dims[:-1], layer_dims[1:]))


def unflatten(flat, layer_dims):
    """Views of the kernels ``K_l`` of shape ``(n_{l-1}, n_l)`` and biases ``b_l`` of shape ``(n_l,)``.

    The layout of ``flat`` is ``K1.ravel(), b1, K2.ravel(), b2, ...``; each view is C-contiguous,
    so it can be the ``out=`` of a product.
    """
    kernels, biases, start = [], [], 0
    for n_prev, n in zip(layer_dims[:-1], layer_dims[1:]):
        kernels.append(flat[start:start + n_prev * n].reshape(n_prev, n))
        start += n_prev * n
        biases.append(flat[start:start + n])
        start += n
    return kernels, biases


# --------------------------------------------------------------------------- buffers
class Buffers:
    """Everything a forward and backward pass writes, for a batch of ``rows`` examples.

    Attributes
    ----------
    Z, A : list of ndarray of shape (rows, n_l)
        Pre-activations and activations of the hidden layers ``l = 1 .. L-1``; after the forward
        pass ``Z_l`` is free and serves as scratch for ``g'(Z_l)`` in the backward pass.
    dA : list of ndarray of shape (rows, n_l)
        Gradients with respect to the hidden activations, turned into ``dZ_l`` in place.
    z, p, dz : ndarray of shape (rows, 1)
        Output logits, probabilities and ``dL/dz``.
    t : ndarray of shape (rows, 1)
        ``log1p(exp(-|z|))``, the loss's softplus term, left by :func:`forward`.
    u, s : ndarray of shape (rows, 1)
        Scratch of the output layer and the loss.
    ones : ndarray of shape (rows,)
        Ones, to sum ``dZ`` over the batch as a BLAS product.
    hit : ndarray of bool of shape (rows, 1)
        Scratch of the accuracy.
    X, y, y_bool : ndarray or None
        Gather targets of a shuffled mini-batch.
    """

    __slots__ = ("rows", "Z", "A", "dA", "z", "p", "dz", "t", "u", "s", "ones", "hit", "X", "y", "y_bool")

    def head(self, k):
        """The same buffers restricted to their first ``k`` rows (views, for a shorter last batch)."""
        view = Buffers()
        for name in self.__slots__:
            value = getattr(self, name)
            if name == "rows":
                value = k
            elif isinstance(value, list):
                value = [a[:k] for a in value]
            elif value is not None:
                value = value[:k]
            setattr(view, name, value)
        return view


def allocate(layer_dims, rows, dtype, *, backward=True, gather=False):
    """Allocate :class:`Buffers` for batches of up to ``rows`` examples.

    ``backward=False`` leaves out the gradient buffers (inference only); ``gather=True`` adds the
    targets into which a shuffled mini-batch is gathered.
    """
    hidden = layer_dims[1:-1]
    buf = Buffers()
    buf.rows = rows
    buf.Z = [np.empty((rows, n), dtype) for n in hidden]
    buf.A = [np.empty((rows, n), dtype) for n in hidden]
    buf.dA = [np.empty((rows, n), dtype) for n in hidden] if backward else None
    buf.z, buf.p, buf.t, buf.u, buf.s = (np.empty((rows, 1), dtype) for _ in range(5))
    buf.dz = np.empty((rows, 1), dtype) if backward else None
    buf.ones = np.ones(rows, dtype)
    buf.hit = np.empty((rows, 1), bool)
    if gather:
        buf.X = np.empty((rows, layer_dims[0]), dtype)
        buf.y = np.empty((rows, 1), dtype)
        buf.y_bool = np.empty((rows, 1), bool)
    else:
        buf.X = buf.y = buf.y_bool = None
    return buf


# --------------------------------------------------------------------------- kernels
def forward(X, kernels, biases, activation, buf):
    """Forward pass: fill ``buf.Z``, ``buf.A``, the logits ``buf.z``, probabilities ``buf.p`` and ``buf.t``.

    Parameters
    ----------
    X : ndarray of shape (m, n_0)
        C-contiguous, in the network's dtype; ``m`` equals ``buf.rows``.
    kernels, biases : list of ndarray
        From :func:`unflatten`.
    activation : Activation
        The hidden layers' kernels.
    buf : Buffers

    Returns
    -------
    z : ndarray of shape (m, 1)
        ``buf.z``.
    """
    A_prev = X
    for K, b, Z, A in zip(kernels, biases, buf.Z, buf.A):
        np.dot(A_prev, K, out=Z)
        Z += b
        activation.forward(Z, out=A)
        A_prev = A
    z = buf.z
    np.dot(A_prev, kernels[-1], out=z)
    z += biases[-1]
    _sigmoid_output(z, buf)
    return z


def _sigmoid_output(z, buf):
    # One exp serves the output sigmoid and the loss: with e = exp(-|z|) <= 1 (never overflows),
    # sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0, the numerator being
    # max(e, [z >= 0]) (functional's stable sigmoid, bit for bit), and the loss needs log1p(e).
    e, num, den = buf.t, buf.u, buf.s
    np.abs(z, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.greater_equal(z, 0, out=num)
    np.maximum(num, e, out=num)
    np.add(e, 1, out=den)
    np.divide(num, den, out=buf.p)
    np.log1p(e, out=e)


def log_loss(z, y, buf):
    """Mean log-loss computed from the logits: ``mean(max(z, 0) - z * y + log1p(exp(-|z|)))``.

    This is TensorFlow's ``sigmoid_cross_entropy_with_logits``, term for term and in the same
    order: it equals ``-(y log p + (1 - y) log(1 - p))`` with ``p = sigmoid(z)`` but never takes
    the log of a rounded probability, so it stays exact where ``p`` saturates to 0 or 1, and
    ``exp`` only sees ``-|z| <= 0``.

    Parameters
    ----------
    z : ndarray of shape (m, 1)
    y : ndarray of shape (m, 1)
        Labels 0 and 1 in the dtype of ``z``.
    buf : Buffers
        As :func:`forward` left it: ``buf.t`` holds ``log1p(exp(-|z|))``; ``u`` and ``s`` are
        scratch.

    Returns
    -------
    loss : float
    """
    t, u, s = buf.t, buf.u, buf.s  # t = log1p(exp(-|z|)), from forward
    np.maximum(z, 0, out=u)
    np.multiply(z, y, out=s)
    np.subtract(u, s, out=u)
    np.add(u, t, out=u)
    return float(u.sum()) / z.shape[0]


def count_correct(p, y_bool, buf):
    """Number of examples whose prediction ``p > 0.5`` (the notebook's rule) equals the label."""
    hit = buf.hit
    np.greater(p, 0.5, out=hit)
    np.equal(hit, y_bool, out=hit)
    return int(np.count_nonzero(hit))


def backward(X, y, kernels, activation, buf, dkernels, dbiases):
    """Backward pass after :func:`forward`: gradients of the mean log-loss into ``dkernels``, ``dbiases``.

    Parameters
    ----------
    X : ndarray of shape (m, n_0)
        The batch given to :func:`forward`.
    y : ndarray of shape (m, 1)
        Labels 0 and 1 in the network's dtype.
    kernels : list of ndarray
    activation : Activation
    buf : Buffers
        As :func:`forward` left it; ``Z`` and ``dA`` are overwritten.
    dkernels, dbiases : list of ndarray
        Views from :func:`unflatten` of the flat gradient vector, written in place. The gradient
        with respect to ``X`` is never formed: nothing needs it.
    """
    m = X.shape[0]
    dZ = buf.dz
    # Sigmoid output with log-loss: dL/dz = (p - y) / m. The sigmoid's derivative p (1 - p)
    # cancels the 1 / (p (1 - p)) of the log-loss's derivative -(y / p - (1 - y) / (1 - p)), so the
    # fused form is the same gradient without dividing by p or 1 - p, finite where p saturates to
    # 0 or 1, and it is what TensorFlow differentiates sigmoid_cross_entropy_with_logits to. It is
    # valid only for this pairing of output activation and loss; 1 / m comes from the mean.
    np.subtract(buf.p, y, out=dZ)
    np.divide(dZ, m, out=dZ)
    for l in range(len(kernels) - 1, -1, -1):
        A_prev = buf.A[l - 1] if l else X
        np.dot(A_prev.T, dZ, out=dkernels[l])  # dK_l = A_{l-1}^T dZ_l  (= dW_l^T)
        np.dot(buf.ones, dZ, out=dbiases[l])  # db_l = sum of dZ_l over the batch, as a GEMV
        if l:
            dA = buf.dA[l - 1]
            np.dot(dZ, kernels[l].T, out=dA)  # dA_{l-1} = dZ_l W_l
            # dZ_{l-1} = dA_{l-1} * g'(Z_{l-1}), with Z_{l-1}'s buffer as scratch for g'
            dA *= activation.derivative(buf.A[l - 1], out=buf.Z[l - 1])
            dZ = dA
