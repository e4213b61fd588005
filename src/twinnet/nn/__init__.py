"""The object-oriented NumPy network and its fast in-place engine.

Rows are examples here: ``X`` of shape ``(m, n_features)``, ``y`` of shape ``(m,)``, as in
scikit-learn and Keras. The notebook's per-function reference, columns as examples, stays in
:mod:`twinnet.functional`; tests hold the two equal.

Public names
------------
- :class:`Network`, :class:`History`: the network and what its ``fit`` returns.
- :func:`gradcheck`: backpropagation against finite differences.
- :func:`epoch_batches`: the mini-batch order of ``Network.fit``, shared with the Keras twin.
- :class:`BatchNorm`: the options of ``Network(batch_norm=...)`` (:mod:`twinnet.nn.batchnorm`).
- :class:`NetworkFileError`: what :meth:`Network.load` raises for a file that is not a Network.
- Learning-rate schedules (:mod:`twinnet.nn.schedules`: ``ExponentialDecay``, ``InverseTimeDecay``,
  ``PiecewiseConstantDecay``, ``CosineDecay``) and callbacks (:mod:`twinnet.nn.callbacks`:
  ``Callback``, ``LambdaCallback``, ``EarlyStopping``), with Keras's names, arguments and values.
- Tables of components, ``name -> implementation``, keyed by the vocabularies of
  :mod:`twinnet.validation`: :data:`ACTIVATIONS` (hidden activations, forward and derivative
  kernels), :data:`HEADS` (output heads with their losses), :data:`INITIALIZERS` and
  :data:`OPTIMIZERS` (``SGD``, ``Momentum``, ``Adam``, ``RMSprop``, with Keras 3's exact update rules and
  defaults), :data:`SCHEDULES`.

Examples
--------
>>> import numpy as np
>>> from twinnet.nn import Network
>>> X = np.random.default_rng(0).standard_normal((100, 4)); y = (X.sum(axis=1) > 0).astype(int)
>>> net = Network([4, 8, 1], hidden_activation="tanh", seed=0)
>>> h = net.fit(X, y, epochs=50, learning_rate=0.01, batch_size=16, optimizer="adam", seed=0)
>>> sorted(h.history), len(h.epoch)
(['accuracy', 'loss'], 50)
"""

from twinnet.nn.activations import ACTIVATIONS, Activation
from twinnet.nn.batchnorm import BatchNorm
from twinnet.nn.callbacks import Callback, EarlyStopping, LambdaCallback
from twinnet.nn.engine import epoch_batches
from twinnet.nn.gradcheck import gradcheck
from twinnet.nn.heads import HEADS
from twinnet.nn.initializers import INITIALIZERS
from twinnet.nn.network import History, Network, NetworkFileError
from twinnet.nn.optimizers import OPTIMIZERS, SGD, Adam, Momentum, Optimizer, RMSprop
from twinnet.nn.schedules import (
    SCHEDULES,
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
)

__all__ = [
    "ACTIVATIONS",
    "HEADS",
    "INITIALIZERS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Activation",
    "Adam",
    "BatchNorm",
    "Callback",
    "CosineDecay",
    "EarlyStopping",
    "ExponentialDecay",
    "History",
    "InverseTimeDecay",
    "LambdaCallback",
    "LearningRateSchedule",
    "Momentum",
    "Network",
    "NetworkFileError",
    "Optimizer",
    "PiecewiseConstantDecay",
    "RMSprop",
    "epoch_batches",
    "gradcheck",
]
