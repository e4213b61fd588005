"""Argument types shared by the sub-commands: each raises a one-line argparse error."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def seed(text: str) -> int:
    """A seed: an integer from 0 to 2**32 - 1, the range scikit-learn and Keras take."""
    from twinnet.lab.engines import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {value}")
    return value


def layer_list(text: str) -> list[int]:
    """``"100,20,5,1"`` -> ``[100, 20, 5, 1]``: positive widths, output width 1."""
    try:
        dims = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 100,20,5,1, got {text!r}"
        ) from None
    if len(dims) < 2:
        raise argparse.ArgumentTypeError(f"expected at least an input and an output width, got {text!r}")
    if min(dims) < 1:
        raise argparse.ArgumentTypeError(f"every layer width must be >= 1, got {text!r}")
    if dims[-1] != 1:
        raise argparse.ArgumentTypeError(
            f"the output layer must have width 1 (one sigmoid unit), got {dims[-1]} in {text!r}"
        )
    return dims


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

    from twinnet.keras_twin import VERBOSE_ENV

    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"  # read where TensorFlow is imported; inherited by workers
