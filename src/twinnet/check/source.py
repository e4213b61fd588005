"""Read a learner's file: a ``.py`` module or the code cells of an ``.ipynb`` notebook."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

SUFFIXES = (".py", ".ipynb")


class Source(NamedTuple):
    """The learner's code as one text, and where each of its lines came from."""

    text: str
    origins: list  # origins[lineno - 1]: "line 12" or "cell 3, line 2"

    def where(self, lineno: int) -> str:
        return self.origins[lineno - 1] if 0 < lineno <= len(self.origins) else f"line {lineno}"


def read_source(path) -> Source:
    """The code of ``path``; notebook cells are joined, shell (``!``) and magic (``%``) lines blanked.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for another kind of file.
    """
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"PATH must be a .py file or an .ipynb notebook; got {str(path)!r}.")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    if path.suffix == ".py":
        text = path.read_text(encoding="utf-8", errors="replace")
        return Source(text, [f"line {k}" for k in range(1, text.count("\n") + 2)])
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001  (nbformat raises several kinds for a damaged file)
        raise ValueError(f"{str(path)!r} is not a readable notebook: {exc}") from None
    lines, origins = [], []
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for number, cell in enumerate(cells, start=1):
        for k, line in enumerate(cell.source.splitlines(), start=1):
            # IPython syntax is not Python: a blank line keeps the numbering of the rest
            lines.append("" if line.lstrip().startswith(("!", "%")) else line)
            origins.append(f"cell {number}, line {k}")
    return Source("\n".join(lines) + "\n", origins + ["end of file"])


def parse(source: Source, filename: str) -> ast.Module:
    """The module's syntax tree; a ``SyntaxError`` becomes a one-line ``ValueError`` with its place."""
    try:
        return ast.parse(source.text, filename=filename)
    except SyntaxError as exc:
        raise ValueError(
            f"does not parse: {source.where(exc.lineno or 0)}: {exc.msg}"
        ) from None
