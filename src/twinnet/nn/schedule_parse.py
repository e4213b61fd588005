"""Command-line specs of learning-rate schedules: ``"NAME:KEY=VALUE,..."`` -> a schedule.

The inverse of :meth:`twinnet.nn.schedules.LearningRateSchedule.to_spec`; the lab's ``lr_schedule``
and the CLI's ``--lr-schedule`` are read here.

Examples
--------
>>> from twinnet.nn.schedule_parse import parse
>>> parse("exponential:decay_steps=100,decay_rate=0.5", initial_learning_rate=0.1)
ExponentialDecay(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.5, staircase=False)
"""

from __future__ import annotations

import inspect

from twinnet import validation
from twinnet.nn.schedules import SCHEDULES

__all__ = ["parse"]

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
