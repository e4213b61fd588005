"""Callbacks for ``Network.fit`` with Keras's names: :class:`Callback`, :class:`LambdaCallback`, :class:`EarlyStopping`.

``fit(callbacks=[...])`` calls, on each callback in order, ``set_model(network)`` and
``set_params(params)``, then ``on_train_begin(logs)``, and for each epoch
``on_epoch_begin(epoch, logs)`` and ``on_epoch_end(epoch, logs)`` (``epoch`` counts from 0; the
end's ``logs`` holds the epoch's ``loss``, the head's metric, ``accuracy`` or ``rmse``, and with
``validation_data`` their ``val_`` versions, as Python floats), then ``on_train_end(logs)`` with
the last epoch's logs; as Keras, ``logs`` is ``{}`` where there is nothing to report. A callback
stops training by setting ``self.model.stop_training = True``: ``fit`` finishes the epoch's
callbacks and stops.

The model a callback sees offers ``stop_training``, ``parameters`` (copies of the weights, the
notebook's dict) and ``set_parameters(parameters)`` (restores them in place).

Examples
--------
>>> from twinnet.nn.callbacks import EarlyStopping
>>> stop = EarlyStopping(monitor="loss", patience=2)
>>> class Model:  # what fit gives its callbacks, reduced to what EarlyStopping uses
...     stop_training = False
>>> stop.set_model(Model()); stop.on_train_begin()
>>> for epoch, loss in enumerate([0.9, 0.7, 0.71, 0.72, 0.5]):
...     stop.on_epoch_end(epoch, {"loss": loss})
...     if stop.model.stop_training:
...         break
>>> stop.stopped_epoch, stop.best_epoch, stop.best
(3, 1, 0.7)
"""

from __future__ import annotations

import math
import time

import numpy as np

from twinnet import validation
from twinnet.nn.float32 import cast32

__all__ = ["METRIC_MODES", "VERBOSE", "Callback", "EarlyStopping", "LambdaCallback", "ProgbarLogger", "check_callbacks",
           "check_verbose"]


class Callback:
    """Base class, Keras's ``keras.callbacks.Callback`` reduced to the hooks ``Network.fit`` calls.

    Attributes
    ----------
    model : Network
        The network being trained, set by ``fit`` through :meth:`set_model`.
    params : dict
        ``fit``'s parameters (``epochs``, ``steps``, ...), set through :meth:`set_params`.
    """

    # Class-level defaults, so that a subclass that does not call super().__init__() still works.
    model = None
    params = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        """Called once at the start of ``fit``, after ``model.stop_training`` is set to False."""

    def on_train_end(self, logs=None):
        """Called once at the end of ``fit``, also when a callback stopped it early."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of epoch ``epoch`` (counted from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after epoch ``epoch``'s updates, with its ``logs``: ``{"loss": ..., "val_loss": ..., ...}``."""


class LambdaCallback(Callback):
    """A callback from functions, Keras's ``LambdaCallback`` for the hooks ``Network.fit`` calls.

    Parameters
    ----------
    on_epoch_begin, on_epoch_end : callable, optional
        Called as ``f(epoch, logs)``.
    on_train_begin, on_train_end : callable, optional
        Called as ``f(logs)``.

    Examples
    --------
    >>> losses = []
    >>> record = LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None, **kwargs):
        batch_hooks = sorted(key for key in kwargs if key.startswith(("on_train_batch", "on_batch")))
        if batch_hooks:
            raise validation.InvalidArgument(
                batch_hooks[0], "one of on_epoch_begin, on_epoch_end, on_train_begin, on_train_end",
                kwargs[batch_hooks[0]],
                f"LambdaCallback({batch_hooks[0]}=...): twinnet's fit calls no batch hooks, only "
                "on_train_begin, on_epoch_begin, on_epoch_end and on_train_end.")
        if kwargs:
            raise TypeError(f"LambdaCallback() got an unexpected keyword argument {next(iter(kwargs))!r}; it takes "
                            "on_epoch_begin, on_epoch_end, on_train_begin and on_train_end.")
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end}
        for name, hook in hooks.items():
            if hook is not None:
                if not callable(hook):
                    raise validation.InvalidArgument(name, "a callable or None", hook)
                setattr(self, name, _epoch_hook(hook) if name.startswith("on_epoch") else _train_hook(hook))


# Keras's fit always hands a logs dict, which a LambdaCallback's functions take positionally.
def _epoch_hook(function):
    return lambda epoch, logs=None: function(epoch, {} if logs is None else logs)


def _train_hook(function):
    return lambda logs=None: function({} if logs is None else logs)


#: Logged metric -> the direction in which it improves, for ``mode="auto"``: Keras's rule (``loss``
#: decreases; a metric improves in its own ``_direction``: up for accuracy, down for the root mean
#: squared error), applied to the metrics ``Network.fit`` logs. ``val_`` names follow their metric.
METRIC_MODES = {"loss": "min", "accuracy": "max", "rmse": "min"}

_MODES = ("auto", "min", "max")


class EarlyStopping(Callback):
    """Stop training when a monitored metric has stopped improving: Keras 3's ``EarlyStopping``, exactly.

    At the end of each epoch from ``start_from_epoch`` on, ``wait`` counts the epochs since the
    last improvement; an improvement (by more than ``min_delta``) records ``best`` and
    ``best_epoch`` and resets ``wait`` to 0, and once ``wait >= patience`` (never in epoch 0)
    training stops: ``stopped_epoch`` is that epoch. Keras's particulars, reproduced:

    - With a ``baseline``, an improvement resets ``wait`` only if it also beats the baseline, but
      any improvement still skips the stopping test that epoch.
    - With ``restore_best_weights``, the weights of the best epoch are restored at the end of
      training, whether or not it stopped early; the first monitored epoch counts as best
      until beaten, even if it misses the baseline.
    - Values are compared as Keras compares them under TensorFlow, in float32: two losses that
      differ by less than float32's resolution are equal, not an improvement.

    Where Keras only warns that the monitored metric is missing from the logs (and then never
    stops), this raises a ``ValueError`` naming it and the metrics this ``fit`` logs.

    Parameters
    ----------
    monitor : str, default="val_loss"
        A key of ``fit``'s logs: ``loss``, ``accuracy`` (classifiers) or ``rmse`` (linear head),
        or their ``val_`` versions (which need ``validation_data``).
    min_delta : float, default=0
        Smallest change that counts as an improvement (its absolute value is used).
    patience : int, default=0
        Epochs without improvement after which training stops.
    verbose : int, default=0
        ``1``: print when stopping and when restoring weights, as Keras does.
    mode : {"auto", "min", "max"}, default="auto"
        Whether the metric improves by decreasing or increasing; ``"auto"`` follows
        :data:`METRIC_MODES`.
    baseline : float, optional
        Training stops after ``patience`` epochs unless the metric beats it.
    restore_best_weights : bool, default=False
    start_from_epoch : int, default=0
        Epochs to train before monitoring.

    Attributes
    ----------
    stopped_epoch : int
        The epoch at whose end training stopped; 0 if it did not stop early.
    best : float or None
        The best monitored value.
    best_epoch : int
    wait : int
    best_weights : dict or None
        The parameters at the end of ``best_epoch`` (with ``restore_best_weights``).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        if not isinstance(monitor, str) or not monitor:
            raise validation.InvalidArgument("monitor", "the name of a logged metric such as 'val_loss'", monitor)
        self.monitor = monitor
        self.mode = validation.choice("mode", mode, _MODES, ordered=True)
        if self.mode == "auto" and monitor.removeprefix("val_") not in METRIC_MODES:
            raise validation.InvalidArgument(
                "mode", "'min' or 'max' for a metric twinnet does not know", mode,
                f"EarlyStopping(monitor={monitor!r}, mode='auto'): cannot tell whether {monitor!r} should decrease "
                f"or increase; fit logs {', '.join(METRIC_MODES)} and their val_ versions. "
                f"Pass mode='min' or mode='max'.")
        min_delta = validation.finite_number("min_delta", min_delta)
        self.baseline = validation.finite_number("baseline", baseline, allow_none=True)
        self.restore_best_weights = validation.flag("restore_best_weights", restore_best_weights)
        self.patience = validation.non_negative_int("patience", patience)
        self.verbose = validation.non_negative_int("verbose", verbose)
        self.start_from_epoch = validation.non_negative_int("start_from_epoch", start_from_epoch)
        # Keras's direction, and min_delta signed as Keras signs it once it has chosen the direction:
        # an improvement is monitor_op(current - min_delta, reference).
        self._increasing = (self.mode if self.mode != "auto" else METRIC_MODES[monitor.removeprefix("val_")]) == "max"
        self.min_delta = abs(min_delta) * (1 if self._increasing else -1)
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        # As Keras: the instance may be reused across fit calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until an epoch improves, the first monitored epoch's weights are the best.
            self.best_weights = self.model.parameters
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.parameters
            # Only restart the wait if the value beats both the baseline and the previous best.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_parameters(self.best_weights)

    def get_monitor_value(self, logs):
        """The monitored value of ``logs`` as a Python float (as Keras's fit hands logs to callbacks), or an
        error naming the metrics logged (Keras's method of this name warns and returns None)."""
        logs = logs or {}
        if self.monitor not in logs:
            hint = (" Pass validation_data to fit for val_* metrics."
                    if self.monitor.startswith("val_") and not any(key.startswith("val_") for key in logs) else "")
            raise validation.InvalidArgument(
                "monitor", f"one of the logged metrics: {', '.join(logs) or 'none'}", self.monitor,
                f"EarlyStopping(monitor={self.monitor!r}): no {self.monitor!r} in this fit's logs; "
                f"available: {', '.join(logs) or 'none'}.{hint}")
        return float(logs[self.monitor])

    def _is_improvement(self, value, reference):
        # Keras: ops.greater / ops.less(value - min_delta, reference), on Python floats, which
        # TensorFlow turns into float32 tensors before comparing.
        if reference is None:
            return True
        value, reference = cast32(value - self.min_delta), cast32(reference)
        return value > reference if self._increasing else value < reference

    def __repr__(self):
        args = {"monitor": self.monitor, "min_delta": abs(self.min_delta), "patience": self.patience,
                "mode": self.mode, "baseline": self.baseline, "restore_best_weights": self.restore_best_weights,
                "start_from_epoch": self.start_from_epoch}
        return f"EarlyStopping({', '.join(f'{k}={v!r}' for k, v in args.items())})"


#: ``fit``'s ``verbose``, Keras's values: what each shows (``"auto"`` is 1, as in Keras's ``fit``).
VERBOSE = {0: "nothing", 1: "a progress bar", 2: "one line per epoch"}


def check_verbose(value):
    """``fit``'s ``verbose``: ``"auto"`` (1), 0, 1 or 2, or a bool (scikit-learn's), as an int."""
    if isinstance(value, str) and value == "auto":
        return 1
    if not (isinstance(value, (int, np.integer, bool, np.bool_)) and value in VERBOSE):
        raise validation.InvalidArgument(
            "verbose", "'auto', " + ", ".join(f"{key} ({shows})" for key, shows in VERBOSE.items()), value)
    return int(value)


def _logs_text(logs):
    """An epoch's logs, Keras's way, in 4 significant digits: ``loss: 1.2e-05 - accuracy: 0.98`` (never ``0.0000``)."""
    return " - ".join(f"{name}: {value:.4g}" for name, value in logs.items())


def _seconds(seconds):
    """A duration in 3 significant digits: ``0.123ms``, ``12.3ms``, ``1.23s``, ``123s``."""
    return f"{seconds * 1e3:.3g}ms" if seconds < 1 else f"{seconds:.3g}s" if seconds < 100 else f"{seconds:.0f}s"


def _clock(seconds):
    """A duration as a clock: ``0:01:05``."""
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


class ProgbarLogger(Callback):
    """What ``fit`` shows with ``verbose``: Keras's callback of that name, over the epochs of a fit.

    ``fit`` adds one, last of its callbacks, when ``verbose`` is 1 or 2 (as Keras's ``fit``
    does, and uses the caller's own instead where ``callbacks`` holds one), and closes its display
    when the fit ends, stops or is interrupted. It writes to standard output, as Keras's and
    scikit-learn's verbose fits do. Values have 4 significant digits (``loss: 1.2e-05``), times 3.

    - ``verbose=1``: a bar over the fit's epochs (where Keras's runs over each epoch's batches:
      twinnet's epochs take milliseconds), the time spent and the time left at the mean time per
      epoch so far, and the last epoch's logs on the line below::

          Epoch 37/100 ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 0:00:03 < 0:00:05, 12.3ms/epoch
          loss: 0.2345 - accuracy: 0.9125 - val_loss: 0.3012 - val_accuracy: 0.8875

      It is drawn by ``rich``, live in a terminal (in Jupyter, with ``ipywidgets``); in a file or a
      pipe, once, as it stands at the end of the fit.
    - ``verbose=2``: one line per epoch, for logs: the epoch, its time and its logs::

          Epoch 3/10 - 12.1ms - loss: 0.2345 - accuracy: 0.9125

    Example
    -------
    >>> import numpy as np
    >>> from twinnet.nn import Network
    >>> X = np.array([[0.0], [1.0]]); y = np.array([0, 1])
    >>> _ = Network([1, 1], seed=0).fit(X, y, epochs=2, learning_rate=0.1, verbose=2)  # doctest: +ELLIPSIS
    Epoch 1/2 - ...s - loss: 0.6... - accuracy: ...
    Epoch 2/2 - ...s - loss: 0.6... - accuracy: ...
    """

    def __init__(self):
        self.verbose, self.epochs, self._live = 0, None, None

    def set_params(self, params):
        super().set_params(params)
        self.verbose, self.epochs = check_verbose(params["verbose"]), params["epochs"]

    def on_train_begin(self, logs=None):
        self._done, self._logs, self._drawn = 0, {}, -math.inf

    def __enter__(self):
        if self.verbose == 1:
            from rich.console import Console, Group
            from rich.live import Live
            from rich.progress import BarColumn, Progress, TextColumn
            from rich.text import Text

            console = Console()  # of its own: standard output as it is now (a test's capture, a notebook's)
            self._bar = Progress(TextColumn("Epoch {task.completed}/{task.total}"), BarColumn(bar_width=30),
                                 TextColumn("{task.fields[times]}"), console=console)
            self._task = self._bar.add_task("fit", total=self.epochs, times="")
            self._text = Text()
            self._live = Live(Group(self._bar, self._text), console=console)
            self._live.start()
        self._start = self._last = time.perf_counter()  # the epochs' time, not rich's start
        return self

    def __exit__(self, *exc_info):
        if self._live is not None:
            self._draw(over=True)
            self._live.stop()
            console = self._live.console
            if not (console.is_terminal or console.is_jupyter):
                console.line()  # rich ends a terminal's display with a new line, not a file's
            self._live = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self._last, self._done, self._logs = time.perf_counter(), epoch + 1, logs or {}
        if self.verbose == 2:
            print(f"Epoch {self._done}/{self.epochs} - {_seconds(self._last - self._epoch_start)} - "
                  f"{_logs_text(self._logs)}", flush=True)
        elif self._live is not None and self._last - self._drawn >= 0.1:  # rich redraws 10 times a second
            self._draw()

    def _draw(self, over=False):
        """Bring the bar to the last epoch; ``over``: the fit is over, nothing is left."""
        self._drawn = self._last
        spent = self._last - self._start
        times = _clock(spent)
        if self._done:
            per_epoch = spent / self._done
            left = "" if over else f" < {_clock(per_epoch * (self.epochs - self._done))}"
            times += f"{left}, {_seconds(per_epoch)}/epoch"
        self._bar.update(self._task, completed=self._done, times=times)
        self._text.plain = _logs_text(self._logs)


def check_callbacks(callbacks, argument="callbacks"):
    """``fit``'s ``callbacks``: ``None`` or a list of :class:`Callback` objects, as a list.

    A Keras callback is refused with a pointer to its twinnet counterpart.
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise validation.InvalidArgument(argument, "a list of twinnet.nn.callbacks.Callback objects", callbacks)
    callbacks = list(callbacks)
    for i, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            kind = type(callback)
            twin = (f" Use twinnet.nn.callbacks.{kind.__name__} instead."
                    if kind.__module__.startswith(("keras", "tensorflow")) and kind.__name__ in __all__ else "")
            raise validation.InvalidArgument(
                f"{argument}[{i}]", "a twinnet.nn.callbacks.Callback", callback,
                f"{argument}[{i}] must be a twinnet.nn.callbacks.Callback (such as EarlyStopping or "
                f"LambdaCallback); got {kind.__module__}.{kind.__qualname__}.{twin}")
    return callbacks
