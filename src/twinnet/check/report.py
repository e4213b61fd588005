"""What ``twinnet check`` found, per file, and how it is shown: a table, a CSV, JSON, a figure."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from twinnet import functional as F

FUNCTIONS = tuple(F.__all__)
#: The functions a training step runs, callees first: the wrong ones explain a departure.
TRAINING_PATH = ("initialize_parameters", "linear_forward", "sigmoid", "relu", "linear_activation_forward",
                 "L_model_forward", "linear_backward", "sigmoid_backward", "relu_backward",
                 "linear_activation_backward", "L_model_backward", "update_parameters")
CODES = {"PASS": "P", "FAIL": "F", "UNSAFE": "U", "MISSING": "-"}
#: The results that count as right, without and with ``strict`` (a missing function passes a
#: file, so that work in progress can be checked, but scores nothing).
RIGHT = {False: ("PASS", "UNSAFE"), True: ("PASS",)}
#: How the score is counted, without and with ``strict``: said wherever a score is shown.
SCORE_RULE = {
    False: "functions right out of 15; an unsafe one (right, except at extreme inputs) counts as right",
    True: "functions right out of 15; an unsafe one (right, except at extreme inputs) counts as wrong (--strict)",
}


@dataclass
class FunctionResult:
    status: str  # PASS, FAIL, UNSAFE (right on ordinary inputs, not on saturated ones), MISSING
    largest_error: float | None = None  # largest |received - expected| / max |expected|
    diagnosis: str = ""
    calls: list = field(default_factory=list)  # the learner's functions it calls
    through: bool = False  # right when the functions it calls are the reference's
    case: dict | None = None  # the first failing case: label and message


@dataclass
class FileReport:
    path: str
    error: str = ""  # the file could not be checked at all: why
    statements: int = 0
    failures: list = field(default_factory=list)  # top-level statements that failed: where and why
    found: list = field(default_factory=list)
    functions: dict = field(default_factory=dict)  # name -> FunctionResult, in the exercise's order
    end_to_end: dict | None = None
    plot: str | None = None
    notes: list = field(default_factory=list)  # what reading the file left out (a notebook's magics)
    imports_reference: str = ""  # where the file imports twinnet: none of its functions is credited
    sandbox: str = ""  # what the file ran in: "bwrap" or "none"
    case_seed: int | None = None  # what the cases were drawn from (--case-seed draws them again)

    def passes(self, strict=False) -> bool:
        """Every function found is right (an unsafe one too, unless ``strict``) and the training,
        if any, followed the reference's cost."""
        ok = (*RIGHT[strict], "MISSING")
        return (not self.error and all(r.status in ok for r in self.functions.values())
                and end_to_end_passed(self.end_to_end) is not False)

    def score(self, strict=False) -> int:
        """The functions right, out of 15 (see :data:`SCORE_RULE`)."""
        return sum(r.status in RIGHT[strict] for r in self.functions.values())

    def resolve_through(self):
        """Name, for a function wrong only through the functions it calls, those that are wrong."""
        for result in self.functions.values():
            if not result.through:
                continue
            reached, todo = [], list(result.calls)
            while todo:  # every function it calls, directly or not
                name = todo.pop()
                if name not in reached:
                    reached.append(name)
                    todo += self.functions[name].calls
            # the causes: wrong functions that are not themselves wrong only through others
            causes = [n for n in FUNCTIONS if n in reached and self.functions[n].status == result.status
                      and not self.functions[n].through]
            causes = causes or [n for n in FUNCTIONS if n in result.calls]
            word = "wrong" if result.status == "FAIL" else "unsafe"
            result.diagnosis = (f"{word} only through {', '.join(causes)}, which it calls: right with "
                                f"twinnet's {'version' if len(causes) == 1 else 'versions'}")

    def explain_end_to_end(self):
        """The first iteration where the learner's cost departs from the reference's, and why."""
        e2e = self.end_to_end
        if e2e.get("error") or not e2e.get("learner"):
            return
        departs = departure(e2e["learner"], e2e["reference"], e2e["rtol"])
        e2e["departs_at"] = departs
        if departs is None:
            return
        candidates = TRAINING_PATH
        if departs == 0 and e2e["measured_by"] == "update_parameters":
            candidates = ("initialize_parameters",)  # the first cost only depends on the initial weights
        failing = [n for n in candidates if n in self.functions and self.functions[n].status == "FAIL"
                   and not self.functions[n].through]
        e2e["explained_by"] = ", ".join(failing) if failing else "L_layer_model"

    def to_dict(self, strict=False):
        record = asdict(self)
        record.update(passed=self.passes(strict), score=self.score(strict), max_score=len(FUNCTIONS),
                      strict=strict)
        return record


def departure(costs, reference, rtol):
    """The first iteration where ``costs`` depart from ``reference`` (relative ``rtol``), the
    length of ``costs`` when they stop early, or None when they follow it at every iteration."""
    n = min(len(reference), len(costs))
    with np.errstate(all="ignore"):
        apart = ~np.isclose(costs[:n], reference[:n], rtol=rtol, atol=0)
    return int(np.argmax(apart)) if apart.any() else (n if len(costs) != len(reference) else None)


def add_keras(e2e, costs):
    """Attach the Keras twin's cost curve to a training's record, and where it departs."""
    e2e["keras"] = costs
    e2e["keras_departs_at"] = departure(costs, e2e["reference"], e2e["rtol"])


def _largest_gap(costs, reference):
    return max(abs(a - b) / abs(b) for a, b in zip(costs, reference))


def keras_clause(e2e) -> str:
    """How the Keras twin's cost followed the reference's ("" when it was not trained)."""
    costs = e2e.get("keras")
    if not costs:
        return ""
    k = e2e["keras_departs_at"]
    if k is None:
        return (f"the Keras twin's cost follows the reference (largest relative difference "
                f"{_largest_gap(costs, e2e['reference']):.1e})")
    return (f"the Keras twin's cost departs from the reference at iteration {k} ({costs[k]:.6f} "
            f"instead of {e2e['reference'][k]:.6f})")


def end_to_end_passed(e2e):
    """True when the learner's cost followed the reference's, False when it did not or training
    failed, None when there was no training or its cost could not be followed."""
    if e2e is None:
        return None
    if e2e.get("error"):
        return False
    return None if not e2e.get("learner") else e2e["departs_at"] is None


def end_to_end_short(e2e) -> str:
    """The end-to-end training's outcome in a few words."""
    if e2e is None:
        return "-"
    if e2e.get("error"):
        return f"failed: {e2e['error']}"
    if not e2e.get("learner"):
        return "cost not followed (L_layer_model calls neither update_parameters nor compute_cost)"
    k = e2e["departs_at"]
    if k is None:
        return "follows the reference"
    if k >= len(e2e["learner"]):
        return f"stopped after {len(e2e['learner'])} iterations"
    return f"departs at iteration {k} ({e2e.get('explained_by')})"


def _names(report, *statuses):
    return [n for n, r in report.functions.items() if r.status in statuses]


def verdict(report, strict=False) -> str:
    """One line: how many functions are right, which are wrong, unsafe or missing, and the outcome."""
    if report.error:
        return f"verdict: fails: not checked ({report.error})"
    parts = [f"{report.score(strict)} of {len(FUNCTIONS)} right"]
    for label, names in (("wrong", _names(report, "FAIL")),
                         ("unsafe at extreme inputs (" + ("counted as wrong: --strict" if strict else
                                                          "a warning; --strict counts them as wrong") + ")",
                          _names(report, "UNSAFE")),
                         ("missing", _names(report, "MISSING"))):
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    if end_to_end_passed(report.end_to_end) is False:
        parts.append(f"end to end: {end_to_end_short(report.end_to_end)}")
    if report.failures:
        n = len(report.failures)
        parts.append(f"{n} top-level {'statement' if n == 1 else 'statements'} failed")
    return f"verdict: {outcome(report, strict)}: {'; '.join(parts)}"


def outcome(report, strict=False) -> str:
    """"passes", "passes with warnings" (unsafe functions, not ``strict``) or "fails"."""
    if not report.passes(strict):
        return "fails"
    return "passes with warnings" if _names(report, "UNSAFE") else "passes"


def verdict_many(reports, strict=False) -> str:
    """One line for several files: how many pass, which fail, which pass with warnings."""
    names = file_names([r.path for r in reports])
    failing = [n for n, r in zip(names, reports) if not r.passes(strict)]
    warned = [n for n, r in zip(names, reports) if r.passes(strict) and _names(r, "UNSAFE")]
    parts = [f"{len(reports) - len(failing)} of {len(reports)} files pass"]
    if failing:
        parts.append(f"fail: {', '.join(failing)}")
    if warned:
        parts.append(f"pass with warnings (unsafe functions): {', '.join(warned)}")
    return "verdict: " + "; ".join(parts)


_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text) -> str:
    """Only letters, digits, '.', '_' and '-', never starting with a dot ('..', hidden files)."""
    return _UNSAFE_CHARACTERS.sub("_", text).lstrip(".") or "file"


def file_names(paths) -> list[str]:
    """A short name for each path, unique and safe as a file name: the file's stem, prefixed by
    its folder's name where two stems clash (``a/alice.py``, ``b/alice.py``: ``a_alice``,
    ``b_alice``), and numbered (``-2``, ``-3``) where that still clashes. Names are compared
    without case, for file systems that ignore it. The same paths always give the same names."""
    paths = [Path(p) for p in paths]
    stems = [_safe(p.stem) for p in paths]
    clashes = {s.lower() for s in stems if sum(t.lower() == s.lower() for t in stems) > 1}
    names = [_safe(f"{p.resolve().parent.name}_{s}") if s.lower() in clashes else s
             for p, s in zip(paths, stems)]
    unique, taken = [], set()
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate.lower())
        unique.append(candidate)
    return unique


def _error(value):
    return "-" if value is None else f"{value:.1e}"


def end_to_end_line(e2e) -> str:
    keras = keras_clause(e2e)
    return f"{_learner_line(e2e)}; {keras}" if keras else _learner_line(e2e)


def _learner_line(e2e) -> str:
    if e2e.get("error"):
        return f"end to end: L_layer_model failed: {e2e['error']}"
    if not e2e.get("learner"):
        return ("end to end: could not follow the cost: L_layer_model calls neither update_parameters "
                "nor compute_cost")
    reference, learner = e2e["reference"], e2e["learner"]
    what = (f"end to end: {len(reference)} iterations of layers {','.join(map(str, e2e['layers']))} on "
            f"{e2e['data']}, learning rate {e2e['learning_rate']:g}, from np.random.seed({e2e['seed']}):")
    k = e2e["departs_at"]
    if k is None:
        gap = _largest_gap(learner, reference)
        return (f"{what} the cost follows the reference at every iteration (largest relative "
                f"difference {gap:.1e}); final cost {learner[-1]:.6f}")
    if k >= len(learner):
        return f"{what} L_layer_model stopped after {len(learner)} iterations"
    return (f"{what} the cost departs from the reference at iteration {k} ({learner[k]:.6f} instead "
            f"of {reference[k]:.6f}), explained by {e2e['explained_by']}")


#: What a submission's text may not send to a terminal: the C0 control characters but newline and tab
#: (ESC starts the sequences that move the cursor, clear lines and retitle the window), DEL, and C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    r"""``text`` with each control character but newline and tab written as its escape (ESC as ``\x1b``).

    >>> visible("x\x1b[2Kok\x07")
    'x\\x1b[2Kok\\x07'
    """
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _plain(text):
    """A line for the terminal: a submission's text is data (no markup, no control character)."""
    from rich.text import Text

    return Text(visible(text))


def _console(width):
    """A console that renders plain text (no colour, no markup: a submission's text is data) into a string."""
    from rich.console import Console

    return Console(file=io.StringIO(), width=width or shutil.get_terminal_size().columns, color_system=None,
                   markup=False, emoji=False, highlight=False, soft_wrap=False)


def _text(header, renderables, width) -> str:
    """``header`` wrapped at spaces only (it names a path, which a teacher copies whole), then the rest."""
    console = _console(width)
    console.print(textwrap.fill(visible(header), console.width, break_long_words=False, break_on_hyphens=False),
                  soft_wrap=True)
    for renderable in renderables:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def _bullets(items):
    """One item a line under a heading, wrapped lines indented under the item's first word."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for item in items:
        grid.add_row("  -", _plain(item))
    return grid


def _top_level(report):
    """Every top-level statement that failed, and the notes, as renderables."""
    parts = []
    if report.failures:
        parts += [_plain(f"top level: {len(report.failures)} of {report.statements} statements failed "
                         "(the others ran):"), _bullets(report.failures)]
    if getattr(report, "imports_reference", False):
        parts.append(_plain("note: the file imports twinnet, the reference implementation: none of its "
                            "functions is credited"))
    notes = getattr(report, "notes", [])
    if notes:
        parts += [_plain("notes:"), _bullets(notes)]
    return parts


def _function_table(report):
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 1))
    table.add_column("function", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("largest error")  # the header wraps where room is short; its values do not
    table.add_column("diagnosis", overflow="fold")
    for name, result in report.functions.items():
        table.add_row(name, result.status, _error(result.largest_error), _plain(result.diagnosis))
    return table


def render(report: FileReport, *, strict=False, width=None) -> str:
    """One file's table, the lines above it, the end-to-end line and the verdict below it.

    ``width``: columns to wrap to (default: the terminal's); diagnoses wrap at word boundaries.
    """
    header = f"twinnet check: runs the code in {report.path} ({_where([report])})"
    parts = _top_level(report)
    if report.error:
        parts.append(_plain(f"{report.path}: {report.error}"))
    else:
        parts.append(_function_table(report))
        if report.end_to_end is not None:
            parts.append(_plain(end_to_end_line(report.end_to_end)))
        if report.plot:
            parts.append(_plain(f"wrote {report.plot}"))
    parts.append(_plain(verdict(report, strict=strict)))
    return _text(header, parts, width)


WHERE = {"bwrap": "in a bubblewrap sandbox", "none": "in a separate process, not sandboxed"}


def _where(reports) -> str:
    """What the files ran in, as the first line says it."""
    return ", ".join(WHERE.get(m, "in a separate process") for m in sorted({r.sandbox for r in reports}))


def _codes(report):
    """The functions' one-letter results in the exercise's order, in groups of five."""
    codes = "".join(CODES[report.functions[n].status] for n in FUNCTIONS)
    return " ".join(codes[k:k + 5] for k in range(0, len(codes), 5))


def render_many(reports, *, strict=False, width=None) -> str:
    """Several files: one row per file (its name from :func:`file_names`), every top-level
    failure below the table, and one verdict line for all."""
    from rich.table import Table

    names = file_names([r.path for r in reports])
    table = Table(box=None, pad_edge=False, padding=(0, 1))
    table.add_column("file", overflow="fold")
    table.add_column("score", no_wrap=True, justify="right")
    table.add_column("functions 1-15", no_wrap=True)
    table.add_column("end to end", overflow="fold")
    for name, r in zip(names, reports):
        if r.error:
            table.add_row(name, f"0/{len(FUNCTIONS)}", "", _plain(r.error))
        else:
            table.add_row(name, f"{r.score(strict=strict)}/{len(FUNCTIONS)}", _codes(r),
                          _plain(end_to_end_short(r.end_to_end)))
    header = f"twinnet check: runs the code in each of {len(reports)} files ({_where(reports)})"
    parts = [table]
    for name, r in zip(names, reports):
        details = _top_level(r)
        if details:
            parts += [_plain(f"{name} ({r.path}):"), *details]
    # the twin trains from the reference's weights, not the learner's: one clause for all files
    keras = next((r.end_to_end for r in reports if r.end_to_end and r.end_to_end.get("keras")), None)
    if keras:
        parts.append(_plain(f"end to end: {keras_clause(keras)}"))
    parts.append(_plain("functions, in order: " + ", ".join(FUNCTIONS)))
    parts.append(_plain("P pass, F fail, U unsafe (right, except at extreme inputs), - missing; score: "
                        + SCORE_RULE[strict]))
    parts.append(_plain(verdict_many(reports, strict=strict)))
    return _text(header, parts, width)


#: What a spreadsheet takes for the start of a formula (OWASP's list against CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """``text`` for a CSV cell: prefixed with ``'`` where a spreadsheet would take it for a formula
    (``=HYPERLINK(...)``, ``-1-1``), so that it is shown as text, never computed."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def write_csv(reports, path):
    """One row per file and function, and for each file's top-level statements that failed, its
    notes and its end-to-end training, with the diagnosis or the reason."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "function", "result", "largest_error", "diagnosis"])
        # the file's name and the text hold the submission's words: shown, never computed
        writer.writerows([spreadsheet_text(r.path), function, result, largest_error, spreadsheet_text(text)]
                         for r in reports for function, result, largest_error, text in _csv_rows(r))


def _csv_rows(report):
    """``(function, result, largest_error, text)`` for each of :func:`write_csv`'s rows of ``report``."""
    if report.error:
        yield "", "ERROR", "", report.error
    for failure in report.failures:
        yield "top level", "FAIL", "", failure
    for note in getattr(report, "notes", []):
        yield "note", "", "", note
    for name, result in report.functions.items():
        yield (name, result.status, "" if result.largest_error is None else f"{result.largest_error:.3e}",
               result.diagnosis)
    if report.end_to_end is not None:
        status = {True: "PASS", False: "FAIL", None: "UNKNOWN"}[end_to_end_passed(report.end_to_end)]
        yield "end to end", status, "", end_to_end_line(report.end_to_end)


def write_json(reports, path, strict=False):
    """One record per file: its fields, and ``passed``, ``score`` and ``max_score`` as ``strict`` counts them."""
    Path(path).write_text(json.dumps([r.to_dict(strict) for r in reports], indent=2, default=float) + "\n",
                          encoding="utf-8")


#: The name of a file's loss curves (:func:`plot`), from its name (:func:`file_names`).
PLOT = "{}_loss_curves.png"


def plot(report: FileReport, directory, name) -> str:
    """The loss curves of the end-to-end training (the learner's, the reference's and the Keras
    twin's when it was trained) into ``directory``, as :data:`PLOT` (``<name>_loss_curves.png``,
    ``name`` from :func:`file_names`); the PNG's path."""
    from twinnet.plotting import pyplot

    plt = pyplot()
    e2e = report.end_to_end
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / PLOT.format(name)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(e2e["reference"], label="twinnet.functional (reference)", lw=2.5, alpha=0.6)
    ax.plot(e2e["learner"], label=f"{Path(report.path).name}", lw=1.2)
    if e2e.get("keras"):  # dashed, on top: where all three agree, it stays visible
        ax.plot(e2e["keras"], label="Keras twin (TensorFlow)", lw=1.2, ls="--")
    if e2e.get("departs_at") is not None:
        ax.axvline(e2e["departs_at"], color="grey", ls=":",
                   label=f"departs at iteration {e2e['departs_at']}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training cost (log-loss)")
    ax.set_title(f"layers {','.join(map(str, e2e['layers']))} on {e2e['data']}, same initial weights",
                 fontsize=10)  # the default size runs past the figure's edge
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return str(out)
