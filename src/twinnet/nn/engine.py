"""The training engine: preallocated buffers, the in-place kernels that fill them, and the batch order.

Layouts, chosen so that every product is one BLAS call into a contiguous buffer, in the layout
measured fastest for it, and no elementwise operation needs NumPy's broadcasting machinery (which
allocates an iteration buffer on every call):

- Each layer's parameters are one matrix ``[K_l; b_l]`` of shape ``(n_{l-1} + 1, n_l)``: the
  kernel ``K_l = W_l^T``, as Keras's ``Dense`` stores it, with the bias as an extra last row. All
  of them are views into one flat vector, and so are their gradients, so an optimizer step is a
  few calls over the whole network. ``Network.parameters`` converts to the notebook's ``W_l`` at
  the edge.
- The input stays in rows, as given, with a column of ones appended: ``X1`` of shape
  ``(m, n_0 + 1)``, copied once per ``fit``; a shuffled mini-batch is gathered from it row by row.
- Hidden activations are columns, the notebook's layout, with a row of ones appended:
  ``A_l`` of shape ``(n_l + 1, m)``; the activation writes the first ``n_l`` rows, a contiguous
  block.

So ``Z_l = [K_l; b_l]^T [A_{l-1}; 1]`` is a single GEMM that adds the bias too (for the first
layer ``X1^T`` is a transpose flag, not a copy), and ``[dK_l; db_l] = [A_{l-1}; 1] dZ_l^T`` gives
both gradients in one GEMM, written straight into the flat gradient vector in the kernel layout
(``[dW_1 | db_1] = dZ_1 X1`` would write the transpose, and was not faster).

Memory: besides its activations, a training pass keeps one scratch of the largest hidden layer's
size. The forward pass writes each ``Z_l`` there before the activation reads it; the backward pass
writes each ``dA_{l-1}`` there, then ``dZ_{l-1} = dA_{l-1} * g'(A_{l-1})`` over ``A_{l-1}``, which
nothing needs any more, a block of rows at a time through a small buffer that stays in cache
(three passes over memory instead of five).

The kernels trust their callers: ``Network`` validates at its public methods, and runs the kernels
with floating-point underflow ignored. A saturated output (``|z|`` beyond ~87 in float32, ~708 in
float64) makes ``exp(-|z|)``, the probability or the gradient round to a subnormal number or to 0,
the right result next to the terms of order 1 it meets; overflow, invalid operations and division by
zero keep the caller's ``np.errstate``.
"""

from __future__ import annotations

import itertools

import numpy as np

from twinnet.nn import batchnorm

__all__ = [
    "BatchOrder",
    "Buffers",
    "allocate",
    "augment",
    "backward",
    "draw_masks",
    "epoch_batches",
    "forward",
    "n_params",
    "set_masks",
    "unflatten",
]


# --------------------------------------------------------------------------- batch order
class BatchOrder:
    """The batches of every epoch of one ``fit``, drawn into one preallocated index array.

    Parameters
    ----------
    rng : numpy.random.Generator
        Created once per ``fit`` as ``np.random.default_rng(seed)``; each shuffled epoch draws
        ``rng.permutation(m)`` from it (written in place into :attr:`order`).
    m : int
        Number of training examples.
    batch_size : int or None
        ``None`` or ``>= m``: one full batch, never shuffled, and ``rng`` is not used.
    shuffle : bool

    Attributes
    ----------
    rows : int
        Rows of a full batch (``m`` for full-batch training); the last batch may be shorter.
    shuffle : bool
        Whether the epochs are shuffled (never for one full batch).
    order : ndarray of int of shape (m,)
        This epoch's order of the examples; batch ``k`` is ``order[slices[k]]``.
    slices : list of slice
        ``slice(i, i + rows)`` for ``i = 0, rows, ...``, the same every epoch.
    """

    def __init__(self, rng, m, batch_size, shuffle):
        full = batch_size is None or batch_size >= m
        self.rows = m if full else batch_size
        self.shuffle = bool(shuffle) and not full
        self._rng = rng
        self._identity = np.arange(m)
        self.order = self._identity.copy()
        self.slices = [slice(i, min(i + self.rows, m)) for i in range(0, m, self.rows)]

    def draw(self):
        """Start an epoch: reshuffle :attr:`order` if shuffling; return :attr:`slices`."""
        if self.shuffle:
            np.copyto(self.order, self._identity)
            self._rng.shuffle(self.order)  # what rng.permutation(m) does, without a new array
        return self.slices


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
        be shorter. The Keras twin feeds its batches in this order; ``Network.fit`` draws them
        with the same :class:`BatchOrder`.

    Examples
    --------
    >>> import numpy as np
    >>> [b.tolist() for b in epoch_batches(np.random.default_rng(0), 5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    batches = BatchOrder(rng, m, batch_size, shuffle)
    return [batches.order[s] for s in batches.draw()]


# --------------------------------------------------------------------------- parameter layout
def n_params(layer_dims):
    """Number of weights and biases of a network of widths ``layer_dims``."""
    return sum((n_prev + 1) * n for n_prev, n in itertools.pairwise(layer_dims))


def unflatten(flat, layer_dims):
    """Views ``[K_l; b_l]`` of shape ``(n_{l-1} + 1, n_l)`` into ``flat``, one per layer.

    Each view is C-contiguous, so it can be the ``out=`` of a product; ``view[:-1]`` is the kernel
    ``K_l = W_l^T`` (contiguous too) and ``view[-1]`` is ``b_l``.
    """
    layers, start = [], 0
    for n_prev, n in itertools.pairwise(layer_dims):
        layers.append(flat[start:start + (n_prev + 1) * n].reshape(n_prev + 1, n))
        start += (n_prev + 1) * n
    return layers


def augment(X, dtype):
    """``X`` of shape ``(m, n)`` as a new C-ordered ``(m, n + 1)`` array of ``dtype``, last column 1."""
    X1 = np.empty((X.shape[0], X.shape[1] + 1), dtype)
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: callers check
        X1[:, :-1] = X
    X1[:, -1] = 1
    return X1


# --------------------------------------------------------------------------- buffers
class Buffers:
    """Everything a forward and backward pass writes, for a batch of ``rows`` examples.

    Attributes
    ----------
    A : list of ndarray of shape (n_l + 1, rows)
        Hidden activations, ``l = 1 .. L-1``, as columns; the last row holds ones. The backward
        pass overwrites ``A_l[:-1]`` with ``dZ_l``.
    A_body : list of ndarray of shape (n_l, rows)
        ``A_l[:-1]``, the activations proper.
    Z : list of ndarray of shape (n_l, rows)
        Pre-activations. For training (``backward=True``) they are views of one scratch, which the
        backward pass reuses for ``dA_l`` (the same views), so only the last layer's ``Z`` is left
        after :func:`forward`; for inference every layer keeps its own.
    dA : list of ndarray of shape (n_l, rows) or None
        Gradients with respect to the hidden activations: the views ``Z``.
    g, h : ndarray of shape (k, rows) or None
        Scratch for ``g'`` and ``dA`` on blocks of ``k`` rows of a hidden layer, small enough to
        stay in cache; ``h`` is the start of the ``Z``/``dA`` scratch.
    z, p, dz : ndarray of shape (K, rows)
        Output logits, outputs (probabilities, or values for a linear head) and ``dL/dz``; ``K``
        is the output layer's width.
    t, u : ndarray of shape (K, rows)
        Scratch of the output head and its loss (see :mod:`twinnet.nn.heads`); the sigmoid's
        ``output`` leaves ``log1p(exp(-|z|))`` in ``t``, the softmax's the shifted logits.
    s, r : ndarray of shape (1, rows)
        Per-example scratch of the head.
    at, columns, label : ndarray of int64
        ``(1, rows)``, ``(1, rows)`` (``0 .. rows-1``) and ``(rows,)``: where a softmax head finds
        each example's label, and its predicted labels.
    hit : ndarray of bool of shape (1, rows)
        Scratch of the accuracy.
    X, y, y_aux : ndarray or None
        Gather targets of a shuffled mini-batch: ``(rows, n_0 + 1)`` and the targets in the head's
        layout (see :func:`twinnet.nn.heads.check_targets`).
    D, M : list of ndarray or None, or None
        With dropout (training only): per hidden layer, the dropped activations ``D_l`` of shape
        ``(n_l + 1, rows)`` (last row ones), the next layer's input, and the multipliers ``M_l`` of
        shape ``(n_l, rows)``: ``1 / (1 - rate)`` where a unit is kept, 0 where it is dropped; both
        ``None`` for a layer without dropout. ``A_l`` keeps the activations before dropout, which
        the derivative needs.
    uniform : ndarray of float64 or None
        Scratch for the uniform draws of the masks.
    stats, xhat : list of ndarray or None
        With batch normalization, per hidden layer: its statistics ``(5, n_l)`` and the normalized
        pre-activations ``(n_l, rows)`` of a training pass (see :func:`twinnet.nn.batchnorm.normalize`).
    """

    __slots__ = (
        "A",
        "A_body",
        "D",
        "M",
        "X",
        "Z",
        "at",
        "columns",
        "dA",
        "dz",
        "g",
        "h",
        "hit",
        "label",
        "p",
        "r",
        "rows",
        "s",
        "stats",
        "t",
        "u",
        "uniform",
        "xhat",
        "y",
        "y_aux",
        "z",
    )


#: Elements of the ``g'`` scratch (512 kB in float32, 1 MB in float64): a block of rows of a hidden
#: layer is processed through it while it stays in cache (the timing that chose it: docs/benchmarks.md).
BLOCK = 1 << 17


def allocate(layer_dims, rows, dtype, *, backward=True, gather=None, dropout=None, batch_norm=False):
    """Allocate :class:`Buffers` for batches of exactly ``rows`` examples.

    ``backward=False`` leaves out the gradient buffers (inference only). ``gather=(y, y_aux)``,
    the training targets in the head's layout, adds buffers of their heights and dtypes into which
    a shuffled mini-batch is gathered. ``dropout``, one rate per hidden layer, adds the dropout
    buffers of the layers whose rate is not 0. ``batch_norm`` adds the statistics' buffers.
    """
    hidden, width = layer_dims[1:-1], layer_dims[-1]
    buf = Buffers()
    buf.rows = rows
    buf.A = [np.empty((n + 1, rows), dtype) for n in hidden]
    for A in buf.A:
        A[-1] = 1
    buf.A_body = [A[:-1] for A in buf.A]
    if backward:
        scratch = np.empty(max(hidden, default=0) * rows, dtype)
        buf.Z = buf.dA = [scratch[:n * rows].reshape(n, rows) for n in hidden]
        k = min(max(hidden, default=0), max(1, BLOCK // rows))
        buf.g = np.empty((k, rows), dtype)
        # one output unit's dA (an outer product) is never stored: its blocks take the scratch's place
        buf.h = scratch[:min(k, hidden[-1]) * rows].reshape(-1, rows) if hidden else None
        buf.dz = np.empty((width, rows), dtype)
    else:
        buf.Z = [np.empty((n, rows), dtype) for n in hidden]
        buf.dA = buf.g = buf.h = buf.dz = None
    buf.z, buf.p, buf.t, buf.u = (np.empty((width, rows), dtype) for _ in range(4))
    buf.s, buf.r = np.empty((1, rows), dtype), np.empty((1, rows), dtype)
    buf.at, buf.columns, buf.label = np.empty((1, rows), np.int64), np.arange(rows)[None], np.empty(rows, np.int64)
    buf.hit = np.empty((1, rows), bool)
    buf.D = buf.M = buf.uniform = None
    if dropout is not None and any(dropout):
        buf.D = [np.empty((n + 1, rows), dtype) if rate else None for n, rate in zip(hidden, dropout)]
        for D in buf.D:
            if D is not None:
                D[-1] = 1
        buf.M = [np.empty((n, rows), dtype) if rate else None for n, rate in zip(hidden, dropout)]
        buf.uniform = np.empty(max(n for n, rate in zip(hidden, dropout) if rate) * rows)
    buf.stats = [np.empty((5, n), dtype) for n in hidden] if batch_norm else None
    buf.xhat = [np.empty((n, rows), dtype) for n in hidden] if batch_norm else None
    buf.X = buf.y = buf.y_aux = None
    if gather is not None:
        y, y_aux = gather
        buf.X = np.empty((rows, layer_dims[0] + 1), dtype)
        buf.y = np.empty((y.shape[0], rows), y.dtype)
        buf.y_aux = None if y_aux is None else np.empty((y_aux.shape[0], rows), y_aux.dtype)
    return buf


# --------------------------------------------------------------------------- kernels
def forward(X1, layers, activation, head, buf, norm=None, training=False):
    """Forward pass: fill ``buf.Z``, ``buf.A``, the logits ``buf.z`` and the head's outputs ``buf.p``.

    Parameters
    ----------
    X1 : ndarray of shape (m, n_0 + 1)
        Examples as rows, last column ones (see :func:`augment`), in the network's dtype;
        ``m`` equals ``buf.rows``.
    layers : list of ndarray
        ``[K_l; b_l]`` from :func:`unflatten`.
    activation : Activation
        The hidden layers' kernels.
    head : Head
        The output head (:data:`twinnet.nn.heads.HEADS`): its ``output`` fills ``buf.p`` and what
        its ``loss`` needs.
    buf : Buffers
    norm : twinnet.nn.batchnorm.Norm, optional
        Batch normalization of every hidden layer's ``Z`` (its bias is 0), before the activation:
        with the batch's statistics if ``training`` (``buf`` keeps what :func:`backward` needs),
        else with the moving ones.

    Returns
    -------
    z : ndarray of shape (K, m)
        ``buf.z``.
    """
    A_prev = X1.T
    for l, (Kb, Z, A, A_body) in enumerate(zip(layers, buf.Z, buf.A, buf.A_body)):
        np.dot(Kb.T, A_prev, out=Z)  # Z_l = K_l^T A_{l-1} + b_l = W_l A_{l-1} + b_l
        if norm is not None:
            batchnorm.normalize(Z, norm.gamma[l], norm.beta[l], norm.options.epsilon, buf.stats[l], buf.xhat[l],
                                None if training else norm.moving[l])
        activation.forward(Z, out=A_body)
        A_prev = A
        if buf.M is not None and buf.M[l] is not None:  # inverted dropout: D_l = A_l * M_l
            np.multiply(A_body, buf.M[l], out=buf.D[l][:-1])
            A_prev = buf.D[l]
    z = buf.z
    np.dot(layers[-1].T, A_prev, out=z)
    head.output(z, buf)
    return z


def backward(X1, y, layers, kernels, activation, head, buf, dlayers, dnorm=None):
    """Backward pass after :func:`forward`: gradients of the head's mean loss into ``dlayers``.

    Parameters
    ----------
    X1 : ndarray of shape (m, n_0 + 1)
        The batch given to :func:`forward`.
    y : ndarray
        The batch's targets in the head's layout (see :func:`twinnet.nn.heads.check_targets`).
    layers : list of ndarray
        ``[K_l; b_l]``.
    kernels : list of ndarray
        ``K_l``, the views ``layers[l][:-1]``.
    activation : Activation
    head : Head
        Its ``delta`` writes ``dL/dz`` (the fused gradient of output activation and loss).
    buf : Buffers
        As :func:`forward` left it; the hidden activations ``A_l[:-1]`` and the scratch are
        overwritten.
    dlayers : list of ndarray
        ``[dK_l; db_l]``, views from :func:`unflatten` of the flat gradient vector, written in
        place. The gradient with respect to ``X`` is never formed: nothing needs it.
    dnorm : twinnet.nn.batchnorm.Norm, optional
        After a training :func:`forward` with batch normalization: the views of the gradients of
        ``gamma`` and ``beta``, written; the hidden layers' bias gradients are set to 0 (their
        biases stay 0, which the normalization would cancel).
    """
    head.delta(y, buf, X1.shape[0])
    dZ = buf.dz
    L = len(layers)
    for l in range(L - 1, -1, -1):
        M = buf.M[l - 1] if l and buf.M is not None else None
        A_prev = (buf.A[l - 1] if M is None else buf.D[l - 1]) if l else X1.T
        np.dot(A_prev, dZ.T, out=dlayers[l])  # [dK_l; db_l] = [A_{l-1}; 1] dZ_l^T
        if dnorm is not None and l < L - 1:
            dlayers[l][-1] = 0
        if l:
            A = buf.A_body[l - 1]
            if l < L - 1 or dZ.shape[0] > 1:
                dA = buf.dA[l - 1]
                np.dot(kernels[l], dZ, out=dA)  # dA_{l-1} = W_l^T dZ_l = K_l dZ_l
            else:  # one output unit: K_L dz is an outer product, formed block by block and never stored
                dA = None
            _times_derivative(activation, dA, A, M, buf, kernels[l], dZ)
            if dnorm is not None:  # dY at the normalized Z -> dZ
                batchnorm.backward(A, buf.xhat[l - 1], buf.stats[l - 1], dnorm.gamma[l - 1], dnorm.beta[l - 1],
                                   dnorm.options)
            dZ = A


def _times_derivative(activation, dA, A, M, buf, K, dZ):
    # dZ_{l-1} = dA * g'(A), written over A, a block of rows at a time: g'(A) goes to the small
    # buffer g and is read back from cache, so the pass reads A and dA and writes A, once each.
    # dA=None: the block of dA = K dZ (an outer product) is computed into the small buffer h
    # instead, and never goes to memory. With dropout, dA is the gradient at the dropped
    # activations D = A * M: times M, it is the gradient at A.
    g, h = buf.g, buf.h
    k = g.shape[0]
    for i in range(0, A.shape[0], k):
        block = A[i:i + k]
        rows = block.shape[0]
        if dA is None:
            dA_block = np.dot(K[i:i + k], dZ, out=h[:rows])
        else:
            dA_block = dA[i:i + k]
        if M is not None:
            np.multiply(dA_block, M[i:i + k], out=dA_block)
        np.multiply(dA_block, activation.derivative(block, out=g[:rows]), out=block)


def draw_masks(rng, rates, buf):
    """Fill ``buf.M`` for one batch: each unit of hidden layer ``l`` kept with probability ``1 - rates[l]``.

    As Keras's ``Dropout`` (TensorFlow's ``tf.nn.dropout``): a unit is kept where a uniform draw
    in ``[0, 1)`` is ``>= rate``, and a kept unit is scaled by ``1 / (1 - rate)`` (rounded to the
    network's dtype). The draws are ``rng.random`` in float64, layer by layer, each ``(n_l, rows)``
    in C order.
    """
    for rate, M in zip(rates, buf.M):
        if M is not None:
            u = rng.random(out=buf.uniform[:M.size].reshape(M.shape))
            np.greater_equal(u, rate, out=M)
            np.multiply(M, M.dtype.type(1 / (1 - rate)), out=M)


def set_masks(masks, rates, buf):
    """Fill ``buf.M`` from given keep masks (``masks[l]`` of shape ``(n_l, rows)``, 1 kept, 0 dropped)."""
    for rate, keep, M in zip(rates, masks, buf.M):
        if M is not None:
            np.multiply(keep, M.dtype.type(1 / (1 - rate)), out=M)
