"""The ``twinnet`` command: builds the parser and delegates to one module per sub-command.

Each module ``twinnet/cli/<name>_cmd.py`` is a sub-command: it defines ``register(subparsers)``,
which adds its parser and sets ``func`` to a function of the parsed arguments returning an exit
status. Modules are discovered, so adding a command is adding a file. User errors
(``ValueError``, an ``OSError`` on a path, a ``MemoryError`` from a network too big for this
machine, a missing optional dependency, ...) are printed as one line on stderr with exit status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

#: Exceptions that are the user's to fix: shown as one line, exit status 2.
#: ``OSError`` covers the paths a user names (missing, unwritable, read-only, a file where a folder
#: is expected, a name too long) and the network addresses.
USER_ERRORS = (ValueError, OSError, MemoryError, FloatingPointError, ModuleNotFoundError)


def _message(exc, command):
    """One line for a user error."""
    if isinstance(exc, ModuleNotFoundError):
        return f"{exc}; install the optional dependency (see README: pip install 'twinnet[all]')"
    if isinstance(exc, MemoryError):  # numpy says how much it could not allocate
        return f"not enough memory for this {command}: {exc or 'the allocation failed'}; use smaller --layers or data"
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        # OSError's own text starts with "[Errno N]"; the path said last may be very long
        return f"{exc.filename}: {exc.strerror}" + (f" (and {exc.filename2})" if exc.filename2 else "")
    return " ".join(str(exc).split()) or type(exc).__name__


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from twinnet import __version__

    parser = ArgumentParser(
        prog="twinnet",
        description="A NumPy neural network written from scratch, its Keras twin, and a lab "
        "that compares them.",
    )
    parser.add_argument("--version", action="version", version=f"twinnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.endswith("_cmd"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv=None) -> int:
    """Run ``twinnet`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"twinnet {args.command}: error: {_message(exc, args.command)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"twinnet {args.command}: interrupted", file=sys.stderr)
        return 130
