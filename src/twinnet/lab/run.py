"""Preparing, running and evaluating one run: the one home of what compare, the sweep and the bench share.

:func:`load_split` and :func:`initial_parameters` prepare a :class:`~twinnet.lab.config.RunConfig`
(:func:`load_split` also says the data's head, and standardizes regression targets);
:func:`run_engine` trains it with one engine's runner (:mod:`twinnet.lab.runners`), evaluates the
final weights of every engine with one function (``Network.evaluate``), so that accuracies differ
only by the weights, and turns a divergence into a ``"diverged"`` status instead of an exception.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from twinnet.lab.results import EngineResult
from twinnet.lab.runners import ENGINES, NO_CHECKPOINTS
from twinnet.nn.divergence import DivergenceWarning, climbed
from twinnet.nn.heads import head
from twinnet.nn.network import divergence_hint

__all__ = ["LabSplit", "evaluate", "initial_parameters", "load_split", "run_engine"]


@dataclass
class LabSplit:
    """A run's data: the train and test parts (as :class:`twinnet.data.Split`) and the data's head.

    ``output`` is the head (``config.output``, or the one the data layer inferred, said in
    ``note``), ``width`` the output layer's width it needs (1 for a sigmoid, the number of classes
    for a softmax, of targets for a linear head), ``classes`` the original class labels of a
    classifier (``y`` holds their positions 0 .. K-1). ``target_scale`` is, for regression targets
    standardized on the training part, their ``(mean, standard deviation)`` per target; else None.
    ``X_val`` and ``y_val`` are early stopping's validation part, carved from the training part
    (``X_train`` is then the rest); None without early stopping.
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    output: str = "sigmoid"
    width: int = 1
    classes: tuple | None = None
    note: str | None = None
    target_scale: tuple | None = None
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def validation_data(self):
        """``(X_val, y_val)`` for a fit's ``validation_data``, or None without a validation part."""
        return None if self.X_val is None else (self.X_val, self.y_val)


def _width(output, y, classes):
    """The output width a head needs on targets ``y`` (a sigmoid's are two classes: the loader checked)."""
    if not head(output).classifier:
        return 1 if y.ndim == 1 else int(y.shape[1])
    if head(output).binary:
        return 1
    return len(classes) if classes is not None else int(np.max(y, initial=1)) + 1


def _standardized_targets(y_train, y_test):
    """Targets scaled to mean 0 and standard deviation 1 on the training part (a constant target: by 1).

    Computed on the targets scaled by a power of two (exactly), so that targets near 1e300 do not overflow.
    """
    from twinnet.data import unit_scale

    power = unit_scale(y_train)
    y_train, y_test = y_train * power, y_test * power
    mean = y_train.mean(axis=0)
    sd = y_train.std(axis=0)
    sd = np.where(sd > 0, sd, power)  # as StandardScaler: a constant target is only centred
    return (y_train - mean) / sd, (y_test - mean) / sd, (mean / power, sd / power)


def load_split(config):
    """Load ``config.data`` with its head, split it and standardize it on the training part.

    The data layer says the head (``config.output``, or the data set's, inferred: the note says
    how) and the class labels. Classifiers' splits are stratified. With ``config.standardize`` the
    features are scaled to mean 0 and variance 1 with the training part's statistics, and so are
    regression targets: a linear head's loss and RMSE are then in standard deviations of the target
    (R^2 is unchanged by the scaling), whatever the data's units. ``data.split`` leaves targets
    alone: this is the one place they are scaled. With ``config.early_stopping``, a validation part
    is then carved from the (standardized) training part: see :func:`_carve_validation`.

    Returns
    -------
    LabSplit
    """
    from twinnet import data

    loaded = data.load_dataset(config.data, output=config.output)
    output = loaded.output
    classes = None if loaded.classes is None else tuple(loaded.classes)
    width = _width(output, np.asarray(loaded.y), classes)
    split = data.split(loaded.X, loaded.y, test_size=config.test_size, seed=config.seed,
                       stratify=head(output).classifier, standardize=config.standardize, dtype=config.dtype)
    y_train, y_test, scale = split.y_train, split.y_test, None
    if not head(output).classifier:
        if config.standardize:
            y_train, y_test, scale = _standardized_targets(np.asarray(y_train, dtype=float),
                                                           np.asarray(y_test, dtype=float))
        y_train, y_test = np.asarray(y_train, dtype=config.dtype), np.asarray(y_test, dtype=config.dtype)
    lab_split = LabSplit(split.X_train, split.X_test, y_train, y_test, output=output, width=width,
                         classes=classes, note=loaded.note, target_scale=scale)
    if config.early_stopping is not None:
        _carve_validation(lab_split, config)
    return lab_split


def _carve_validation(split, config):
    """Hold out early stopping's validation part of ``split``'s training part, in place.

    ``ceil(validation_fraction * n_train)`` examples drawn with the run's seed, stratified by class
    for classifiers, as scikit-learn's ``early_stopping`` holds them out of the data it is given:
    after the standardization (its statistics are those of the whole training part) and before
    training. The test part stays as it is without early stopping.
    """
    from twinnet import data

    n_train = split.X_train.shape[0]
    try:
        part = data.split(split.X_train, split.y_train, test_size=config.validation_fraction, seed=config.seed,
                          stratify=head(split.output).classifier)
    except ValueError as exc:
        why = str(exc).replace("test_size=", "validation_fraction=")
        smaller = "Lower" if config.validation_fraction > 0.5 else "Raise"  # toward the part that is too small
        raise ValueError(f"early_stopping cannot hold out validation_fraction={config.validation_fraction} of the "
                         f"{n_train} training examples of data {config.data!r} for validation: {why} {smaller} "
                         "validation_fraction, or turn early stopping off.") from None
    split.X_train, split.X_val, split.y_train, split.y_val = part.X_train, part.X_test, part.y_train, part.y_test


def initial_parameters(config):
    """The weights every engine starts from: ``Network(layers, output=..., init=..., seed=...)``'s."""
    from twinnet import Network

    return Network(list(config.layers), output=config.output, hidden_activation=config.hidden_activation,
                   init=config.init, batch_norm=config.batch_norm, seed=config.seed, dtype=config.dtype).parameters


def network(parameters, config):
    """``Network.from_parameters`` with the config's head, hidden activation, L2 penalty, batch
    normalization and dtype.

    Its ``evaluate`` reports the loss with the L2 penalty, as the engines' loss curves (and Keras's
    ``evaluate``) do, and normalizes with the moving statistics; dropout, which only acts in
    training, is left out.
    """
    from twinnet import Network

    return Network.from_parameters(parameters, output=config.output, hidden_activation=config.hidden_activation,
                                   l2=config.l2, batch_norm=config.batch_norm, dtype=config.dtype)


def evaluate(parameters, config, split):
    """Train and test metrics of ``parameters`` by ``Network.evaluate``, the same function for every engine.

    Returns
    -------
    dict
        ``train_loss``, ``train_<metric>``, ``test_loss``, ``test_<metric>`` for the head's metrics
        (:func:`twinnet.lab.results.metric_keys`): accuracy; or RMSE and R^2.
    """
    net = network(parameters, config)
    out = {}
    for part, X, y in (("train", split.X_train, split.y_train), ("test", split.X_test, split.y_test)):
        out.update({f"{part}_{name}": float(value) for name, value in net.evaluate(X, y).items()})
    return out


def _checkpoints(name, config, checkpoints):
    wanted = sorted({int(e) for e in checkpoints} - {config.epochs})
    if wanted and not 1 <= wanted[0] <= wanted[-1] <= config.epochs:
        raise ValueError(f"checkpoints must be epochs between 1 and epochs={config.epochs}; "
                         f"got checkpoints={list(checkpoints)}.")
    if wanted and name in NO_CHECKPOINTS:
        raise ValueError(f"engine {name!r} cannot report intermediate checkpoints: {NO_CHECKPOINTS[name]}.")
    if wanted and config.early_stopping is not None:
        raise ValueError(f"checkpoints={list(checkpoints)} with early_stopping={config.early_stopping}: early "
                         "stopping ends each run at its own epoch and restores its best weights at the end, "
                         "so a run has no result at an earlier epoch; give no checkpoints.")
    return wanted


class _Observer:
    """A runner's ``observe(epochs_done, current)``: reports progress and evaluates the checkpoints,
    keeping the time spent evaluating out of the run's."""

    def __init__(self, wanted, config, split, progress):
        self.wanted, self.config, self.split, self.progress = wanted, config, split, progress
        self.points, self.evaluating = [], 0.0

    def __call__(self, done, current=None):
        self.progress(done)
        if done in self.wanted and current is not None:
            start = time.perf_counter()
            self.points.append({"epoch": done, **evaluate(current(), self.config, self.split)})
            self.evaluating += time.perf_counter() - start


def run_engine(name, config, split, initial, progress=lambda epochs_done: None, checkpoints=()):
    """Train ``config`` with engine ``name`` from ``initial`` and evaluate the result.

    Parameters
    ----------
    name : str
        A key of :data:`~twinnet.lab.runners.ENGINES`.
    config : RunConfig
        With ``layers`` resolved (:meth:`RunConfig.with_layers`).
    split : twinnet.data.Split
    initial : dict
        The initial parameters dict, shared by all engines (left unchanged).
    progress : callable
        ``progress(epochs_done)``.
    checkpoints : sequence of int
        Epochs (between 1 and ``config.epochs``) after which the weights are also evaluated, in
        the same run; the time spent evaluating is not counted in ``seconds``.

    Returns
    -------
    EngineResult
        ``status`` is ``"diverged"``, and ``error`` says how, when the loss or the weights stopped
        being finite, or the loss climbed (:func:`twinnet.nn.divergence.climbed`).
        ``checkpoints`` holds the metrics at each requested epoch reached, and at the last epoch
        (``config.epochs``; with early stopping, those of the restored best weights, wherever it stopped).
    """
    observer = _Observer(_checkpoints(name, config, checkpoints), config, split, progress)
    initial = {k: np.array(v, dtype=config.dtype) for k, v in initial.items()}
    start = time.perf_counter()
    progress(0)
    # A diverging run overflows on purpose: it is reported in the result, not as warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        try:
            trained = ENGINES[name].runner(config, split, initial, observer)
        except FloatingPointError as exc:  # an engine that stops when its loss stops being finite
            seconds = time.perf_counter() - start - observer.evaluating
            return _stopped(name, config, split, exc, seconds, observer.points)
    epochs_run = len(trained.loss_curve)  # fewer than config.epochs when early stopping ended the run
    progress(epochs_run)
    seconds = trained.seconds - observer.evaluating
    nan = float("nan")
    result = EngineResult(
        engine=name, loss_curve=[float(v) for v in trained.loss_curve], train_loss=nan,
        train_accuracy=nan, test_loss=nan, test_accuracy=nan, seconds=seconds,
        ms_per_epoch=1000.0 * seconds / max(epochs_run, 1), same_trajectory=trained.same_trajectory,
        note=trained.note, parameters=trained.parameters, checkpoints=observer.points, epochs_run=epochs_run,
        stopped_epoch=trained.stopped_epoch, best_epoch=trained.best_epoch)
    _judge(result, config, split, initial)
    return result


def _divergence_hint(config, split):
    """:func:`~twinnet.nn.network.divergence_hint` of a run: its training data, l2 and constant learning rate."""
    return divergence_hint(split.X_train, None if head(split.output).classifier else split.y_train, l2=config.l2,
                           learning_rate=None if config.lr_schedule else config.learning_rate)


def _stopped(name, config, split, exc, seconds, points):
    """The result of an engine that raised ``FloatingPointError``: diverged."""
    hint = _divergence_hint(config, split)
    message = str(exc).rstrip(".")
    if not message.endswith(hint):  # Network's own message already gives it
        message += f"; {hint}"
    nan = float("nan")
    return EngineResult(name, [], nan, nan, nan, nan, seconds, 1000.0 * seconds / config.epochs,
                        error=f"diverged: {message}", status="diverged", checkpoints=points)


def _judge(result, config, split, initial):
    """Evaluate ``result``'s final weights into it, or mark it diverged (status and error)."""
    hint = _divergence_hint(config, split)
    curve = np.asarray(result.loss_curve, dtype=float)
    bad = np.flatnonzero(~np.isfinite(curve))
    if bad.size or not all(np.isfinite(w).all() for w in result.parameters.values()):
        where = f"at epoch {bad[0] + 1}" if bad.size else "in the final weights"
        result.error = (f"diverged: the loss became non-finite {where} "
                        f"(learning_rate={config.learning_rate}); {hint}")
        result.status = "diverged"
        return
    final = evaluate(result.parameters, config, split)
    for key, value in final.items():
        setattr(result, key, value)
    result.checkpoints.append({"epoch": config.epochs, **final})
    rise = _rise(result.loss_curve, evaluate(initial, config, split)["train_loss"], final["train_loss"])
    if rise:
        result.error = f"diverged: {rise} (learning_rate={config.learning_rate}); {hint}"
        result.status = "diverged"


def _rise(curve, initial_loss, final_loss):
    """How the training loss climbed (:func:`twinnet.nn.divergence.climbed`), or None.

    Two views, since engines clip the loss they report differently (the notebook's cost saturates
    near 700 per wrong example): the engine's own curve, and the final weights' loss against the
    initial weights', both computed by ``Network.evaluate``.
    """
    if curve and climbed(curve[0], max(curve)):
        peak = int(np.argmax(curve))
        return f"the loss climbed from {curve[0]:.3g} to {curve[peak]:.3g} at epoch {peak + 1}"
    if climbed(initial_loss, final_loss):
        return f"the loss of the final weights is {final_loss:.3g}, that of the initial weights {initial_loss:.3g}"
    return None
