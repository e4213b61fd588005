"""The class report of ``twinnet check --report DIR``: what a teacher reads, hands back and uploads.

DIR receives, for the files checked together (each file's ``<name>`` from
:func:`twinnet.check.report.file_names`):

==================================  ==========================================================
``index.html``                      the class at a glance: pass rate per function, the most
                                    common mistakes with who made them, each file's table; one
                                    self-contained page (inline CSS, no script, no other file)
``gradebook.csv``                   one row per file: its score and what it got wrong
``feedback/<name>.txt``             what ``twinnet check`` prints for that file, 80 columns wide
``gradescope/<name>/results.json``  Gradescope's autograder results: a ``run_autograder`` copies
                                    it to ``/autograder/results/results.json``
``prairielearn/<name>/results.json``  PrairieLearn's external-grader results: copied to
                                    ``/grade/results/results.json``
==================================  ==========================================================

One folder per file for the autograders: each expects a file named ``results.json`` for one
submission, so a teacher's grading script copies ``<tool>/<name>/results.json`` unchanged.

A submission's text (its error messages, quoted in diagnoses) is data: every string from it is
escaped in the page. Files are created new (never through a link found in DIR), and DIR must be
new, empty or an earlier report (replaced only with ``force``), never a folder holding anything else.
"""

from __future__ import annotations

import collections
import csv
import fnmatch
import html
import io
import json
import os
import shutil
from pathlib import Path

from twinnet.check.report import (
    FUNCTIONS,
    PLOT,
    RIGHT,
    SCORE_RULE,
    end_to_end_line,
    end_to_end_passed,
    end_to_end_short,
    file_names,
    outcome,
    render,
    spreadsheet_text,
    verdict,
)

#: Marks a folder as a class report, so that a later run may replace it.
MARKER = ".twinnet-check-report"
#: Where ``--plot DIR/plots`` draws the loss curves beside a report.
PLOTS = "plots"
#: Everything a report writes into DIR.
ENTRIES = (MARKER, "index.html", "gradebook.csv", "feedback", "gradescope", "prairielearn", PLOTS)
FEEDBACK_WIDTH = 80
#: What each result means, in the autograders' test descriptions and the page's legend.
MEANING = {"PASS": "right", "UNSAFE": "right on ordinary inputs, not at extreme ones", "FAIL": "wrong",
           "MISSING": "not defined"}
#: A file's outcome (:func:`twinnet.check.report.outcome`) -> the colour of the result it resembles.
OUTCOME_STYLE = {"passes": "PASS", "passes with warnings": "UNSAFE", "fails": "FAIL"}


def _is_marker(path):
    return path.is_file() and not path.is_symlink()


def prepare_folder(directory, *, force=False) -> Path:
    """Make ``directory`` ready for a report: new, empty, or an earlier report, which holds the
    marker file (removed, with ``force``; ``plots`` too, unless it is this run's). A folder holding
    anything a report does not write, or no marker, is refused.

    A folder holding only ``plots`` of check's loss curves, and no marker, is taken for this run's
    (``check(plot_dir=directory / "plots")``, then :func:`write_class_report`).
    """
    if str(directory) == "":
        raise ValueError("--report must name a folder; got ''.")
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--report {str(directory)!r} is a file; expected a folder.")
    path.mkdir(parents=True, exist_ok=True)
    entries = sorted(os.listdir(path))
    # without the marker, a folder of the report's names is the teacher's, but for check's own loss
    # curves (check(plot_dir=directory / "plots") before write_class_report, from Python)
    ours = _is_marker(path / MARKER) or (entries == [PLOTS] and _loss_curves_only(path / PLOTS))
    foreign = [e for e in entries if e not in ENTRIES] or ([] if ours else entries)
    if foreign:
        raise ValueError(f"--report {str(directory)!r} holds {foreign[0]!r}, which is not part of a twinnet "
                         "check report; give a new or empty folder.")
    if set(entries) - {MARKER, PLOTS} and not force:
        raise ValueError(f"--report {str(directory)!r} already holds a class report; choose another "
                         "folder, or add --force to replace it.")
    for entry in entries:  # the figures of this run (--plot DIR/plots) stay; an earlier run's go
        if entry != PLOTS or force:
            _remove(path / entry)
    _write(path / MARKER, "This folder is a class report written by twinnet check --report.\n")
    return path


def _loss_curves_only(path):
    """Whether the folder ``path`` holds nothing but files named as check's loss curves."""
    return path.is_dir() and not path.is_symlink() and all(
        entry.is_file() and not entry.is_symlink() and fnmatch.fnmatchcase(entry.name, PLOT.format("*"))
        for entry in path.iterdir())


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # removes links found inside, never what they point to
    else:
        path.unlink()


def _write(path, text):
    """Create ``path`` (it must not exist: never written through a link) and write ``text``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags, 0o644), "w", encoding="utf-8", newline="") as f:
        f.write(text)


def write_class_report(reports, directory, *, strict=False, force=False) -> Path:
    """Write the class report of ``reports`` (from :func:`twinnet.check.check`) into ``directory``.

    ``strict``: count unsafe functions as wrong. See the module's notes for what is written.
    """
    path = prepare_folder(directory, force=force)
    names = file_names([r.path for r in reports])
    feedback = [render(r, strict=strict, width=FEEDBACK_WIDTH) + "\n" for r in reports]
    for folder in ("feedback", "gradescope", "prairielearn"):
        os.mkdir(path / folder)
    for name, report, text in zip(names, reports, feedback):
        _write(path / "feedback" / f"{name}.txt", text)
        for tool, result in (("gradescope", gradescope_result), ("prairielearn", prairielearn_result)):
            os.mkdir(path / tool / name)
            _write(path / tool / name / "results.json",
                   json.dumps(result(report, text, strict=strict), indent=2) + "\n")
    _write(path / "gradebook.csv", gradebook(reports, names, strict=strict))
    _write(path / "index.html", class_page(reports, names, strict=strict))
    return path


def _listed(items):
    return "\n".join(items)


def gradebook(reports, names, *, strict=False) -> str:
    """The gradebook: one row per file, its score in the first columns, the score's rule in the header.

    The cells of the submission's words (its name, its failures, why it was not checked) are
    :func:`~twinnet.check.report.spreadsheet_text`: a spreadsheet shows them, never computes them.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student", "file", f"score ({SCORE_RULE[strict]})", "max_score", "passes", "wrong",
                     "unsafe", "missing", "end to end", "top-level failures", "error"])
    for name, r in zip(names, reports):
        listed = {s: [n for n, f in r.functions.items() if f.status == s] for s in ("FAIL", "UNSAFE", "MISSING")}
        writer.writerow([spreadsheet_text(name), spreadsheet_text(r.path), r.score(strict), len(FUNCTIONS),
                         "yes" if r.passes(strict) else "no",
                         " ".join(listed["FAIL"]), " ".join(listed["UNSAFE"]), " ".join(listed["MISSING"]),
                         "" if r.error else end_to_end_short(r.end_to_end), spreadsheet_text(_listed(r.failures)),
                         spreadsheet_text(r.error)])
    return out.getvalue()


def _case(result):
    case = result.case
    return f"first failing case: {case['label']}: {case['message']}" if case else ""


def _test_output(result):
    return "\n".join(part for part in (result.diagnosis, _case(result)) if part)


def gradescope_result(report, feedback, *, strict=False) -> dict:
    """Gradescope's ``results.json`` for one file: a test per function (1 point when right) and
    the end-to-end training as a test of 0 points; the top-level score is the file's score."""
    tests = [{"name": name, "number": str(k), "score": float(result.status in RIGHT[strict]), "max_score": 1.0,
              "status": "passed" if result.status in RIGHT[strict] else "failed",
              "output": f"{result.status}: {MEANING[result.status]}\n{_test_output(result)}".rstrip()}
             for k, (name, result) in enumerate(report.functions.items(), start=1)]
    if report.end_to_end is not None:
        tests.append({"name": "end to end (not scored)", "number": str(len(FUNCTIONS) + 1), "score": 0.0,
                      "max_score": 0.0,
                      "status": "failed" if end_to_end_passed(report.end_to_end) is False else "passed",
                      "output": end_to_end_line(report.end_to_end)})
    return {"score": float(report.score(strict)), "output": feedback, "output_format": "text",
            "test_output_format": "text", "visibility": "visible", "tests": tests}


def prairielearn_result(report, feedback, *, strict=False) -> dict:
    """PrairieLearn's external-grader ``results.json`` for one file: ``score`` in [0, 1] (the
    file's score over 15), a test per function. A file that could not be checked at all (it
    does not parse, it defines none of the functions) is not gradable: the student keeps the try."""
    if report.error:
        return {"gradable": False, "format_errors": [report.error], "message": verdict(report, strict),
                "output": feedback}
    tests = [{"name": name, "description": MEANING[result.status],
              "points": int(result.status in RIGHT[strict]), "max_points": 1,
              "message": result.diagnosis, "output": _case(result)}
             for name, result in report.functions.items()]
    return {"gradable": True, "score": report.score(strict) / len(FUNCTIONS), "message": verdict(report, strict),
            "output": feedback, "tests": tests}


# -- the page ----------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>twinnet check: class report</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d2430; line-height: 1.45; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }}
h2 {{ font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #d5dae1; padding-bottom: .2rem; }}
h3 {{ font-size: 1.05rem; margin: 1.8rem 0 .3rem; }}
h3 small {{ font-weight: normal; color: #5b6472; }}
p.lead {{ color: #3c4653; margin-top: 0; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }}
th, td {{ text-align: left; vertical-align: top; padding: .28rem .7rem .28rem 0; border-bottom: 1px solid #eceff3; }}
th {{ border-bottom: 2px solid #c9d0d9; font-weight: 600; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
code, td.fn {{ font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .88rem; }}
td.why {{ max-width: 40rem; overflow-wrap: anywhere; }}
.bar {{ background: #eceff3; width: 10rem; height: .8rem; border-radius: .2rem; display: inline-block;
        vertical-align: middle; overflow: hidden; }}
.bar span {{ display: block; height: 100%; background: #3b8f5a; }}
.PASS {{ color: #23703f; font-weight: 600; }}
.UNSAFE {{ color: #9a6200; font-weight: 600; }}
.FAIL {{ color: #b3261e; font-weight: 600; }}
.MISSING {{ color: #6b7380; }}
ul.failures {{ margin: .2rem 0 .6rem; padding-left: 1.2rem; }}
ul.failures li {{ overflow-wrap: anywhere; }}
p.verdict {{ margin: .3rem 0; }}
p.e2e {{ color: #3c4653; font-size: .92rem; max-width: 60rem; }}
a {{ color: #1f5fa8; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _status(status) -> str:
    return f'<span class="{_e(status)}">{_e(status)}</span>'


def _who(names):
    return ", ".join(f'<a href="#{_e(_anchor(n))}">{_e(n)}</a>' for n in names)


def _anchor(name):
    return f"file-{name}"


def _pass_rates(reports, strict):
    rows = []
    for name in FUNCTIONS:
        counts = collections.Counter(r.functions[name].status if name in r.functions else "MISSING"
                                     for r in reports)
        right = sum(counts[s] for s in RIGHT[strict])
        rate = right / len(reports)
        rows.append(f'<tr><td class="fn">{_e(name)}</td>'
                    + "".join(f'<td class="n">{counts[s]}</td>' for s in ("PASS", "UNSAFE", "FAIL", "MISSING"))
                    + f'<td class="n">{rate:.0%}</td><td><span class="bar"><span style="width: {rate * 100:.1f}%">'
                    "</span></span></td></tr>")
    head = ("<tr><th>function</th><th>pass</th><th>unsafe</th><th>fail</th><th>missing</th>"
            "<th>pass rate</th><th></th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def mistakes(reports, names):
    """The diagnosed mistakes, most common first: ``(count, function, diagnosis, names)``. A
    function wrong only through another is left out (its cause is counted), and a file that
    could not be checked counts under its reason."""
    who = collections.defaultdict(list)
    for name, r in zip(names, reports):
        if r.error:
            who["(the whole file)", r.error].append(name)
        for function, result in r.functions.items():
            if result.status in ("FAIL", "UNSAFE") and not result.through:
                who[function, result.diagnosis or "(no diagnosis)"].append(name)
    order = {f: k for k, f in enumerate(FUNCTIONS)}
    return sorted(((len(n), f, d, n) for (f, d), n in who.items()),
                  key=lambda row: (-row[0], order.get(row[1], -1), row[2]))


def _top_level_failures(reports, names):
    """Top-level failures, grouped by message without its place (``line 9: ``)."""
    who = collections.defaultdict(list)
    for name, r in zip(names, reports):
        for failure in r.failures:
            message = failure.split(": ", 1)[1] if failure.startswith(("line ", "cell ")) else failure
            if name not in who[message]:
                who[message].append(name)
    return sorted(((len(n), m, n) for m, n in who.items()), key=lambda row: (-row[0], row[1]))


def _table(head, rows, empty):
    if not rows:
        return f"<p>{_e(empty)}</p>"
    return "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"


def _file_section(name, report, strict):
    parts = [f'<h3 id="{_e(_anchor(name))}">{_e(name)} <small>{_e(report.path)} &middot; score '
             f"{report.score(strict)} / {len(FUNCTIONS)}</small></h3>",
             f'<p class="verdict"><span class="{OUTCOME_STYLE[outcome(report, strict)]}">verdict:</span> '
             f'{_e(verdict(report, strict).removeprefix("verdict: "))}</p>']
    if report.failures:
        parts.append(f"<p>top level: {len(report.failures)} of {report.statements} statements failed "
                     "(the others ran):</p>")
        parts.append('<ul class="failures">' + "".join(f"<li><code>{_e(f)}</code></li>" for f in report.failures)
                     + "</ul>")
    notes = getattr(report, "notes", [])
    if notes:
        parts.append('<p>notes:</p><ul class="failures">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    if getattr(report, "imports_reference", False):
        parts.append("<p>note: the file imports twinnet, the reference implementation</p>")
    if report.error:
        return "\n".join(parts)
    rows = [f'<tr><td class="fn">{_e(f)}</td><td>{_status(r.status)}</td>'
            f'<td class="n">{"-" if r.largest_error is None else f"{r.largest_error:.1e}"}</td>'
            f'<td class="why">{_e(r.diagnosis)}</td></tr>' for f, r in report.functions.items()]
    parts.append(_table(("function", "result", "largest error", "diagnosis"), rows, ""))
    if report.end_to_end is not None:
        parts.append(f'<p class="e2e">{_e(end_to_end_line(report.end_to_end))}</p>')
    return "\n".join(parts)


def class_page(reports, names, *, strict=False) -> str:
    """The class report as one self-contained HTML page."""
    passing = [r.passes(strict) for r in reports]
    warned = sum(p and any(f.status == "UNSAFE" for f in r.functions.values()) for p, r in zip(passing, reports))
    mean = sum(r.score(strict) for r in reports) / len(reports)
    body = ["<h1>twinnet check: class report</h1>",
            f'<p class="lead">{len(reports)} {"file" if len(reports) == 1 else "files"}; {sum(passing)} pass '
            f"({warned} with warnings: unsafe functions), {len(reports) - sum(passing)} fail; "
            f"mean score {mean:.1f} / {len(FUNCTIONS)}. Each ran in the sandbox "
            f"{_e(', '.join(sorted({r.sandbox or '-' for r in reports})))}, on the cases drawn with "
            f"<code style=\"white-space: nowrap\">--case-seed "
            f"{_e(', '.join(sorted({str(r.case_seed) for r in reports})))}</code>.<br>"
            f"Score: {_e(SCORE_RULE[strict])}. A file passes when every function it defines is right "
            "and its training follows the reference's cost.</p>",
            "<h2>Pass rate per function</h2>", _pass_rates(reports, strict),
            "<h2>Most common mistakes</h2>",
            _table(("files", "function", "diagnosis", "who"),
                   [f'<tr><td class="n">{count}</td><td class="fn">{_e(f)}</td><td class="why">{_e(d)}</td>'
                    f"<td>{_who(who)}</td></tr>" for count, f, d, who in mistakes(reports, names)],
                   "No mistakes: every function found is right."),
            "<h2>Top-level statements that failed</h2>",
            _table(("files", "error", "who"),
                   [f'<tr><td class="n">{count}</td><td class="why"><code>{_e(m)}</code></td><td>{_who(who)}</td></tr>'
                    for count, m, who in _top_level_failures(reports, names)],
                   "None: every top-level statement ran."),
            "<h2>Files</h2>",
            _table(("file", "score", "verdict", "end to end"),
                   [f'<tr><td><a href="#{_e(_anchor(n))}">{_e(n)}</a></td>'
                    f'<td class="n">{r.score(strict)} / {len(FUNCTIONS)}</td>'
                    f'<td class="{OUTCOME_STYLE[outcome(r, strict)]}">{_e(outcome(r, strict))}</td>'
                    f'<td class="why">{_e("-" if r.error else end_to_end_short(r.end_to_end))}</td></tr>'
                    for n, r in zip(names, reports)], ""),
            *(_file_section(n, r, strict) for n, r in zip(names, reports)),
            f"<p><small>Results: {', '.join(f'{s} {_e(m)}' for s, m in MEANING.items())}.</small></p>"]
    return PAGE.format(body="\n".join(body))
