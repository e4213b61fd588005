"""``twinnet sweep`` end to end: metrics checked against the notebook's functions, thread limits,
a real Dask scheduler and workers, and the bad-input contract (one line on stderr, exit status 2)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import cloudpickle
import numpy as np
import pytest
from numpy.testing import assert_allclose

from twinnet import functional as F
from twinnet.cli import main
from twinnet.lab import grid as G
from twinnet.lab import sweep
from twinnet.lab.config import RunConfig
from twinnet.lab.run import initial_parameters, load_split
from twinnet.lab.store import ResultStore, read_manifest, read_results

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)

cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY_ARGS = ["--data", "moons", "--layers", "2,8,1", "--layers", "2,4,4,1", "--learning-rate", "0.5",
             "--epochs", "20,5", "--seeds", "0,1", "--no-progress"]


def test_checkpoints_equal_the_notebooks_functions_trained_to_each_epoch(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", *TINY_ARGS, "--engines", "functional,numpy", "--jobs", "2",
                 "--out", str(out)]) == 0
    assert "8 ok" in capsys.readouterr().out
    rows = read_results(out)
    assert len(rows) == 2 * 2 * 2 and {r["status"] for r in rows} == {"ok"}
    for row in rows:
        assert [p["epoch"] for p in row["checkpoints"]] == [5, 20] and len(row["loss_curve"]) == 20
        # independent: the notebook's L_layer_model / compute_cost / accuracy, trained separately
        # to each checkpoint from the same initial weights on the same split
        config = RunConfig(data="moons", layers=tuple(row["config"]["layers"]), seed=row["seed"])
        split = load_split(config)
        initial = initial_parameters(config)
        for point in row["checkpoints"]:
            parameters = F.L_layer_model(split.X_train.T, split.y_train.reshape(1, -1),
                                         list(config.layers), 0.5, point["epoch"],
                                         initial_parameters=initial)
            for part, X, y in (("train", split.X_train, split.y_train), ("test", split.X_test, split.y_test)):
                AL, _ = F.L_model_forward(X.T, parameters)
                assert_allclose(point[f"{part}_loss"], F.compute_cost(AL, y.reshape(1, -1)), rtol=1e-10,
                                err_msg=f"{row['engine']} seed {row['seed']} epoch {point['epoch']} {part}")
                assert point[f"{part}_accuracy"] == F.accuracy(X.T, y, parameters)
        assert row["seconds"] > 0 and row["ms_per_epoch"] == pytest.approx(1000 * row["seconds"] / 20)
        assert row["versions"]["numpy"] == np.__version__ and row["machine"]["cpus"] == os.cpu_count()
        assert row["n_parameters"] == sum(a * b + b for a, b in zip(row["config"]["layers"],
                                                                    row["config"]["layers"][1:]))
    manifest = read_manifest(out)
    assert manifest["n_runs"] == 8 and manifest["sessions"][0]["counts"] == {"ok": 8}


def report_thread_limits(spec, threads, attempt):
    """Run normally, and report what the worker's BLAS and TensorFlow were limited to."""
    import tensorflow as tf
    from threadpoolctl import threadpool_info

    row = sweep.execute_run(spec, threads, attempt)
    row["blas_threads"] = sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
    row["tf_threads"] = [tf.config.threading.get_intra_op_parallelism_threads(),
                         tf.config.threading.get_inter_op_parallelism_threads()]
    return row


@pytest.mark.tf
def test_workers_limit_blas_and_tensorflow_to_their_share(tmp_path):
    runs, _ = sweep.plan(G.check_grid({"data": "moons", "layers": [2, 8, 1], "epochs": [5, 10],
                                       "engines": ["numpy", "keras"]}))
    store = ResultStore.create(tmp_path / "s", grid={}, grid_hash="h", n_runs=len(runs))
    with sweep.executor(jobs=2, libraries=sweep.libraries(runs)) as where:
        outcome = sweep.run_sweep(runs, store, where, show_progress=False, run=report_thread_limits)
    assert outcome.threads == max(1, (os.cpu_count() or 1) // 2)
    rows = {r["engine"]: r for r in read_results(tmp_path / "s")}
    assert rows["keras"]["status"] == "ok", rows["keras"]["error"]
    assert rows["keras"]["tf_threads"] == [outcome.threads] * 2
    for row in rows.values():
        assert row["threads"] == outcome.threads and row["blas_threads"] in ([], [outcome.threads])
    # the twins agree at every checkpoint (same weights, float64)
    for a, b in zip(rows["numpy"]["checkpoints"], rows["keras"]["checkpoints"]):
        assert a["epoch"] == b["epoch"]
        assert_allclose([a["test_loss"], a["train_loss"]], [b["test_loss"], b["train_loss"]], rtol=1e-9)


@contextlib.contextmanager
def _dask_processes(tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes on localhost, killed afterwards;
    yields the scheduler's address and the processes, the scheduler first.

    Both run on this interpreter (``python -m dask``), not on whatever ``dask`` is first on ``PATH``:
    another installation's Dask would differ in version, and its ``VersionMismatchWarning``s
    would reach the sweep's standard error."""
    info = tmp_path / "scheduler.json"
    # each in its own process group, so that the teardown reaches the workers' nanny children too
    common = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True, "cwd": tmp_path}
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--scheduler-file", str(info), "--no-dashboard"], **common)]
    try:
        deadline, address = time.time() + 60, None
        while address is None and time.time() < deadline:  # the file appears before its JSON is whole
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
                address = json.loads(info.read_text())["address"]
            time.sleep(0.2)
        assert address, "the Dask scheduler wrote no address within 60 s"
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nworkers", "2",
                                       "--nthreads", "1", "--no-dashboard"], **common))
        from distributed import Client

        with Client(address, timeout=60) as client:  # both workers up, however loaded the machine
            client.wait_for_workers(2, timeout=120)
        yield address, procs
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def dask_cluster(tmp_path):
    with _dask_processes(tmp_path) as (address, _):
        yield address


def test_a_sweep_on_a_real_dask_scheduler(tmp_path, dask_cluster, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", *TINY_ARGS, "--engines", "numpy", "--scheduler", dask_cluster,
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"on Dask scheduler {dask_cluster}" in err
    rows = read_results(out)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    # the runs ran in the cluster's worker processes, not here
    assert os.getpid() not in {r["pid"] for r in rows}
    session = read_manifest(out)["sessions"][0]
    assert session["slots"] == 2 and session["where"] == f"Dask scheduler {dask_cluster}"
    # the same grid on local processes gives the same numbers
    local = tmp_path / "local"
    assert main(["sweep", *TINY_ARGS, "--engines", "numpy", "--jobs", "2", "--out", str(local)]) == 0
    by_id = {r["run_id"]: r["checkpoints"] for r in read_results(local)}
    assert {r["run_id"]: r["checkpoints"] for r in rows} == by_id


@pytest.mark.timeout(300)
def test_a_scheduler_that_goes_away_mid_sweep_is_one_line_and_the_sweep_resumes(tmp_path):
    out = tmp_path / "sweep"
    with _dask_processes(tmp_path) as (address, procs):
        argv = [sys.executable, "-m", "twinnet", "sweep", "--data", "synthetic", "--layers", "100,32,1",
                "--epochs", "50,200", "--seeds", ",".join(map(str, range(10))), "--engines", "numpy",
                "--scheduler", address, "--no-progress", "--out", str(out)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        results = out / "results.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and (not results.exists() or results.read_bytes().count(b"\n") < 2):
            time.sleep(0.05)
        os.killpg(procs[0].pid, signal.SIGKILL)  # the scheduler, mid-sweep
        _, err = proc.communicate(timeout=120)
    saved = len(read_results(out))
    assert proc.returncode == 2 and 2 <= saved < 10
    lost = (f"twinnet sweep: error: the Dask scheduler {address} went away mid-sweep "
            f"(scheduler-connection-lost); {saved}/10 runs are saved in {out}: resume with --resume "
            "once it is back.")
    assert err.splitlines()[1:] == [lost], err
    assert main(["sweep", "--resume", "--out", str(out), "--jobs", "2", "--no-progress"]) == 0
    ids = [r["run_id"] for r in read_results(out)]
    assert len(ids) == 10 and len(set(ids)) == 10


def test_the_notebook_preset_grid():
    runs, notes = sweep.plan(G.check_grid(G.PRESETS["notebook"]))
    assert not notes and len(runs) == 4 * 2 * 3 * 3
    assert {r.checkpoints for r in runs} == {(50, 100, 250)}
    assert {r.engine for r in runs} == {"numpy", "keras", "tf-loop"}


def test_runs_an_engine_cannot_train_are_left_out_with_a_note(tmp_path, capsys):
    assert main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "3",
                 "--optimizer", "sgd,adam", "--engines", "functional,numpy", "--jobs", "1",
                 "--no-progress", "--out", str(tmp_path / "s")]) == 0
    assert "note: left out 1 run(s) of functional: the notebook's functional network" in capsys.readouterr().err
    assert sorted((r["engine"], r["config"]["optimizer"]) for r in read_results(tmp_path / "s")) == [
        ("functional", "sgd"), ("numpy", "adam"), ("numpy", "sgd")]
    # scikit-learn trains all its epochs in one call: it has no checkpoints, only a last epoch
    runs, notes = sweep.plan(G.check_grid({"data": "moons", "layers": [2, 4, 1], "epochs": [3, 6],
                                           "engines": ["sklearn", "numpy"]}))
    assert [r.engine for r in runs] == ["numpy"]
    assert notes == [("left out 1 run(s) of sklearn: several epoch values are checkpoints, and "
                     "scikit-learn's fit (MLPClassifier, MLPRegressor) cannot be observed between epochs")]
    runs, notes = sweep.plan(G.check_grid({"data": "moons", "layers": [2, 4, 1], "epochs": [6],
                                           "engines": ["sklearn"]}))
    assert len(runs) == 1 and not notes


def test_a_sweep_in_this_process_leaves_its_threads_and_environment_as_they_were(tmp_path, monkeypatch, capsys):
    # --jobs 1 runs in the caller's process (a notebook's kernel): its runs take the threads Network
    # chooses at each fit, not a worker's pinned ones, which also set the thread variables for good
    # (Network then takes them for the user's choice, and keeps two threads on a busy machine)
    from threadpoolctl import threadpool_info, threadpool_limits

    for name in sweep.THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    with threadpool_limits(limits=1):  # the caller's choice, which a pinned run would raise to all CPUs
        pools = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
        assert main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "3", "--engines", "numpy",
                     "--jobs", "1", "--no-progress", "--out", str(tmp_path / "s")]) == 0
        after = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
    assert [name for name in sweep.THREAD_ENV if name in os.environ] == []
    assert {path: after[path] for path in pools} == pools  # the libraries loaded before: as they were
    assert "sweep: 1 runs (0 already done) on 1 process (this one) -> " in capsys.readouterr().err
    [row] = read_results(tmp_path / "s")
    assert row["status"] == "ok" and row["threads"] == os.cpu_count()


def _sweep_made(tmp_path):
    assert main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "3", "--jobs", "1",
                 "--no-progress", "--out", str(tmp_path / "made")]) == 0


@pytest.mark.parametrize("argv, match", [
    (["sweep", "--out", "{tmp}/s"], "empty grid: give --preset notebook, --grid FILE or grid options"),
    (["sweep", "--grid", "{tmp}/bad.toml", "--out", "{tmp}/s"], "Unknown grid key 'learnig_rate'"),
    (["sweep", "--grid", "{tmp}/type.toml", "--out", "{tmp}/s"],
     "grid key 'seeds': seed must be an integer between 0 and 4294967295; got seed='one'"),
    (["sweep", "--grid", "{tmp}/absent.toml"], "no such file"),
    (["sweep", "--data", "moons", "--layers", "100,20,1", "--out", "{tmp}/s"],
     "layers=100,20,1 starts with 100 inputs, but data 'moons' has 2 features"),
    (["sweep", "--learning-rate", "0.1,fast"], "expected numbers such as 0.01,0.1, got '0.1,fast'"),
    (["sweep", "--engines", "numpy,jax", "--out", "{tmp}/s"], "grid key 'engines': Unknown engines 'jax'"),
    (["sweep", "--resume", "--out", "{tmp}/absent"], "no such directory"),
    (["sweep", "--resume", "--out", "{tmp}"], "not a sweep directory"),
    (["sweep", "--resume", "--out", "{tmp}/" + "x" * 300], "cannot read the sweep there (File name too long)"),
    (["sweep", "--resume", "--data", "moons", "--layers", "2,8,1", "--epochs", "3", "--out", "{tmp}/made"],
     "the sweep there was made with a different grid"),
    (["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "3", "--out", "{tmp}/made"],
     "already holds a sweep; add --resume to continue it"),
    (["sweep", "--preset", "notebook", "--grid", "x.toml"], "not allowed with argument"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, argv, match):
    (tmp_path / "bad.toml").write_text("learnig_rate = [0.1]\n")
    (tmp_path / "type.toml").write_text('seeds = ["one"]\n')
    _sweep_made(tmp_path)
    capsys.readouterr()
    try:
        status = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    except SystemExit as exc:  # usage errors found by argparse
        status = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and match in err[0], err


def _no_training(monkeypatch):
    """Fail the test if the sweep gets as far as starting its workers."""
    def executor(**kwargs):
        raise AssertionError("the output must be checked before any worker starts")
    monkeypatch.setattr(sweep, "executor", executor)


@pytest.mark.parametrize("out, match", [
    ("{tmp}/file.txt", "exists and is not a directory"),
    ("{tmp}/file.txt/sweep", "cannot create the directory (Not a directory)"),
    ("{tmp}/" + "x" * 300, "cannot create the directory (File name too long)"),
    ("{tmp}/other", "is not empty and holds no sweep; choose another directory"),
    ("/proc/twinnet-sweep/out", "cannot create the directory ("),  # no such file system entry
    ("/sys/twinnet-sweep", "cannot create the directory ("),  # sysfs: no new entries, even for root
], ids=["a-file", "a-file-as-parent", "name-too-long", "a-folder-with-other-contents", "proc", "sys"])
def test_output_paths_are_checked_before_any_training(tmp_path, capsys, monkeypatch, out, match):
    (tmp_path / "file.txt").write_text("mine")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    _no_training(monkeypatch)
    out = out.replace("{tmp}", str(tmp_path))
    status = main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "3", "--no-progress",
                   "--out", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith(f"twinnet sweep: error: --out {out}: "), err
    assert match in err[0], err
    # nothing was added to what the user had
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "other"]
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["notes.txt"]


def test_a_full_disk_mid_sweep_is_one_line_and_keeps_the_runs_before(tmp_path, capsys, monkeypatch):
    import errno

    from twinnet.lab import store as store_module

    fsync, written = os.fsync, []

    def fsync_until_full(fd):  # the second run's line finds the disk full
        if os.readlink(f"/proc/self/fd/{fd}").endswith("results.jsonl"):
            written.append(fd)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(store_module.os, "fsync", fsync_until_full)
    out = tmp_path / "s"
    status = main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "3", "--seeds", "0,1,2",
                   "--jobs", "1", "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    full = (f"twinnet sweep: error: --out {out}: cannot write results.jsonl (No space left on device); "
            "the 1 runs before this one are saved, resume with --resume once it is fixed.")
    assert status == 2 and err[1:] == [full], err
    monkeypatch.undo()  # room again
    assert main(["sweep", "--resume", "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    ids = [r["run_id"] for r in read_results(out)]
    assert len(ids) == 3 and len(set(ids)) == 3


def _data_file(path, X, y):
    np.savez(path, features=X, labels=y)


@pytest.mark.parametrize("change", ["same-size", "appended", "none", "built-in"])
def test_resuming_on_changed_data_is_refused(tmp_path, capsys, change):
    import hashlib

    from twinnet.data import load

    X, y = load("moons")
    path = tmp_path / "moons.npz"
    _data_file(path, X, y)
    data = "moons" if change == "built-in" else str(path)
    out = tmp_path / "s"
    assert main(["sweep", "--data", data, "--layers", "2,4,1", "--epochs", "3", "--jobs", "1",
                 "--no-progress", "--out", str(out)]) == 0
    manifest = read_manifest(out)
    if change == "built-in":  # the arrays the generator makes, X then y
        expected = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
        assert manifest["data"] == {"moons": {"source": "built-in", "sha256": expected,
                                              "bytes": X.nbytes + y.nbytes}}
        # as if the generator (its parameters, or the library's version) had changed since
        manifest["data"]["moons"]["sha256"] = "0" * 64
        (out / "manifest.json").write_text(json.dumps(manifest))
    else:
        assert manifest["data"] == {data: {"source": "file", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                           "bytes": path.stat().st_size}}
    if change == "same-size":
        X2 = X.copy()
        X2[7, 1] += 1.0
        _data_file(path, X2, y)
        assert path.stat().st_size == manifest["data"][data]["bytes"]
    elif change == "appended":
        _data_file(path, np.vstack([X, X[:2]]), np.concatenate([y, y[:2]]))
    capsys.readouterr()
    status = main(["sweep", "--resume", "--out", str(out), "--jobs", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    if change == "none":
        assert status == 0
        return
    assert status == 2 and len(err) == 1, err
    assert f"--resume {out}: data {data!r} has changed since the sweep started" in err[0]


def test_a_sweep_made_before_fingerprints_still_resumes(tmp_path):
    out = tmp_path / "s"
    assert main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "3", "--seeds", "0",
                 "--jobs", "1", "--no-progress", "--out", str(out)]) == 0
    manifest = read_manifest(out)
    del manifest["data"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["sweep", "--resume", "--seeds", "0,1", "--data", "moons", "--layers", "2,4,1",
                 "--epochs", "3", "--jobs", "1", "--no-progress", "--out", str(out)]) == 2  # grid differs
    assert main(["sweep", "--resume", "--out", str(out), "--jobs", "1", "--no-progress"]) == 0


def test_schedules_one_per_option_and_resume_with_the_stored_grid(tmp_path, capsys):
    # A schedule's spec holds commas: one per --lr-schedule, "none" for a constant learning rate.
    spec = "inverse_time:decay_steps=5,decay_rate=1"
    out = tmp_path / "sweep"
    argv = ["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "6", "--lr-schedule", "none",
            "--lr-schedule", spec, "--early-stopping", "none,1", "--no-progress", "--jobs", "1", "--out", str(out)]
    assert main(argv) == 0
    rows = read_results(out)
    assert sorted((r["config"]["lr_schedule"] or "", r["config"]["early_stopping"] or 0) for r in rows) == [
        ("", 0), ("", 1), (spec, 0), (spec, 1)]
    assert read_manifest(out)["grid"]["lr_schedule"] == [None, spec]
    capsys.readouterr()
    assert main(["sweep", "--resume", "--out", str(out), "--no-progress"]) == 0  # the manifest's grid: nothing to do
    assert "4 runs (4 already done)" in capsys.readouterr().err
