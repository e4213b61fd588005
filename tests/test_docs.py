"""The extras the documentation names exist.

The pages' commands and code blocks are executed by ``test_readme.py``, README's ``mkdocs build``
among them, which builds the site in MkDocs's strict mode (every link between pages, every
``::: twinnet...`` reference, every docstring it renders): ``test_readme.py`` checks that site too.
Here, what the install instructions promise.
"""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
# `pip install -e ".[tf,plot]"`, `pip install twinnet[docs]`, and the `all` extra's own `twinnet[...]`
NAMED_EXTRAS = re.compile(r"""(?:\.|twinnet)\[([\w,-]+)\]""")


def named_extras(text):
    return {name for names in NAMED_EXTRAS.findall(text) for name in names.split(",")}


def test_named_extras_finds_each_name():
    assert named_extras('pip install -e ".[tf,plot]" && pip install twinnet[docs]') == {"tf", "plot", "docs"}


def test_every_extra_the_docs_name_is_in_pyproject():
    for page in PAGES:
        unknown = named_extras(page.read_text(encoding="utf-8")) - set(EXTRAS)
        assert not unknown, f"{page.relative_to(ROOT)} names extras that pyproject.toml lacks: {sorted(unknown)}"


def test_the_all_extra_holds_every_other_one():
    assert named_extras(" ".join(EXTRAS["all"])) == set(EXTRAS) - {"all"}


def test_getting_started_lists_every_extra():
    text = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^\| `([\w-]+)` \|", text, flags=re.M)) == set(EXTRAS)
