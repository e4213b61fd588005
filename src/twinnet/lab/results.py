"""What a run gives back: a runner's :class:`Trained`, the evaluated :class:`EngineResult`, its status."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

__all__ = ["STATUSES", "EngineResult", "Trained", "finite_or_none", "format_number",
           "metric_names", "metric_keys"]

#: How a run ended: ``ok``; ``diverged`` (its loss or weights stopped being finite, or its loss
#: climbed past :data:`twinnet.nn.divergence.DIVERGENCE_FACTOR` times where it started, the rule
#: ``Network.fit`` warns by); ``failed`` (an error, set by the sweep). The sweep's store rows use
#: the same field and values.
STATUSES = ("ok", "diverged", "failed")


def metric_names(output):
    """The metrics a head reports beside its loss, as ``Network.evaluate`` names them.

    Classifiers (sigmoid, softmax): ``("accuracy",)``; regression (linear): ``("rmse", "r2")``.
    ``output=None`` is the notebook's sigmoid.
    """
    from twinnet.nn.heads import head

    return head(output).metrics


def metric_keys(output):
    """The keys of a result's metrics, in table order: ``train_loss``, the train metrics, then the test ones."""
    return tuple(f"{part}_{name}" for part in ("train", "test") for name in ("loss", *metric_names(output)))


def finite_or_none(value):
    """``None`` for a float NaN or infinity (JSON has neither), the value otherwise."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def format_number(value, spec, missing="-"):
    """``format(value, spec)``, or ``missing`` for no figure (None, NaN, infinity): tables, CSV, HTML."""
    return missing if finite_or_none(value) is None else format(value, spec)


class Trained(NamedTuple):
    """What a runner hands back: the loss per epoch, the final weights, the training time.

    With early stopping, ``stopped_epoch`` is the epoch (counted from 1) after which it ended the
    training, None when every epoch ran, and ``best_epoch`` the epoch whose weights were restored.
    """

    loss_curve: list
    parameters: dict
    seconds: float
    same_trajectory: bool = True  # same start, same batch order (and dropout masks) as the other engines
    note: str | None = None
    stopped_epoch: int | None = None
    best_epoch: int | None = None


@dataclass
class EngineResult:
    """The outcome of one engine on one configuration.

    ``status`` is one of :data:`STATUSES`; when it is not ``"ok"``, ``error`` says why and the
    metrics are NaN, or those of weights that are no result (a diverged run's). The metrics are
    those of the run's head (:func:`metric_names`); the others stay NaN: accuracy for classifiers,
    RMSE and R^2 for regression (in standard deviations of the targets when they were standardized).
    The losses include the L2 penalty, as Keras's ``evaluate`` reports them; the metrics do not.

    ``epochs_run`` is the number of epochs trained (``len(loss_curve)``); with early stopping,
    ``stopped_epoch`` is the epoch (counted from 1) after which it stopped the run, None if it ran
    every epoch, and ``best_epoch`` the epoch whose weights it restored: the final weights.
    """

    engine: str
    loss_curve: list
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float
    ms_per_epoch: float
    same_trajectory: bool = True
    note: str | None = None
    error: str | None = None
    status: str = "ok"
    #: metrics after each checkpoint epoch: dicts of epoch and :func:`metric_keys`
    checkpoints: list = field(default_factory=list)
    parameters: dict | None = field(default=None, repr=False)
    train_rmse: float = float("nan")
    train_r2: float = float("nan")
    test_rmse: float = float("nan")
    test_r2: float = float("nan")
    epochs_run: int | None = None
    stopped_epoch: int | None = None
    best_epoch: int | None = None

    def to_dict(self):
        """JSON-ready: NaN becomes ``None``; the final parameters are left out."""
        d = {k: finite_or_none(v) for k, v in asdict(self).items() if k not in ("parameters", "loss_curve")}
        d["loss_curve"] = [finite_or_none(float(v)) for v in self.loss_curve]
        return d
