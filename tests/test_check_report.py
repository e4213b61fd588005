"""What ``twinnet check`` shows the learner and writes for the teacher: the verdict line, exit
statuses with and without ``--strict``, the 80-column table, the class report (HTML, feedback,
gradebook, Gradescope's and PrairieLearn's ``results.json``), file names that never clash and a
report folder that is never written through a link.

Most reports are built by hand; the real check runs once, on three learners' files.
"""

import csv
import html.parser
import json
import os
import re
import shutil
from pathlib import Path

import pytest

import twinnet.check
from twinnet.check import check
from twinnet.check.classroom import (
    MARKER,
    gradescope_result,
    prairielearn_result,
    prepare_folder,
    write_class_report,
)
from twinnet.check.report import (
    FUNCTIONS,
    FileReport,
    FunctionResult,
    file_names,
    render,
    render_many,
    verdict,
    write_csv,
)
from twinnet.cli import main

LEARNERS = Path(__file__).parent / "learners"
HOSTILE = "<script>alert('x')</script> [bold]not markup[/bold] & \"quoted\""
LONG = ("sigmoid overflows: np.exp(-Z) overflows for Z below about -709; use np.exp(-np.abs(Z)) "
        "(as twinnet.functional does)")


def hand_report(path="alice.py", *, fail=(), unsafe=(), missing=(), failures=(), e2e="follows", error=""):
    """A FileReport as check() returns one: every function PASS unless named."""
    report = FileReport(path, error=error, statements=20, failures=list(failures))
    if error:
        return report
    for name in FUNCTIONS:
        status = ("FAIL" if name in fail else "UNSAFE" if name in unsafe else "MISSING" if name in missing
                  else "PASS")
        report.functions[name] = FunctionResult(
            status, None if status == "MISSING" else 0.5 if status == "FAIL" else 0.0,
            {"FAIL": f"missing 1/m in dW: {HOSTILE}", "UNSAFE": LONG}.get(status, ""),
            case={"label": "n_prev=3, n=4, m=5", "message": "the result[0, 0]: expected 1., got 2."}
            if status == "FAIL" else None)
    if e2e is not None:
        learner = [0.69, 0.68, 0.67] if e2e == "follows" else [0.69, 0.70, 0.71]
        report.end_to_end = {"error": None, "learner": learner, "reference": [0.69, 0.68, 0.67], "rtol": 1e-9,
                             "departs_at": None if e2e == "follows" else 1, "layers": [100, 20, 5, 1],
                             "data": "synthetic (1600 examples)", "learning_rate": 0.1, "seed": 1,
                             "measured_by": "update_parameters",
                             "explained_by": None if e2e == "follows" else fail[0]}
    return report


SEED_UNSAFE = ("sigmoid", "linear_activation_forward", "L_model_forward", "compute_cost", "sigmoid_backward",
               "linear_activation_backward", "L_model_backward")


@pytest.mark.parametrize("report, strict, line", [
    (hand_report(unsafe=SEED_UNSAFE), False,
     "verdict: passes with warnings: 15 of 15 right; unsafe at extreme inputs (a warning; --strict counts "
     f"them as wrong): {', '.join(SEED_UNSAFE)}"),
    (hand_report(unsafe=SEED_UNSAFE), True,
     f"verdict: fails: 8 of 15 right; unsafe at extreme inputs (counted as wrong: --strict): {', '.join(SEED_UNSAFE)}"),
    (hand_report(fail=("linear_backward", "L_layer_model"), e2e="departs", failures=["line 9: OSError: x"]), False,
     "verdict: fails: 13 of 15 right; wrong: linear_backward, L_layer_model; end to end: departs at iteration 1 "
     "(linear_backward); 1 top-level statement failed"),
    (hand_report(missing=FUNCTIONS[2:], e2e=None), False,
     f"verdict: passes: 2 of 15 right; missing: {', '.join(FUNCTIONS[2:])}"),
    (hand_report(error="does not parse: line 5: expected ':'"), False,
     "verdict: fails: not checked (does not parse: line 5: expected ':')"),
    (hand_report(), True, "verdict: passes: 15 of 15 right"),
])
def test_the_verdict_line_counts_and_names_what_is_wrong(report, strict, line):
    assert verdict(report, strict) == line
    assert report.passes(strict) == line.startswith("verdict: passes")
    assert " ".join(render(report, strict=strict, width=80).split()).endswith(line)


def _words(text):
    return set(text.split())


def test_the_table_fits_80_columns_and_wraps_at_word_boundaries():
    failures = [f"line {k}: NameError: name 'a_rather_long_variable_name_{k}' is not defined, and more words"
                for k in range(1, 9)]
    report = hand_report(fail=("linear_backward",), unsafe=("sigmoid",), failures=failures, e2e="departs")
    one, several = render(report, width=80), render_many([report, hand_report("b/alice.py")], width=80)
    for text, shown in ((one, [LONG, f"missing 1/m in dW: {HOSTILE}", *failures]), (several, failures)):
        assert max(map(len, text.splitlines())) <= 80, text
        # every word of every diagnosis and failure is whole somewhere: nothing split mid-word
        for source in shown:
            assert _words(source) <= _words(text), (source, text)
    shown = render(report, width=80)
    assert all(f in " ".join(shown.split()) for f in failures)  # every one, none "and N more"
    assert "[bold]not markup[/bold]" in shown  # a submission's text is never read as markup


def test_the_first_line_names_the_whole_path_unfolded_at_any_width():
    path = "/tmp/" + "/".join(["a_folder_of_a_class_with_a_long_name"] * 4) + "/bob_smith.py"
    report = hand_report(path)
    for text in (render(report, width=80), render_many([report, hand_report("b/alice.py")], width=80)):
        assert path in text.splitlines() or "each of 2 files" in text  # on a line of its own, whole
        assert all(len(line) <= 80 for line in text.splitlines() if line != path), text  # the rest wraps


#: What an exception's message can send to a terminal: erase the line, move up, rewrite a verdict, retitle.
ESCAPES = "x\x1b[2K\x1b[1A\x1b[2K\rrelu  PASS\x1b]0;pwned\x07\x00\x7f\x9b"


def test_a_submissions_control_characters_reach_the_terminal_as_visible_escapes():
    report = hand_report(f"class/{ESCAPES}.py", fail=("relu",), failures=[f"line 3: ValueError: {ESCAPES}"])
    report.functions["relu"].diagnosis = f"on Z of shape (1, 1): raised ValueError: {ESCAPES}"
    broken = hand_report("bob.py", error=f"does not parse: {ESCAPES}")
    for text in (render(report, width=80), render(broken, width=80), render_many([report, broken], width=80)):
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text)
        assert "\\x1b[2K\\x1b[1A" in text and "\\x1b]0;pwned\\x07" in " ".join(text.split())
        assert max(map(len, text.splitlines())) <= 80  # the escapes are counted where the table wraps


def test_several_files_list_every_top_level_failure_and_the_end_to_end_reason():
    failures = [f"line {k}: NameError: name 'x{k}' is not defined" for k in range(1, 8)]
    text = " ".join(render_many([hand_report(failures=failures), hand_report("bob.py", fail=("linear_backward",),
                                                                           e2e="departs")], width=80).split())
    assert all(f in text for f in failures)
    assert "departs at iteration 1 (linear_backward)" in text
    assert text.endswith("verdict: 1 of 2 files pass; fail: bob")


@pytest.mark.parametrize("paths, names", [
    (["a/alice.py", "b/alice.py", "bob.ipynb"], ["a_alice", "b_alice", "bob"]),
    (["x/alice.py", "x/alice.py"], ["x_alice", "x_alice-2"]),
    (["x/Alice.py", "x/alice.ipynb"], ["x_Alice", "x_alice-2"]),  # equal without case
    (["../..evil name$.py", "/tmp/..", "x/.hidden.py"], ["evil_name_", "file", "hidden"]),
])
def test_file_names_are_unique_safe_and_stable(paths, names):
    assert file_names(paths) == names
    assert file_names(paths) == names
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", name) and ".." not in name


@pytest.fixture(scope="module")
def class_reports(tmp_path_factory):
    """The real check of the exercise's own code and two files both named alice.py."""
    folder = tmp_path_factory.mktemp("class")
    for sub, source in (("a", "correct.py"), ("b", "missing_1_over_m.py")):
        (folder / sub).mkdir()
        shutil.copy(LEARNERS / source, folder / sub / "alice.py")
    paths = [LEARNERS / "seed_exercise.py", folder / "a" / "alice.py", folder / "b" / "alice.py"]
    # generous limit: a busy machine; nothing here loops
    return check(paths, time_limit=60, iterations=3, jobs=3, keras=False, plot_dir=folder / "plots"), folder


def test_plots_of_files_with_one_name_do_not_clash(class_reports):
    reports, folder = class_reports
    assert [Path(r.plot).name for r in reports] == ["seed_exercise_loss_curves.png", "a_alice_loss_curves.png",
                                                    "b_alice_loss_curves.png"]
    assert len({Path(r.plot).read_bytes() for r in reports}) == 3


@pytest.fixture
def checked(class_reports, monkeypatch):
    """The CLI, with check() answering the module's reports (the paths given must match)."""
    reports, folder = class_reports

    def answer(paths, **options):
        return [r for r in reports if Path(r.path) in map(Path, paths)]

    monkeypatch.setattr(twinnet.check, "check", answer)
    monkeypatch.setenv("COLUMNS", "80")
    return reports, folder


def test_the_exercises_own_code_passes_with_warnings_and_fails_with_strict(class_reports, checked, capsys):
    seed = str(LEARNERS / "seed_exercise.py")
    assert main(["check", seed]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    assert "verdict: passes with warnings: 15 of 15 right; unsafe at extreme inputs" in " ".join(out.split())
    assert main(["check", seed, "--strict"]) == 1
    assert "verdict: fails: 8 of 15 right" in " ".join(capsys.readouterr().out.split())


def test_the_cli_on_a_real_file_exits_0_for_the_exercises_own_code(capsys):
    assert main(["check", str(LEARNERS / "seed_exercise.py"), "--iterations", "2", "--no-keras"]) == 0
    assert "verdict: passes with warnings" in capsys.readouterr().out


def test_tensorflow_lines_from_the_keras_twin_stay_off_the_terminal(monkeypatch, capfd):
    def noisy(iterations, seed):  # what TensorFlow's C++ libraries write when they first run
        os.write(2, b"I0000 00:00:1 port.cc:153] oneDNN custom operations are on.\n")
        return [0.69] * iterations

    monkeypatch.setattr(twinnet.check, "keras_costs", noisy)
    [report] = check([LEARNERS / "correct.py"], time_limit=60, iterations=2)
    assert report.end_to_end["keras"] == [0.69, 0.69]
    assert "oneDNN" not in capfd.readouterr().err


class Page(html.parser.HTMLParser):
    """The tags, links and text of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.links, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("href", "src")]

    def handle_data(self, data):
        self.text.append(data)


def _hostile_class():
    return [hand_report(f"class/{HOSTILE}.py", fail=("linear_backward",), e2e="departs",
                        failures=[f"line 3: RuntimeError: {HOSTILE}"]),
            hand_report("class/bob.py", unsafe=SEED_UNSAFE),
            hand_report("class/carol.py", error=f"does not parse: {HOSTILE}")]


def test_the_class_page_is_self_contained_and_escapes_the_submissions_text(tmp_path):
    reports = _hostile_class()
    write_class_report(reports, tmp_path / "report")
    text = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    assert "script" not in page.tags and "img" not in page.tags and "link" not in page.tags
    assert all(link.startswith("#") for link in page.links)  # no other file, no address
    shown = "".join(page.text)
    assert HOSTILE in shown  # shown as text, every time
    assert text.count("<script>") == 0
    # the pass rate, the most common mistakes with who made them, each file's table
    assert "Pass rate per function" in shown and "Most common mistakes" in shown
    assert re.search(r"linear_backward\s*1\s*0\s*1\s*1\s*33%", shown)  # pass, unsafe, fail, missing
    assert "bob" in shown and "carol" in shown
    ids = set(re.findall(r'id="([^"]+)"', text))
    assert {link[1:] for link in page.links} <= ids


def test_the_gradebook_has_one_row_per_file_and_says_how_it_scores(tmp_path):
    reports = _hostile_class()
    for strict, scores in ((False, ["14", "15", "0"]), (True, ["14", "8", "0"])):
        folder = write_class_report(reports, tmp_path / f"report{strict}", strict=strict)
        rows = list(csv.reader((folder / "gradebook.csv").read_text(encoding="utf-8").splitlines(keepends=True)))
        head, rows = rows[0], rows[1:]
        assert head[:4] == ["student", "file", head[2], "max_score"]
        assert head[2].startswith("score (functions right out of 15; an unsafe one")
        assert ("counts as wrong (--strict)" in head[2]) == strict
        assert [r[2] for r in rows] == scores and {r[3] for r in rows} == {"15"}
        assert [r[4] for r in rows] == ["no", "no" if strict else "yes", "no"]
        assert rows[0][9] == f"line 3: RuntimeError: {HOSTILE}"  # every top-level failure
        assert rows[0][8] == "departs at iteration 1 (linear_backward)"
        assert rows[2][10] == f"does not parse: {HOSTILE}"
        names = [r[0] for r in rows]
        assert names == file_names([r.path for r in reports])
        for name in names:
            assert (folder / "feedback" / f"{name}.txt").read_text(encoding="utf-8").startswith("twinnet check:")


def test_no_cell_of_a_submissions_words_is_a_formula_in_a_spreadsheet(tmp_path):
    reports = [hand_report("=1+2.py", failures=['=HYPERLINK("http://x","y")']), hand_report("-1-1.py"),
               hand_report("@SUM(A1).py", error="+cmd"), hand_report("bob.py")]
    folder = write_class_report(reports, tmp_path / "report")
    gradebook = list(csv.reader((folder / "gradebook.csv").read_text(encoding="utf-8").splitlines()))[1:]
    write_csv(reports, tmp_path / "grades.csv")
    rows = list(csv.reader((tmp_path / "grades.csv").read_text(encoding="utf-8").splitlines()))[1:]
    # the student, file, top-level failures and error of the gradebook; the file and text of --csv
    cells = [row[k] for row in gradebook for k in (0, 1, 9, 10)] + [row[k] for row in rows for k in (0, 4)]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    assert [row[:2] for row in gradebook] == [["_1_2", "'=1+2.py"], ["'-1-1", "'-1-1.py"],
                                              ["_SUM_A1_", "'@SUM(A1).py"], ["bob", "bob.py"]]
    assert gradebook[0][9] == '\'=HYPERLINK("http://x","y")' and gradebook[2][10] == "'+cmd"


VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def validate_gradescope(result):
    """Gradescope's autograder specification (gradescope-autograders.readthedocs.io, specs)."""
    assert isinstance(result["score"], float)
    assert isinstance(result["output"], str) and result["visibility"] in VISIBILITY
    assert result["output_format"] in ("text", "html", "simple_format", "md", "ansi")
    for test in result["tests"]:
        assert set(test) <= {"score", "max_score", "status", "name", "number", "output", "tags", "visibility"}
        assert isinstance(test["name"], str) and isinstance(test["number"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed")
        if test["max_score"] > 0:  # a function's test; the training's scores nothing
            assert (test["status"] == "passed") == (test["score"] == test["max_score"])
    assert result["score"] == sum(t["score"] for t in result["tests"])


def validate_prairielearn(result):
    """PrairieLearn's external-grader results (docs/externalGrading.md, "Grading results")."""
    assert isinstance(result["gradable"], bool)
    assert isinstance(result["message"], str) and isinstance(result["output"], str)
    if not result["gradable"]:
        assert result["format_errors"] and all(isinstance(e, str) for e in result["format_errors"])
        return
    assert isinstance(result["score"], float) and 0.0 <= result["score"] <= 1.0
    for test in result["tests"]:
        assert set(test) == {"name", "description", "points", "max_points", "message", "output"}
        assert all(isinstance(test[k], str) for k in ("name", "description", "message", "output"))
        assert 0 <= test["points"] <= test["max_points"] == 1
    assert result["score"] == sum(t["points"] for t in result["tests"]) / len(FUNCTIONS)


def test_both_autograders_results_follow_their_documented_format(tmp_path):
    reports = _hostile_class()
    folder = write_class_report(reports, tmp_path / "report")
    for name, report in zip(file_names([r.path for r in reports]), reports):
        gradescope = json.loads((folder / "gradescope" / name / "results.json").read_text(encoding="utf-8"))
        prairielearn = json.loads((folder / "prairielearn" / name / "results.json").read_text(encoding="utf-8"))
        validate_gradescope(gradescope)
        validate_prairielearn(prairielearn)
        assert gradescope["score"] == report.score()
        assert prairielearn["gradable"] == (not report.error)
    bob = hand_report("bob.py", unsafe=SEED_UNSAFE)
    assert gradescope_result(bob, "", strict=True)["score"] == 8.0
    assert prairielearn_result(bob, "", strict=False)["score"] == 1.0
    wrong = gradescope_result(reports[0], "")["tests"][FUNCTIONS.index("linear_backward")]
    assert wrong["status"] == "failed" and "first failing case: n_prev=3, n=4, m=5" in wrong["output"]


def test_the_report_folder_must_be_new_empty_or_an_earlier_report(checked, tmp_path, capsys):
    seed = str(LEARNERS / "seed_exercise.py")
    folder = tmp_path / "report"
    assert main(["check", seed, "--report", str(folder)]) == 0
    assert (folder / "index.html").is_file() and (folder / MARKER).is_file()
    capsys.readouterr()
    assert main(["check", seed, "--report", str(folder)]) == 2
    assert capsys.readouterr().err == (f"twinnet check: error: --report {str(folder)!r} already holds a class "
                                       "report; choose another folder, or add --force to replace it.\n")
    assert main(["check", seed, "--report", str(folder), "--force"]) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["check", seed, "--report", str(mine), "--force"]) == 2
    assert "holds 'notes.txt', which is not part of a twinnet check report" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "mine"


def test_a_teachers_own_plots_folder_is_no_report_and_never_removed(tmp_path):
    folder = tmp_path / "report"
    (folder / "plots" / "thesis").mkdir(parents=True)
    (folder / "plots" / "thesis" / "fig1.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(ValueError, match="holds 'plots', which is not part of a twinnet check report"):
            write_class_report(_hostile_class(), folder, force=force)
    assert os.listdir(folder) == ["plots"] and (folder / "plots" / "thesis" / "fig1.txt").read_text() == "mine"


def test_a_report_beside_checks_own_loss_curves_is_written_from_python(tmp_path):
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "plots" / "alice_loss_curves.png").write_bytes(b"png")  # check(plot_dir=folder / "plots") drew it
    write_class_report(_hostile_class(), folder)
    assert (folder / MARKER).is_file() and (folder / "plots" / "alice_loss_curves.png").read_bytes() == b"png"


def test_an_earlier_report_is_kept_when_another_output_refuses_the_run(checked, tmp_path, capsys):
    seed = str(LEARNERS / "seed_exercise.py")
    folder = tmp_path / "report"
    assert main(["check", seed, "--report", str(folder)]) == 0
    (tmp_path / "afile").write_text("mine")
    assert main(["check", seed, "--report", str(folder), "--force", "--plot", str(tmp_path / "afile")]) == 2
    assert "--plot" in capsys.readouterr().err and (folder / "index.html").is_file()


def test_outputs_already_there_are_refused_before_the_run_and_replaced_with_force(checked, tmp_path, capsys):
    seed = str(LEARNERS / "seed_exercise.py")
    for name in ("grades.csv", "grades.json"):
        (tmp_path / name).write_text("mine")
    argv = ["check", seed, "--csv", str(tmp_path / "grades.csv"), "--json", str(tmp_path / "grades.json")]
    assert main(argv) == 2
    assert "--csv" in capsys.readouterr().err and (tmp_path / "grades.csv").read_text() == "mine"
    assert main([*argv, "--force"]) == 0
    assert (tmp_path / "grades.csv").read_text().startswith("file,function,result")
    assert json.loads((tmp_path / "grades.json").read_text())[0]["path"] == seed


def test_links_planted_in_an_earlier_report_are_never_followed(tmp_path):
    reports = _hostile_class()
    folder = write_class_report(reports, tmp_path / "report")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    shutil.rmtree(folder / "feedback")
    (folder / "feedback").symlink_to(outside, target_is_directory=True)
    (folder / "index.html").unlink()
    (folder / "index.html").symlink_to(outside / "keep.txt")
    (folder / "gradescope" / "link").symlink_to(outside, target_is_directory=True)
    write_class_report(reports, folder, force=True)
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "keep"
    assert not (folder / "feedback").is_symlink() and not (folder / "index.html").is_symlink()
    assert not (folder / "gradescope" / "link").exists()
    # a marker that is a link is no marker: the folder is not taken for a report
    (folder / MARKER).unlink()
    (folder / MARKER).symlink_to(outside / "keep.txt")
    with pytest.raises(ValueError, match="not part of a twinnet check report"):
        write_class_report(reports, folder, force=True)


def test_this_runs_figures_stay_beside_the_report_and_an_earlier_runs_go(tmp_path):
    folder = prepare_folder(tmp_path / "report")  # as the CLI does, before check() draws into plots/
    (folder / "plots").mkdir()
    (folder / "plots" / "alice_loss_curves.png").write_bytes(b"png")
    write_class_report(_hostile_class(), folder)
    assert (folder / "plots" / "alice_loss_curves.png").read_bytes() == b"png"
    assert prepare_folder(folder, force=True) == folder and os.listdir(folder) == [MARKER]
