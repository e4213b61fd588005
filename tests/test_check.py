"""``twinnet check`` on learners' files with known mistakes, each under tests/learners/.

Every file with a classic mistake must get exactly that diagnosis on exactly the functions it
affects, the exercise's own code (copied verbatim from the seed) must pass everything except the
numerically unsafe functions, and files that cannot be checked must say why in one line.
"""

import copy
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

import twinnet.check
from twinnet import functional as F
from twinnet import quiet
from twinnet.check import check
from twinnet.check import diagnose as D
from twinnet.check.cases import cases_for
from twinnet.check.compare import compare
from twinnet.check.report import render
from twinnet.check.source import read_source
from twinnet.cli import main

pytestmark = pytest.mark.slow  # half a minute or more in CI: started first (tests/conftest.py)

LEARNERS = Path(__file__).parent / "learners"
ITERATIONS = 5  # every mistake of DEPARTURES shows in the cost by iteration 1
# the diagnoses must not depend on the cases drawn: TWINNET_CASE_SEED=N reruns these tests on other cases
CASE_SEED = int(os.environ.get("TWINNET_CASE_SEED", "0"))

THROUGH = "wrong only through {}, which it calls"
UNSAFE_THROUGH = "unsafe only through {}, which it calls"
SIGMOID_OVERFLOW = "sigmoid overflows: np.exp(-Z) overflows"
LOG0 = "log(0) at saturated outputs"

# file -> {function: (result, start of the diagnosis)}; every other function must PASS
EXPECTED = {
    "correct": {},
    "missing_1_over_m": {
        "linear_backward": ("FAIL", "missing 1/m in dW"),
        "linear_activation_backward": ("FAIL", THROUGH.format("linear_backward")),
        "L_model_backward": ("FAIL", THROUGH.format("linear_backward")),
        "L_layer_model": ("FAIL", THROUGH.format("linear_backward")),
    },
    "doubled_1_over_m": {
        "L_model_backward": ("FAIL", "1/m applied twice: dAL divided by m"),
        "L_layer_model": ("FAIL", THROUGH.format("L_model_backward")),
    },
    "transposed_product": {
        "linear_forward": ("FAIL", "transposed product: np.dot(W.T, A)"),
        "linear_activation_forward": ("FAIL", THROUGH.format("linear_forward")),
        "L_model_forward": ("FAIL", THROUGH.format("linear_forward")),
        "L_layer_model": ("FAIL", THROUGH.format("linear_forward")),
        "accuracy": ("FAIL", THROUGH.format("linear_forward")),
    },
    "relu_derivative_at_zero": {
        "relu_backward": ("FAIL", "derivative 1 at Z == 0"),
        "linear_activation_backward": ("FAIL", THROUGH.format("relu_backward")),
        # a hidden layer whose units are all off feeds the next layer Z = b = 0 exactly
        "L_layer_model": ("FAIL", THROUGH.format("relu_backward")),
    },
    "sigmoid_backward_of_A": {
        "sigmoid_backward": ("FAIL", "fed the activation A instead of Z"),
        "linear_activation_backward": ("FAIL", THROUGH.format("sigmoid_backward")),
        "L_model_backward": ("FAIL", THROUGH.format("sigmoid_backward")),
        "L_layer_model": ("FAIL", THROUGH.format("sigmoid_backward")),
    },
    "gradient_keys_off_by_one": {
        "L_model_backward": ("FAIL", "gradient keys off by one: dA0 ... dA(L-1)"),
    },
    "db_shape": {
        "linear_backward": ("FAIL", "db lost its (n, 1) shape"),
        "linear_activation_backward": ("FAIL", THROUGH.format("linear_backward")),
        "L_model_backward": ("FAIL", THROUGH.format("linear_backward")),
        "L_layer_model": ("FAIL", THROUGH.format("linear_backward")),
    },
    "cost_not_squeezed": {
        "compute_cost": ("FAIL", "cost not squeezed: shape (1, 1)"),
    },
    "hard_coded_shapes": {
        "L_model_forward": ("FAIL", "hard-coded shapes: right for the notebook's shapes (layers [100, 20, 5, 1]"),
        "L_layer_model": ("FAIL", THROUGH.format("L_model_forward")),
        "accuracy": ("FAIL", THROUGH.format("L_model_forward")),
    },
    "reads_globals": {
        "L_model_forward": ("FAIL", "reads the global layers_dims instead of its arguments"),
        "L_layer_model": ("FAIL", THROUGH.format("L_model_forward")),
        "accuracy": ("FAIL", THROUGH.format("L_model_forward")),
    },
    "update_skips_last_layer": {
        "update_parameters": ("FAIL", "the loop skips the last layer"),
        "L_layer_model": ("FAIL", THROUGH.format("update_parameters")),
    },
    "init_scale": {
        "initialize_parameters": ("FAIL", "weights scaled by 0.01 instead of 0.1"),
        "L_layer_model": ("FAIL", THROUGH.format("initialize_parameters")),
    },
    "init_draw_order": {
        "initialize_parameters": ("FAIL", "draw order: W drawn as randn(n_prev, n).T"),
        "L_layer_model": ("FAIL", THROUGH.format("initialize_parameters")),
    },
    "sigmoid_overflow": {
        "sigmoid": ("UNSAFE", SIGMOID_OVERFLOW),
        "linear_activation_forward": ("UNSAFE", UNSAFE_THROUGH.format("sigmoid")),
        "L_model_forward": ("UNSAFE", UNSAFE_THROUGH.format("sigmoid")),
    },
    "cost_log_zero": {
        "compute_cost": ("UNSAFE", LOG0),
    },
    "relu_backward_in_place": {
        "relu_backward": ("FAIL", "changes its argument dA in place"),
        "linear_activation_backward": ("FAIL", THROUGH.format("relu_backward")),
        "L_model_backward": ("FAIL", THROUGH.format("relu_backward")),
    },
    "two_mistakes_linear_backward": {
        "linear_backward": ("FAIL", "two mistakes: missing 1/m in dW: divide np.dot(dZ, A_prev.T) by m; "
                                    "and db lost its (n, 1) shape"),
        "linear_activation_backward": ("FAIL", THROUGH.format("linear_backward")),
        "L_model_backward": ("FAIL", THROUGH.format("linear_backward")),
        "L_layer_model": ("FAIL", THROUGH.format("linear_backward")),
    },
    "two_mistakes_two_functions": {
        "relu_backward": ("FAIL", "derivative 1 at Z == 0"),
        "linear_activation_backward": ("FAIL", THROUGH.format("relu_backward")),
        "update_parameters": ("FAIL", "the loop skips the last layer"),
        "L_layer_model": ("FAIL", THROUGH.format("relu_backward, update_parameters")),
    },
    # the exercise's own code: right everywhere, unsafe exactly where it computes exp(-Z), log(AL)
    # and 1 / (1 - AL) at saturated values
    "seed_exercise": {
        "sigmoid": ("UNSAFE", SIGMOID_OVERFLOW),
        "linear_activation_forward": ("UNSAFE", UNSAFE_THROUGH.format("sigmoid")),
        "L_model_forward": ("UNSAFE", UNSAFE_THROUGH.format("sigmoid")),
        "compute_cost": ("UNSAFE", LOG0),
        "sigmoid_backward": ("UNSAFE", SIGMOID_OVERFLOW),
        "linear_activation_backward": ("UNSAFE", UNSAFE_THROUGH.format("sigmoid_backward")),
        "L_model_backward": ("UNSAFE", "divides by zero where AL is exactly 1"),
    },
}
# file -> (first iteration where the cost departs from the reference's, the function that explains it)
DEPARTURES = {
    "correct": None, "seed_exercise": None, "gradient_keys_off_by_one": None, "cost_not_squeezed": None,
    "init_scale": (0, "initialize_parameters"), "init_draw_order": (0, "initialize_parameters"),
    "update_skips_last_layer": (1, "update_parameters"), "doubled_1_over_m": (1, "L_model_backward"),
    "sigmoid_backward_of_A": (1, "sigmoid_backward"), "missing_1_over_m": (1, "linear_backward"),
    "two_mistakes_two_functions": (1, "relu_backward, update_parameters"),
}
UNCHECKABLE = ["does_not_parse.py", "no_functions.py", "imports_missing.py", "notebook_with_magics.ipynb"]


@pytest.fixture(scope="module")
def reports():
    paths = [LEARNERS / f"{name}.py" for name in EXPECTED] + [LEARNERS / name for name in UNCHECKABLE]
    # generous per-function limit: the machine running the tests may be busy; nothing here loops.
    # No Keras twin: these tests need no TensorFlow (it is tested once, under the tf marker)
    found = check(paths, time_limit=60, iterations=ITERATIONS, jobs=3, keras=False, case_seed=CASE_SEED)
    return {Path(r.path).name: r for r in found}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_mistake_is_diagnosed_on_exactly_the_functions_it_affects(name, reports):
    report = reports[f"{name}.py"]
    shown = render(report)
    assert not report.error, shown
    got = {f: (r.status, r.diagnosis) for f, r in report.functions.items() if r.status != "PASS"}
    assert sorted(got) == sorted(EXPECTED[name]), shown
    for function, (status, diagnosis) in EXPECTED[name].items():
        assert got[function][0] == status, shown
        assert got[function][1].startswith(diagnosis), f"{function}: {got[function][1]!r}\n{shown}"
    assert report.passes(strict=True) == (not EXPECTED[name]), shown
    # unsafe functions are a warning: a file whose only findings are unsafe passes without --strict
    assert report.passes() == all(status == "UNSAFE" for status, _ in EXPECTED[name].values()), shown


@pytest.mark.parametrize("name", list(DEPARTURES))
def test_training_departs_where_the_mistake_shows_and_names_it(name, reports):
    e2e = reports[f"{name}.py"].end_to_end
    assert e2e["error"] is None and len(e2e["learner"]) == len(e2e["reference"]) == ITERATIONS, e2e
    assert e2e["measured_by"] == "update_parameters"
    if DEPARTURES[name] is None:
        assert e2e["departs_at"] is None
        # the same formulas in another order: rounding only (see check._worker.E2E_RTOL)
        np.testing.assert_allclose(e2e["learner"], e2e["reference"], rtol=1e-12)
    else:
        assert (e2e["departs_at"], e2e["explained_by"]) == DEPARTURES[name]


def test_files_that_cannot_be_checked_say_why(reports):
    assert reports["does_not_parse.py"].error == "does not parse: line 5: expected ':'"
    assert reports["no_functions.py"].error.startswith("defines none of the exercise's 15 functions")
    missing = reports["imports_missing.py"]
    assert missing.failures == ["line 3: ModuleNotFoundError: No module named 'my_activations'"]
    assert missing.functions["relu"].diagnosis == (
        "uses my_activations, whose import failed: ModuleNotFoundError: No module named 'my_activations'")
    assert missing.functions["linear_forward"].status == "PASS"
    assert [f for f, r in missing.functions.items() if r.status == "MISSING"] == \
        [f for f in F.__all__ if f not in ("relu", "linear_forward")]
    for name in ("does_not_parse.py", "no_functions.py", "imports_missing.py"):
        assert not reports[name].passes()


def test_a_notebook_is_checked_with_its_shell_and_magic_lines_skipped(reports):
    report = reports["notebook_with_magics.ipynb"]
    assert report.failures == []  # !pip, %matplotlib, %%time and %timeit never ran
    assert report.functions["linear_backward"].diagnosis.startswith("missing 1/m in dW")
    assert report.notes == [f"{where}: IPython syntax (a magic, a shell command or help) skipped"
                            for where in ("cell 1, line 1", "cell 1, line 2", "cell 4, line 1")]
    source = read_source(LEARNERS / "notebook_with_magics.ipynb")
    text = "".join(cell for _, cell in source.cells)
    assert not [line for line in text.splitlines() if line.lstrip().startswith(("%", "!"))]
    assert "import numpy as np" in text
    assert source.where(0, 1) == "cell 1, line 1"


def test_the_seed_reports_its_failed_data_loading_in_one_line(reports):
    report = reports["seed_exercise.py"]
    assert report.failures[0] == "line 9: FileNotFoundError: [Errno 2] No such file or directory: 'data.pickle'"
    assert ("top level: 6 of 26 statements failed (the others ran):\n  - line 9: FileNotFoundError"
            in render(report, width=120))


def test_code_that_runs_forever_is_stopped_and_reported():
    [report] = check([LEARNERS / "runs_forever.py"], time_limit=1.5, iterations=0)
    assert report.failures == ["line 4: ran longer than the time limit, skipped"]
    assert report.functions["relu"].status == "FAIL"
    assert report.functions["relu"].diagnosis == "did not finish within 1.5 s (an infinite loop?)"
    assert report.functions["sigmoid"].status == "UNSAFE"  # checked in a fresh process after relu's


@pytest.mark.parametrize("case_seed", [CASE_SEED, 1, 2**32 - 1])
def test_every_mistake_in_the_table_changes_some_output(case_seed):
    # a mistake that gives the reference's outputs on every case could never be diagnosed
    for name, variants in D.VARIANTS.items():
        cases = [c for c in cases_for(name, case_seed) if not c.saturated]
        for variant in variants:
            differs = False
            for case in cases:
                np.random.seed(case.seed or 0)
                out = getattr(F, name)(*copy.deepcopy(case.args))  # update_parameters writes into its dict
                try:
                    differs |= not compare(out, variant.apply(case, out)).ok
                except ValueError:  # the mistake cannot even run on this shape
                    differs = True
            assert differs, (name, variant.diagnosis)


def _not_called(*args, **kwargs):
    raise AssertionError("the Keras twin was trained")


def test_cli_one_file_prints_the_table_and_exits_0_when_all_pass(capsys, monkeypatch):
    monkeypatch.setattr(twinnet.check, "keras_costs", _not_called)  # --no-keras: never trained
    assert main(["check", str(LEARNERS / "correct.py"), "--iterations", "3", "--no-keras"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"twinnet check: runs the code in {LEARNERS / 'correct.py'}")
    assert "linear_backward             PASS" in out and "FAIL" not in out
    assert "the cost follows the reference at every iteration" in " ".join(out.split()) and "Keras" not in out


def test_without_tensorflow_the_training_is_reported_without_the_keras_twin(monkeypatch):
    def missing():
        raise ModuleNotFoundError("TensorFlow is not installed; the Keras twin needs it")

    monkeypatch.setattr(quiet, "import_keras", missing)
    [report] = check([LEARNERS / "correct.py"], iterations=2)
    assert report.end_to_end["departs_at"] is None and "keras" not in report.end_to_end
    assert "Keras" not in render(report) and report.passes()


# one run of the CLI on two files, with the Keras twin: its table, CSV, JSON and figures (--no-keras:
# test_cli_one_file_prints_the_table_and_exits_0_when_all_pass)
@pytest.mark.tf
def test_cli_several_files_give_one_table_a_csv_json_and_the_curves_where_the_keras_twin_follows(tmp_path, capsys,
                                                                                                   monkeypatch):
    pytest.importorskip("tensorflow")
    import matplotlib.figure

    drawn, savefig = {}, matplotlib.figure.Figure.savefig

    def record(fig, path, **kwargs):  # the curves each figure holds, by label
        drawn[Path(path).name] = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
        return savefig(fig, path, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    paths = [str(LEARNERS / "correct.py"), str(LEARNERS / "update_skips_last_layer.py")]
    status = main(["check", *paths, "--iterations", "5", "--jobs", "2", "--csv", str(tmp_path / "c.csv"),
                   "--json", str(tmp_path / "c.json"), "--plot", str(tmp_path / "plots")])
    assert status == 1
    table = capsys.readouterr().out
    out = " ".join(table.split())
    assert "runs the code in each of 2 files" in out and "\nupdate_skips_last_layer " in table
    assert "departs at iteration 1 (update_parameters)" in out
    assert "end to end: the Keras twin's cost follows the reference (largest relative difference" in out
    records = json.loads((tmp_path / "c.json").read_text())
    assert [r["passed"] for r in records] == [True, False]  # the twin judges twinnet, not the learner
    assert records[1]["functions"]["update_parameters"]["diagnosis"].startswith("the loop skips the last layer")
    for record_ in records:
        e2e = record_["end_to_end"]
        assert len(e2e["keras"]) == 5 and e2e["keras_departs_at"] is None
        # float64 both, the same formulas in another order (TensorFlow's matmul, the loss from the
        # logits): rounding only, measured at most 5e-16 over 5 iterations and 1e-14 over 100, for
        # seeds 1 to 5; 1e-12 leaves room for another CPU's summation order, where a wrong offset
        # (the cost after the update, not before) or other initial weights miss by more than 1e-3
        np.testing.assert_allclose(e2e["keras"], e2e["reference"], rtol=1e-12, atol=0)
    # one training for both files: the twin starts from the reference's weights, not the learner's
    assert records[0]["end_to_end"]["keras"] == records[1]["end_to_end"]["keras"]
    rows = list(csv.DictReader((tmp_path / "c.csv").read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 2 * 16  # 15 functions and the training, per file
    bad = [(r["function"], r["result"]) for r in rows if r["result"] != "PASS"]
    assert bad == [("update_parameters", "FAIL"), ("L_layer_model", "FAIL"), ("end to end", "FAIL")]
    lines = [r["diagnosis"] for r in rows if r["function"] == "end to end"]
    assert len(lines) == 2 and all("; the Keras twin's cost follows the reference" in line for line in lines)
    assert "departs from the reference at iteration 1" in lines[1]
    for record_ in records:
        stem = Path(record_["path"]).stem
        assert (tmp_path / "plots" / f"{stem}_loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        curves = drawn[f"{stem}_loss_curves.png"]
        assert curves["Keras twin (TensorFlow)"] == record_["end_to_end"]["keras"]
        assert curves["twinnet.functional (reference)"] == record_["end_to_end"]["reference"]


@pytest.mark.parametrize("argv, message", [
    (["check", "nowhere.py"], "no such file: 'nowhere.py'"),
    (["check", "README.md"], "PATH must be a .py file or an .ipynb notebook; got 'README.md'."),
    (["check", "x.py", "--iterations", "-1"], "argument --iterations: expected an integer >= 0, got -1"),
    (["check", "x.py", "--jobs", "0"], "argument --jobs: expected an integer >= 1, got 0"),
    (["check", "x.py", "--seed", "-1"], "argument --seed: expected an integer between 0 and 4294967295, got -1"),
])
def test_cli_usage_errors_are_one_line_and_exit_2(argv, message, cli):
    status, _, err = cli(*argv)
    assert status == 2
    assert err == f"twinnet check: error: {message}\n"


@pytest.mark.parametrize("argument, value, largest", [
    ("time_limit", 1e10, 86400), ("time_limit", 1e308, 86400), ("budget", 1e300, 518400),
    ("memory", 99999999999999, 1048576), ("iterations", 1_000_000, 10000),
])
def test_limits_past_their_maximum_are_refused_before_any_file_is_read(argument, value, largest):
    with pytest.raises(ValueError, match=f"^{argument} must be at most {largest}; got {argument}="):
        check(["nowhere.py"], **{argument: value})


@pytest.mark.parametrize("case_seed", [21, 1996358292])  # their notebook case once held an output of exactly 1
def test_ordinary_backward_cases_hold_no_output_of_exactly_0_or_1(case_seed):
    # where AL is 0 or 1 the exercise's own dAL is 0 / 0: only the saturated case may hold one
    for case in cases_for("L_model_backward", case_seed):
        AL = case.args[0]
        assert case.saturated or np.all((AL >= np.finfo(float).tiny) & (AL < 1)), case.label


@pytest.mark.parametrize("seed", [0, 1, 21, 1996358292, 4294967295])
def test_saturated_forward_cases_overflow_a_naive_sigmoid_on_every_draw(seed):
    """The exercise's sigmoid, 1 / (1 + exp(-Z)), is UNSAFE on every draw of the cases, not on most:
    a teacher's two runs give one verdict (a draw once left L_model_forward's Z above -745)."""
    from twinnet.check.cases import cases_for

    def naive(Z):
        return 1 / (1 + np.exp(-Z))

    [(A, W, b, _)] = [c.args for c in cases_for("linear_activation_forward", seed) if c.saturated]
    [(X, p)] = [c.args for c in cases_for("L_model_forward", seed) if c.saturated]
    for output in (lambda: naive(W @ A + b),
                   lambda: naive(p["W2"] @ np.maximum(p["W1"] @ X + p["b1"], 0) + p["b2"])):
        with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
            output()


def test_the_finite_difference_check_passes_the_reference_where_the_differences_are_off():
    from types import SimpleNamespace

    from twinnet.check import verdict

    # a drawn case where the central differences are themselves 1.8e-6 off the true gradient (above
    # FD_RTOL): the correct learner was failed there, with a "hard-coded shapes" diagnosis
    seed, k = 1137697401, 1
    cases, expected = verdict.reference("L_model_backward", seed)
    assert cases[k].label == "layers [2, 5, 3, 1], m=1"
    replies = [{"result": copy.deepcopy(out), "args": copy.deepcopy(case.args)} for case, out in zip(cases, expected)]
    assert all(outcome.ok for outcome in verdict.outcomes("L_model_backward", replies, seed))
    for factor, flagged in ((1.0, False), (1 + 1e-5, True)):  # 1e-5 of the gradient: still caught there
        received = {**expected[k], "dW1": expected[k]["dW1"] * factor}
        outcome = SimpleNamespace(received=received, expected=expected[k], fd_message=None)
        verdict.finite_difference_check(k, outcome, seed)
        assert bool(outcome.fd_message) == flagged, outcome.fd_message
