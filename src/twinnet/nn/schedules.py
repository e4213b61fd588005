"""Learning-rate schedules with Keras 3's names, arguments and values, to the last bit.

``Network.fit(learning_rate=...)`` takes a float or one of these: a schedule is called with the
optimizer step ``step`` (0, 1, 2, ...: the number of updates done before this one, Keras's
``optimizer.iterations``) and returns the learning rate that Keras's ``fit`` uses for that update,
computed in float32 op by op (:mod:`twinnet.nn.float32`; why, in ``docs/verification.md``).
Command-line specs of these schedules are read by :func:`twinnet.nn.schedule_parse.parse`.

Examples
--------
>>> from twinnet.nn.schedules import CosineDecay
>>> schedule = CosineDecay(0.0, decay_steps=100, warmup_target=0.1, warmup_steps=10)
>>> [round(schedule(step), 4) for step in (0, 5, 10, 60, 110, 500)]
[0.0, 0.05, 0.1, 0.05, 0.0, 0.0]
"""

from __future__ import annotations

import bisect
import inspect
import math

import numpy as np

from twinnet import validation
from twinnet.nn.float32 import cos32, pow32, reciprocal32, round32

__all__ = [
    "SCHEDULES",
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "check_learning_rate",
]


# --------------------------------------------------------------------------- the schedules
class LearningRateSchedule:
    """Base class: the learning rate of each optimizer step, as Keras's ``fit`` computes it.

    Subclasses implement ``__call__(step) -> float`` and :meth:`get_config` (Keras's keys, so that
    ``keras.optimizers.schedules.<Class>.from_config(schedule.get_config())`` is Keras's twin of
    ``schedule``), and name themselves in :data:`SCHEDULES` with ``kind``.
    """

    #: Name in :data:`SCHEDULES` and in command-line specs.
    kind = ""
    #: A command-line spec of this schedule, for messages.
    example = ""
    #: Argument -> type of its text in a command-line spec (``float``, ``int``, ``bool``, ``list[int]``,
    #: ``list[float]``).
    spec_types: dict = {}

    def __call__(self, step):
        """The learning rate of optimizer step ``step`` (0 for the first update), as a Python float."""
        raise NotImplementedError

    def get_config(self):
        """The constructor's arguments, under Keras's keys and in Keras's order."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def to_spec(self):
        """The command-line spec :func:`twinnet.nn.schedule_parse.parse` reads back into this schedule."""
        def text(value):
            if isinstance(value, bool):
                return str(value).lower()
            if isinstance(value, list):
                return "[" + ",".join(map(repr, value)) + "]"
            return repr(value)
        config = self.get_config()
        items = [f"{key}={text(config[key])}" for key in self.spec_types if config.get(key) is not None]
        return f"{self.kind}:{','.join(items)}"

    def __repr__(self):
        try:
            config = dict(self.get_config())
        except NotImplementedError:  # a user's schedule need not describe itself
            config = {}
        name = inspect.signature(type(self)).parameters.get("name")  # a user's schedule may take none
        if "name" in config and config["name"] == ((name and name.default) or type(self).__name__):
            del config["name"]
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = None


class _StepDecay(LearningRateSchedule):
    """What ``ExponentialDecay`` and ``InverseTimeDecay`` share: Keras's four arguments and their config."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        self.initial_learning_rate = validation.float32_rate("initial_learning_rate", initial_learning_rate)
        self.decay_steps = validation.steps("decay_steps", decay_steps)
        self.decay_rate = validation.float32_rate("decay_rate", decay_rate)
        self.staircase = validation.flag("staircase", staircase)
        self.name = validation.name("name", type(self).__name__ if name is None else name)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """Keras's ``ExponentialDecay``: ``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``: the rate drops every
    ``decay_steps`` updates.

    Parameters
    ----------
    initial_learning_rate : float
        The learning rate of step 0, > 0.
    decay_steps : int
        Steps per factor ``decay_rate``, >= 1.
    decay_rate : float
        > 0 (< 1 decays).
    staircase : bool, default=False
    name : str, default="ExponentialDecay"
        Keras's name of the operation; kept for :meth:`get_config`.
    """

    kind = "exponential"
    example = "exponential:decay_steps=100,decay_rate=0.5"
    spec_types = {"initial_learning_rate": float, "decay_steps": int, "decay_rate": float, "staircase": bool}

    def __call__(self, step):
        # Keras: p = step / decay_steps; p = floor(p) if staircase; lr * decay_rate ** p
        # fit's graph: p = step * (1 / decay_steps)
        p = round32(round32(step) * reciprocal32(self.decay_steps))
        if self.staircase:
            p = float(math.floor(p))
        return round32(round32(self.initial_learning_rate) * pow32(round32(self.decay_rate), p))


class InverseTimeDecay(_StepDecay):
    """Keras's ``InverseTimeDecay``: ``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    With ``staircase=True``, ``step / decay_steps`` is floored.

    Parameters
    ----------
    initial_learning_rate : float
        The learning rate of step 0, > 0.
    decay_steps : int
        >= 1.
    decay_rate : float
        > 0.
    staircase : bool, default=False
    name : str, default="InverseTimeDecay"
    """

    kind = "inverse_time"
    example = "inverse_time:decay_steps=100,decay_rate=0.5"
    spec_types = ExponentialDecay.spec_types

    def __call__(self, step):
        # Keras: p = step / decay_steps; p = floor(p) if staircase; lr / (1 + decay_rate * p)
        step, rate = round32(step), round32(self.decay_rate)
        if self.staircase:  # fit's graph: decay_rate * floor(step * (1 / decay_steps))
            decay = round32(rate * math.floor(round32(step * reciprocal32(self.decay_steps))))
        else:  # fit's graph: step * (decay_rate * (1 / decay_steps)), the constants folded together
            decay = round32(step * round32(rate * reciprocal32(self.decay_steps)))
        return round32(round32(self.initial_learning_rate) / round32(1.0 + decay))


class PiecewiseConstantDecay(LearningRateSchedule):
    """Keras's ``PiecewiseConstantDecay``: ``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]``.

    ``values[0]`` up to and including step ``boundaries[0]``, ``values[-1]`` after
    ``boundaries[-1]``; each value rounded to float32.

    Parameters
    ----------
    boundaries : list of int
        Strictly increasing steps, >= 0; at least one.
    values : list of float
        ``len(boundaries) + 1`` learning rates, each > 0.
    name : str, default="PiecewiseConstant"
    """

    kind = "piecewise"
    example = "piecewise:boundaries=[100,500],values=[0.1,0.05,0.01]"
    spec_types = {"boundaries": list[int], "values": list[float]}

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if np.ndim(boundaries) != 1 or len(boundaries) < 1 or not all(validation.is_int(b) for b in boundaries):
            raise validation.InvalidArgument("boundaries", "a list of at least one integer step, e.g. [100, 500]",
                                             boundaries)
        boundaries = [int(b) for b in boundaries]
        if boundaries[0] < 0 or any(a >= b for a, b in zip(boundaries, boundaries[1:])):
            raise validation.InvalidArgument("boundaries", "strictly increasing steps >= 0", boundaries)
        boundaries = [validation.steps(f"boundaries[{i}]", b, minimum=0) for i, b in enumerate(boundaries)]
        if np.ndim(values) != 1 or len(values) != len(boundaries) + 1:
            raise validation.InvalidArgument(
                "values", f"a list of len(boundaries) + 1 = {len(boundaries) + 1} learning rates", values,
                f"values must hold len(boundaries) + 1 = {len(boundaries) + 1} learning rates, one per interval "
                f"(before, between and after boundaries={boundaries}); got values={values!r}.")
        self.boundaries = boundaries
        self.values = [validation.float32_rate(f"values[{i}]", v) for i, v in enumerate(values)]
        self.name = validation.name("name", name)

    def __call__(self, step):
        # Keras sums value_i * (boundary_{i-1} < step <= boundary_i) over the intervals: exactly one
        # term is not 0, so the sum is that value in float32.
        return round32(self.values[bisect.bisect_left(self.boundaries, step)])

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Keras's ``CosineDecay``, with its optional linear warm-up.

    Without ``warmup_target``: from ``initial_learning_rate`` to ``initial_learning_rate * alpha``
    along half a cosine over ``decay_steps`` steps, then constant::

        s = min(step, decay_steps)
        lr = initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)

    With ``warmup_target``: a straight line from ``initial_learning_rate`` (step 0) towards
    ``warmup_target`` (reached at step ``warmup_steps``), then the cosine from ``warmup_target``
    to ``warmup_target * alpha`` over the next ``decay_steps`` steps.

    Parameters
    ----------
    initial_learning_rate : float
        > 0; may be 0 with a warm-up (Keras's example warms up from 0).
    decay_steps : int
        >= 1.
    alpha : float, default=0.0
        The final learning rate as a fraction of the decay's start, in [0, 1].
    name : str, default="CosineDecay"
    warmup_target : float, optional
        The learning rate the warm-up reaches, > 0; ``None``: no warm-up.
    warmup_steps : int, default=0
        Length of the warm-up, >= 0; needs ``warmup_target``.
    """

    kind = "cosine"
    example = "cosine:decay_steps=500,warmup_steps=50,warmup_target=0.2"
    spec_types = {"initial_learning_rate": float, "decay_steps": int, "alpha": float,
                  "warmup_target": float, "warmup_steps": int}

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = validation.float32_rate("initial_learning_rate", initial_learning_rate,
                                                   allow_zero=warmup_target is not None)
        self.decay_steps = validation.steps("decay_steps", decay_steps)
        self.alpha = validation.fraction("alpha", alpha, "[0, 1]")
        self.name = validation.name("name", name)
        self.warmup_target = None if warmup_target is None else validation.float32_rate("warmup_target", warmup_target)
        self.warmup_steps = validation.steps("warmup_steps", warmup_steps, minimum=0)
        if self.warmup_steps and self.warmup_target is None:
            raise validation.InvalidArgument(
                "warmup_target", "the learning rate reached at the end of the warm-up", None,
                f"warmup_steps={self.warmup_steps} needs warmup_target, the learning rate the warm-up reaches "
                f"(Keras would ignore warmup_steps); e.g. warmup_target={10 * self.initial_learning_rate:g}.")

    def __call__(self, step):
        lr, decay_steps = round32(self.initial_learning_rate), round32(self.decay_steps)
        half = round32(0.5 * round32(1 - self.alpha))  # fit's graph folds 0.5 * (1 - alpha) into one constant
        if self.warmup_target is None:
            s = min(round32(step), decay_steps)
            # Keras: pi * (s / decay_steps); fit's graph: s * (pi * (1 / decay_steps))
            x = round32(s * round32(round32(math.pi) * reciprocal32(self.decay_steps)))
            return round32(lr * self._decayed(x, half))
        target, warmup_steps = round32(self.warmup_target), round32(self.warmup_steps)
        s = min(round32(step), round32(decay_steps + warmup_steps))
        # Both branches of Keras's ops.cond reach their divisions through the cond's switches, which
        # grappler does not rewrite: true divisions here.
        if s < warmup_steps:  # (warmup_target - lr) * (s / warmup_steps) + lr
            return round32(round32(round32(target - lr) * round32(s / warmup_steps)) + lr)
        x = round32(round32(math.pi) * round32(round32(s - warmup_steps) / decay_steps))
        return round32(target * self._decayed(x, half))

    def _decayed(self, x, half):
        # Keras: (1 - alpha) * (0.5 * (1 + cos(x))) + alpha; fit's graph: (1 + cos(x)) * half + alpha
        return round32(round32(round32(cos32(x) + 1.0) * half) + round32(self.alpha))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


#: Command-line name -> schedule class (Keras's class of the same name).
SCHEDULES = {cls.kind: cls for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)}


def check_learning_rate(value, argument="learning_rate"):
    """``fit``'s ``learning_rate``: a finite number > 0 (as a Python float) or a :class:`LearningRateSchedule`."""
    if isinstance(value, LearningRateSchedule):
        return value
    if not (validation.is_real(value) and math.isfinite(value) and value > 0):
        raise validation.InvalidArgument(
            argument, "a finite number > 0 or a schedule from twinnet.nn.schedules", value,
            f"{argument} must be a finite number > 0 or a schedule such as "
            f"twinnet.nn.schedules.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5); got {argument}={value!r}.")
    return float(value)
