"""What ``twinnet check`` found, per file, and how it is shown: a table, a CSV, JSON, a figure."""

from __future__ import annotations

import csv
import json
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

    @property
    def passed(self) -> bool:
        return (not self.error and all(r.status in ("PASS", "MISSING") for r in self.functions.values())
                and end_to_end_passed(self.end_to_end) is not False)

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

    def to_dict(self):
        record = asdict(self)
        record["passed"] = self.passed
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


def render(report: FileReport) -> str:
    """One file's table, the lines above it and the end-to-end line below it."""
    lines = [f"twinnet check: runs the code in {report.path} (in a separate process)"]
    if report.failures:
        shown = "; ".join(report.failures[:2]) + (f"; and {len(report.failures) - 2} more"
                                                   if len(report.failures) > 2 else "")
        lines.append(f"top level: {len(report.failures)} of {report.statements} statements failed "
                     f"(the others ran): {shown}")
    if report.notes:
        lines.append(f"notes: {'; '.join(report.notes)}")
    if report.error:
        lines.append(f"{report.path}: {report.error}")
        return "\n".join(lines)
    width = max(map(len, FUNCTIONS)) + 2
    lines.append(f"{'function':<{width}}{'result':<8}{'largest error':<15}diagnosis")
    for name, result in report.functions.items():
        lines.append(f"{name:<{width}}{result.status:<8}{_error(result.largest_error):<15}{result.diagnosis}"
                     .rstrip())
    if report.end_to_end is not None:
        lines.append(end_to_end_line(report.end_to_end))
    if report.plot:
        lines.append(f"wrote {report.plot}")
    return "\n".join(lines)


def render_many(reports) -> str:
    """Several files: one row per file, one column per function."""
    width = max(len(r.path) for r in reports) + 2
    head = "".join(f"{k:>3}" for k in range(1, len(FUNCTIONS) + 1))
    lines = [f"twinnet check: runs the code in each of {len(reports)} files (in separate processes)",
             f"{'file':<{width}}{head}  end to end"]
    for r in reports:
        if r.error:
            lines.append(f"{r.path:<{width}}  {r.error}")
            continue
        e2e = r.end_to_end
        e2e_text = ("-" if e2e is None else "error" if e2e.get("error") else
                    "?" if not e2e.get("learner") else "follows" if e2e["departs_at"] is None
                    else f"departs at {e2e['departs_at']} ({e2e.get('explained_by')})")
        lines.append(f"{r.path:<{width}}" + "".join(f"{CODES[r.functions[n].status]:>3}" for n in FUNCTIONS)
                     + f"  {e2e_text}")
    # the twin trains from the reference's weights, not the learner's: one clause for all files
    keras = next((r.end_to_end for r in reports if r.end_to_end and r.end_to_end.get("keras")), None)
    if keras:
        lines.append(f"end to end: {keras_clause(keras)}")
    lines.append("columns: " + ", ".join(f"{k} {n}" for k, n in enumerate(FUNCTIONS, start=1)))
    lines.append("P pass, F fail, U unsafe (right, except on saturated inputs), - missing")
    return "\n".join(lines)


def write_csv(reports, path):
    """One row per file and function (and the end-to-end training), with the diagnosis."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "function", "result", "largest_error", "diagnosis"])
        for r in reports:
            if r.error:
                writer.writerow([r.path, "", "ERROR", "", r.error])
            for name, result in r.functions.items():
                writer.writerow([r.path, name, result.status,
                                 "" if result.largest_error is None else f"{result.largest_error:.3e}",
                                 result.diagnosis])
            if r.end_to_end is not None:
                e2e = r.end_to_end
                status = {True: "PASS", False: "FAIL", None: "UNKNOWN"}[end_to_end_passed(e2e)]
                writer.writerow([r.path, "end to end", status, "", end_to_end_line(e2e)])


def write_json(reports, path):
    Path(path).write_text(json.dumps([r.to_dict() for r in reports], indent=2, default=float) + "\n",
                          encoding="utf-8")


def plot(report: FileReport, directory) -> str:
    """The loss curves of the end-to-end training (the learner's, the reference's and the Keras
    twin's when it was trained) into ``directory``; the PNG's path."""
    from twinnet._pyplot import pyplot

    plt = pyplot()
    e2e = report.end_to_end
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{Path(report.path).stem}_loss_curves.png"
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
