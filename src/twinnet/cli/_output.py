"""Output paths of the commands: checked and made before any training starts, never shared.

A default path is new for every run: ``twinnet-runs/<timestamp>``, with ``-2``, ``-3``, ... when
another run took that name in the same second (``mkdir`` and ``open(..., "x")`` are atomic, so two
runs cannot both take one name). A path the user names is refused when it already holds results,
unless ``force``. What was made here and is still empty when the command ends is removed.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import time
from pathlib import Path

RUNS = Path("twinnet-runs")


def _claim(make, stem, suffix):
    """A new path under RUNS, made by ``make``, and the folders made for it."""
    made = [] if RUNS.is_dir() else [RUNS]
    RUNS.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = RUNS / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            make(path)
            return path, made
        except FileExistsError:
            continue


def _remove_if_empty(paths):
    for path in reversed(paths):
        if path.is_file() and path.stat().st_size == 0:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


@contextlib.contextmanager
def _reported(option, value):
    """An OSError on a named output path becomes one line naming the option and the path."""
    try:
        yield
    except (FileExistsError, NotADirectoryError):  # mkdir meets a file where a folder must be
        raise ValueError(f"{option} {value!r}: a file stands where a folder is needed on that path.") from None
    except OSError as exc:  # permissions, a read-only file system, a name too long, ...
        raise ValueError(f"{option} {value!r}: cannot write there ({exc.strerror or exc}).") from None


def _named(option, value):
    if value == "":
        raise ValueError(f"{option} must name a path; got ''.")
    return Path(value)


@contextlib.contextmanager
def output_folder(option, value, *, force, holds, lock=None):
    """The folder to write into, made now: ``value``, or a new one under ``twinnet-runs``.

    ``holds``: names of the files a run writes there; a named folder holding one is refused
    unless ``force``. ``lock``: the name of a lock file by which a named folder is held for the
    block (:func:`twinnet.lab.store.hold`): a second run into it is refused while the first runs.
    """
    held = None
    if value is None:
        path, made = _claim(Path.mkdir, time.strftime("%Y%m%d-%H%M%S"), "")
        made.append(path)
    else:
        path = _named(option, value)
        if path.exists() and not path.is_dir():
            raise ValueError(f"{option} {value!r} is a file; expected a folder.")
        made = [] if path.exists() else [path]
        with _reported(option, value):
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):  # writable? (permissions, a read-only file system)
                pass
        if lock is not None:
            from twinnet.lab.store import hold

            held = hold(path, lock, "another run")
        found = [name for name in holds if (path / name).exists()]
        if found and not force:
            _release(held)
            raise ValueError(f"{option} {value!r} already holds {found[0]} from an earlier run; "
                             "choose another folder, or add --force to overwrite it.")
    try:
        yield path
    finally:  # a folder made for outputs that never came (check --plot with no training) goes too
        _release(held)
        _remove_if_empty(made)


def _release(held):
    """Remove the lock file ``held`` (a run that opens it from now on may take the folder), then unlock it."""
    if held is not None:
        Path(held.name).unlink(missing_ok=True)
        held.close()


@contextlib.contextmanager
def output_file(option, value, *, force, stem, suffix):
    """The file to write, made now (empty): ``value``, or a new ``twinnet-runs/<stem>-<timestamp><suffix>``."""
    if value is None:
        path, made = _claim(lambda p: p.open("x").close(), f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}",
                            suffix)
        made.append(path)
    else:
        path = _named(option, value)
        if path.is_dir():
            raise ValueError(f"{option} {value!r} is a folder; expected a file name.")
        if path.exists() and not force:
            raise ValueError(f"{option} {value!r} already exists; choose another name, or add "
                             "--force to overwrite it.")
        made = [] if path.parent.exists() else [path.parent]
        with _reported(option, value):
            path.parent.mkdir(parents=True, exist_ok=True)
            made += [] if path.exists() else [path]
            path.open("a").close()  # writable? (permissions, a read-only file system)
    try:
        yield path
    finally:
        _remove_if_empty(made)
