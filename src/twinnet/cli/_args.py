"""Argument types shared by the sub-commands: each raises a one-line argparse error.

They parse the text, then run the checks of :mod:`twinnet.validation`, so the command line and the
Python API accept the same values; a refusal reads ``expected <rule>, got <text>``.
"""

from __future__ import annotations

import argparse

from twinnet import validation


def checked(check, text, parse):
    """``check(parse(text))``: the value in its canonical form, or one argparse error in the check's words.

    An unparsable text goes to ``check`` as it is, to be refused by the same rule.
    """
    try:
        value, shown = parse(text), text
    except ValueError:
        value, shown = text, repr(text)
    try:
        return check(value)
    except validation.InvalidArgument as exc:
        raise argparse.ArgumentTypeError(f"expected {exc.expected}, got {shown}") from None


def positive_int(text: str) -> int:
    return checked(lambda value: validation.positive_int("value", value), text, int)


def non_negative_int(text: str) -> int:
    return checked(lambda value: validation.non_negative_int("value", value), text, int)


def positive_float(text: str) -> float:
    return checked(lambda value: validation.positive_number("value", value), text, float)


def at_most(kind, largest):
    """An argument type: a value of the type ``kind`` (``positive_float``, ...) that is at most ``largest``."""
    def parse(text: str):
        return checked(lambda value: validation.at_most("value", value, largest), text, kind)
    return parse


def penalty(text: str) -> float:
    """An L2 penalty's weight, finite, >= 0 and within float32's range: ``--l2``."""
    return checked(lambda value: validation.penalty("value", value), text, float)


def rate(text: str) -> float:
    """A probability in [0, 1): ``--dropout``."""
    return checked(lambda value: validation.rate("value", value), text, float)


def fraction(text: str) -> float:
    """A number strictly between 0 and 1: ``--validation-fraction``."""
    return checked(lambda value: validation.fraction("value", value), text, float)


def schedule_spec(text: str) -> str:
    """A learning-rate schedule's spec, checked by :func:`twinnet.nn.schedule_parse.parse` (its initial
    learning rate, unless the spec gives one, is the run's learning rate: checked with the run)."""
    from twinnet.nn.schedule_parse import parse

    try:
        parse(text, initial_learning_rate=1.0)  # the form alone: the run's learning rate comes later
    except ValueError as exc:
        raise argparse.ArgumentTypeError(" ".join(str(exc).split())) from None
    return text.strip()


def schedule_help(default="constant"):
    """What ``--lr-schedule`` says of its spec, with the example of each schedule."""
    from twinnet.nn.schedules import SCHEDULES

    return ("a learning-rate schedule NAME:KEY=VALUE,...; its initial learning rate is --learning-rate unless "
            "the spec gives initial_learning_rate; steps count updates, not epochs. E.g. "
            + "; ".join(cls.example for cls in SCHEDULES.values()) + f" (default: {default})")


def add_controls(parser):
    """``--l2``, ``--dropout``, ``--batch-norm``, ``--lr-schedule``, ``--early-stopping``,
    ``--validation-fraction``: compare's, one value each (the sweep's take lists: ``twinnet.cli.sweep_cmd``)."""
    from twinnet.lab.config import MONITOR, RunConfig

    defaults = RunConfig()
    parser.add_argument("--l2", type=penalty, default=defaults.l2, metavar="L2",
                        help="L2 penalty l2 * sum(W**2) over every layer's weights, added to the loss as Keras's "
                        f"kernel_regularizer=L2(l2) (default: {defaults.l2:g}, none)")
    parser.add_argument("--dropout", type=rate, default=defaults.dropout, metavar="RATE",
                        help="dropout rate after every hidden layer, in [0, 1); each library draws its own masks, "
                        f"so runs with dropout are not on one trajectory (default: {defaults.dropout:g}, none)")
    parser.add_argument("--batch-norm", action="store_true",
                        help="batch normalization of every hidden layer's pre-activation, Keras's "
                        "Dense(use_bias=False) -> BatchNormalization() -> Activation (default: off)")
    parser.add_argument("--lr-schedule", type=schedule_spec, default=None, metavar="SPEC", help=schedule_help())
    parser.add_argument("--early-stopping", type=non_negative_int, default=None, metavar="PATIENCE",
                        help=f"stop when {MONITOR} on a validation part of the training part has not improved for "
                        "PATIENCE epochs, and keep the best epoch's weights (Keras's EarlyStopping, "
                        "restore_best_weights=True); the test part is untouched (default: off)")
    parser.add_argument("--validation-fraction", type=fraction, default=defaults.validation_fraction,
                        metavar="FRACTION", help="the part of the training examples held out for early stopping, "
                        f"stratified by class (default: {defaults.validation_fraction:g})")


def seed(text: str) -> int:
    """A seed: an integer from 0 to 2**32 - 1, the range scikit-learn and Keras take."""
    return checked(validation.seed, text, int)


def widths(text):
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:  # the command line's own syntax, before the rule
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 100,20,5,1, got {text!r}") from None


def layer_list(text: str) -> list[int]:
    """``"100,20,5,1"`` -> ``[100, 20, 5, 1]``: positive widths, output width 1."""
    return checked(lambda dims: validation.layer_widths("layers", dims, output_width=1), text, widths)


def head_layer_list(text: str) -> list[int]:
    """``"64,32,10"`` -> ``[64, 32, 10]``: positive widths, any output width (the head's, checked
    against the data once they are loaded)."""
    return checked(lambda dims: validation.layer_widths("layers", dims), text, widths)


def add_output(parser):
    """``--output {linear,sigmoid,softmax}``: the output head, by default the data set's."""
    parser.add_argument("--output", choices=sorted(validation.OUTPUTS), default=None,
                        help="output head and loss: sigmoid (binary, log-loss), softmax (K classes, "
                        "cross-entropy), linear (regression, mean squared error); default: the data "
                        "set's, inferred from its targets")


def name_list(known):
    """An argument type for ``"a,b"`` -> ``["a", "b"]``, each name one of ``known``."""
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown engine {unknown[0] if unknown else text!r}; expected a comma-separated "
                "list of: " + ", ".join(known))
        return names
    return parse


def add_verbose(parser):
    """``--verbose``, for the commands that may load TensorFlow; see :func:`apply_verbose`."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up messages on stderr, hidden by default")


def apply_verbose(args):
    """With ``--verbose``, let TensorFlow's messages through, in this process and in its workers."""
    import os

    from twinnet.quiet import VERBOSE_ENV

    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"  # read where TensorFlow is imported; inherited by workers
