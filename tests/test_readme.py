"""README.md and the pages of docs/, executed as a new user would follow them, so that the
documentation cannot drift.

Every fenced ```bash block runs with ``bash -euo pipefail`` and every ```python block with Python,
page by page (README first, then docs/*.md by name), each page's blocks in its order in one
temporary working directory of the page's own (``data.pickle`` written by one block is read by a
later one of the same page); a block preceded by the comment ``<!-- readme-test: in the clone -->``
runs in the repository's root instead, because the page says to run it from a clone
(``pip install -e ...``). Each block must exit with status 0.

A ```text block is the output README promises for the nearest block above it that runs: each of its
lines must appear in that block's output (stdout and stderr together), in order; ``...`` stands for
any text (times, machine-dependent digits) and runs of spaces compare equal.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def run_block(block, workdir):
    """Run one block; return its exit status and its output (stdout and stderr together)."""
    if block.language == "bash":
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    else:
        command = [sys.executable, "-c", block.code]
    cwd = ROOT if block.in_the_clone else workdir
    # its own process group, so that what a block starts in the background (README's Dask
    # scheduler and workers) is stopped with it even when the block fails half-way
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
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
    if block.in_the_clone:
        # README's compare and the class reports write into ./twinnet-runs (git-ignored) of the
        # clone, and say where: leave no trace
        for folder in set(re.findall(r"\b(twinnet-runs/[^/\s()]+)", output)):
            shutil.rmtree(ROOT / folder, ignore_errors=True)
    return process.returncode, output


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """``readme_run(page)``: the page's blocks, each run once, in the page's order, in a folder of the
    page's own: block line -> (exit status, output). A page runs when its first block's test asks
    for it, so that pytest's time limit bounds one page's run, not the whole documentation's."""
    runs = {}

    def run(page):
        if page not in runs:
            workdir = tmp_path_factory.mktemp(Path(page).stem)
            runs[page] = {block.line: run_block(block, workdir) for block in BLOCKS if block.page == page}
        return runs[page]
    return run


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
    status, output = readme_run(block.page)[block.line]
    shown = f"{block.page} line {block.line}:\n{block.code}\n--- output (last 4000 characters) ---\n{output[-4000:]}"
    assert status == 0, f"exit status {status}\n{shown}"
    for expected in block.expected:
        missing = missing_line(expected, output)
        assert missing is None, f"promised output line not found: {missing!r}\n{shown}"
