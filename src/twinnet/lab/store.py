"""The results store of a sweep: a manifest and an append-only JSON Lines file that survive crashes.

A sweep directory holds ``manifest.json`` (the grid, its hash, the number of runs and a
fingerprint of each data set), ``results.jsonl``, one line per finished run, and ``sweep.lock``,
locked by the one process that writes the sweep. Each row has a ``run_id`` and a ``status``:
``"ok"``, ``"diverged"`` (decided where the engine saw the divergence) or ``"failed"`` (an error);
reports count only ``"ok"`` rows in their statistics. A line is written, flushed and ``fsync``-ed
before the run counts as done, so a sweep killed at any moment loses no finished run; at worst the
last line is torn, and :func:`read_results` reports and skips it while :class:`ResultStore` cuts it
off before appending.

Examples
--------
>>> import tempfile
>>> from twinnet.lab.store import ResultStore, read_results
>>> d = tempfile.mkdtemp()
>>> store = ResultStore.create(d, grid={"seeds": [0]}, grid_hash="abc", n_runs=1)
>>> store.append({"run_id": "r1", "status": "ok"})
>>> [row["run_id"] for row in read_results(d)]
['r1']
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from pathlib import Path

from twinnet import validation

__all__ = ["FORMAT", "LOCK", "MANIFEST", "MAX_INT", "RESULTS", "ResultStore", "line_limit", "loads", "read_lines",
           "read_manifest", "read_results"]

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
LOCK = "sweep.lock"
FORMAT = "twinnet-sweep/1"

# The files of a sweep directory may have been edited by hand: they are read within bounds.
#: The largest integer the store reads: those a float64 holds exactly, as JSON readers everywhere
#: hold numbers (RFC 8259, section 6). A bigger one was not written by a sweep.
MAX_INT = 2**53
#: The most bytes of a manifest: its grid, a few hundred bytes per session and per data set.
MANIFEST_BYTES = 2**22
#: The most bytes of a result line: the fixed part of a row (configuration, versions, machine, an
#: error message) in ROW_BYTES, and EPOCH_BYTES per epoch of its loss curve and checkpoints (a
#: float is at most 24 characters and a comma); see :func:`line_limit`.
ROW_BYTES = 2**20
EPOCH_BYTES = 32


def _int(text):
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_INT:
        raise ValueError(f"the integer {text[:12]}{'...' if len(text) > 12 else ''} is beyond ±2**53")
    return int(text)


def _float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:12]} is beyond the range of a float")
    return value


def _constant(name):
    raise ValueError(f"{name} is not a number")


def loads(text):
    """One JSON document of a sweep directory, parsed strictly.

    Raises ``ValueError`` for what :func:`json.dumps` with ``allow_nan=False`` never writes (NaN,
    Infinity, a number beyond a float's range), for an integer beyond :data:`MAX_INT`, and for nesting
    deeper than Python's parser goes (which would otherwise be a ``RecursionError``).
    """
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise ValueError("nested too deeply to be a sweep's") from None


@contextlib.contextmanager
def _writing(directory, what, then=""):
    """Turn a system error on the sweep directory (no space, read-only, a name too long) into a
    one-line ``ValueError`` that names the directory: the user's to fix, not a crash."""
    try:
        yield
    except OSError as exc:
        raise ValueError(f"--out {directory}: cannot {what} ({exc.strerror or exc}){then}.") from exc


def hold(directory, name, what):
    """Lock ``directory`` for this process with its file ``name``, or say which process holds it.

    ``flock`` locks belong to the open file: the system releases them when the process ends, so a
    run killed with SIGKILL leaves no stale lock; a file removed by its holder as it ended is not
    locked in place of the one there now. The file holds the holder's pid, for the message,
    which names ``what`` holds it (``"another sweep"``). Returns the open file: closing it releases
    the lock.
    """
    import fcntl

    path = Path(directory) / name
    while True:
        with _writing(directory, f"create its lock file {name}"):
            f = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (held while locked)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise ValueError(f"--out {directory}: {what} (process {holder}) is writing there; "
                             "wait for it to end or stop it, or choose another directory.") from None
        try:  # a holder that removes the file as it ends may have done so since it was opened
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        f.close()
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f


def _lock(directory):
    """Lock ``directory``'s sweep for this process (:func:`hold`)."""
    return hold(directory, LOCK, "another sweep")


def _fsync_dir(path):
    # A new file's directory entry is durable only once the directory itself is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_manifest(directory, manifest):
    # write-then-rename: a crash leaves the old manifest or the new one, never half of one
    tmp = Path(directory) / (MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, Path(directory) / MANIFEST)


def _count(value):
    return validation.is_int(value) and value >= 0


def _seconds(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _counts(value):
    return isinstance(value, dict) and all(_count(n) for n in value.values())


#: What a manifest holds, each field as :meth:`ResultStore.create` and ``record_session`` write it:
#: field -> (test, the expectation in words); each session is checked by _SESSION.
_MANIFEST = {
    "grid_hash": (lambda v: isinstance(v, str), "a string"),
    "n_runs": (_count, "an integer >= 0"),
    "grid": (lambda v: isinstance(v, dict), "an object"),
    "sessions": (lambda v: isinstance(v, list) and all(isinstance(s, dict) for s in v), "a list of objects"),
    "data": (lambda v: isinstance(v, dict) and all(isinstance(f, dict) and _count(f.get("bytes"))
                                                   and isinstance(f.get("sha256"), str) for f in v.values()),
             "an object of data fingerprints (bytes and sha256)"),
}
#: A session of the manifest: what the report reads of it.
_SESSION = {
    "seconds": (_seconds, "a number >= 0"),
    "where": (lambda v: isinstance(v, str), "a string"),
    "threads": (lambda v: validation.is_int(v) and v >= 1, "an integer >= 1"),
    "counts": (_counts, "an object of counts"),
}


def _shown(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_manifest(manifest, path):
    """Raise a one-line ValueError naming the first field of ``manifest`` that a sweep never wrote."""
    checks = [(key, test, expected, manifest) for key, (test, expected) in _MANIFEST.items()
              if key in manifest or key != "data"]
    for i, session in enumerate(manifest.get("sessions") if isinstance(manifest.get("sessions"), list) else []):
        checks += [(f"sessions[{i}].{key}", test, expected, session) for key, (test, expected) in _SESSION.items()]
    for name, test, expected, holder in checks:
        key = name.rsplit(".", 1)[-1]
        if key not in holder:
            raise ValueError(f"{path}: the manifest has no {name!r}; the file was edited or damaged.")
        if not test(holder[key]):
            raise ValueError(f"{path}: the manifest's {name} is {_shown(holder[key])}, expected {expected}; "
                             "the file was edited or damaged.")


def read_manifest(directory):
    """Read and check ``DIR/manifest.json``.

    Raises
    ------
    FileNotFoundError
        ``directory`` does not exist.
    ValueError
        ``directory`` is a file, or not a sweep directory (no manifest, or one this module did not write: not a
        regular file, bigger than :data:`MANIFEST_BYTES`, not strict JSON, or a field of the wrong
        type); the message is one line naming the file and the problem.
    """
    from twinnet.safe_io import open_regular

    directory = Path(directory)
    path = directory / MANIFEST
    try:
        if not directory.is_dir():
            if directory.exists():
                raise ValueError(f"{directory}: is a file; expected a sweep's folder (twinnet sweep --out).")
            raise FileNotFoundError(f"{directory}: no such directory.")
        if not path.exists():
            raise ValueError(f"{directory}: not a sweep directory (no {MANIFEST}); run "
                             f"'twinnet sweep --out {directory}' first.")
        file, size = open_regular(path, "a sweep manifest")
        with file:
            if size > MANIFEST_BYTES:
                raise ValueError(f"{path}: {size:,} bytes, more than a sweep's manifest takes "
                                 f"({MANIFEST_BYTES:,}); the file was edited or damaged.")
            raw = file.read(size + 1)  # not more: read(n) takes n bytes at once
        manifest = loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupted manifest ({str(exc)[:100]}).") from None
    except (FileNotFoundError, ValueError) as exc:
        if str(exc).startswith((str(directory), str(path))):
            raise
        raise ValueError(f"{path}: corrupted manifest ({exc}).") from None
    except OSError as exc:  # a name too long, no permission to read
        raise ValueError(f"{directory}: cannot read the sweep there ({exc.strerror or exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a twinnet sweep manifest (expected format {FORMAT!r}).")
    _check_manifest(manifest, path)
    return manifest


def line_limit(manifest):
    """The most bytes a line of the sweep's results may take: :data:`ROW_BYTES` and
    :data:`EPOCH_BYTES` per epoch of the longest run in its grid."""
    epochs = manifest["grid"].get("epochs")
    last = max((e for e in epochs if _count(e)), default=0) if isinstance(epochs, list) else 0
    return ROW_BYTES + EPOCH_BYTES * last


def read_lines(directory, manifest):
    """The lines of a sweep's results, read within bounds: ``(number, line, ended)`` for each.

    ``line`` is the line's bytes without its newline, or None for a line longer than
    :func:`line_limit` (read past in small pieces, never held); ``ended`` is False for a last line
    without its newline. A missing results file has no lines.

    Raises
    ------
    ValueError
        The file is not a regular file.
    """
    from twinnet.safe_io import open_regular

    path = Path(directory) / RESULTS
    if not path.exists() and not path.is_symlink():
        return
    limit = line_limit(manifest)
    file, _ = open_regular(path, "a sweep's results file")
    with file:
        number = 0
        while line := file.readline(limit + 1):
            number += 1
            if len(line) > limit and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # the rest of a line too long to keep
                    line = file.readline(2**16)
                yield number, None, line.endswith(b"\n")
            else:
                yield number, line.removesuffix(b"\n"), line.endswith(b"\n")


def _scan(directory, manifest):
    """Parsed rows of a results file, the byte length of its good part, and a warning or None."""
    path = Path(directory) / RESULTS
    rows, good_end, torn = [], 0, None
    for number, line, ended in read_lines(directory, manifest):
        if torn:
            raise ValueError(f"{path}: line {torn[0]} is corrupted ({torn[2]}); only the last line "
                             "can be cut short by a crash, so the file was edited or damaged.")
        if not ended:
            # A line without its newline was being written when the sweep died: its run never counted.
            torn = (number, line, "no end of line")
            continue
        try:
            if line is None:
                raise ValueError(f"longer than {line_limit(manifest):,} bytes")
            row = loads(line)
            if not isinstance(row, dict) or "run_id" not in row:
                raise ValueError("not a result row")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            torn = (number, line, type(exc).__name__)
            continue
        except ValueError as exc:
            torn = (number, line, str(exc))
            continue
        rows.append(row)
        good_end += len(line) + 1
    return rows, good_end, torn and _torn(path, *torn)


def _torn(path, number, line, why):
    size = "over a line's limit" if line is None else f"{len(line)} bytes"
    return f"{path}: skipped corrupted last line {number} ({size}, {why}), probably cut short by a crash."


def read_results(directory, *, warn=True):
    """All result rows of a sweep directory, in the order they finished.

    A corrupted last line (a crash mid-write) is reported on stderr and skipped; a corrupted line
    anywhere else raises ``ValueError``, since appends cannot produce one.

    Returns
    -------
    list of dict
    """
    rows, _, warning = _scan(directory, read_manifest(directory))
    if warning and warn:
        print(f"warning: {warning}", file=sys.stderr)
    return rows


class ResultStore:
    """Appends result rows durably to a sweep directory; open it with :meth:`create` or :meth:`resume`.

    The store holds the directory's lock until :meth:`close` (or the end of a ``with`` block, or
    of the process): a second sweep on the same directory is refused meanwhile.
    """

    def __init__(self, directory, manifest, rows, lock=None, created=False):
        self.directory = Path(directory)
        self.manifest = manifest
        self.rows = rows
        self.done = {row["run_id"] for row in rows}
        self._lock = lock
        self._created = created  # the directory itself was made by this store

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Release the directory's lock."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @staticmethod
    def _refuse_used(directory):
        entries = {p.name for p in directory.iterdir()} - {LOCK}
        if MANIFEST in entries:
            _lock(directory).close()  # a sweep still running there says so first
            raise ValueError(f"--out {directory}: already holds a sweep; add --resume to continue it, "
                             "or choose another directory.")
        if entries:
            raise ValueError(f"--out {directory}: is not empty and holds no sweep; choose another "
                             "directory.")

    @classmethod
    def create(cls, directory, *, grid, grid_hash, n_runs, extra=None):
        """Start a new sweep in ``directory`` (created; it must not hold anything yet).

        Raises
        ------
        ValueError
            ``directory`` is a file, holds something, is locked by another sweep, or cannot be
            written (the system's reason is in the message).
        """
        directory = Path(directory)
        with _writing(directory, "create the directory"):
            created = not directory.exists()
            if not created and not directory.is_dir():
                raise ValueError(f"--out {directory}: exists and is not a directory.")
            if not created:  # checked before the lock file is made: a foreign folder stays untouched
                cls._refuse_used(directory)
            directory.mkdir(parents=True, exist_ok=True)
        lock = _lock(directory)
        try:
            cls._refuse_used(directory)  # another sweep may have started it meanwhile
            manifest = {"format": FORMAT, "grid_hash": grid_hash, "n_runs": n_runs, "grid": grid,
                        "sessions": [], **(extra or {})}
            with _writing(directory, "write the sweep there"):
                _write_manifest(directory, manifest)
                (directory / RESULTS).touch()
                _fsync_dir(directory)
        except BaseException:
            lock.close()
            raise
        return cls(directory, manifest, [], lock=lock, created=created)

    @classmethod
    def resume(cls, directory, *, grid_hash, data=None):
        """Reopen a sweep made by the same grid on the same data; a torn last line is cut off.

        Parameters
        ----------
        directory : path-like
        grid_hash : str
            :func:`twinnet.lab.grid.grid_hash` of the runs; must be the manifest's.
        data : dict, optional
            Data set -> fingerprint (:func:`twinnet.lab.sweep.data_fingerprints`); each must equal
            the manifest's ``data``, when the manifest has one (sweeps made before it was kept do
            not).
        """
        read_manifest(directory)  # a sweep directory, before a lock file is made there
        lock = _lock(directory)
        try:
            manifest = read_manifest(directory)
            if manifest["grid_hash"] != grid_hash:
                raise ValueError(f"--resume {directory}: the sweep there was made with a different grid "
                                 f"(grid hash {manifest['grid_hash']}, this one {grid_hash}); give the "
                                 "same grid options, or none to reuse its grid, or another --out.")
            for name, now in (data or {}).items():
                then = manifest.get("data", {}).get(name)
                if then is not None and then != now:
                    raise ValueError(f"--resume {directory}: data {name!r} has changed since the sweep "
                                     f"started (then {_describe(then)}, now {_describe(now)}); restore "
                                     "it, or start a new sweep in another --out.")
            path = Path(directory) / RESULTS
            rows, good_end, warning = _scan(directory, manifest)
            if warning:
                print(f"warning: {warning} It is removed; that run will be done again.", file=sys.stderr)
                with _writing(directory, f"repair {RESULTS}"), open(path, "r+b") as f:
                    f.truncate(good_end)
                    os.fsync(f.fileno())
        except BaseException:
            lock.close()
            raise
        return cls(directory, manifest, rows, lock=lock)

    def discard(self):
        """Remove a new sweep that never ran: its files, and its directory if it made it."""
        if self.rows:
            raise ValueError(f"{self.directory}: holds {len(self.rows)} finished runs; not removed.")
        for name in (MANIFEST, RESULTS, LOCK):
            (self.directory / name).unlink(missing_ok=True)
        self.close()
        if self._created:
            self.directory.rmdir()

    def append(self, row):
        """Write one finished run; it is on disk (fsync) when this returns."""
        # allow_nan=False: rows store a non-finite number as null, so the file stays standard JSON.
        line = json.dumps(row, separators=(",", ":"), allow_nan=False) + "\n"
        with (_writing(self.directory, f"write {RESULTS}", f"; the {len(self.rows)} runs before this "
                       "one are saved, resume with --resume once it is fixed"),
              open(self.directory / RESULTS, "a", encoding="utf-8") as f):
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.rows.append(row)
        self.done.add(row["run_id"])

    def record_session(self, session):
        """Add one sweep invocation (its wall time, counts, executor) to the manifest."""
        self.manifest.setdefault("sessions", []).append(session)
        with _writing(self.directory, f"write {MANIFEST}"):
            _write_manifest(self.directory, self.manifest)


def _describe(fingerprint):
    return f"{fingerprint['bytes']} bytes, sha256 {fingerprint['sha256'][:12]}"
