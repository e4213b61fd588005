"""The results store of a sweep: a manifest and an append-only JSON Lines file that survive crashes.

A sweep directory holds ``manifest.json`` (the grid, its hash and the number of runs) and
``results.jsonl``, one line per finished run. A line is written, flushed and ``fsync``-ed before the
run counts as done, so a sweep killed at any moment loses no finished run; at worst the last line is
torn, and :func:`read_results` reports and skips it while :class:`ResultStore` cuts it off before
appending.

Example
-------
>>> import tempfile
>>> from twinnet.lab.store import ResultStore, read_results
>>> d = tempfile.mkdtemp()
>>> store = ResultStore.create(d, grid={"seeds": [0]}, grid_hash="abc", n_runs=1)
>>> store.append({"run_id": "r1", "status": "ok"})
>>> [row["run_id"] for row in read_results(d)]
['r1']
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["MANIFEST", "RESULTS", "FORMAT", "ResultStore", "read_manifest", "read_results"]

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
FORMAT = "twinnet-sweep/1"


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
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory.")
    path = directory / MANIFEST
    if not path.is_file():
        raise ValueError(f"{directory}: not a sweep directory (no {MANIFEST}); run "
                         f"'twinnet sweep --out {directory}' first.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupted manifest ({exc}).") from None
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
    """Appends result rows durably to a sweep directory; open it with :meth:`create` or :meth:`resume`."""

    def __init__(self, directory, manifest, rows):
        self.directory = Path(directory)
        self.manifest = manifest
        self.rows = rows
        self.done = {row["run_id"] for row in rows}

    @classmethod
    def create(cls, directory, *, grid, grid_hash, n_runs, extra=None):
        """Start a new sweep in ``directory`` (created; it must not hold anything yet)."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"--out {directory}: exists and is not a directory.")
        if directory.is_dir() and any(directory.iterdir()):
            what = ("already holds a sweep; add --resume to continue it"
                    if (directory / MANIFEST).exists() else "is not empty")
            raise ValueError(f"--out {directory}: {what}, or choose another directory.")
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {"format": FORMAT, "grid_hash": grid_hash, "n_runs": n_runs, "grid": grid,
                    "sessions": [], **(extra or {})}
        _write_manifest(directory, manifest)
        (directory / RESULTS).touch()
        _fsync_dir(directory)
        return cls(directory, manifest, [])

    @classmethod
    def resume(cls, directory, *, grid_hash):
        """Reopen a sweep made by the same grid; a torn last line (from a crash) is cut off."""
        manifest = read_manifest(directory)
        if manifest["grid_hash"] != grid_hash:
            raise ValueError(f"--resume {directory}: the sweep there was made with a different grid "
                             f"(grid hash {manifest['grid_hash']}, this one {grid_hash}); give the "
                             "same grid options, or none to reuse its grid, or another --out.")
        path = Path(directory) / RESULTS
        rows, good_end, warning = _scan(path)
        if warning:
            print(f"warning: {warning} It is removed; that run will be done again.", file=sys.stderr)
            with open(path, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())
        return cls(directory, manifest, rows)

    def append(self, row):
        """Write one finished run; it is on disk (fsync) when this returns."""
        # allow_nan=False: rows store a non-finite number as null, so the file stays standard JSON.
        line = json.dumps(row, separators=(",", ":"), allow_nan=False) + "\n"
        with open(self.directory / RESULTS, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.rows.append(row)
        self.done.add(row["run_id"])

    def record_session(self, session):
        """Add one sweep invocation (its wall time, counts, executor) to the manifest."""
        self.manifest.setdefault("sessions", []).append(session)
        _write_manifest(self.directory, self.manifest)
