"""Read a learner's file: a ``.py`` module, or the code cells of an ``.ipynb`` notebook.

Nothing here parses the learner's Python: the child process does, in its sandbox. A notebook is
read by this module run as a script in a process of its own (``python -I source.py NOTEBOOK``,
bounded in memory and time), where IPython's own input transformer turns magics, ``!`` commands
and ``?`` help into Python calls that the child then skips with a note.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

SUFFIXES = (".py", ".ipynb")
MAX_BYTES = {".py": 4 << 20, ".ipynb": 64 << 20}  # a notebook holds its outputs (figures) too
# bytes of a notebook's code cells, their labels included: no more than a .py file's, which is what
# the learner's process reads of code (check/_worker.py's MAX_REQUEST)
MAX_CODE = MAX_BYTES[".py"]
NOTEBOOK_TIME = 120  # seconds to read one notebook
NOTEBOOK_MEMORY = 2 << 30  # bytes of address space for it
#: Cell magics whose body is Python: the body is checked, the magic line left out.
PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun")


class Source(NamedTuple):
    """The learner's code as cells (a ``.py`` file is one cell, labelled ""), and notes on what
    reading it left out."""

    cells: list  # [label, text]: the label as the learner sees the cell ("cell 3 (In [7])")
    notes: list

    def where(self, cell: int, lineno: int) -> str:
        label = self.cells[cell][0] if 0 <= cell < len(self.cells) else ""
        return f"{label}, line {lineno}" if label else f"line {lineno}"


def check_path(path) -> Path:
    """``path`` as a Path, when it names a ``.py`` file or a notebook that exists."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"PATH must be a .py file or an .ipynb notebook; got {str(path)!r}.")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    return path


def read_source(path) -> Source:
    """The code of ``path``. Raises ``FileNotFoundError`` for a missing file, ``ValueError`` for
    another kind of file, a symbolic link, one too large, or a notebook that cannot be read or
    holds more code than ``MAX_CODE``."""
    if Path(path).is_symlink():  # else a submission could stand for any file the teacher can read
        raise ValueError("is a symbolic link; twinnet check reads only regular files (give the file it points to)")
    path = check_path(path)
    size, limit = path.stat().st_size, MAX_BYTES[path.suffix]
    if size > limit:
        raise ValueError(f"is {size / 2**20:.1f} MB; twinnet check reads {path.suffix} files up to "
                         f"{limit / 2**20:.0f} MB")
    if path.suffix == ".py":  # utf-8-sig: a byte-order mark (Windows Notepad) is not code
        return Source([["", path.read_bytes().decode("utf-8-sig", errors="replace")]], [])
    try:
        done = subprocess.run([sys.executable, "-I", __file__, str(path.resolve())], capture_output=True,
                              timeout=NOTEBOOK_TIME, stdin=subprocess.DEVNULL)
        read = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        read = {"error": f"reading it took longer than {NOTEBOOK_TIME} s"}
    except ValueError:
        read = {"error": f"the reader ended with status {done.returncode}"}
    if read.get("error"):
        raise ValueError(f"is not a readable notebook: {read['error']}")
    code = sum(len(label.encode()) + len(text.encode("utf-8", "surrogatepass")) for label, text in read["cells"])
    if code > MAX_CODE:
        raise ValueError(f"holds {code / 2**20:.1f} MB of code; twinnet check reads notebooks with up to "
                         f"{MAX_CODE / 2**20:.0f} MB of it")
    return Source(read["cells"], read["notes"])


def notebook_cells(path):
    """The code cells of a notebook, IPython syntax transformed, and notes on the cells left out."""
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    notebook = nbformat.read(path, as_version=4)
    cells, notes = [], []
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code, start=1):
        count = cell.get("execution_count")
        label = f"cell {number}" + (f" (In [{count}])" if count else "")
        text = cell.source.lstrip("\ufeff")
        if text.startswith("%%"):
            magic = (text[2:].split() or [""])[0]
            if magic not in PYTHON_CELL_MAGICS:
                notes.append(f"{label}: a %%{magic} cell is not Python; skipped")
                continue
            text = "# " + text  # the magic's line a comment: the lines keep their numbers
        try:
            text = transform(text)
        except Exception:  # noqa: BLE001  (left as it is: the child's parser says what is wrong)
            pass
        cells.append([label, text])
    return {"cells": cells, "notes": notes}


def main(path):
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (NOTEBOOK_MEMORY, NOTEBOOK_MEMORY))
    # nbformat imports jsonschema, which imports rfc3987_syntax where it is installed (with Jupyter):
    # it builds a grammar for IRIs, 3-4 s of CPU per notebook read. The notebook schema has no IRI,
    # and this process (the reader's own) imports nothing else.
    sys.modules.setdefault("rfc3987_syntax", None)
    try:
        read = notebook_cells(path)
    except Exception as exc:  # noqa: BLE001  (nbformat raises several kinds for a damaged file)
        read = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    print(json.dumps(read))


if __name__ == "__main__":
    main(sys.argv[1])
