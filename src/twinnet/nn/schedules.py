"""Learning-rate schedules with Keras 3's names, arguments and values, to the last bit.

``Network.fit(learning_rate=...)`` takes a float or one of these: a schedule is called with the
optimizer step ``step`` (0, 1, 2, ...: the number of updates done before this one, Keras's
``optimizer.iterations``) and returns that update's learning rate as a Python float.

Exactly Keras's values: those its ``fit`` uses
----------------------------------------------
Keras computes every schedule in float32 (``ops.convert_to_tensor(0.1)`` is float32 even under
``floatx`` float64) and its ``fit`` runs it inside a ``tf.function``, where TensorFlow's graph
optimizer (grappler) rewrites the arithmetic before it runs: ``x / c`` for a constant ``c``
becomes ``x * (1 / c)``, and constants are pushed together (``c1 * (x / c2)`` becomes
``x * (c1 * (1 / c2))``). The values ``fit`` trains with therefore differ from those of calling the
Keras schedule eagerly, ``schedule(step)``, at many steps: by an ulp of the exponent or of the
cosine's argument, which ``pow`` and ``1 + cos`` near its end can turn into many ulps of the
learning rate (see the tests). We reproduce the values ``fit`` uses, op by op as in the optimized
graph, each op rounded to float32 as TensorFlow's kernels round it:

- ``+ - * /``, ``floor`` and ``min`` as IEEE float32 ops, the same on every CPU;
- ``pow`` and ``cos`` with the C library's ``powf`` and ``cosf``, which TensorFlow's kernels call
  for a scalar. NumPy's float32 ``cos`` is its own SIMD code and, on the AVX2 machine we measured,
  differed from ``cosf`` at 1 to 5 % of the steps; ``cos`` in float64 rounded to float32 still
  differed at about 1 step in 1,000. Where the C library cannot be loaded (``ctypes``), both
  functions fall back to float64 rounded to float32, which leaves an error of at most about
  ``2**-23`` times the learning rate (``1 + cos`` near its end keeps an ulp of 1 as it is);
- subnormal results flushed to zero, as TensorFlow's threads run with flush-to-zero set (an
  ``ExponentialDecay`` that decays far enough reaches 0 where NumPy would keep a subnormal).

A float64 network then uses the float32 value, as Keras's optimizer casts it to the variable's
dtype.

Public names
------------
:class:`LearningRateSchedule` (the base class), :class:`ExponentialDecay`,
:class:`InverseTimeDecay`, :class:`PiecewiseConstantDecay`, :class:`CosineDecay` (with warm-up),
:data:`SCHEDULES` (command-line name -> class), :func:`parse` (a command-line spec such as
``"exponential:decay_steps=100,decay_rate=0.5"``) and :func:`check_learning_rate` (``fit``'s
check of its ``learning_rate``).

Examples
--------
>>> from twinnet.nn.schedules import CosineDecay, parse
>>> schedule = CosineDecay(0.0, decay_steps=100, warmup_target=0.1, warmup_steps=10)
>>> [round(schedule(step), 4) for step in (0, 5, 10, 60, 110, 500)]
[0.0, 0.05, 0.1, 0.05, 0.0, 0.0]
>>> parse("exponential:decay_steps=100,decay_rate=0.5", initial_learning_rate=0.1)
ExponentialDecay(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.5, staircase=False)
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import functools
import inspect
import math
import struct

import numpy as np

from twinnet import validation

__all__ = [
    "SCHEDULES",
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "check_learning_rate",
    "parse",
]


# --------------------------------------------------------------------------- float32 as TensorFlow rounds it
# Values are Python floats holding float32 values. One op of two float32 values computed in float64
# and rounded once to float32 is the float32 op exactly (53 >= 2 * 24 + 2 bits), so ``_f32(a * b)``
# is TensorFlow's float32 product, without NumPy's scalar overhead and overflow warnings.
_FLOAT32 = struct.Struct("f")
_TINY = validation.FLOAT32_TINY  # below it TensorFlow flushes to 0


def _f32(x):
    """``x`` rounded to float32 as a TensorFlow kernel leaves it: a subnormal flushed to a signed zero."""
    try:
        x = _FLOAT32.unpack(_FLOAT32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)
    if x != 0 and -_TINY < x < _TINY:
        return math.copysign(0.0, x)
    return x


@functools.cache
def _libm():
    """``(cosf, powf)`` from the C library TensorFlow's kernels call, or ``None`` where it cannot be loaded."""
    for name in ("libm.so.6", ctypes.util.find_library("m")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            cosf, powf = lib.cosf, lib.powf
        except (OSError, AttributeError):
            continue
        cosf.restype, cosf.argtypes = ctypes.c_float, [ctypes.c_float]
        powf.restype, powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
        return cosf, powf
    return None


def _cos(x):
    lib = _libm()
    return _f32(lib[0](x) if lib else math.cos(x))


def _pow(x, y):
    lib = _libm()
    if lib:
        return _f32(lib[1](x, y))
    try:
        return _f32(x ** y)
    except OverflowError:
        return math.inf


def _reciprocal(c):
    """``1 / c`` for a constant divisor: grappler's rewrite of ``x / c`` into ``x * (1 / c)``."""
    return _f32(1.0 / _f32(c))


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
        """The command-line spec :func:`parse` reads back into this schedule."""
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
        p = _f32(_f32(step) * _reciprocal(self.decay_steps))
        if self.staircase:
            p = float(math.floor(p))
        return _f32(_f32(self.initial_learning_rate) * _pow(_f32(self.decay_rate), p))


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
        step, rate = _f32(step), _f32(self.decay_rate)
        if self.staircase:  # fit's graph: decay_rate * floor(step * (1 / decay_steps))
            decay = _f32(rate * math.floor(_f32(step * _reciprocal(self.decay_steps))))
        else:  # fit's graph: step * (decay_rate * (1 / decay_steps)), the constants folded together
            decay = _f32(step * _f32(rate * _reciprocal(self.decay_steps)))
        return _f32(_f32(self.initial_learning_rate) / _f32(1.0 + decay))


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
        return _f32(self.values[bisect.bisect_left(self.boundaries, step)])

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
        lr, decay_steps = _f32(self.initial_learning_rate), _f32(self.decay_steps)
        half = _f32(0.5 * _f32(1 - self.alpha))  # fit's graph folds 0.5 * (1 - alpha) into one constant
        if self.warmup_target is None:
            s = min(_f32(step), decay_steps)
            # Keras: pi * (s / decay_steps); fit's graph: s * (pi * (1 / decay_steps))
            x = _f32(s * _f32(_f32(math.pi) * _reciprocal(self.decay_steps)))
            return _f32(lr * self._decayed(x, half))
        target, warmup_steps = _f32(self.warmup_target), _f32(self.warmup_steps)
        s = min(_f32(step), _f32(decay_steps + warmup_steps))
        # Both branches of Keras's ops.cond reach their divisions through the cond's switches, which
        # grappler does not rewrite: true divisions here.
        if s < warmup_steps:  # (warmup_target - lr) * (s / warmup_steps) + lr
            return _f32(_f32(_f32(target - lr) * _f32(s / warmup_steps)) + lr)
        x = _f32(_f32(math.pi) * _f32(_f32(s - warmup_steps) / decay_steps))
        return _f32(target * self._decayed(x, half))

    def _decayed(self, x, half):
        # Keras: (1 - alpha) * (0.5 * (1 + cos(x))) + alpha; fit's graph: (1 + cos(x)) * half + alpha
        return _f32(_f32(_f32(_cos(x) + 1.0) * half) + _f32(self.alpha))

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


# --------------------------------------------------------------------------- command-line specs
_FORM = "NAME:KEY=VALUE,... e.g. " + ", ".join(repr(cls.example) for cls in SCHEDULES.values())


def parse(text, *, initial_learning_rate=None, argument="schedule"):
    """A schedule from a command-line spec: ``"NAME:KEY=VALUE,KEY=VALUE,..."``.

    ``NAME`` is a key of :data:`SCHEDULES`; the keys are the class's arguments (``name`` aside),
    lists in brackets (``"piecewise:boundaries=[100,500],values=[0.1,0.05,0.01]"``), booleans as
    ``true`` / ``false``. ``initial_learning_rate``, when the spec leaves it out, is this function's
    argument (the run's ``--learning-rate``); ``piecewise`` takes none.

    Raises
    ------
    InvalidArgument
        Naming ``argument``, the key at fault and the expected form.

    Examples
    --------
    >>> parse("cosine:decay_steps=500,warmup_steps=50,warmup_target=0.2", initial_learning_rate=0.0)
    CosineDecay(initial_learning_rate=0.0, decay_steps=500, alpha=0.0, warmup_target=0.2, warmup_steps=50)
    """
    def refuse(message, expected=_FORM):
        return validation.InvalidArgument(argument, expected, text, f"{argument} {quoted}: {message}")

    if not isinstance(text, str):
        raise validation.InvalidArgument(argument, _FORM, text, f"{argument} must be a string {_FORM}; "
                                                                 f"got {argument}={text!r}.")
    quoted = repr(text) if len(text) <= 100 else f"{text[:60]!r}...({len(text)} characters)"
    kind, _, body = text.strip().partition(":")
    kind = kind.strip()
    if kind not in SCHEDULES:
        raise refuse(f"unknown schedule {kind!r}; expected one of: "
                     f"{', '.join(repr(k) for k in SCHEDULES)}, as {_FORM}.")
    cls = SCHEDULES[kind]
    form = f"{kind}:KEY=VALUE,... with KEY in {', '.join(cls.spec_types)}, e.g. {cls.example!r}"
    kwargs = {}
    for item in _split_items(body) if body.strip() else []:
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key:
            raise refuse(f"expected KEY=VALUE, got {item.strip()!r}; form: {form}.", form)
        if key not in cls.spec_types:
            raise refuse(f"{kind} has no argument {key!r}; it takes {', '.join(cls.spec_types)} "
                         f"(e.g. {cls.example!r}).", form)
        if key in kwargs:
            raise refuse(f"{key} is given twice.", form)
        kwargs[key] = _spec_value(key, value, cls.spec_types[key], lambda m: refuse(m, form))
    if "initial_learning_rate" in cls.spec_types and "initial_learning_rate" not in kwargs:
        if initial_learning_rate is None:
            raise refuse("initial_learning_rate is missing: give it in the spec (initial_learning_rate=0.1) or as "
                         "the run's learning rate.", form)
        kwargs["initial_learning_rate"] = initial_learning_rate
    signature = inspect.signature(cls).parameters
    missing = [key for key in cls.spec_types if key not in kwargs and signature[key].default is inspect.Parameter.empty]
    if missing:
        raise refuse(f"{kind} needs {', '.join(missing)} (e.g. {cls.example!r}).", form)
    try:
        return cls(**kwargs)
    except validation.InvalidArgument as exc:
        raise validation.InvalidArgument(exc.argument, exc.expected, exc.value,
                                         f"{exc} (in {argument} {quoted})") from None


def _split_items(body):
    """``"a=1,b=[2,3]"`` -> ``["a=1", "b=[2,3]"]``: commas inside brackets belong to the list."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(body):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    return items


_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _spec_value(key, text, kind, refuse):
    """The value of ``key=text`` as the type ``kind`` of :attr:`LearningRateSchedule.spec_types`."""
    if kind in (list[int], list[float]):
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        element = int if kind == list[int] else float
        parts = [part.strip() for part in inner.split(",")]
        if not all(parts):
            raise refuse(f"{key} must be a list like {key}=[{'100,500' if element is int else '0.1,0.01'}]; "
                         f"got {key}={text!r}.")
        return [_spec_value(key, part, element, refuse) for part in parts]
    try:
        if kind is bool:
            return _BOOLEANS[text.lower()]
        return kind(text)
    except (ValueError, KeyError):
        expected = {int: "an integer", float: "a number", bool: "true or false"}[kind]
        raise refuse(f"{key} must be {expected}; got {key}={text!r}.") from None
