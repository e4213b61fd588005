"""The readers of the data file formats, by suffix (``.pickle`` / ``.pkl``, ``.npz``, ``.csv``), each bounded."""

from __future__ import annotations

import array
import io
import itertools
import zipfile
import zlib

import numpy as np

from twinnet.data.unpickler import safe_unpickle
from twinnet.safe_io import MAX_BYTES_ENV, npz_member, too_big


def _count_values(obj, source):
    """The number of values ``np.asarray(obj)`` would hold, without building it.

    Lists that reference one another are counted as many times as they are referenced (that is
    what the array would hold), each list once (so the walk is linear in the pickle's size); a list
    that contains itself is an error.
    """
    counts, stack = {}, [(obj, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (list, tuple)):
            continue
        key = id(node)
        if done:
            counts[key] = sum(counts.get(id(c), c.size if isinstance(c, np.ndarray) else 1) for c in node)
        elif key not in counts:
            counts[key] = None  # on the path: met again before it is done means a cycle
            stack.append((node, True))
            stack.extend((c, False) for c in node)
        elif counts[key] is None:
            raise ValueError(f"{source}: a list in the pickle contains itself.")
    if isinstance(obj, np.ndarray):
        return obj.size
    return counts[id(obj)] if isinstance(obj, (list, tuple)) else 1


def _from_mapping(obj, source, keys=("features", "labels")):
    if not isinstance(obj, dict):
        raise ValueError(  # noqa: TRY004  (a file's content, not a caller's argument: a user error)
            f"{source}: expected a dict with keys 'features' and 'labels'; got {type(obj).__name__}."
        )
    missing = [k for k in keys if k not in obj]
    if missing:
        found = sorted(str(k)[:40] for k in obj)
        raise ValueError(
            f"{source}: missing key(s) {', '.join(repr(k) for k in missing)}; expected 'features' "
            f"and 'labels', found {found[:10]}{' ...' if len(found) > 10 else ''}."
        )
    return obj["features"], obj["labels"]


def _read_pickle(file, size, source, max_bytes):
    # Unpickling makes Python objects in proportion to the file, before values can be counted; an
    # honest pickle is at most about twice its data (protocol 2 stores bytes as UTF-8 text) plus
    # its structure (some hundred bytes; 64 KiB allowed).
    if size > 2 * max_bytes + 2**16:
        raise ValueError(
            f"{source}: a pickle of {size:,} bytes is more than twice the limit max_bytes={max_bytes:,} "
            f"(raise it with --max-bytes or {MAX_BYTES_ENV} if the data is meant to be that big)."
        )
    features, labels = _from_mapping(safe_unpickle(file.read(size), source), source)
    values = _count_values(features, source) + _count_values(labels, source)
    # Every value of an honest pickle takes at least one byte of the file; more values than bytes
    # means lists that reference one another, the shape of a pickle bomb.
    if values > size:
        raise ValueError(
            f"{source}: the pickle declares {values:,} values in {size:,} bytes: its lists "
            "reference one another; save the data as arrays (twinnet.data.save_pickle)."
        )
    if 8 * values > max_bytes:
        raise too_big(source, f"its {values:,} values", 8 * values, max_bytes)
    return features, labels


def _read_npz(file, size, source, max_bytes):
    try:
        with zipfile.ZipFile(file) as zf:
            features = npz_member(zf, "features", source, max_bytes)
            labels = npz_member(zf, "labels", source, max_bytes, features.size)
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, NotImplementedError,
            zlib.error) as exc:
        if str(exc).startswith(source):
            raise
        raise ValueError(f"{source}: not a valid .npz file ({type(exc).__name__}: {str(exc)[:200]}).") from None
    return features, labels


def _fields(line):
    """The comma-separated fields of ``line``, stripped, one at a time (a line may be long)."""
    start = 0
    while True:
        end = line.find(",", start)
        yield line[start:None if end < 0 else end].strip()
        if end < 0:
            return
        start = end + 1


def _is_number(field):
    try:  # the same parser as the rows', so that a header is told apart by the rule rows follow
        # NumPy reads the text as a C string: a NUL would end the field early.
        return np.fromstring(field, sep=",").size == 1 and "," not in field and "\0" not in field
    except ValueError:
        return False


def _read_csv(file, size, source, max_bytes):
    # Line by line, each line parsed by NumPy into one row of floats: memory is the values read
    # (8 bytes each, checked against max_bytes before a line is parsed) plus one line of text.
    values, width = array.array("d"), None
    with io.TextIOWrapper(file, encoding="utf-8-sig", errors="replace", newline=None) as text:
        for number in itertools.count(1):
            line = text.readline(max_bytes + 1)
            if not line:
                break
            if len(line) > max_bytes:
                raise ValueError(
                    f"{source}: line {number} is longer than the limit max_bytes={max_bytes:,} characters "
                    f"(raise it with --max-bytes or {MAX_BYTES_ENV} if the data is meant to be that big)."
                )
            if not line.strip():
                continue
            cells = line.count(",") + 1
            if width is None:
                width = cells
                numbers = [_is_number(f) for f in _fields(line)]
                if not any(numbers):  # a header: every field a name
                    continue
                if not all(numbers):
                    bad = numbers.index(False)
                    field = next(itertools.islice(_fields(line), bad, None))
                    raise ValueError(
                        f"{source}: line {number}, column {bad + 1} is not a number: {field[:40]!r} "
                        "(a header line must have no numbers, a data line only numbers)."
                    )
            if cells != width:
                raise ValueError(f"{source}: line {number} has {cells} cells, expected {width}.")
            if 8 * (len(values) + cells) > max_bytes:
                raise too_big(source, f"its values up to line {number}", 8 * (len(values) + cells), max_bytes)
            try:
                row = np.fromstring(line, sep=",")
            except ValueError:
                row = np.empty(0)
            if row.size != cells:
                bad, field = next((j, f) for j, f in enumerate(_fields(line)) if not _is_number(f))
                raise ValueError(f"{source}: line {number}, column {bad + 1} is not a number: {field[:40]!r}.")
            values.frombytes(row.tobytes())
    if width is None:
        raise ValueError(f"{source}: the CSV file is empty.")
    if not values:
        raise ValueError(f"{source}: the CSV file has a header but no data rows.")
    if width < 2:
        raise ValueError(f"{source}: a CSV needs feature columns and a last label column; got {width} column.")
    table = np.frombuffer(values, dtype=np.float64).reshape(-1, width)
    return table[:, :-1], table[:, -1]


READERS = {
    ".pickle": _read_pickle,
    ".pkl": _read_pickle,
    ".npz": _read_npz,
    ".csv": _read_csv,
}
