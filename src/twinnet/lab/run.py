"""Preparing, running and evaluating one run: the one home of what compare, the sweep and the bench share.

:func:`load_split` and :func:`initial_parameters` prepare a :class:`~twinnet.lab.config.RunConfig`;
:func:`run_engine` trains it with one engine's runner (:mod:`twinnet.lab.runners`), evaluates the
final weights of every engine with one function (``Network.evaluate``), so that accuracies differ
only by the weights, and turns a divergence into a ``"diverged"`` status instead of an exception.
"""

from __future__ import annotations

import time

import numpy as np

from twinnet.lab.results import DIVERGENCE_FACTOR, EngineResult
from twinnet.lab.runners import ENGINES, NO_CHECKPOINTS
from twinnet.nn.network import divergence_hint

__all__ = ["evaluate", "initial_parameters", "load_split", "run_engine"]


def load_split(config):
    """Load ``config.data``, split it (stratified) and standardize it on the training part."""
    from twinnet import data

    X, y = data.load(config.data)
    return data.split(X, y, test_size=config.test_size, seed=config.seed,
                      standardize=config.standardize, dtype=config.dtype)


def initial_parameters(config):
    """The weights every engine starts from: ``Network(layers, init=..., seed=...)``'s."""
    from twinnet import Network

    return Network(list(config.layers), hidden_activation=config.hidden_activation, init=config.init,
                   seed=config.seed, dtype=config.dtype).parameters


def evaluate(parameters, config, split):
    """Train and test loss and accuracy of ``parameters``, by ``Network.evaluate`` for every engine."""
    from twinnet import Network

    net = Network.from_parameters(parameters, hidden_activation=config.hidden_activation,
                                  dtype=config.dtype)
    train = net.evaluate(split.X_train, split.y_train)
    test = net.evaluate(split.X_test, split.y_test)
    return {"train_loss": float(train["loss"]), "train_accuracy": float(train["accuracy"]),
            "test_loss": float(test["loss"]), "test_accuracy": float(test["accuracy"])}


def _checkpoints(name, config, checkpoints):
    wanted = sorted({int(e) for e in checkpoints} - {config.epochs})
    if wanted and not 1 <= wanted[0] <= wanted[-1] <= config.epochs:
        raise ValueError(f"checkpoints must be epochs between 1 and epochs={config.epochs}; "
                         f"got checkpoints={list(checkpoints)}.")
    if wanted and name in NO_CHECKPOINTS:
        raise ValueError(f"engine {name!r} cannot report intermediate checkpoints: {NO_CHECKPOINTS[name]}.")
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
        being finite, or the loss climbed past :data:`DIVERGENCE_FACTOR` times its start.
        ``checkpoints`` holds the metrics at each requested epoch reached, and at the last epoch.
    """
    observer = _Observer(_checkpoints(name, config, checkpoints), config, split, progress)
    initial = {k: np.array(v, dtype=config.dtype) for k, v in initial.items()}
    start = time.perf_counter()
    progress(0)
    # A diverging run overflows on purpose: it is reported in the result, not as warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            trained = ENGINES[name].runner(config, split, initial, observer)
        except FloatingPointError as exc:  # an engine that stops when its loss stops being finite
            seconds = time.perf_counter() - start - observer.evaluating
            return _stopped(name, config, split, exc, seconds, observer.points)
    progress(config.epochs)
    seconds = trained.seconds - observer.evaluating
    nan = float("nan")
    result = EngineResult(
        engine=name, loss_curve=[float(v) for v in trained.loss_curve], train_loss=nan,
        train_accuracy=nan, test_loss=nan, test_accuracy=nan, seconds=seconds,
        ms_per_epoch=1000.0 * seconds / config.epochs, same_trajectory=trained.same_trajectory,
        note=trained.note, parameters=trained.parameters, checkpoints=observer.points)
    _judge(result, config, split, initial)
    return result


def _stopped(name, config, split, exc, seconds, points):
    """The result of an engine that raised ``FloatingPointError``: diverged."""
    hint = divergence_hint(split.X_train)
    message = str(exc).rstrip(".")
    if not message.endswith(hint):  # Network's own message already gives it
        message += f"; {hint}"
    nan = float("nan")
    return EngineResult(name, [], nan, nan, nan, nan, seconds, 1000.0 * seconds / config.epochs,
                        error=f"diverged: {message}", status="diverged", checkpoints=points)


def _judge(result, config, split, initial):
    """Evaluate ``result``'s final weights into it, or mark it diverged (status and error)."""
    hint = divergence_hint(split.X_train)
    curve = np.asarray(result.loss_curve, dtype=float)
    bad = np.flatnonzero(~np.isfinite(curve))
    if bad.size or not all(np.isfinite(w).all() for w in result.parameters.values()):
        where = f"at epoch {bad[0] + 1}" if bad.size else "in the final weights"
        result.error = (f"diverged: the loss became non-finite {where} "
                        f"(learning_rate={config.learning_rate}); {hint}")
        result.status = "diverged"
        return
    final = evaluate(result.parameters, config, split)
    result.train_loss, result.train_accuracy = final["train_loss"], final["train_accuracy"]
    result.test_loss, result.test_accuracy = final["test_loss"], final["test_accuracy"]
    result.checkpoints.append({"epoch": config.epochs, **final})
    rise = _rise(result.loss_curve, evaluate(initial, config, split)["train_loss"], final["train_loss"])
    if rise:
        result.error = f"diverged: {rise} (learning_rate={config.learning_rate}); {hint}"
        result.status = "diverged"


def _rise(curve, initial_loss, final_loss):
    """How the training loss climbed past DIVERGENCE_FACTOR times its start, or None.

    Two views, since engines clip the loss they report differently (the notebook's cost saturates
    near 700 per wrong example): the engine's own curve, and the final weights' loss against the
    initial weights', both computed by ``Network.evaluate``.
    """
    if curve and max(curve) > DIVERGENCE_FACTOR * curve[0]:
        peak = int(np.argmax(curve))
        return f"the loss climbed from {curve[0]:.3g} to {curve[peak]:.3g} at epoch {peak + 1}"
    if final_loss > DIVERGENCE_FACTOR * initial_loss:
        return f"the loss of the final weights is {final_loss:.3g}, that of the initial weights {initial_loss:.3g}"
    return None
