"""``twinnet report`` on hand-edited and hostile sweep directories: a damaged row is skipped with one
warning naming its file and line, a damaged manifest is one line and exit status 2, memory stays
bounded, and the report never writes through a symlink out of its folder."""

import json
import os
import shutil
import tracemalloc

import pytest

from twinnet.cli import main
from twinnet.lab.rows import read_rows
from twinnet.lab.store import MANIFEST, RESULTS, read_manifest

SWEEP = ["--data", "moons", "--layers", "2,4,1", "--learning-rate", "0.1", "--epochs", "5,10", "--seeds", "0,1",
         "--engines", "numpy,functional", "--jobs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished sweep: one configuration, two seeds, two engines, 4 runs."""
    out = tmp_path_factory.mktemp("hostile") / "sweep"
    assert main(["sweep", *SWEEP, "--out", str(out)]) == 0
    return out


@pytest.fixture
def sweep(swept, tmp_path):
    out = tmp_path / "sweep"
    shutil.copytree(swept, out)
    return out


def _lines(out):
    return (out / RESULTS).read_bytes().split(b"\n")[:-1]


def _edit(out, line, at=1):
    """Put ``line`` (bytes) in place of line ``at`` of the results."""
    lines = _lines(out)
    lines[at - 1] = line
    (out / RESULTS).write_bytes(b"\n".join(lines) + b"\n")


def _row(out, at=1):
    return json.loads(_lines(out)[at - 1])


def _changed(row, path, value):
    """A copy of ``row`` with the field at ``path`` (keys and indexes) set to ``value``."""
    row = json.loads(json.dumps(row))
    target = row
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(row).encode()


def _skipped(out, match, at=1):
    """read_rows skips line ``at`` with one warning that names the file, the line and ``match``; the rest is read."""
    rows, warnings = read_rows(out)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{out / RESULTS}: skipped line {at}: "), warnings[0]
    assert match in warnings[0], warnings[0]
    assert len(rows) == 3
    return warnings[0]


# --------------------------------------------------------------------------- huge integers
HUGE_INTEGERS = {
    "seed": (("seed",), 10**30),
    "n_parameters": (("n_parameters",), 2**60),
    "a width": (("config", "layers", 1), 10**20),
    "epochs_run": (("epochs_run",), 10**17),
    "a checkpoint's epoch": (("checkpoints", 0, "epoch"), 2**64),
    "patience": (("config", "early_stopping"), 10**40),
}


@pytest.mark.parametrize("case", sorted(HUGE_INTEGERS))
def test_a_huge_integer_is_a_skipped_row(sweep, case):
    path, value = HUGE_INTEGERS[case]
    _edit(sweep, _changed(_row(sweep), path, value))
    _skipped(sweep, "2**53")


def test_an_integer_of_thousands_of_digits_is_a_skipped_row(sweep):
    _edit(sweep, _changed(_row(sweep), ("seed",), 0).replace(b'"seed": 0', b'"seed": ' + b"7" * 5000))
    assert "7" * 30 not in _skipped(sweep, "2**53")  # the warning stays one short line


# --------------------------------------------------------------------------- times
TIMES = {
    "NaN ms_per_epoch": (b'"ms_per_epoch": NaN', "NaN"),
    "infinite seconds": (b'"seconds": Infinity', "Infinity"),
    "1e400 seconds": (b'"seconds": 1e400', "1e400"),
    "zero ms_per_epoch": (b'"ms_per_epoch": 0', "ms_per_epoch"),
    "zero seconds": (b'"seconds": 0.0', "seconds"),
    "negative ms_per_epoch": (b'"ms_per_epoch": -2.5', "ms_per_epoch"),
    "a time of 1e-300": (b'"ms_per_epoch": 1e-300', "ms_per_epoch"),
    "a time of 1e300": (b'"seconds": 1e300', "seconds"),
    "null ms_per_epoch in an ok run": (b'"ms_per_epoch": null', "ms_per_epoch"),
}


@pytest.mark.parametrize("case", sorted(TIMES))
def test_a_time_that_is_no_time_is_a_skipped_row(sweep, case):
    field, match = TIMES[case]
    line = _lines(sweep)[0]
    name = field.split(b":")[0]
    start = line.index(name + b":")
    end = min(i for i in (line.find(b",", start), line.find(b"}", start)) if i > 0)
    _edit(sweep, line[:start] + field.replace(b": ", b":") + line[end:])
    _skipped(sweep, match)


# --------------------------------------------------------------------------- a list (or text) for a number
WRONG_TYPES = {
    "ms_per_epoch a list": (("ms_per_epoch",), [1.0, 2.0]),
    "learning_rate a list": (("config", "learning_rate"), [0.1]),
    "seed a list": (("seed",), [0]),
    "test_accuracy a list": (("checkpoints", 0, "test_accuracy"), [0.9]),
    "a loss a list": (("loss_curve", 0), [0.7]),
    "n_parameters text": (("n_parameters",), "17"),
    "a width a list": (("config", "layers", 1), [4]),
    "batch_size a dict": (("config", "batch_size"), {"a": 1}),
    "epochs_run a list": (("epochs_run",), [10]),
    "versions a list": (("versions",), ["numpy"]),
    "a version a dict": (("versions", "numpy"), {"v": 2}),
    "error a list": (("error",), ["boom"]),
    "same_trajectory text": (("same_trajectory",), "yes"),
    "run_id a list": (("run_id",), [1]),
    "hidden_activation a list": (("config", "hidden_activation"), ["relu"]),
    "data a number": (("config", "data"), 3),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_a_value_of_the_wrong_type_is_a_skipped_row(sweep, case):
    path, value = WRONG_TYPES[case]
    _edit(sweep, _changed(_row(sweep), path, value))
    _skipped(sweep, "")


# --------------------------------------------------------------------------- values out of their range
OUT_OF_RANGE = {
    "accuracy 1.5": (("checkpoints", 0, "test_accuracy"), 1.5, "test_accuracy"),
    "a negative loss": (("checkpoints", 1, "train_loss"), -1.0, "train_loss"),
    "a loss of 1e200": (("checkpoints", 1, "test_loss"), 1e200, "test_loss"),
    "a loss curve of 1e300": (("loss_curve", 2), 1e300, "loss_curve"),
    "a negative learning rate": (("config", "learning_rate"), -0.1, "learning_rate"),
    "dropout 1.5": (("config", "dropout"), 1.5, "dropout"),
    "an unknown optimizer": (("config", "optimizer"), "sgdx", "optimizer"),
    "a softmax of one unit": (("config", "output"), "softmax", "softmax"),
    "n_parameters not those of the layers": (("n_parameters",), 1000, "n_parameters"),
    "epochs not increasing": (("config", "epochs"), [10, 5], "epochs"),
    "a checkpoint at an epoch not in the config": (("checkpoints", 0, "epoch"), 7, "checkpoint"),
    "stopped after the last epoch": (("stopped_epoch",), 11, "stopped_epoch"),
    "a seed below 0": (("seed",), -1, "seed"),
    "a longer loss curve than epochs": (("loss_curve",), [0.5] * 11, "loss_curve"),
}


@pytest.mark.parametrize("case", sorted(OUT_OF_RANGE))
def test_a_value_out_of_its_range_is_a_skipped_row(sweep, case):
    path, value, match = OUT_OF_RANGE[case]
    _edit(sweep, _changed(_row(sweep), path, value))
    _skipped(sweep, match)


def test_a_second_row_of_one_run_is_skipped(sweep):
    lines = _lines(sweep)
    (sweep / RESULTS).write_bytes(b"\n".join([*lines, lines[0]]) + b"\n")
    rows, warnings = read_rows(sweep)
    assert len(rows) == 4 and len(warnings) == 1 and "skipped line 5: a second row of run" in warnings[0]


# --------------------------------------------------------------------------- deep nesting
@pytest.mark.parametrize("field", ["note", "versions", "machine", "an extra field"])
def test_deep_nesting_is_a_skipped_row(sweep, field):
    _edit(sweep, _changed(_row(sweep), (field,), "DEEP").replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000))
    _skipped(sweep, "nested")


# --------------------------------------------------------------------------- long lines and memory
def _peak(function, *args):
    tracemalloc.start()
    try:
        result = function(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("filler", [b"[]," * 1_400_000, b"0," * 2_000_000, b'"a",' * 1_000_000],
                         ids=["empty lists", "zeros", "strings"])
def test_a_row_of_megabytes_is_skipped_without_parsing_it(sweep, filler):
    row = _row(sweep)
    line = _changed(row, ("note",), "X").replace(b'"X"', b"[" + filler + b"0]")
    assert len(line) > 4_000_000
    _edit(sweep, line, at=2)
    (rows, warnings), peak = _peak(read_rows, sweep)
    assert len(rows) == 3 and len(warnings) == 1 and "skipped line 2: longer than" in warnings[0]
    assert peak < 3_000_000, f"reading the rows allocated {peak:,} bytes"


def test_a_long_torn_last_line_is_skipped(sweep):
    with open(sweep / RESULTS, "ab") as f:
        f.write(b'{"run_id": "x", "note": "' + b"y" * 5_000_000)
    (rows, warnings), peak = _peak(read_rows, sweep)
    assert len(rows) == 4 and len(warnings) == 1 and "skipped line 5: longer than" in warnings[0]
    assert peak < 3_000_000


def test_rows_beyond_the_manifests_runs_are_skipped(sweep):
    row = _row(sweep)
    with open(sweep / RESULTS, "ab") as f:
        for i in range(3):
            f.write(_changed(row, ("run_id",), f"extra{i}") + b"\n")
    rows, warnings = read_rows(sweep)
    assert len(rows) == 4 and [w.split(": skipped ")[1] for w in warnings] == [
        f"line {n}: more rows than the manifest's n_runs=4." for n in (5, 6, 7)]


# --------------------------------------------------------------------------- the manifest
def _manifest(out, **changes):
    manifest = json.loads((out / MANIFEST).read_text())
    manifest.update(changes)
    return manifest


def _session(out, **changes):
    return [{**_manifest(out)["sessions"][0], **changes}]


MANIFESTS = {
    "sessions a string": lambda out: json.dumps(_manifest(out, sessions="many")),
    "a session's seconds text": lambda out: json.dumps(_manifest(out, sessions=_session(out, seconds="fast"))),
    "a session's seconds NaN": lambda out: json.dumps(_manifest(out, sessions=_session(out, seconds=1.0))).replace(
        '"seconds": 1.0', '"seconds": NaN'),
    "a session without where": lambda out: json.dumps(_manifest(
        out, sessions=[{k: v for k, v in _session(out)[0].items() if k != "where"}])),
    "a session's counts a list": lambda out: json.dumps(_manifest(out, sessions=_session(out, counts=[4]))),
    "n_runs negative": lambda out: json.dumps(_manifest(out, n_runs=-1)),
    "n_runs huge": lambda out: json.dumps(_manifest(out, n_runs=10**30)),
    "grid a list": lambda out: json.dumps(_manifest(out, grid=[1, 2])),
    "data a list": lambda out: json.dumps(_manifest(out, data=["moons"])),
    "deep nesting": lambda out: json.dumps(_manifest(out, notes="X")).replace('"X"', "[" * 100_000 + "]" * 100_000),
    "a manifest of 40 MB": lambda out: json.dumps(_manifest(out, notes=["padding" * 10] * 600_000)),
    "not an object": lambda out: "[1, 2]",
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_an_edited_manifest_is_one_line_and_exit_status_2(sweep, capsys, case):
    (sweep / MANIFEST).write_text(MANIFESTS[case](sweep))
    assert main(["report", str(sweep)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("twinnet report: error: ") and MANIFEST in err[0], err
    assert len(err[0]) < 400


def test_a_manifest_or_results_that_are_not_files_are_one_line(sweep, capsys):
    (sweep / RESULTS).unlink()
    os.mkfifo(sweep / RESULTS)  # a FIFO with no writer: reading it would wait forever
    assert main(["report", str(sweep)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    (sweep / RESULTS).unlink()
    (sweep / MANIFEST).unlink()
    (sweep / MANIFEST).symlink_to("/dev/zero")  # endless
    with pytest.raises(ValueError, match="not a regular file"):
        read_manifest(sweep)


# --------------------------------------------------------------------------- several bad rows, end to end
def test_every_class_of_bad_row_together_leaves_a_report_of_the_good_ones(sweep, capsys):
    good = _row(sweep)
    lines = _lines(sweep)
    bad = [_changed(good, ("n_parameters",), 2**60), _changed(good, ("ms_per_epoch",), 0),
           _changed(good, ("ms_per_epoch",), [1]), _changed(good, ("config", "learning_rate"), -1),
           _changed(good, ("note",), None).replace(b'"note": null', b'"note": ' + b"[" * 50_000 + b"]" * 50_000),
           json.dumps(good).encode().replace(b'"test_accuracy":', b'"test_accuracy": NaN, "x":', 1)]
    (sweep / RESULTS).write_bytes(b"\n".join([*bad, *lines]) + b"\n")
    assert main(["report", str(sweep)]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.strip().splitlines()
    assert [w.split(": skipped line ")[1].split(":")[0] for w in warnings] == ["1", "2", "3", "4", "5", "6"]
    assert "4 runs (4 ok)" in captured.out and "Traceback" not in captured.err


# --------------------------------------------------------------------------- symlinks
def test_the_report_replaces_planted_symlinks_instead_of_writing_through_them(sweep, tmp_path):
    # one at each kind of file the report writes, all planted at once: one report
    names = ["summary.csv", "report.html", "time_vs_parameters.png", "loss_curves.png"]
    for name in names:
        outside = tmp_path / f"precious-{name}.txt"
        outside.write_text("not the report's")
        (sweep / name).symlink_to(outside)
    assert main(["report", str(sweep)]) == 0
    for name in names:
        assert (tmp_path / f"precious-{name}.txt").read_text() == "not the report's", name
        assert not (sweep / name).is_symlink() and (sweep / name).stat().st_size > 0, name
    assert not [p for p in sweep.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_symlink_to_a_folder_outside_is_replaced_too(sweep, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (sweep / "summary.csv").symlink_to(elsewhere)
    assert main(["report", str(sweep)]) == 0
    assert list(elsewhere.iterdir()) == [] and (sweep / "summary.csv").is_file()
