"""``Network``: the object-oriented NumPy network, its training loop, and its file format."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from twinnet import safe_io, validation
from twinnet.nn import batchnorm, engine, trainer
from twinnet.nn.activations import ACTIVATIONS
from twinnet.nn.callbacks import ProgbarLogger, check_verbose
from twinnet.nn.divergence import DIVERGENCE_FACTOR, DivergenceWarning, climbed
from twinnet.nn.heads import DEFAULT_OUTPUT, HEADS, check_targets, default_output
from twinnet.nn.initializers import INITIALIZERS
from twinnet.nn.optimizers import get_optimizer
from twinnet.nn.schedules import LearningRateSchedule, check_learning_rate
from twinnet.nn.threads import blas_threads

__all__ = ["History", "Network", "NetworkFileError"]

#: ``format`` entry of the metadata of a saved Network.
FILE_FORMAT = "twinnet.Network"
#: 2 added ``output`` (the head); a version-1 file has the sigmoid head.
FILE_FORMAT_VERSION = 2
_METADATA_KEY = "__metadata__"
# What reading a damaged or foreign file can raise (json's errors are ValueErrors; zipfile raises
# NotImplementedError for an unknown compression and RuntimeError for an encrypted entry).
_CORRUPTED = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError,
              RuntimeError)
#: The metadata is a few hundred bytes of JSON; an entry that declares more is not ours.
_METADATA_MAX_BYTES = 2**16
#: ``save`` stores the arrays uncompressed, and weights compress little (``np.savez_compressed``
#: gains a few percent on them): arrays that would inflate to more than this many times the size of
#: the file are a zip bomb, refused before anything is inflated.
_MAX_INFLATION = 100


# --------------------------------------------------------------------------- validation
class NetworkFileError(ValueError):
    """A file that is not a twinnet Network: not an ``.npz`` archive, damaged, or inconsistent."""


def check_X(X, n_features, dtype, name="X"):
    """Validate ``X`` of shape (m, n_features); return it as the engine's ``X1`` (m, n_features + 1).

    ``X1`` is a new C-ordered array in ``dtype`` with a last column of ones (the bias input).
    """
    X = validation.features(X, name, dtype=dtype)
    if X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but this Network expects {n_features} "
            f"(layer_dims[0]={n_features}); {name}.shape={X.shape}."
        )
    X1 = engine.augment(X, dtype)
    return X1


def check_y(y, X, dtype, name="y", *, output=DEFAULT_OUTPUT, width=1):
    """Targets checked for the head ``output`` of ``width`` units: ``(y, y_aux)`` in the engine's layout.

    ``X`` is the checked ``X1`` whose examples ``y`` labels. For the sigmoid head ``y`` is the row
    ``(1, m)`` of labels 0 and 1 in ``dtype`` and ``y_aux`` its boolean twin; for a softmax the
    labels ``0 .. width-1`` as an int64 row, twice; for a linear head the targets as columns
    ``(width, m)`` in ``dtype`` and ``None`` (see :mod:`twinnet.nn.heads`).
    """
    return check_targets(output, y, (X.shape[0], X.shape[1] - 1), width, dtype, name)


#: Largest feature (or regression target) magnitude that counts as ordinary: standardized values are a
#: few units, so values far beyond make the pre-activations (or the errors), and the gradients, huge at
#: any sane learning rate; the fix is then the data, not the step size.
LARGE_FEATURE = 1e3
#: What diverges training whatever its step size, checked in this order: the data's name and its fix.
_SCALE_FIXES = (
    ("X", "standardize the features (twinnet's built-in loaders and twinnet.data.split do), "
          "e.g. (X - X.mean(0)) / X.std(0)"),
    ("y", "standardize the targets, e.g. sklearn.compose.TransformedTargetRegressor(regressor, "
          "transformer=StandardScaler()) (twinnet compare does)"),
)


def divergence_hint(X, y=None, *, l2=0.0, learning_rate=None):
    """What to change when training diverges on ``X`` (finite): the cause, else the learning rate.

    The causes, in order: features ``X`` or a linear head's targets ``y`` (None for a classifier)
    beyond :data:`LARGE_FEATURE` in magnitude, which a smaller step cannot tame; an ``l2`` with
    ``l2 * learning_rate > 1`` (a constant ``learning_rate``; None for a schedule), where a plain
    gradient step on the penalty alone, ``W -= learning_rate * 2 * l2 * W``, overshoots zero by more
    than ``W`` itself and the weights grow without bound.
    """
    for (name, fix), values in zip(_SCALE_FIXES, (X, y)):
        largest = 0.0 if values is None else float(np.max(np.abs(values), initial=0.0))
        if largest > LARGE_FEATURE:
            return f"{name} has values up to {largest:.3g} in magnitude; {fix}"
    if learning_rate is not None and l2 * learning_rate > 1:
        return (f"l2 * learning_rate = {l2 * learning_rate:.3g} > 1: each step on the penalty multiplies the "
                f"weights by 1 - 2 * learning_rate * l2 = {1 - 2 * learning_rate * l2:.3g}; take a smaller l2 "
                "(1e-4 to 1e-2 is usual)")
    return "try a smaller learning_rate"


# --------------------------------------------------------------------------- history
class History:
    """What ``Network.fit`` returns, shaped like Keras's ``History`` callback.

    Attributes
    ----------
    history : dict of str -> list of float
        ``"loss"`` and the head's metric (``"accuracy"`` for a classifier, ``"rmse"`` for a linear
        head), one value per epoch, and with validation data ``"val_loss"`` and ``"val_accuracy"``
        (or ``"val_rmse"``).
    epoch : list of int
        ``[0, 1, ..., epochs - 1]``.
    params : dict
        The training settings: ``epochs``, ``steps`` (batches per epoch), ``batch_size``,
        ``learning_rate``, ``optimizer``, ``shuffle``, ``seed``, ``verbose``.
    """

    def __init__(self, history=None, epoch=None, params=None):
        self.history = {} if history is None else history
        self.epoch = [] if epoch is None else epoch
        self.params = {} if params is None else params

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


# --------------------------------------------------------------------------- a fit's settings
class _FitRun:
    """The checked arguments of one ``Network.fit`` and every buffer its epochs write."""

    def __init__(self, net, X, y, *, epochs, learning_rate, batch_size, optimizer, shuffle, seed,
                 validation_data, verbose, callbacks, on_epoch_end):
        self.X1 = check_X(X, net.n_features, net.dtype)
        self.y, self.y_aux = net._check_y(y, self.X1)
        self.epochs, batch_size, seed, self.callbacks = trainer.check_arguments(
            epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed, callbacks=callbacks,
            on_epoch_end=on_epoch_end, validation_data=validation_data)
        self.learning_rate = check_learning_rate(learning_rate)
        self.schedule = self.learning_rate if isinstance(self.learning_rate, LearningRateSchedule) else None
        self.optimizer = get_optimizer(optimizer)
        self.seed = net.seed if seed is None else seed
        self.verbose = check_verbose(verbose)
        self.on_epoch_end = on_epoch_end
        # as Keras's fit: verbose's output is a ProgbarLogger's, the caller's or one added last
        self.progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self.progbar is None and self.verbose:
            self.progbar = ProgbarLogger()
            self.callbacks.append(self.progbar)
        self.diverged = False  # warned of (DivergenceWarning), once a fit
        self.validation = self._validation(net, validation_data)
        self.names = trainer.history_names(net._head, self.validation)
        self._allocate(net, batch_size, shuffle)

    @staticmethod
    def _validation(net, validation_data):
        if validation_data is None:
            return None
        X_val = check_X(validation_data[0], net.n_features, net.dtype, name="X_val")
        y_val, y_val_aux = net._check_y(validation_data[1], X_val, name="y_val")
        return X_val, y_val, y_val_aux, net._allocate(X_val.shape[0], backward=False)

    def _allocate(self, net, batch_size, shuffle):
        m = self.X1.shape[0]
        # one generator per fit: the batch order and the dropout masks, in the order they are drawn
        self.rng = np.random.default_rng(self.seed)
        self.batches = engine.BatchOrder(self.rng, m, batch_size, shuffle)
        rows = self.batches.rows
        gather = (self.y, self.y_aux) if self.batches.shuffle else None
        dropout = net._rates if any(net._rates) else None
        self.buf = net._allocate(rows, gather=gather, dropout=dropout)
        # a shorter last batch gets buffers of its own: views of the first columns of buf's
        # column-major buffers would not be contiguous
        self.tail = self.buf if m % rows == 0 else net._allocate(m % rows, gather=gather, dropout=dropout)
        self.grads = np.empty_like(net._params)
        self.dlayers, self.dnorm = net._gradient_views(self.grads)
        self.optimizer.build(net._params.size, net.dtype)

    def params(self):
        """``History.params``: the training settings."""
        return {"epochs": self.epochs, "steps": len(self.batches.slices), "batch_size": self.batches.rows,
                "learning_rate": self.learning_rate, "optimizer": self.optimizer, "shuffle": self.batches.shuffle,
                "seed": self.seed, "verbose": self.verbose}


# --------------------------------------------------------------------------- the network
class Network:
    """A fully connected network: hidden layers and an output head (sigmoid, softmax or linear).

    The notebook's network as an object, with a fast training engine. Rows are examples: ``X``
    has shape ``(m, n_features)`` and ``y`` shape ``(m,)`` (or ``(m, k)`` for a linear head with
    ``k`` outputs), as in scikit-learn and Keras.

    Parameters
    ----------
    layer_dims : list of int
        Widths from input to output, e.g. ``[100, 20, 5, 1]``: ``layer_dims[0]`` is the number of
        features and the last is the output layer's: 1 for the sigmoid head, ``K`` for ``K``
        classes, ``k`` for ``k`` regression targets. ``[n, 1]`` is logistic regression.
    output : {"sigmoid", "softmax", "linear"}, optional
        The output head and its loss (see :data:`twinnet.nn.heads.HEADS`): ``"sigmoid"`` (one
        unit, log-loss, labels 0 and 1; the default when the last width is 1), ``"softmax"``
        (``K >= 2`` units, the mean categorical cross-entropy from the logits, as Keras's
        ``SparseCategoricalCrossentropy(from_logits=True)``, labels ``0 .. K-1``) or ``"linear"``
        (any width, the mean squared error over examples and outputs, as Keras's
        ``"mean_squared_error"``). An output layer wider than 1 needs it named.
    l2 : float, default=0.0
        Weight of an L2 penalty ``l2 * sum(W**2)`` over every layer's weights (not the biases),
        added to the loss, as Keras's ``kernel_regularizer=L2(l2)``: the loss that ``fit`` reports
        and ``evaluate`` returns includes it, as Keras's does; the metrics do not. As in Keras,
        ``l2`` is rounded to float32 (``L2`` turns the Python float into a float32 tensor, as the
        optimizers' momentum and betas): ``0.01`` weighs as ``0.009999999776...``.
    dropout : float or list of float, default=0.0
        Dropout rate of every hidden layer, or one per hidden layer, each in ``[0, 1)``: during
        ``fit`` only, each hidden unit's activation is dropped with this probability and the kept
        ones are scaled by ``1 / (1 - rate)`` (inverted dropout, Keras's ``Dropout`` after the
        layer's activation). The masks are drawn from the fit's generator (see ``fit``'s
        ``seed``); ``predict``, ``evaluate`` and ``gradients`` never drop (``gradients`` takes
        given masks).
    batch_norm : bool or BatchNorm, default=False
        Batch normalization of every hidden layer's pre-activation (see :mod:`twinnet.nn.batchnorm`),
        Keras's ``Dense(use_bias=False) -> BatchNormalization -> Activation``: ``True`` for Keras's
        defaults, or :class:`~twinnet.nn.batchnorm.BatchNorm` ``(momentum=0.99, epsilon=1e-3,
        center=True, scale=True)``. Such a layer has no bias; the parameters dict holds its
        ``gamma_l`` and ``beta_l`` (trained) and ``moving_mean_l`` and ``moving_variance_l``
        (updated by ``fit`` from each batch's mean and biased variance), each of shape ``(n_l, 1)``.
        ``fit`` and ``gradients`` normalize with the batch's statistics, ``predict``, ``evaluate``
        and validation with the moving ones. A training batch of one example has variance 0 and
        normalizes to ``beta``, as in Keras (PyTorch refuses it).
    hidden_activation : {"leaky_relu", "relu", "sigmoid", "tanh"}, default="relu"
        Activation of every hidden layer (see :data:`twinnet.nn.ACTIVATIONS`; ``leaky_relu`` has
        Keras 3's slope 0.2).
    init : {"glorot", "he", "normal"}, default="normal"
        Weight initializer (see :data:`twinnet.nn.INITIALIZERS`). ``"normal"`` is the notebook's
        ``randn(n_l, n_{l-1}) * 0.1``. Biases start at zero.
    seed : int, optional
        Seeds ``np.random.default_rng``, which draws the weights layer by layer (``W1`` first) and,
        unless ``fit`` is given its own ``seed``, the mini-batch order. ``np.random.seed`` has no
        effect on a Network. ``None``: fresh randomness.
    dtype : {"float32", "float64"}, default="float64"
        Every parameter, buffer and computation is in this dtype; inputs are cast to it.

    Attributes
    ----------
    layer_dims : list of int
    n_features : int
    dtype : numpy.dtype
    parameters : dict
        Copies of the weights in the notebook's layout (see the property).

    Notes
    -----
    A Network has weights from the moment it is built, so ``predict`` works before ``fit``
    (it then uses the initial weights, as a Keras model does). Internally all weights and biases
    are views into one flat vector; ``parameters`` and :meth:`from_parameters` convert to and from
    the notebook's dict, the project's common currency.

    Examples
    --------
    >>> import numpy as np
    >>> from twinnet import Network
    >>> X = np.random.default_rng(0).standard_normal((200, 3)); y = (X[:, 0] > 0).astype(int)
    >>> net = Network([3, 8, 1], seed=0)
    >>> history = net.fit(X, y, epochs=300, learning_rate=0.5)
    >>> history.history["loss"][0] > history.history["loss"][-1]
    True
    >>> net.evaluate(X, y)["accuracy"] > 0.9
    True
    """

    def __init__(self, layer_dims, *, output=None, hidden_activation="relu", init="normal", l2=0.0, dropout=0.0,
                 batch_norm=False, seed=None, dtype="float64"):
        self._setup(layer_dims, output, hidden_activation, validation.choice("init", init, INITIALIZERS), seed,
                    dtype, l2, dropout, batch_norm)
        rng = np.random.default_rng(self.seed)
        draw = INITIALIZERS[init]
        for K, n_prev, n in zip(self._kernels, self.layer_dims[:-1], self.layer_dims[1:]):
            K[...] = draw(rng, n_prev, n).T  # K_l = W_l^T; biases stay zero

    def _setup(self, layer_dims, output, hidden_activation, init, seed, dtype, l2=0.0, dropout=0.0, batch_norm=False):
        dims = validation.layer_widths("layer_dims", layer_dims)
        self.output = default_output(output, dims[-1])
        self.l2 = validation.penalty("l2", l2)
        self._rates = validation.rates("dropout", dropout, len(dims) - 2)
        self.dropout = float(dropout) if np.ndim(dropout) == 0 else list(self._rates)  # checked by rates
        self.stop_training = False
        self.layer_dims = dims
        self._head = HEADS[self.output]
        self.hidden_activation = validation.choice("hidden_activation", hidden_activation, ACTIVATIONS)
        self.init = init
        self.seed = validation.seed(seed)
        self.dtype = validation.dtype(dtype)
        self._activation = ACTIVATIONS[self.hidden_activation]
        self.batch_norm = batchnorm.check_batch_norm(batch_norm)
        # Every layer's [K_l; b_l], K_l = W_l^T, is a view into one flat vector (see twinnet.nn.engine),
        # followed by batch normalization's [gamma_1, beta_1, ...]; the moving statistics are not trained.
        hidden, n = dims[1:-1], engine.n_params(dims)
        self._params = np.zeros(n + (batchnorm.size(hidden) if self.batch_norm else 0), self.dtype)
        self._layers = engine.unflatten(self._params[:n], dims)
        self._kernels = [Kb[:-1] for Kb in self._layers]
        self._norm = None
        if self.batch_norm:
            self._moving = np.zeros(batchnorm.size(hidden), self.dtype)
            self._norm = batchnorm.views(self.batch_norm, self._params[n:], hidden, self._moving)
            for gamma, (_, variance) in zip(self._norm.gamma, self._norm.moving):
                gamma[...], variance[...] = 1, 1  # Keras's initializers: ones, and zeros for beta and the mean

    # ----------------------------------------------------------------------- parameters dict
    @property
    def n_features(self):
        """Number of input features, ``layer_dims[0]``."""
        return self.layer_dims[0]

    @property
    def n_params(self):
        """Number of trainable parameters: weights, biases, and batch normalization's gamma and beta (Keras's count)."""
        if not self.batch_norm:
            return self._params.size
        hidden = sum(self.layer_dims[1:-1])
        return engine.n_params(self.layer_dims) - hidden + len(self.batch_norm.trainable) * hidden

    @property
    def parameters(self):
        """Copies of the weights: ``{"W1": (n1, n0), "b1": (n1, 1), ..., "WL": (nL, n_{L-1}), "bL": (nL, 1)}``.

        With batch normalization a hidden layer ``l`` has, instead of ``b_l``, ``gamma_l`` (with
        ``scale``), ``beta_l`` (with ``center``), ``moving_mean_l`` and ``moving_variance_l``, each
        of shape ``(n_l, 1)``: Keras's weights of its ``BatchNormalization``, in its order.
        """
        return self._as_dict(self._layers, norm=self._norm)

    def _as_dict(self, layers, prefix="", norm=None):
        # [K_l; b_l] -> the notebook's W_l = K_l^T (n_l, n_{l-1}) and b_l (n_l, 1), as C-ordered copies;
        # a batch-normalized layer's bias (always 0) is left out, its normalization's weights put in
        L = len(layers)
        pairs = [(Kb[:-1].T.copy(), None if norm is not None and l < L - 1 else Kb[-1].copy())
                 for l, Kb in enumerate(layers)]
        norms = ()
        if norm is not None:
            trainable = self.batch_norm.trainable
            norms = [{name: value.copy() for name, value in
                      zip(("gamma", "beta", *(batchnorm.MOVING if norm.moving else ())),
                          (gamma, beta, *(norm.moving[l] if norm.moving else ())))
                      if name in trainable or name in batchnorm.MOVING}
                     for l, (gamma, beta) in enumerate(zip(norm.gamma, norm.beta))]
        return trainer.as_parameters(pairs, prefix, norms)

    def _gradient_views(self, grads):
        """The views ``[dK_l; db_l]`` and the batch normalization's (a Norm, or None) of a flat gradient vector."""
        n = engine.n_params(self.layer_dims)
        dlayers = engine.unflatten(grads[:n], self.layer_dims)
        dnorm = batchnorm.views(self.batch_norm, grads[n:], self.layer_dims[1:-1]) if self.batch_norm else None
        return dlayers, dnorm

    def _allocate(self, rows, **options):
        """Buffers for ``rows`` examples (see :func:`twinnet.nn.engine.allocate`), batch normalization's included."""
        return engine.allocate(self.layer_dims, rows, self.dtype, batch_norm=self._norm is not None, **options)

    @classmethod
    def from_parameters(cls, parameters, *, output=None, hidden_activation="relu", l2=0.0, dropout=0.0,
                        batch_norm=False, dtype=None, seed=None):
        """Build a Network holding copies of the given weights.

        Parameters
        ----------
        parameters : dict
            ``"W" + str(l)`` of shape ``(n_l, n_{l-1})`` and ``"b" + str(l)`` of shape
            ``(n_l, 1)`` for ``l = 1 .. L``: the notebook's dict, checked by
            :func:`twinnet.validation.parameters_widths` (any mapping; finite in ``dtype``).
        output : {"sigmoid", "softmax", "linear"}, optional
            The head, as for the constructor: needed when ``n_L > 1``.
        hidden_activation : str, default="relu"
        l2, dropout, batch_norm
            As for the constructor; with ``batch_norm`` the dict holds its keys (see :attr:`parameters`).
        dtype : {"float32", "float64"}, optional
            Default: float32 if every array is float32, float64 otherwise.
        seed : int, optional
            Seed of the mini-batch order in ``fit``.

        Returns
        -------
        Network
            Its ``init`` is ``None``: the weights came from ``parameters``.

        Examples
        --------
        >>> from twinnet import functional as F
        >>> net = Network.from_parameters(F.initialize_parameters([4, 3, 1]))
        >>> net.layer_dims
        [4, 3, 1]
        """
        if dtype is None:
            arrays = [np.asarray(value) for value in parameters.values()] if isinstance(parameters, Mapping) else []
            dtype = "float32" if arrays and all(a.dtype == np.float32 for a in arrays) else "float64"
        dtype = validation.dtype(dtype)
        options = batchnorm.check_batch_norm(batch_norm)
        dims = validation.parameters_widths(parameters, dtype=dtype, output_width=None,
                                            batch_norm=options.names if options else ())
        net = cls.__new__(cls)
        net._setup(dims, output, hidden_activation, None, seed, dtype, l2, dropout, options)
        net._copy_in(parameters)
        return net

    @property
    def dropout_rates(self):
        """The dropout rate of each hidden layer, a tuple (0.0 where it has none)."""
        return self._rates

    def _copy_in(self, parameters):
        layers = trainer.parameter_layers(parameters, self.layer_dims, self.dtype, "Network", self.batch_norm)
        for Kb, (W, b) in zip(self._layers, layers):
            Kb[:-1] = W.T
            Kb[-1] = 0 if b is None else b[:, 0]
        if self._norm is not None:
            norm = self._norm
            arrays = trainer.norm_arrays(parameters, self.batch_norm, len(self.layer_dims) - 2)
            for l, values in enumerate(arrays):
                targets = (norm.gamma[l], norm.beta[l], *norm.moving[l])
                for name, target in zip(("gamma", "beta", *batchnorm.MOVING), targets):
                    if name in values:
                        target[...] = values[name]

    def set_parameters(self, parameters):
        """Replace the weights, in place, by copies of ``parameters`` (the notebook's dict, of this architecture).

        With :attr:`parameters`, a snapshot and its restoration (``EarlyStopping`` uses the pair).
        """
        self._copy_in(parameters)

    # ----------------------------------------------------------------------- inference
    def _check_y(self, y, X1, name="y"):
        return check_y(y, X1, self.dtype, name, output=self.output, width=self.layer_dims[-1])

    def _forward(self, X1, training=False, masks=None):
        buf = self._masked_buffers(X1, masks, backward=False)
        # A saturated output underflows harmlessly (see engine); other errors stay the caller's.
        with np.errstate(under="ignore"), blas_threads(X1.shape[0], self.layer_dims):
            engine.forward(X1, self._layers, self._activation, self._head, buf, self._norm, training)
        return buf

    def _scores(self, X1, y, y_aux, buf):
        # the loss and the head's metric into preallocated buffers: evaluate, and validation during fit
        head = self._head
        with np.errstate(under="ignore"):
            z = engine.forward(X1, self._layers, self._activation, head, buf, self._norm)
            loss = head.loss(z, y, buf)
        return loss + self._penalty(), head.metric(head.metric_sum(y_aux, buf, loss), X1.shape[0])

    def _penalty(self):
        """``l2 * sum(W**2)`` over the layers, as Keras adds each layer's ``L2`` regularization loss."""
        if not self.l2:
            return 0.0
        l2 = float(np.float32(self.l2))  # as Keras: its L2 regularizer's Python float becomes a float32 tensor
        return float(sum(l2 * np.vdot(K, K) for K in self._kernels))

    def _add_l2_gradient(self, dlayers, scratch):
        """``dK_l += 2 l2 K_l`` for every layer: the penalty's gradient (the biases are not penalized).

        ``scratch`` holds at least the largest kernel. As TensorFlow differentiates ``l2 *
        sum(square(K))``: ``l2 * (2 K)``, the same value as ``(2 l2) K`` (doubling is exact), with
        ``l2`` rounded through float32 as Keras rounds it.
        """
        decay = self.dtype.type(2 * float(np.float32(self.l2)))
        for K, dKb in zip(self._kernels, dlayers):
            term = np.multiply(K, decay, out=scratch[:K.size].reshape(K.shape))
            np.add(dKb[:-1], term, out=dKb[:-1])

    def _classifier_only(self, method):
        if not self._head.classifier:
            raise ValueError(f"{method} is for classifiers; this Network has a linear head (regression): "
                             "use predict(X) for its values.")

    def decision_function(self, X):
        """Logits of the output layer: shape ``(m,)`` for the sigmoid head, ``(m, K)`` for a softmax.

        ``predict_proba`` is their sigmoid, or their softmax along each row.
        """
        self._classifier_only("decision_function")
        z = self._forward(check_X(X, self.n_features, self.dtype)).z
        return self._head.columns(z)

    def predict_proba(self, X):
        """Class probabilities: of class 1 for the sigmoid head, of each class for a softmax.

        Parameters
        ----------
        X : array-like of shape (m, n_features)

        Returns
        -------
        p : ndarray of shape (m,) for the sigmoid head, (m, K) for a softmax of K classes
        """
        self._classifier_only("predict_proba")
        p = self._forward(check_X(X, self.n_features, self.dtype)).p
        return self._head.columns(p)

    def predict(self, X):
        """Predictions: labels for a classifier, values for a linear head.

        Returns
        -------
        predictions : ndarray
            Sigmoid head: int64 labels of shape ``(m,)``, 1 where ``predict_proba(X) > 0.5`` (the
            notebook's rule). Softmax: int64 labels ``0 .. K-1``, the most probable class (the
            first of equal ones). Linear: the outputs in the network's dtype, shape ``(m,)`` for one
            output, ``(m, k)`` for ``k``.
        """
        return self._head.predict(self._forward(check_X(X, self.n_features, self.dtype)))

    def evaluate(self, X, y):
        """The mean loss and the head's metrics on ``(X, y)``.

        Returns
        -------
        scores : dict
            Classifiers: ``{"loss": float, "accuracy": float}``, as ``history`` reports them. Linear
            head: ``{"loss": float, "rmse": float, "r2": float}``, the mean squared error, its root,
            and the coefficient of determination averaged over the outputs (scikit-learn's
            ``r2_score``, ``multioutput="uniform_average"``: an output whose targets are constant
            scores 1 if predicted exactly, else 0).
        """
        X1 = check_X(X, self.n_features, self.dtype)
        y, y_aux = self._check_y(y, X1)
        buf = self._allocate(X1.shape[0], backward=False)
        with blas_threads(X1.shape[0], self.layer_dims):
            loss, metric = self._scores(X1, y, y_aux, buf)
        return {"loss": loss, self._head.metric_name: metric, **self._head.more_metrics(buf, y)}

    def gradients(self, X, y, *, masks=None):
        """Gradients of the mean loss on ``(X, y)`` (with the L2 penalty) with respect to every parameter.

        Parameters
        ----------
        X, y : array-like
        masks : list, optional
            Dropout's keep masks, one per hidden layer: ``masks[l]`` of shape ``(m, n_{l+1})``, 1
            (or True) where a unit is kept and 0 where it is dropped; ``None`` for a layer whose rate
            is 0. The kept units are scaled by ``1 / (1 - rate)`` as in ``fit``: the gradients of
            one training step under these masks, which a twin given the same masks reproduces.
            Default: no dropout.

        Returns
        -------
        grads : dict
            ``{"dW1": (n1, n0), "db1": (n1, 1), ...}``, the shapes of :attr:`parameters`, in the
            network's dtype. With batch normalization: through the batch's statistics, as in a
            training step (the moving statistics are left alone), with ``"dgamma1"`` and
            ``"dbeta1"`` (as ``scale`` and ``center`` have them) in place of ``"db1"``.
        """
        X1 = check_X(X, self.n_features, self.dtype)
        y, _ = self._check_y(y, X1)
        buf = self._masked_buffers(X1, masks, backward=True)
        grads = np.empty_like(self._params)
        dlayers, dnorm = self._gradient_views(grads)
        with np.errstate(under="ignore"), blas_threads(X1.shape[0], self.layer_dims):
            engine.forward(X1, self._layers, self._activation, self._head, buf, self._norm, training=True)
            engine.backward(X1, y, self._layers, self._kernels, self._activation, self._head, buf, dlayers, dnorm)
        if self.l2:
            self._add_l2_gradient(dlayers, np.empty_like(self._params))
        return self._as_dict(dlayers, "d", dnorm)

    def _masked_buffers(self, X1, masks, backward):
        """Buffers for ``X1``; with ``masks``, dropout's multipliers set from them (see :meth:`gradients`)."""
        if masks is None:
            return self._allocate(X1.shape[0], backward=backward)
        keep = [None if mask is None else mask.T
                for mask in trainer.check_masks(masks, self.layer_dims[1:-1], self._rates, X1.shape[0])]
        buf = self._allocate(X1.shape[0], backward=backward, dropout=self._rates)
        engine.set_masks(keep, self._rates, buf)
        return buf

    # ----------------------------------------------------------------------- for checking gradients (nn.gradcheck)
    def loss_function(self, X, y, masks=None):
        """The loss as a function of the flat parameter vector, for checking gradients numerically.

        Returns
        -------
        theta : ndarray of shape (n_params,)
            Every weight and bias, the network's own storage: writing an entry changes the network.
        loss : callable
            ``loss()`` is the mean loss on ``(X, y)`` at ``theta``'s current values, with the L2
            penalty and under dropout's ``masks`` (see :meth:`gradients`), batch normalization
            with the batch's statistics.
        as_gradients : callable
            ``as_gradients(g)`` turns a vector laid out as ``theta`` into the dict that
            :meth:`gradients` returns (``{"dW1": (n1, n0), ...}``).
        """
        X1 = check_X(X, self.n_features, self.dtype)
        y, _ = self._check_y(y, X1)
        buf = self._masked_buffers(X1, masks, backward=False)
        head = self._head

        def loss():
            with np.errstate(under="ignore"):
                z = engine.forward(X1, self._layers, self._activation, head, buf, self._norm, training=True)
                return head.loss(z, y, buf) + self._penalty()

        def as_gradients(g):
            dlayers, dnorm = self._gradient_views(g)
            return self._as_dict(dlayers, "d", dnorm)

        return self._params, loss, as_gradients

    def hidden_preactivations(self, X, masks=None):
        """``[Z_1, ..., Z_{L-1}]``, each of shape ``(n_l, m)``: where a kinked activation meets its kink.

        Under dropout's keep ``masks`` (as :meth:`gradients` takes them), the pre-activations under
        the masks; with batch normalization, the normalized ones, with the batch's statistics (as
        :meth:`gradients` sees them).
        """
        return self._forward(check_X(X, self.n_features, self.dtype), training=True, masks=masks).Z

    # ----------------------------------------------------------------------- training
    def fit(self, X, y, *, epochs, learning_rate, batch_size=None, optimizer="sgd", shuffle=True,
            seed=None, validation_data=None, verbose=0, callbacks=None, on_epoch_end=None):
        """Train by gradient descent on the head's mean loss; the parameters are updated in place.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
        y : array-like of shape (m,) or (m, k)
            Labels 0 and 1 (sigmoid), ``0 .. K-1`` (softmax), or real targets (linear).
        epochs : int
        learning_rate : float or LearningRateSchedule
            A constant, or a schedule from :mod:`twinnet.nn.schedules` (``ExponentialDecay``,
            ``InverseTimeDecay``, ``PiecewiseConstantDecay``, ``CosineDecay``, or a subclass of
            ``LearningRateSchedule``): update ``step`` (0, 1, ... over the whole fit, Keras's
            ``optimizer.iterations``) uses ``schedule(step)``, the rate Keras's ``fit`` uses.
        batch_size : int, optional
            ``None`` (default) or ``>= m``: full-batch gradient descent, one update per epoch, as
            the notebook trains. Otherwise mini-batches of ``batch_size`` (the last one shorter).
        optimizer : {"sgd", "momentum", "adam", "rmsprop"} or Optimizer, default="sgd"
            Plain gradient descent, or Keras's ``SGD(momentum=0.9)`` and ``Adam()`` exactly; pass
            ``Momentum(...)`` or ``Adam(...)`` for other hyperparameters. Each call to ``fit``
            starts the optimizer afresh (zero moments, step count 0).
        shuffle : bool, default=True
            Shuffle the examples every epoch (mini-batches only; a full batch is never shuffled).
        seed : int, optional
            Seed of the batch order and of dropout's masks; default: the Network's ``seed``. Each
            epoch's batches are ``epoch_batches(rng, m, batch_size, shuffle)``, ``rng =
            np.random.default_rng(seed)``; with dropout, before each batch's forward pass, the same
            ``rng`` draws the masks (see :func:`twinnet.nn.engine.draw_masks`).
        validation_data : tuple (X_val, y_val), optional
            Evaluated after each epoch's updates.
        verbose : {"auto", 0, 1, 2}, default=0
            Keras's values: ``0`` silent, ``1`` (or ``"auto"``) a progress bar with the time per
            epoch and the time left, ``2`` one line per epoch; on standard output (see
            :class:`~twinnet.nn.callbacks.ProgbarLogger`).
        callbacks : Callback or list of Callback, optional
            From :mod:`twinnet.nn.callbacks` (``EarlyStopping``, ``LambdaCallback``, or a subclass
            of ``Callback``), called as Keras calls them: ``set_model(network)``,
            ``set_params(history.params)``, ``on_train_begin``, ``on_epoch_begin(epoch)``,
            ``on_epoch_end(epoch, logs)``, ``on_train_end(logs)``. Setting
            ``network.stop_training = True`` ends the fit after the current epoch.
        on_epoch_end : callable, optional
            Called as ``on_epoch_end(epoch, logs)`` after each epoch, as a Keras callback's method of
            that name: ``epoch`` counts from 0 and ``logs`` holds the epoch's ``loss``, the
            head's metric (``accuracy`` or ``rmse``) and ``val_*``. The weights it sees are those
            after the epoch's updates.

        Returns
        -------
        History
            ``history.history["loss"][k]`` follows Keras: the batch-size-weighted mean of the
            losses of epoch ``k``'s batches, each computed in its forward pass before its update
            (full batch: the loss before the epoch's update). ``"accuracy"`` likewise, and
            ``"rmse"`` is the root of the epoch's mean squared error. ``"val_loss"`` and
            ``"val_accuracy"`` (``"val_rmse"``) come after the epoch's updates.

        Raises
        ------
        FloatingPointError
            When the loss becomes NaN or inf, naming the epoch; the parameters stay as they were.

        Warns
        -----
        DivergenceWarning
            Once a fit, when the loss climbs past ``DIVERGENCE_FACTOR`` times its first epoch's
            (:mod:`twinnet.nn.divergence`, the rule by which the lab marks a run diverged).
        """
        run = _FitRun(self, X, y, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                      optimizer=optimizer, shuffle=shuffle, seed=seed, validation_data=validation_data,
                      verbose=verbose, callbacks=callbacks, on_epoch_end=on_epoch_end)
        history = History({name: [] for name in run.names}, params=run.params())
        callbacks = trainer.CallbackList(run.callbacks, self, history.params, run.on_epoch_end)
        context = contextlib.ExitStack()
        # Overflow and NaN are detected on the loss and reported as one clear error; underflow is
        # harmless (see engine).
        context.enter_context(np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"))
        if run.progbar:  # the progress display closes even on an error
            context.enter_context(run.progbar)
        context.enter_context(blas_threads(max(run.batches.rows, run.validation[0].shape[0] if run.validation else 0),
                                           self.layer_dims))
        score = (lambda: self._scores(*run.validation)) if run.validation else None
        trainer.run_epochs(self, callbacks, run.epochs, self._epoch_trainer(run), self._head, run.X1.shape[0],
                           run.names, history.history, score=score,
                           recorded=lambda epoch, loss: self._recorded(run, history, epoch, loss), context=context,
                           finished=lambda: self._check_finite(run, history))
        return history

    def _epoch_trainer(self, run):
        """A function that trains one epoch of ``run`` and returns its loss and its metric's sum (see heads).

        Everything it writes was allocated in ``run``: an epoch allocates no array.
        """
        params, layers, kernels, act, head = self._params, self._layers, self._kernels, self._activation, self._head
        X1, y, y_aux, batches, optimizer = run.X1, run.y, run.y_aux, run.batches, run.optimizer
        grads, dlayers, learning_rate, m = run.grads, run.dlayers, run.learning_rate, run.X1.shape[0]
        norm, dnorm = self._norm, run.dnorm
        schedule, rates, rng, l2 = run.schedule, self._rates, run.rng, self.l2
        dropout = any(rates)
        scratch = np.empty(max(K.size for K in kernels), self.dtype) if l2 else None

        def step(s):
            Xb, yb, yb_aux, b = batch(s)
            if dropout:
                engine.draw_masks(rng, rates, b)
            z = engine.forward(Xb, layers, act, head, b, norm, True)  # training: the batch's statistics
            if norm is not None:  # as Keras's layer, in its training forward pass
                for moving, stats in zip(norm.moving, b.stats):
                    batchnorm.update_moving(moving, stats, norm.options.momentum)
            loss = head.loss(z, yb, b)
            total = head.metric_sum(yb_aux, b, loss)  # the metrics see the data's loss alone
            engine.backward(Xb, yb, layers, kernels, act, head, b, dlayers, dnorm)
            if l2:
                loss += self._penalty()
                self._add_l2_gradient(dlayers, scratch)
            optimizer.apply(params, grads, learning_rate if schedule is None else schedule(optimizer.iterations))
            return loss, total

        def batch(s):
            if s.stop - s.start == m:  # the full batch: the data itself
                return X1, y, y_aux, run.buf
            b = run.buf if s.stop - s.start == batches.rows else run.tail
            if not batches.shuffle:
                return X1[s], y[:, s], None if y_aux is None else y_aux[:, s], b
            idx = batches.order[s]
            return (np.take(X1, idx, axis=0, out=b.X, mode="clip"), np.take(y, idx, axis=1, out=b.y, mode="clip"),
                    None if y_aux is None else np.take(y_aux, idx, axis=1, out=b.y_aux, mode="clip"), b)

        def train_epoch(epoch):
            loss, total = trainer.epoch_mean(step, batches.draw(), m, rows=lambda s: s.stop - s.start)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss} at epoch {epoch + 1} of {run.epochs} "
                    f"(learning_rate={run.learning_rate}, optimizer={run.optimizer!r}); "
                    f"{self._divergence_hint(run)}.")
            return loss, total

        return train_epoch

    def _check_finite(self, run, history):
        if not np.isfinite(self._params).all():  # the last update, which no loss has seen
            raise FloatingPointError(f"the parameters became NaN or inf in the last update (epoch {len(history.epoch)} "
                                     f"of {run.epochs}, learning_rate={run.learning_rate}); "
                                     f"{self._divergence_hint(run)}.")

    def _divergence_hint(self, run):
        return divergence_hint(run.X1, None if self._head.classifier else run.y, l2=self.l2,
                               learning_rate=None if run.schedule else run.learning_rate)

    def _recorded(self, run, history, epoch, loss):
        """After an epoch is recorded: its number in the history, and the warning of a climbing loss."""
        history.epoch.append(epoch)
        first = history.history["loss"][0]
        if not run.diverged and climbed(first, loss):
            run.diverged = True
            warnings.warn(DivergenceWarning(
                f"the training loss climbed from {first:.4g} to {loss:.4g} at epoch {epoch + 1} of "
                f"{run.epochs}, past {DIVERGENCE_FACTOR:g} times its start: training diverged "
                f"(learning_rate={run.learning_rate}); {divergence_hint(run.X1)}."), stacklevel=5)

    # ----------------------------------------------------------------------- files
    def _metadata(self):
        from twinnet import __version__

        return {
            "format": FILE_FORMAT,
            "format_version": FILE_FORMAT_VERSION,
            "layer_dims": self.layer_dims,
            "output": self.output,
            "hidden_activation": self.hidden_activation,
            "init": self.init,
            "l2": self.l2,
            "dropout": self.dropout,
            "batch_norm": self.batch_norm.get_config() if self.batch_norm else None,
            "seed": self.seed,
            "dtype": self.dtype.name,
            "twinnet_version": __version__,
        }

    def save(self, path):
        """Write the network to ``path``: an ``.npz`` archive, no pickle.

        The archive holds the arrays of :attr:`parameters` under their names (``np.load(path)["W1"]``
        reads them back with plain NumPy) and an entry ``__metadata__``, a JSON string with the
        architecture, activation, dtype and seed. The file is written exactly at ``path`` (no
        suffix is added) and replaced atomically. :meth:`load` restores the network bit for bit.
        """
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"{path}: is a directory, expected a file name.")
        arrays = self.parameters
        arrays[_METADATA_KEY] = np.array(json.dumps(self._metadata()))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.filename == str(tmp):  # the user's path, not the temporary name
                raise type(exc)(exc.errno, exc.strerror, str(path)) from None
            raise

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save`.

        The file is untrusted: its metadata and every array's header are checked before the arrays are
        read, so what it may allocate is bounded by the widths its metadata declares, by
        ``$TWINNET_MAX_BYTES`` (default 4 GiB, as :func:`twinnet.data.load`) and by 100 times the
        size of the file (a zip bomb inflates more).

        Raises
        ------
        FileNotFoundError
            No such file.
        NetworkFileError
            A ``ValueError``: the file is not a twinnet Network: not a regular file, not an ``.npz``
            archive, corrupted or truncated, without the metadata, of another format, with metadata
            or arrays that do not fit it, or bigger than those bounds.
        """
        path = Path(path)
        source = str(path)
        if not path.exists():
            raise FileNotFoundError(f"{source}: no such file.")
        if path.is_dir():
            raise IsADirectoryError(f"{source}: is a directory, expected a model file.")

        def invalid(why):
            return NetworkFileError(f"{source}: not a twinnet Network file ({why}).")

        try:
            file, size = safe_io.open_regular(path, "a model file")
            with file:
                if file.read(6) == np.lib.format.MAGIC_PREFIX:
                    raise NetworkFileError("a single .npy array, not an .npz archive")
                with zipfile.ZipFile(file) as archive:
                    meta, arrays = _read_archive(archive, size, source, safe_io.check_max_bytes(None))
        except (NetworkFileError, validation.InvalidArgument) as exc:  # the reason, said by the checks
            raise invalid(str(exc).rstrip(".")) from None
        except _CORRUPTED as exc:
            why = str(exc).removeprefix(f"{source}: ").rstrip(".")[:200]
            raise invalid(f"unreadable or corrupted: {type(exc).__name__}: {why}") from None
        try:
            output = meta.get("output", DEFAULT_OUTPUT) if meta["format_version"] >= 2 else DEFAULT_OUTPUT
            net = cls.from_parameters(arrays, output=output, hidden_activation=meta.get("hidden_activation"),
                                      l2=meta.get("l2", 0.0), dropout=meta.get("dropout", 0.0),
                                      batch_norm=meta.get("batch_norm"), dtype=meta["dtype"], seed=meta.get("seed"))
            init = meta.get("init")
            if init is not None:
                validation.choice("init", init, INITIALIZERS)
        except ValueError as exc:
            raise invalid(str(exc).rstrip(".")) from None
        net.init = init
        return net

    # ----------------------------------------------------------------------- pickling, repr
    def __getstate__(self):
        # The notebook's dict, not the flat vector: the views are rebuilt on loading (pickled
        # separately they would no longer share its memory), and a pickle does not depend on the
        # engine's layout of that vector.
        return {"meta": self._metadata(), "parameters": self.parameters}

    def __setstate__(self, state):
        meta, parameters = state["meta"], state["parameters"]
        self._setup(meta["layer_dims"], meta.get("output", DEFAULT_OUTPUT), meta["hidden_activation"], meta["init"],
                    meta["seed"], meta["dtype"], meta.get("l2", 0.0), meta.get("dropout", 0.0), meta.get("batch_norm"))
        self._copy_in(parameters)

    def __repr__(self):
        output = "" if self.output == DEFAULT_OUTPUT else f"output={self.output!r}, "
        extra = (f"l2={self.l2!r}, " if self.l2 else "") + (f"dropout={self.dropout!r}, " if any(self._rates) else "")
        if self.batch_norm:
            extra += f"batch_norm={True if self.batch_norm == batchnorm.BatchNorm() else self.batch_norm!r}, "
        return (f"Network({self.layer_dims}, {output}hidden_activation={self.hidden_activation!r}, {extra}"
                f"init={self.init!r}, seed={self.seed!r}, dtype={self.dtype.name!r})")


#: The fields :meth:`Network._metadata` writes; a file with others is not one of ours.
_METADATA_FIELDS = {"format", "format_version", "layer_dims", "output", "hidden_activation", "init", "l2", "dropout",
                    "batch_norm", "seed", "dtype", "twinnet_version"}


# --------------------------------------------------------------------------- reading a file
# Each check raises NetworkFileError with the reason alone; Network.load adds the file's name.
def _read_metadata(archive, source):
    """The metadata of an archive: a JSON object of known fields, read within _METADATA_MAX_BYTES."""
    size = archive.getinfo(f"{_METADATA_KEY}.npy").file_size
    if size > _METADATA_MAX_BYTES:
        raise NetworkFileError(f"the metadata declares {size:,} bytes; a Network's takes a few hundred, "
                               f"at most {_METADATA_MAX_BYTES:,}")
    text = safe_io.npz_member(archive, _METADATA_KEY, source, _METADATA_MAX_BYTES)
    if text.dtype.kind != "U" or text.shape != ():
        raise NetworkFileError(f"the metadata is an array of {text.dtype} and shape {text.shape}, not a JSON string")
    try:
        meta = json.loads(str(text[()]))
    except RecursionError:
        raise NetworkFileError("the metadata's JSON is nested too deeply") from None
    except ValueError as exc:
        raise NetworkFileError(f"the metadata is not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(meta, dict):
        raise NetworkFileError(f"the metadata is not a JSON object but a {type(meta).__name__}")
    if meta.get("format") != FILE_FORMAT:
        raise NetworkFileError(f"metadata format is {str(meta.get('format'))[:40]!r}, expected {FILE_FORMAT!r}")
    version = meta.get("format_version")
    if not (validation.is_int(version) and 1 <= version <= FILE_FORMAT_VERSION):
        raise NetworkFileError(f"format_version {str(version)[:40]}; this twinnet reads 1 to {FILE_FORMAT_VERSION}")
    unknown = sorted(key[:40] for key in meta.keys() - _METADATA_FIELDS)
    if unknown:
        raise NetworkFileError(f"the metadata has unknown field(s) {unknown[:5]}")
    missing = [key for key in ("layer_dims", "dtype") if key not in meta]
    if missing:
        raise NetworkFileError(f"the metadata has no {missing[0]!r}")
    meta["layer_dims"] = validation.layer_widths("layer_dims", meta["layer_dims"])
    meta["dtype"] = validation.dtype(meta["dtype"])
    if not isinstance(meta.get("twinnet_version", ""), str):
        raise validation.InvalidArgument("twinnet_version", "a string", meta["twinnet_version"])
    return meta


def _read_archive(archive, size, source, max_bytes):
    """The metadata and the arrays of an open archive of ``size`` bytes: each array of the name, dtype
    and shape the metadata declares, read only once the bytes they take are known to be in bounds."""
    names = [info.filename for info in archive.infolist()]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise NetworkFileError(f"the archive holds {twice[0][:40]!r} twice")
    if f"{_METADATA_KEY}.npy" not in names:
        raise NetworkFileError(f"no {_METADATA_KEY!r} entry; found {sorted(n[:40] for n in names)[:10]}")
    meta = _read_metadata(archive, source)
    dims, dtype = meta["layer_dims"], meta["dtype"]
    too_big = f"(raise it with ${safe_io.MAX_BYTES_ENV} if the network is meant to be that big)"
    if max(dims) > max_bytes:
        raise NetworkFileError(f"layer_dims declares a layer of more units than the limit of {max_bytes:,} bytes "
                               + too_big)
    shown = str(dims) if len(str(dims)) <= 80 else f"{str(dims)[:60]}... ({len(dims)} widths)"
    # batch normalization's options are checked here, so that its arrays' names are known before reading
    options = batchnorm.check_batch_norm(meta.get("batch_norm"), "the metadata's batch_norm")
    shapes = {}
    for l, (n_in, n_out) in enumerate(itertools.pairwise(dims), start=1):
        shapes[f"W{l}"] = (n_out, n_in)
        for kind in options.names if options and l < len(dims) - 1 else ("b",):
            shapes[f"{kind}{l}"] = (n_out, 1)
    expected = {f"{key}.npy" for key in (*shapes, _METADATA_KEY)}
    missing, extra = sorted(expected - set(names)), sorted(set(names) - expected)
    if missing or extra:
        found = (f"{what} {[n.removesuffix('.npy')[:40] for n in keys[:5]]}"
                 for what, keys in (("missing", missing), ("unexpected", extra)) if keys)
        raise NetworkFileError(f"layer_dims {shown} needs the arrays {sorted(shapes)[:10]}: " + "; ".join(found))
    # zipfile reads no more of an entry than its declared size, and npz_member checks each array's
    # header against that size: together they bound what reading the arrays can allocate.
    need = max(sum(info.file_size for info in archive.infolist()), engine.n_params(dims) * dtype.itemsize)
    if need > max_bytes:
        raise NetworkFileError(f"the arrays of layer_dims {shown} would take {need:,} bytes, more than the limit "
                               f"of {max_bytes:,} " + too_big)
    if need > _MAX_INFLATION * size:
        raise NetworkFileError(f"the arrays of layer_dims {shown} would take {need:,} bytes, more than "
                               f"{_MAX_INFLATION} times its size ({size:,} bytes): a zip bomb, not a network's weights")
    def fits(key, expected):
        def check(shape, found):
            if found != dtype:
                raise NetworkFileError(f"array {key!r} is {found}, the metadata says {dtype}")
            if shape != expected:
                raise NetworkFileError(f"array {key!r} has shape {shape}; layer_dims {shown} make it {expected}")
        return check

    arrays = {key: safe_io.npz_member(archive, key, source, max_bytes, check=fits(key, shape))
              for key, shape in shapes.items()}
    return meta, arrays
