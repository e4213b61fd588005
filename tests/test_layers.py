"""No module imports a layer above its own: the layers are the tables of ``docs/architecture.md``.

Every ``import`` counts, the ones inside functions too: a lazy import defers the cost of a
module, not the dependency. The table "The layers, bottom up" orders twinnet's modules; the
table "Inside the lab, bottom up" orders the lab's. A module's layer is the row naming its longest
prefix; modules of one row may import one another.
"""

import ast
import re
from pathlib import Path

import pytest

import twinnet

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(twinnet.__file__).resolve().parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def table(heading):
    """The rows of the first table under ``heading``, each the module names of its first cell."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("|")]
    return [re.findall(r"`([\w.]+)`", cell) for cell in cells[2:]]  # past the header and its rule


LAYERS = table("The layers, bottom up")
LAB = [[f"twinnet.lab.{name}" for name in row] for row in table("Inside the lab, bottom up")]


def modules():
    """Every module of the twinnet package, by dotted name, and its file."""
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = ("twinnet", *path.relative_to(SOURCE).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imported(name, path):
    """The twinnet modules that module ``name`` imports anywhere in its file.

    ``from twinnet import X`` imports module ``twinnet.X`` where there is one, and the module that
    defines ``X`` where the package's root loads it lazily (``twinnet._LAZY``); otherwise the root.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full not in MODULES:
                    full = twinnet._LAZY.get(alias.name, base) if base == "twinnet" else base
                found.add(full)
    return {module for module in found if module.split(".")[0] == "twinnet" and module != name}


def layer(module):
    """``(row in the layers, row in the lab)`` of ``module``: the rows naming its longest prefix."""
    def row(rows):
        matches = [(len(prefix), i) for i, names in enumerate(rows) for prefix in names
                   if module == prefix or module.startswith(prefix + ".")]
        return max(matches)[1] if matches else None

    top = -1 if module == "twinnet" else row(LAYERS)  # the root imports nothing: the bottom
    assert top is not None, f"{module} is in no row of the table 'The layers, bottom up' of {ARCHITECTURE.name}"
    # the lab's package module re-exports its parts: the top of the lab
    inside = len(LAB) if module == "twinnet.lab" else row(LAB) if module.startswith("twinnet.lab.") else 0
    assert inside is not None, f"{module} is in no row of the table 'Inside the lab, bottom up'"
    return top, inside


def test_the_tables_name_modules_that_exist():
    assert len(LAYERS) >= 10 and len(LAB) >= 5
    named = [name for rows in (LAYERS, LAB) for names in rows for name in names]
    assert len(named) == len(set(named)), "a module is named in two rows"
    missing = [name for name in named if name not in MODULES]
    assert not missing, f"the tables of {ARCHITECTURE.name} name modules that do not exist: {missing}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(name):
    own = layer(name)
    above = sorted(module for module in imported(name, MODULES[name]) if layer(module) > own)
    assert not above, f"{name} (layer {own}) imports {above}, above it in {ARCHITECTURE.name}"


def test_imports_are_read_from_inside_functions_and_through_the_lazy_root(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from twinnet import data, Network\n    from . import heads\n"
                    "    import twinnet.lab.store\n")
    assert imported("twinnet.nn.m", path) == {"twinnet.data", "twinnet.nn", "twinnet.nn.heads", "twinnet.lab.store"}
    assert layer("twinnet.data.files") > layer("twinnet.nn.network") > layer("twinnet.validation")
    assert layer("twinnet.lab.report") > layer("twinnet.lab.run") > layer("twinnet.lab.config")


def private_uses(name, path):
    """Where module ``name`` uses another twinnet module's private name (``_x``): imported from
    it, or read as an attribute of it. A private module of the same package may be imported (the
    sandbox runs ``check._worker`` as a script)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases, found = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("twinnet"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in MODULES:
                    aliases[alias.asname or alias.name] = full
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and not (full in MODULES and node.module == package):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_")
                and not node.attr.startswith("__") and aliases.get(node.value.id, name) != name):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_uses_another_modules_private_names(name):
    uses = private_uses(name, MODULES[name])
    assert not uses, f"{name} uses private names of other modules (make them public): {uses}"


def test_private_uses_are_found(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from twinnet.nn import engine\nfrom twinnet.nn.heads import _row\n"
                    "from twinnet.check import _worker\nx = engine._kernel\ny = engine.forward\n")
    assert private_uses("twinnet.nn.m", path) == ["line 2: from twinnet.nn.heads import _row",
                                                   "line 3: from twinnet.check import _worker",
                                                   "line 4: engine._kernel"]
    assert private_uses("twinnet.check.sandbox", path)[1:] == ["line 4: engine._kernel"]
