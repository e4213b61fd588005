"""``twinnet compare`` end to end through the CLI: the table, the files, the figures, bad input."""

import csv
import importlib.util
import json
import os

import pytest

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENGINES = ("functional", "numpy", "keras", "tf-loop", "sklearn", "torch")


def table_rows(out):
    """The table's rows, by engine: the cells of each line that starts with an engine name."""
    return {cells[0]: cells[1:] for cells in map(str.split, out.splitlines())
            if cells and cells[0] in ENGINES}


def test_small_compare_writes_table_results_and_figures(tmp_path, cli):
    out_dir = tmp_path / "run"
    status, out, err = cli("compare", "--data", "moons", "--epochs", "8", "--learning-rate", "0.5",
                           "--engines", "functional,numpy,sklearn,torch", "--no-progress",
                           "--out", str(out_dir))
    assert status == 0, err
    # the title may wrap: compare words
    assert ("moons, layers 2-20-5-1 sigmoid, relu, sgd lr 0.5, full batch, 8 epochs, float64, seed 0"
            in " ".join(out.split()))
    rows = table_rows(out)
    assert list(rows) == ["functional", "numpy", "sklearn", "torch"]
    assert rows["functional"][-1] == "reference" and float(rows["numpy"][-1]) < 1e-13
    assert "largest |loss - functional loss| over the epochs" in " ".join(out.split())

    results = json.loads((out_dir / "results.json").read_text())
    assert results["config"]["layers"] == [2, 20, 5, 1] and results["reference"] == "functional"
    assert results["data"] == {"source": "moons", "n_features": 2, "n_train": 320, "n_test": 80,
                               "output": "sigmoid", "classes": [0, 1]}
    assert [r["engine"] for r in results["results"]] == ["functional", "numpy", "sklearn", "torch"]
    for result, row in zip(results["results"], results["summary"]):
        assert len(result["loss_curve"]) == 8 and result["error"] is None
        assert row["max_loss_diff"] < 1e-13, row  # every engine follows the notebook's trajectory
    versions = results["environment"]["versions"]
    assert "numpy" in versions and "torch" in versions and results["environment"]["machine"]["cpus"] >= 1

    with open(out_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["engine"] for r in rows] == ["functional", "numpy", "sklearn", "torch"]
    assert float(rows[1]["test_accuracy"]) == results["summary"][1]["test_accuracy"]
    assert rows[0]["speed_vs_keras"] == ""  # no Keras row to compare with

    for figure in ("loss_curves.png", "decision_boundary.png"):
        assert (out_dir / figure).read_bytes()[:8] == PNG_MAGIC, figure


def test_progress_bars_and_no_boundary_for_many_features(tmp_path, cli):
    status, out, err = cli("compare", "--data", "breast_cancer", "--epochs", "3", "--engines",
                           "numpy", "--out", str(tmp_path))
    assert status == 0, err
    assert "layers 30-20-5-1" in out
    assert (tmp_path / "loss_curves.png").exists() and not (tmp_path / "decision_boundary.png").exists()


def test_default_output_folder_is_timestamped(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _out, err = cli("compare", "--data", "moons", "--epochs", "2", "--engines", "numpy",
                               "--no-progress")
    assert status == 0, err
    (folder,) = (tmp_path / "twinnet-runs").iterdir()
    assert folder.name[:2] == "20" and (folder / "results.json").exists()


@pytest.mark.parametrize("learning_rate, how", [
    ("1e200", "note: numpy: diverged: the loss became nan at epoch 2"),  # overflows
    ("50", "note: functional: diverged: the loss climbed from 0.694"),  # climbs to a finite plateau
])
def test_divergence_is_reported_in_the_table_and_the_files(learning_rate, how, tmp_path, cli):
    status, out, err = cli("compare", "--data", "moons", "--epochs", "10", "--learning-rate", learning_rate,
                           "--engines", "functional,numpy", "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    # no metric of a diverged run is shown as a result
    assert [cells[:3] for cells in table_rows(out).values()] == [["diverged", "-", "-"]] * 2
    assert how in out
    summary = json.loads((tmp_path / "results.json").read_text())["summary"]
    assert [row["status"] for row in summary] == ["diverged", "diverged"]
    with open(tmp_path / "results.csv", newline="") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["diverged", "diverged"]


# extreme inputs overflow on purpose inside every engine; none of it may reach the terminal
EXTREMES = [
    ["--learning-rate", "1e30", "--dtype", "float32"],
    ["--learning-rate", "1e308"],
    ["--data", "{big}", "--no-standardize", "--dtype", "float32"],
    ["--data", "{big}"],
    ["--data", "{constant}", "--no-standardize"],
]


def test_no_numpy_warning_reaches_the_terminal(tmp_path):
    # every case in one process, one after the other, as `python -W default -m twinnet compare`
    # runs each: a warning the first case lets through is printed then (-W default prints each
    # warning's first occurrence), so sharing the process hides none, and each case's status counts
    import subprocess
    import sys

    import numpy as np

    from twinnet import data

    X, y = data.load("synthetic")
    np.savez(tmp_path / "big.npz", features=X * 1e8, labels=y)
    X[:, :50] = 7.0  # constant columns
    np.savez(tmp_path / "constant.npz", features=X, labels=y)
    cases = [["compare", *(a.format(big=tmp_path / "big.npz", constant=tmp_path / "constant.npz") for a in argv),
              "--epochs", "5", "--engines", "functional,numpy,sklearn,torch", "--no-progress",
              "--out", str(tmp_path / f"out{i}")] for i, argv in enumerate(EXTREMES)]
    script = "from twinnet.cli import main; print(*(main(case) for case in CASES))"
    done = subprocess.run([sys.executable, "-W", "default", "-c", script.replace("CASES", repr(cases))],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines()[-1] == " ".join(["0"] * len(EXTREMES)), done.stdout[-2000:]
    assert all((tmp_path / f"out{i}" / "results.json").is_file() for i in range(len(EXTREMES)))


def test_default_output_folders_of_runs_in_the_same_second_differ(tmp_path, monkeypatch):
    import threading
    import time

    from twinnet.cli._output import output_file, output_folder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt: "20260101-000000")  # every run in one second
    paths, start = [], threading.Barrier(8)

    def claim(i):
        start.wait()  # all at once: the names are taken by atomic mkdir and open("x")
        if i % 2:
            with output_folder("--out", None, force=False, holds=()) as path:
                (path / "mine").write_text(str(i))
        else:
            with output_file("--json", None, force=False, stem="bench", suffix=".json") as path:
                path.write_text(str(i))
        paths.append(path)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 8
    names = sorted(p.name for p in (tmp_path / "twinnet-runs").iterdir())
    assert names == ["20260101-000000", "20260101-000000-2", "20260101-000000-3", "20260101-000000-4",
                     "bench-20260101-000000-2.json", "bench-20260101-000000-3.json",
                     "bench-20260101-000000-4.json", "bench-20260101-000000.json"]


def test_an_earlier_runs_results_are_kept_unless_force(tmp_path, cli):
    argv = ["--data", "moons", "--epochs", "2", "--engines", "numpy", "--no-progress", "--out", str(tmp_path)]
    assert cli("compare", *argv)[0] == 0
    first = (tmp_path / "results.json").read_text()
    status, _, err = cli("compare", *argv, "--seed", "1")
    assert status == 2 and "already holds results.json from an earlier run" in err and "--force" in err
    assert (tmp_path / "results.json").read_text() == first
    assert cli("compare", *argv, "--seed", "1", "--force")[0] == 0
    assert json.loads((tmp_path / "results.json").read_text())["config"]["seed"] == 1


def test_a_folder_is_one_runs_figures_and_one_run_at_a_time(tmp_path, cli):
    from twinnet.cli.compare_cmd import LOCK
    from twinnet.lab.store import hold

    argv = ["--epochs", "2", "--engines", "numpy", "--no-progress", "--out", str(tmp_path)]
    (tmp_path / "decision_boundary.png").write_text("the user's own")
    status, _, err = cli("compare", *argv, "--data", "iris")
    assert status == 2 and "already holds decision_boundary.png from an earlier run" in err
    assert (tmp_path / "decision_boundary.png").read_text() == "the user's own"
    held = hold(tmp_path, LOCK, "another run")  # as a compare writing there holds it
    try:
        status, _, err = cli("compare", *argv, "--data", "iris", "--force")
        assert status == 2 and f"another run (process {os.getpid()}) is writing there" in err
    finally:
        held.close()
    status, out, _ = cli("compare", *argv, "--data", "iris", "--force")
    assert status == 0 and "confusion_matrix.png" in out
    # the earlier decision_boundary.png is gone: --force replaces a run's files, not some of them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion_matrix.png", "loss_curves.png", "results.csv",
                                                          "results.json"]


@pytest.mark.parametrize("argv, message", [
    (["--layers", "50,20,5,1"], "layers=50,20,5,1 starts with 50 inputs, but data 'synthetic' has 100 features"),
    (["--layers", "100,20,5,2"], "layers=100,20,5,2 ends with 2 units, but data 'synthetic' is binary (a sigmoid "
     "head: one unit); the last width must be 1."),
    (["--data", "digits10", "--output", "sigmoid"], "digits10: labels must be binary (exactly two distinct values); "
     "got 10 distinct values"),
    (["--data", "digits10", "--output", "softmax", "--layers", "64,32,1"], "a softmax head needs an output layer of "
     "width K >= 2 (one unit per class); got width 1"),
    (["--data", "digits10", "--layers", "64,32,5"], "layers=64,32,5 ends with 5 units, but data 'digits10' has 10 "
     "classes (a softmax head: one unit per class); the last width must be 10."),
    (["--data", "diabetes", "--layers", "10,8,2"], "layers=10,8,2 ends with 2 units, but data 'diabetes' has 1 "
     "regression target (a linear head: one unit per target); the last width must be 1."),
    (["--output", "logistic"], "argument --output: invalid choice: 'logistic'"),
    (["--data", "digits10", "--engines", "functional"], "engine 'functional' cannot run this configuration: the "
     "notebook's functional network is binary, one sigmoid unit with log-loss; got output='softmax'"),
    (["--layers", "100,0,5,1"], "argument --layers: expected positive widths, got 100,0,5,1"),
    (["--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
    (["--epochs", "ten"], "argument --epochs: expected an integer >= 1, got 'ten'"),
    (["--learning-rate", "0"], "argument --learning-rate: expected a finite number > 0, got 0"),
    (["--learning-rate", "-0.1"], "argument --learning-rate: expected a finite number > 0, got -0.1"),
    (["--engines", "numpy,jax"], "unknown engine 'jax'; expected a comma-separated list of: functional, numpy, keras"),
    (["--optimizer", "adamw"], "invalid choice: 'adamw' (choose from 'adam', 'momentum', 'rmsprop', 'sgd')"),
    (["--hidden-activation", "gelu"], "invalid choice: 'gelu' (choose from 'leaky_relu', 'relu', 'sigmoid', 'tanh')"),
    (["--init", "xavier"], "invalid choice: 'xavier' (choose from 'glorot', 'he', 'normal')"),
    (["--dtype", "float16"], "invalid choice: 'float16'"),
    (["--seed", "-3"], "argument --seed: expected an integer between 0 and 4294967295, got -3"),
    (["--seed", str(2**32)], "argument --seed: expected an integer between 0 and 4294967295, got 4294967296"),
    (["--data", "no_such_set"], "Unknown data set 'no_such_set'. Expected a file path or one of: 'synthetic'"),
    (["--data", "missing.pickle"], "missing.pickle: no such file."),
    (["--engines", "functional", "--batch-size", "16"], "engine 'functional' cannot run this configuration"),
    (["--engines", "sklearn", "--hidden-activation", "leaky_relu"], "MLPClassifier has no 'leaky_relu' activation"),
])
def test_bad_input_is_one_line_and_status_2(argv, message, tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative data paths resolve here, and nothing is written
    status, _out, err = cli("compare", *argv, "--no-progress")
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "twinnet-runs").exists()


def test_bad_data_file_is_refused(tmp_path, cli):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,0\n3,x,1\n")
    status, _out, err = cli("compare", "--data", str(bad), "--no-progress", "--out", str(tmp_path / "o"))
    assert status == 2 and "line 2, column 2 is not a number: 'x'" in err


def test_out_must_be_a_folder(tmp_path, cli):
    target = tmp_path / "file.txt"
    target.write_text("")
    status, _out, err = cli("compare", "--data", "moons", "--out", str(target))
    assert status == 2 and "is a file; expected a folder" in err


def test_tensorflow_missing_names_the_extra(tmp_path, cli, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    status, out, err = cli("compare", "--data", "moons", "--engines", "numpy,keras", "--no-progress",
                           "--out", str(tmp_path))
    assert status == 2
    assert "engine 'keras' needs tensorflow, which is not installed: pip install 'twinnet[tf]'" in err
    # without --engines the TensorFlow engines are left out, with a note
    status, out, err = cli("compare", "--data", "moons", "--epochs", "2", "--no-progress",
                           "--out", str(tmp_path))
    assert status == 0, err
    assert "keras skipped: tensorflow is not installed (pip install 'twinnet[tf]')" in out
    assert "keras" not in table_rows(out) and "numpy" in table_rows(out)


def test_figures_are_skipped_without_matplotlib(tmp_path, cli, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    status, out, err = cli("compare", "--data", "moons", "--epochs", "2", "--engines", "numpy",
                           "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    assert "figures skipped, matplotlib is not installed: pip install 'twinnet[plot]'" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]


@pytest.mark.tf
def test_compare_with_keras_engines(tmp_path, cli):
    status, out, err = cli("compare", "--data", "moons", "--epochs", "5", "--learning-rate", "0.5",
                           "--engines", "numpy,keras,tf-loop", "--batch-size", "64",
                           "--optimizer", "adam", "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    summary = {row["engine"]: row for row in json.loads((tmp_path / "results.json").read_text())["summary"]}
    assert summary["keras"]["speed_vs_keras"] == 1.0
    for engine in ("keras", "tf-loop"):
        assert summary[engine]["max_loss_diff"] < 1e-12, summary[engine]
    assert table_rows(out)["keras"][-2] == "1.0x"


def test_compare_with_rmsprop(tmp_path, cli):
    # --optimizer rmsprop reaches every engine that has it; the torch twin takes Keras's step
    status, out, err = cli("compare", "--data", "moons", "--epochs", "5", "--learning-rate", "0.01",
                           "--engines", "numpy,torch", "--batch-size", "64", "--optimizer", "rmsprop",
                           "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["optimizer"] == "rmsprop"
    summary = {row["engine"]: row for row in results["summary"]}
    assert summary["torch"]["max_loss_diff"] < 1e-12, summary["torch"]


@pytest.mark.tf
def test_keras_init_notebook_compares_accuracy_not_trajectories(tmp_path, cli):
    status, out, err = cli("compare", "--data", "moons", "--epochs", "3", "--engines", "numpy,keras",
                           "--keras-init", "notebook", "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    assert "keras *: notebook's keras_model: Keras's own initialization, float32" in out
    keras_row = json.loads((tmp_path / "results.json").read_text())["summary"][1]
    assert keras_row["engine"] == "keras" and keras_row["max_loss_diff"] is None
    assert 0 <= keras_row["test_accuracy"] <= 1


# --------------------------------------------------------------------------- every head
def _columns(out):
    """The table's header words, both lines of the two-line headers joined."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if "────" in line)
    return " ".join(lines[rule - 2].split() + lines[rule - 1].split())


def test_softmax_compare_shows_accuracy_and_a_confusion_matrix(tmp_path, cli):
    status, out, err = cli("compare", "--data", "digits10", "--layers", "64,16,10", "--epochs", "5",
                           "--engines", "numpy,sklearn,torch", "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    assert "digits10, layers 64-16-10 softmax" in " ".join(out.split())
    assert "acc" in _columns(out) and "RMSE" not in _columns(out)
    rows = table_rows(out)
    assert list(rows) == ["numpy", "sklearn", "torch"] and rows["numpy"][-1] == "reference"
    assert all(float(rows[e][-1]) < 1e-13 for e in ("sklearn", "torch"))  # one trajectory
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["data"]["output"] == "softmax" and results["data"]["classes"] == list(range(10))
    with open(tmp_path / "results.csv", newline="") as f:
        assert csv.DictReader(f).fieldnames[:5] == ["engine", "train_loss", "train_accuracy", "test_loss",
                                                      "test_accuracy"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["confusion_matrix.png", "loss_curves.png"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC


def test_regression_compare_shows_rmse_and_r2_and_the_mapping_of_sklearn(tmp_path, cli):
    status, out, err = cli("compare", "--data", "diabetes", "--epochs", "5", "--engines", "numpy,sklearn,torch",
                           "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    words = " ".join(out.split())
    assert "diabetes, layers 10-20-5-1 linear" in words
    assert "MSE RMSE RMSE R²" in _columns(out) and "acc" not in _columns(out)
    assert ("loss (MSE) and RMSE in (squared) standard deviations of the target, standardized on the "
            "training part") in words
    assert ("note: sklearn: MLPRegressor minimizes half the mean squared error: it runs with "
            "learning_rate_init=0.2 to take our steps, and its loss_curve_ is shown doubled") in words
    rows = table_rows(out)
    assert all(float(rows[e][-1]) < 1e-13 for e in ("sklearn", "torch"))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["data"]["output"] == "linear" and "classes" not in results["data"]
    assert results["data"]["target_sd"][0] > 10
    for row in results["summary"]:
        assert row["test_rmse"] > 0 and row["test_r2"] < 1 and "test_accuracy" not in row
    with open(tmp_path / "results.csv", newline="") as f:
        assert "train_r2" in csv.DictReader(f).fieldnames
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["loss_curves.png", "predicted_vs_true.png"]


def test_a_three_class_file_of_two_features_draws_boundaries_and_says_its_head_once(tmp_path, cli):
    import numpy as np
    from problems import multiclass_problem

    X, y = multiclass_problem(m=150, n=2, k=3, seed=0)
    np.savez(tmp_path / "three.npz", features=X, labels=y)
    status, out, err = cli("compare", "--data", tmp_path / "three.npz", "--epochs", "5", "--learning-rate", "0.5",
                           "--engines", "numpy,sklearn", "--no-progress", "--out", str(tmp_path / "o"))
    assert status == 0, err
    notes = [line for line in out.splitlines() if line.strip().startswith("note:") and "softmax" in line]
    assert len(notes) == 1 and "three.npz" in notes[0], out  # how the head was inferred, once
    assert "layers 2-20-5-3 softmax" in " ".join(out.split())
    assert {"decision_boundary.png", "confusion_matrix.png"} <= {p.name for p in (tmp_path / "o").iterdir()}
    # asked for, the same labels train a regression of them: no boundaries, no matrix
    status, out, err = cli("compare", "--data", tmp_path / "three.npz", "--output", "linear", "--epochs", "2",
                           "--engines", "numpy", "--no-progress", "--out", str(tmp_path / "r"))
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "r").glob("*.png")) == ["loss_curves.png", "predicted_vs_true.png"]


@pytest.mark.tf
@pytest.mark.parametrize("data, layers", [("iris", "4,8,3"), ("diabetes", "10,8,1")])
def test_keras_engines_share_the_trajectory_for_every_head(data, layers, tmp_path, cli):
    status, out, err = cli("compare", "--data", data, "--layers", layers, "--epochs", "4", "--engines",
                           "numpy,keras,tf-loop", "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    summary = json.loads((tmp_path / "results.json").read_text())["summary"]
    for row in summary[1:]:
        assert row["max_loss_diff"] < 1e-12, row  # float64 Keras, the same steps


def test_compare_with_l2_a_schedule_and_early_stopping_says_where_each_engine_stopped(tmp_path, cli):
    spec = "exponential:decay_steps=1000,decay_rate=0.5"
    status, out, err = cli("compare", "--data", "digits10", "--layers", "64,16,10", "--learning-rate", "1",
                           "--epochs", "200", "--l2", "0.0001", "--lr-schedule", spec, "--early-stopping", "2",
                           "--engines", "numpy", "--no-progress", "--out", str(tmp_path))
    assert status == 0, err
    words = " ".join(out.split())
    assert f"sgd lr 1 {spec}, full batch, 200 epochs, l2 0.0001, early stopping 2, float64" in words
    assert "1293 train / 360 test examples (144 more held out for early stopping)" in words
    assert "stopped best" in _columns(out)
    assert ("note: early stopping: patience 2 on val_loss of 144 validation examples (validation_fraction 0.1 of "
            "the training part, stratified by class, the same for every engine)") in words
    assert "note: l2=0.0001: every loss (curves, train and test) includes the penalty l2 * sum(W**2)" in words
    assert "note: learning rate of update k: ExponentialDecay(initial_learning_rate=1.0, decay_steps=1000" in words
    results = json.loads((tmp_path / "results.json").read_text())
    config, [result] = results["config"], results["results"]
    assert (config["l2"], config["lr_schedule"], config["early_stopping"]) == (0.0001, spec, 2)
    assert results["data"]["n_val"] == 144
    assert result["stopped_epoch"] is not None, "the test needs a run that stops"
    assert result["epochs_run"] == result["stopped_epoch"] == len(result["loss_curve"]) < 200
    cells = table_rows(out)["numpy"]
    assert cells[-2:] == [str(result["stopped_epoch"]), str(result["best_epoch"])]
    with open(tmp_path / "results.csv", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert (row["stopped_epoch"], row["best_epoch"]) == (str(result["stopped_epoch"]), str(result["best_epoch"]))
