"""README.md and the pages of docs/, executed as a new user would follow them, so that the
documentation cannot drift.

Every fenced ```bash block runs with ``bash -euo pipefail`` and every ```python block with Python,
page by page (README first, then docs/*.md by name), each page's blocks in its order in one
temporary working directory of the page's own (``data.pickle`` written by one block is read by a
later one of the same page); a block preceded by the comment ``<!-- readme-test: in the clone -->``
runs in a copy of the repository instead (the files git tracks or would track), because the page
says to run it from a clone (``pip install -e ...``). Each block must exit with status 0. A block
"in the clone" whose exact text an earlier page already ran there (docs/index.md repeats README's
Quickstart, docs/check.md its first check, docs/grade.md its class) is not run again: its output,
which every page's promised lines are checked against, is that earlier run's, since it ran in the
same copy and environment.

The blocks run in a throwaway virtual environment on this interpreter that sees every package this
interpreter sees (``pip install -e`` then finds them installed, and installs only twinnet, from the
copy, into it). Its ``bin`` is first on ``PATH``, holding ``python`` and every command of those
packages (``pip``, ``dask``, ...) run by it, so that no block reaches another Python's programs,
installs into another Python, or changes this interpreter's twinnet. pip there builds twinnet
without build isolation, neither resolves the extras' packages (this interpreter has them) nor
checks every installed package's requirements (``PIP_*`` variables, set for the blocks only): the
block runs as written and still installs the copy's twinnet (a test says so), but in seconds, not
the minute pip takes to download setuptools into a fresh build environment and to read the
metadata of every package this interpreter has. The blocks run with one BLAS and OpenMP thread. The
checkout is left as it was: a test says so.

A ```text block is the output README promises for the nearest block above it that runs: each of its
lines must appear in that block's output (stdout and stderr together), in order; ``...`` stands for
any text (times, machine-dependent digits) and runs of spaces compare equal.
"""

import os
import re
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)

# .ci/run's pytest-xdist runs a file on one worker (--dist loadfile): the pages run once per worker
# that asks for them, and a block "in the clone" is shared only within a worker.

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
IN_THE_CLONE = "<!-- readme-test: in the clone -->"
# The commands not executed. The Quickstart's test command is what CI runs, and the suite includes
# this test, so running it here would recurse. The virtual environment it starts with is the one
# this test already runs in: a block's activation would end with its own process anyway.
NOT_RUN = ("bash .ci/run", "python3 -m venv .venv && . .venv/bin/activate")
TIMEOUT = 600  # seconds per block; the slowest, the Quickstart's pip install and compare, takes ~1 min


@dataclass
class Block:
    page: str  # the file, relative to the repository's root
    line: int  # the page's line of the opening fence
    language: str
    code: str
    in_the_clone: bool
    expected: list  # the text blocks promised as its output


def parse_readme(text, page="README.md"):
    """The fenced blocks of ``text`` (the page ``page``) that run, each with the output blocks that
    follow it."""
    blocks, lines, i = [], text.splitlines(), 0
    previous = ""  # the last non-blank line before a fence
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            previous = lines[i].strip() or previous
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        if end is None:
            raise ValueError(f"{page} line {i + 1}: a fenced block that is never closed")
        language, body = fence.group(1), "\n".join(lines[i + 1:end]) + "\n"
        if language in ("bash", "python"):
            if body.strip() not in NOT_RUN:
                blocks.append(Block(page, i + 1, language, body, previous == IN_THE_CLONE, []))
        elif language == "text":
            if not blocks:
                raise ValueError(f"{page} line {i + 1}: an output block before any command")
            blocks[-1].expected.append(body)
        else:
            raise ValueError(f"{page} line {i + 1}: a ```{language} block: use bash, python or "
                             "text, so that the test knows what to do with it")
        previous, i = "", end + 1
    return blocks


BLOCKS = [block for path in PAGES
          for block in parse_readme(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
PAGES_RUN = list(dict.fromkeys(block.page for block in BLOCKS))  # the pages that have blocks to run


def _normalize(line):
    return " ".join(line.split())


def missing_line(expected, output):
    """The first line of ``expected`` not found in ``output`` after the previous one, or None."""
    lines = [_normalize(line) for line in output.splitlines()]
    at = 0
    for want in map(_normalize, expected.splitlines()):
        if not want or want == "...":
            continue
        pattern = re.compile(".*?".join(re.escape(part) for part in want.split("...")))
        at = next((k + 1 for k in range(at, len(lines)) if pattern.search(lines[k])), None)
        if at is None:
            return want
    return None


def git(*args):
    """The output of ``git ARGS`` in the checkout."""
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout


def checkout_state():
    """What ``git status`` says of the checkout, ignored files included (README's runs write ./twinnet-runs)."""
    return git("status", "--porcelain", "--ignored", "--untracked-files=all").splitlines()


def copy_checkout(clone):
    """Copy the files of the checkout that git tracks or would track (not the ignored ones) to ``clone``."""
    for name in git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0"):
        if name and (ROOT / name).is_file():  # a file deleted from the checkout is in the index still
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)


#: A command of the environment: its entry point, run by the environment's Python. As pip writes
#: them, it runs only as the main script: a process that multiprocessing starts imports the script
#: again (Dask's nanny starts its worker so).
COMMAND = """#!{python}
import sys
from importlib.metadata import EntryPoint

if __name__ == "__main__":
    sys.exit(EntryPoint(None, {value!r}, None).load()())
"""


#: pip's settings in the blocks' environment. pip reads a ``--no-X`` flag's variable as the value
#: of X, so "0" switches it off: ``PIP_NO_BUILD_ISOLATION=0`` builds with this interpreter's
#: setuptools (which pyproject.toml's build requirement is met by) instead of downloading one, and
#: ``PIP_NO_WARN_CONFLICTS=0`` skips the scan of every installed package after the install; and
#: pip does not ask the package index for a newer pip.
FAST_PIP = {"PIP_NO_BUILD_ISOLATION": "0", "PIP_NO_WARN_CONFLICTS": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_DEPS": "1"}  # the extras are this interpreter's packages already: no resolving them
#: One BLAS and OpenMP thread per block: the suite runs as one pytest worker per core, and a second
#: thread of OpenBLAS or torch spins waiting for a core another worker holds (the exercise's
#: functions and the PyTorch twin then take 3 to 15 times the CPU). The promised outputs do not
#: depend on it: the pages' products are small or float64, and their figures rounded (a float32
#: product large enough can differ in its last bits between thread counts: docs/benchmarks.md).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def user_environment(folder):
    """A virtual environment in ``folder`` on this interpreter, seeing its packages; returns the
    variables of a shell that activated it, as a user's are (no ``PYTHONPATH``)."""
    venv.create(folder, with_pip=False, symlinks=True)
    bin_ = folder / "bin"
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(folder), "platbase": str(folder)}))
    # read after the environment's own .pth files (the name sorts last): twinnet installed into it
    # comes first on the path, and this interpreter's packages (their .pth files too) follow
    dirs = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    (site_packages / "zz-running-interpreter.pth").write_text(
        "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs) + "\n")
    for command in entry_points(group="console_scripts"):
        path = bin_ / command.name
        if not path.exists():
            path.write_text(COMMAND.format(python=bin_ / "python", value=command.value))
            path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, **FAST_PIP, **ONE_THREAD, "VIRTUAL_ENV": str(folder),
            "PATH": os.pathsep.join([str(bin_), env.get("PATH", "")])}


def run_block(block, cwd, env):
    """Run one block in ``cwd``; return its exit status and its output (stdout and stderr together)."""
    if block.language == "bash":
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    else:
        command = [str(Path(env["VIRTUAL_ENV"], "bin", "python")), "-c", block.code]
    # its own process group, so that what a block starts in the background (README's Dask
    # scheduler and workers) is stopped with it even when the block fails half-way
    process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\n[readme test: killed after {TIMEOUT} s]"
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:  # nothing left running: the usual case
        pass
    return process.returncode, output


@dataclass
class ReadmeRun:
    results: dict  # page -> {block line -> (exit status, output)}
    clone: Path  # the copy of the checkout the blocks "in the clone" run in
    env: dict  # the blocks' environment variables
    before: list  # the checkout's git status before any block ran
    base: Path  # the folder of the pages' working folders
    in_the_clone: dict = field(default_factory=dict)  # a block's text -> its run, for the blocks in the clone

    def run(self, block, workdir):
        if not block.in_the_clone:
            return run_block(block, workdir, self.env)
        if block.code not in self.in_the_clone:
            self.in_the_clone[block.code] = run_block(block, self.clone, self.env)
        return self.in_the_clone[block.code]

    def page(self, page):
        if page not in self.results:
            workdir = self.base / Path(page).stem
            workdir.mkdir()
            self.results[page] = {block.line: self.run(block, workdir) for block in BLOCKS if block.page == page}
        return self.results[page]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """The copy of the checkout and the environment the blocks run in; ``readme_run.page(page)``
    runs the page's blocks once, in the page's order, in a folder of the page's own, and returns
    block line -> (exit status, output). A page runs when its first block's test asks for it, so
    that pytest's time limit bounds one page's run, not the whole documentation's."""
    base = tmp_path_factory.mktemp("readme")
    clone = base / "clone"
    copy_checkout(clone)
    return ReadmeRun({}, clone, user_environment(base / "venv"), checkout_state(), base)


def test_readme_is_parsed_into_the_blocks_it_shows():
    text = README.read_text(encoding="utf-8")
    fences = re.findall(r"^```(bash|python)$", text, flags=re.M)
    readme_blocks = [block for block in BLOCKS if block.page == "README.md"]
    assert len(readme_blocks) == len(fences) - len(NOT_RUN)  # all but the Quickstart's venv and tests
    quickstart = readme_blocks[0]
    assert quickstart.in_the_clone and quickstart.code == 'pip install -e ".[tf,plot]" && twinnet compare\n'
    tests, venv = (text.index(f"```bash\n{command}\n```") for command in NOT_RUN)
    assert venv < text.index(quickstart.code) < tests  # the Quickstart: a venv, then the two commands
    assert (ROOT / ".ci" / "run").is_file()
    assert {block.page for block in BLOCKS} > {"README.md", "docs/check.md", "docs/lab.md"}


def test_missing_line_follows_order_and_ellipses():
    output = "a  table\n numpy   0.15  0.96  12.3 ms\nwrote x/results.json, x/loss_curves.png\n"
    assert missing_line("numpy 0.15 ... ms\nwrote x/...loss_curves.png\n", output) is None
    assert missing_line("wrote x/\nnumpy\n", output) == "numpy"  # out of order
    assert missing_line("numpy 0.16 ...\n", output) == "numpy 0.16 ..."


def test_the_pictures_readme_shows_exist():
    text = README.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    assert "docs/loss_curves.png" in images
    for image in images:
        assert (ROOT / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image


def test_local_links_point_to_files():
    text = README.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s:]+)\)", text):  # relative links, not URLs or anchors
        assert (ROOT / target).exists(), target


def _anchor(heading):
    # GitHub's anchor of a heading: lower case, punctuation other than hyphens dropped, spaces -> -
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_within_the_page_point_to_headings():
    text = README.read_text(encoding="utf-8")
    anchors = {_anchor(heading) for heading in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    assert _anchor("`twinnet sweep` and `twinnet report`: the take-home question") == \
        "twinnet-sweep-and-twinnet-report-the-take-home-question"
    for target in re.findall(r"\]\(#([^)\s]+)\)", text):
        assert target in anchors, f"README links to #{target}, but no heading has that anchor"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.page}:line{b.line}-{b.language}" for b in BLOCKS])
def test_block_runs_and_prints_what_readme_promises(block, readme_run):
    status, output = readme_run.page(block.page)[block.line]
    shown = f"{block.page} line {block.line}:\n{block.code}\n--- output (last 4000 characters) ---\n{output[-4000:]}"
    assert status == 0, f"exit status {status}\n{shown}"
    for expected in block.expected:
        missing = missing_line(expected, output)
        assert missing is None, f"promised output line not found: {missing!r}\n{shown}"


def test_the_site_readme_builds_is_strict_and_whole(readme_run):
    # README's `mkdocs build`, in the copy: strict (mkdocs.yml says so), so a broken link, reference
    # or docstring fails its block; here, every page and the API reference are in the site
    assert re.search(r"^strict: true$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), flags=re.M)
    readme_run.page("README.md")
    site = readme_run.clone / "site"
    for page in (ROOT / "docs").glob("*.md"):
        assert (site / page.with_suffix(".html").name).is_file(), page.name
    reference = (site / "reference.html").read_text(encoding="utf-8")
    for name in ("twinnet.nn.Network", "twinnet.functional.L_model_backward", "twinnet.estimator.TwinNetClassifier",
                 "twinnet.keras_twin.to_keras", "twinnet.check.check"):
        assert f'id="{name}"' in reference, name
    # the estimators' hyperparameters, filled in at import time, are rendered, not their placeholder
    assert "hidden_layer_sizes" in reference and "&lt;hyperparameters&gt;" not in reference


def test_the_blocks_leave_the_checkout_as_it_was(readme_run):
    for page in PAGES_RUN:  # the pages the tests above ran are not run again
        readme_run.page(page)
    before, after = readme_run.before, checkout_state()
    assert after == before, "the pages' blocks changed the checkout:\n" + "\n".join(sorted(set(after) ^ set(before)))


def test_the_blocks_ran_the_copys_twinnet_installed_into_their_environment(readme_run):
    # the Quickstart's pip install -e, run in the copy, put the copy's twinnet into the environment
    where = "import shutil, twinnet; print(twinnet.__file__); print(shutil.which('twinnet'))"
    found = subprocess.run(["python", "-c", where], env=readme_run.env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert found == [str(readme_run.clone / "src" / "twinnet" / "__init__.py"),
                     str(Path(readme_run.env["VIRTUAL_ENV"], "bin", "twinnet"))], found


def test_processes_the_tests_start_write_temporary_files_into_the_tests_folder(system_temporary_folder,
                                                                               tmp_path_factory):
    # tests/conftest.py: a library's temporary files (TensorFlow's autograph modules, which a killed
    # process leaves behind) go to this run's folder, not to the system's /tmp
    done = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
                          capture_output=True, text=True, check=True)
    assert Path(done.stdout.strip()) == system_temporary_folder
    assert system_temporary_folder.parent == tmp_path_factory.getbasetemp()
