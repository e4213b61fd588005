"""The one trainer contract: what ``Network.fit``, the Keras twin and the PyTorch twin share.

Each trainer supplies its step (a batch in, the batch's loss and its metric's sum out, the weights
updated) and its validation score; everything around the step lives here, once:

- :func:`check_arguments`: the checks of ``epochs``, ``batch_size``, ``seed``, ``on_epoch_end``,
  ``callbacks`` and ``validation_data``, in one wording;
- :func:`history_names`: the history's keys, the loss and the head's metric, and their ``val_``;
- :func:`epoch_mean`: one epoch over its batches, Keras's loss (the batch-size-weighted mean of the
  batches' losses, each before its update; a full batch's loss as computed) and the metric's sum;
- :func:`run_epochs`: the epochs, driving callbacks as Keras's ``fit`` does (``on_train_begin``,
  ``on_epoch_begin``, ``on_epoch_end(epoch, logs)``, ``model.stop_training``, ``on_train_end``)
  and filling the history; :class:`CallbackList` drives twinnet's callbacks with the methods of
  Keras's ``CallbackList``, which the Keras twin's loop passes instead;
- the parameters dict in and out (:func:`parameter_layers`, which checks the widths, and
  :func:`as_parameters`, which packs weights or gradients) and dropout's keep masks
  (:func:`check_masks`).
"""

from __future__ import annotations

import contextlib

import numpy as np

from twinnet import validation
from twinnet.nn.callbacks import check_callbacks

__all__ = ["CallbackList", "as_parameters", "check_arguments", "check_masks", "epoch_mean", "history_names",
           "norm_arrays", "parameter_layers", "run_epochs"]


def check_arguments(*, epochs, batch_size, shuffle, seed, callbacks, on_epoch_end, validation_data):
    """The common arguments of a training, checked: ``(epochs, batch_size, seed, callbacks)``.

    ``shuffle`` must be True or False; ``seed`` may be ``None``; ``callbacks`` becomes a list;
    ``validation_data`` must be ``None`` or a pair ``(X_val, y_val)``, whose contents each trainer
    checks as its training data.
    """
    epochs = validation.positive_int("epochs", epochs)
    batch_size = validation.positive_int("batch_size", batch_size, allow_none=True)
    validation.flag("shuffle", shuffle)
    seed = validation.seed(seed)
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise ValueError(f"on_epoch_end must be a callable (epoch, logs); got {on_epoch_end!r}.")
    callbacks = check_callbacks(callbacks)
    if validation_data is not None and not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise ValueError("validation_data must be a tuple (X_val, y_val).")
    return epochs, batch_size, seed, callbacks


def history_names(head, validated):
    """The history's keys in order: ``loss``, the head's metric, and with validation their ``val_`` versions."""
    names = ["loss", head.metric_name]
    return names + [f"val_{name}" for name in names] if validated else names


def epoch_mean(step, batches, m, rows=len):
    """One epoch: ``step(batch)`` on each batch; returns Keras's epoch loss and the metric's sum.

    ``step(batch)`` returns the batch's loss (before its update) and its metric's sum;
    ``rows(batch)`` is its number of examples, of ``m`` in all. One full batch's loss is returned as
    computed, not rescaled by ``m / m``.
    """
    if len(batches) == 1:
        return step(batches[0])
    loss_sum, total = 0.0, 0
    for batch in batches:
        batch_loss, batch_total = step(batch)
        loss_sum += batch_loss * rows(batch)  # Keras's mean weighted by batch size
        total += batch_total
    return loss_sum / m, total


class CallbackList:
    """twinnet's callbacks driven through the methods of Keras's ``CallbackList``.

    Each callback gets ``set_model(model)`` and ``set_params(params)`` here, then the hooks in
    order; ``on_epoch_end(epoch, logs)``, a function, is called first at each epoch's end, with a
    copy of the logs (or only their ``loss`` with ``loss_only``, as the twins document it).
    """

    def __init__(self, callbacks, model, params, on_epoch_end=None, *, loss_only=False):
        self.callbacks, self.function, self.loss_only = callbacks, on_epoch_end, loss_only
        for callback in callbacks:
            callback.set_model(model)
            callback.set_params(params)

    def on_train_begin(self, logs=None):
        for callback in self.callbacks:
            callback.on_train_begin({})

    def on_epoch_begin(self, epoch, logs=None):
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, {})

    def on_epoch_end(self, epoch, logs=None):
        if self.function is not None:
            self.function(epoch, {"loss": logs["loss"]} if self.loss_only else dict(logs))
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        for callback in self.callbacks:
            callback.on_train_end(logs)


def run_epochs(model, callbacks, epochs, train_epoch, head, m, names, history, *, score=None, recorded=None,
               context=None, finished=None):
    """Train ``epochs`` epochs as Keras's ``fit`` does.

    Parameters
    ----------
    model
        What the callbacks stop: its ``stop_training`` is set to False first, and ends the training
        after the epoch in which a callback sets it.
    callbacks : CallbackList or keras.callbacks.CallbackList
    train_epoch : callable
        ``train_epoch(epoch)`` trains one epoch (:func:`epoch_mean`) and returns its loss and the
        head's metric's sum over its ``m`` examples.
    head : Head
        Turns the sum into the metric (:data:`twinnet.nn.heads.HEADS`).
    names, history
        :func:`history_names` and a dict of lists under those names, appended to at each epoch.
    score : callable, optional
        ``score()`` is the validation's loss and metric, after the epoch's updates.
    recorded : callable, optional
        ``recorded(epoch, loss)`` after the epoch is recorded, before the callbacks see it.
    context : context manager, optional
        Around the epochs (not ``on_train_end``).
    finished : callable, optional
        Called after the epochs, before ``on_train_end``.
    """
    model.stop_training = False
    callbacks.on_train_begin()
    logs = {}
    with context or contextlib.nullcontext():
        for epoch in range(epochs):
            callbacks.on_epoch_begin(epoch)
            loss, total = train_epoch(epoch)
            logs = {"loss": loss, names[1]: head.metric(total, m)}
            if score is not None:
                logs.update(zip(names[2:], score()))
            for name in names:
                history[name].append(logs[name])
            if recorded is not None:
                recorded(epoch, loss)
            callbacks.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
    if finished is not None:
        finished()
    callbacks.on_train_end(logs)


def parameter_layers(parameters, widths, dtype, owner, batch_norm=None):
    """``parameters`` (the notebook's dict) checked against a model of ``widths``: ``[(W_l, b_l), ...]``.

    Checked by :func:`twinnet.validation.parameters_widths` in ``dtype``; the arrays are returned as
    given (``np.asarray``), ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``.
    ``owner`` names the model in the error (``"Network"``, ``"twin"``, ``"model"``). With
    ``batch_norm`` (a :class:`twinnet.nn.batchnorm.BatchNorm`) the hidden layers have no ``b_l``
    (``None`` here) but the batch normalization's weights, which :func:`norm_arrays` returns.
    """
    names = batch_norm.names if batch_norm else ()
    dims = validation.parameters_widths(parameters, dtype=dtype, output_width=None, batch_norm=names)
    if dims != list(widths):
        raise validation.InvalidArgument("parameters", f"the widths {list(widths)}", dims,
                                         f"parameters have the widths {dims}; this {owner} has {list(widths)}.")
    L = len(dims) - 1
    return [(np.asarray(parameters[f"W{l}"]), None if names and l < L else np.asarray(parameters[f"b{l}"]))
            for l in range(1, L + 1)]


def norm_arrays(parameters, batch_norm, hidden_layers):
    """Per hidden layer, ``{name: array of shape (n_l,)}`` of the batch normalization's weights in a checked dict."""
    return [{name: np.asarray(parameters[f"{name}{l}"])[:, 0] for name in batch_norm.names}
            for l in range(1, hidden_layers + 1)]


def as_parameters(layers, prefix="", norms=()):
    """The notebook's dict from ``[(W_l, b_l), ...]``: ``{"W1": W_1, "b1": b_1 as a column (n_1, 1), ...}``.

    ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of ``n_l`` values are taken as they are (the
    caller copies); ``prefix="d"`` names gradients, ``{"dW1": ..., "db1": ...}``. A ``b_l`` of
    ``None`` is left out (a batch-normalized layer's); ``norms[l - 1]``, a dict ``{"gamma": ...,
    "beta": ..., ...}`` of ``n_l`` values each, adds ``"gamma1"`` etc. as columns after ``W_l``.
    """
    out = {}
    for l, (W, b) in enumerate(layers, start=1):
        out[f"{prefix}W{l}"] = W
        if b is not None:
            out[f"{prefix}b{l}"] = b.reshape(-1, 1)
        for name, value in (norms[l - 1] if l <= len(norms) else {}).items():
            out[f"{prefix}{name}{l}"] = value.reshape(-1, 1)
    return out


def check_masks(masks, hidden, rates, m):
    """Dropout's keep masks checked for ``m`` examples: a list of arrays ``(m, n_l)`` (``None`` without dropout).

    ``hidden`` are the hidden layers' widths, ``rates`` their dropout rates: ``masks[l]`` must be 0/1
    of shape ``(m, hidden[l])``, or ``None`` where ``rates[l]`` is 0 (``Network.gradients``'s convention).
    """
    if not any(rates):
        raise ValueError("masks are dropout's keep masks, but this Network has no dropout (dropout=0).")
    if not isinstance(masks, (list, tuple)) or len(masks) != len(hidden):
        raise ValueError(f"masks must be a list of {len(hidden)} keep masks, one per hidden layer; "
                         f"got {masks!r:.80}.")
    keep = []
    for l, (mask, n, rate) in enumerate(zip(masks, hidden, rates)):
        if not rate:
            if mask is not None:
                raise ValueError(f"masks[{l}] must be None: hidden layer {l + 1} has dropout rate 0.")
            keep.append(None)
            continue
        mask = np.asarray(mask)
        if mask.shape != (m, n) or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"masks[{l}] must be 0/1 of shape ({m}, {n}) (examples x units of hidden "
                             f"layer {l + 1}); got shape {mask.shape}.")
        keep.append(mask)
    return keep
