"""The documentation site: it builds in MkDocs's strict mode, and the extras it names exist.

The pages' commands and code blocks are executed by ``test_readme.py``; here, what MkDocs checks
(every link between pages, every ``::: twinnet...`` reference, every docstring it renders) and what
the install instructions promise.
"""

import os
import re
import subprocess
import sys
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


def _entries():
    return sorted(path.relative_to(ROOT) for folder in (ROOT, ROOT / "docs") for path in folder.iterdir())


def test_the_site_builds_in_strict_mode(tmp_path):
    # run from another folder, into a temporary one: the build writes nothing into the checkout
    before = _entries()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    for page in (ROOT / "docs").glob("*.md"):
        assert (site / page.with_suffix(".html").name).is_file(), page.name
    reference = (site / "reference.html").read_text(encoding="utf-8")
    for name in ("twinnet.nn.Network", "twinnet.functional.L_model_backward", "twinnet.estimator.TwinNetClassifier",
                 "twinnet.keras_twin.to_keras", "twinnet.check.check"):
        assert f'id="{name}"' in reference, name
    # the estimators' hyperparameters, filled in at import time, are rendered, not their placeholder
    assert "hidden_layer_sizes" in reference and "&lt;hyperparameters&gt;" not in reference
    assert _entries() == before
