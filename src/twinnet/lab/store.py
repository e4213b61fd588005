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
import os
import sys
from pathlib import Path

__all__ = ["FORMAT", "LOCK", "MANIFEST", "RESULTS", "ResultStore", "read_manifest", "read_results"]

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
LOCK = "sweep.lock"
FORMAT = "twinnet-sweep/1"


@contextlib.contextmanager
def _writing(directory, what, then=""):
    """Turn a system error on the sweep directory (no space, read-only, a name too long) into a
    one-line ``ValueError`` that names the directory: the user's to fix, not a crash."""
    try:
        yield
    except OSError as exc:
        raise ValueError(f"--out {directory}: cannot {what} ({exc.strerror or exc}){then}.") from exc


def _lock(directory):
    """Lock ``directory``'s sweep for this process, or say which process holds it.

    ``flock`` locks belong to the open file: the system releases them when the process ends, so a
    sweep killed with SIGKILL leaves no stale lock. The file holds the holder's pid, for the message.
    """
    import fcntl

    with _writing(directory, f"create its lock file {LOCK}"):
        f = open(Path(directory) / LOCK, "a+", encoding="utf-8")  # noqa: SIM115  (held while locked)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise ValueError(f"--out {directory}: another sweep (process {holder}) is writing there; "
                         "wait for it to end or stop it, or choose another directory.") from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f


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


def read_manifest(directory):
    """Read and check ``DIR/manifest.json``.

    Raises
    ------
    FileNotFoundError
        ``directory`` does not exist.
    ValueError
        ``directory`` is not a sweep directory (no manifest, or one this module did not write).
    """
    directory = Path(directory)
    path = directory / MANIFEST
    try:
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such directory.")
        if not path.is_file():
            raise ValueError(f"{directory}: not a sweep directory (no {MANIFEST}); run "
                             f"'twinnet sweep --out {directory}' first.")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupted manifest ({exc}).") from None
    except FileNotFoundError:
        raise
    except OSError as exc:  # a name too long, no permission to read
        raise ValueError(f"{directory}: cannot read the sweep there ({exc.strerror or exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a twinnet sweep manifest (expected format {FORMAT!r}).")
    return manifest


def _scan(path):
    """Parsed rows of a results file, the byte length of its good part, and a warning or None."""
    raw = path.read_bytes() if path.is_file() else b""
    *lines, tail = raw.split(b"\n")  # tail: bytes after the last newline, b"" unless torn
    rows, good_end = [], 0
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "run_id" not in row:
                raise ValueError("not a result row")
        except (ValueError, UnicodeDecodeError) as exc:
            if number < len(lines) or tail:
                raise ValueError(f"{path}: line {number} is corrupted ({exc}); only the last line "
                                 "can be cut short by a crash, so the file was edited or damaged.") from None
            return rows, good_end, _torn(path, number, line, exc)
        rows.append(row)
        good_end += len(line) + 1
    if tail:
        # A line without its newline was being written when the sweep died: its run never counted.
        return rows, good_end, _torn(path, len(lines) + 1, tail, "no end of line")
    return rows, good_end, None


def _torn(path, number, line, why):
    why = type(why).__name__ if isinstance(why, Exception) else why
    return (f"{path}: skipped corrupted last line {number} ({len(line)} bytes, {why}), "
            "probably cut short by a crash.")


def read_results(directory, *, warn=True):
    """All result rows of a sweep directory, in the order they finished.

    A corrupted last line (a crash mid-write) is reported on stderr and skipped; a corrupted line
    anywhere else raises ``ValueError``, since appends cannot produce one.

    Returns
    -------
    list of dict
    """
    read_manifest(directory)
    rows, _, warning = _scan(Path(directory) / RESULTS)
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
            rows, good_end, warning = _scan(path)
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
