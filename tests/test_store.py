"""The sweep's crash-safe results store: append, read back, corrupted lines, one writer at a time."""

import os
import re

import pytest

from twinnet.lab.store import RESULTS, ResultStore, read_manifest, read_results


# --------------------------------------------------------------------------- store
def _store(tmp_path, grid_hash="h1"):
    return ResultStore.create(tmp_path / "sweep", grid={"seeds": [0]}, grid_hash=grid_hash, n_runs=3)


def test_rows_are_appended_and_read_back_in_order(tmp_path):
    store = _store(tmp_path)
    for i in range(3):
        store.append({"run_id": f"r{i}", "status": "ok", "value": i / 3})
    rows = read_results(tmp_path / "sweep")
    assert [r["run_id"] for r in rows] == ["r0", "r1", "r2"] and rows[1]["value"] == 1 / 3
    assert read_manifest(tmp_path / "sweep")["grid_hash"] == "h1"
    store.close()  # its lock: one store at a time writes a sweep
    resumed = ResultStore.resume(tmp_path / "sweep", grid_hash="h1")
    assert resumed.done == {"r0", "r1", "r2"}


def test_non_finite_numbers_are_refused_so_the_file_stays_json(tmp_path):
    store = _store(tmp_path)
    with pytest.raises(ValueError, match="Out of range float"):
        store.append({"run_id": "r0", "loss": float("nan")})


@pytest.mark.parametrize("tail, why", [
    (b'{"run_id": "r2", "sta', "no end of line"),  # killed in the middle of a write
    (b'{"run_id": "r2", "sta\n', "JSONDecodeError"),  # a torn line that ends with a newline
    (b"\x00\x00\x00\n", "JSONDecodeError"),  # a file system that zero-fills after a crash
])
def test_a_corrupted_last_line_is_reported_and_skipped_then_cut_off_on_resume(tmp_path, capsys, tail, why):
    store = _store(tmp_path)
    store.append({"run_id": "r0", "status": "ok"})
    store.append({"run_id": "r1", "status": "ok"})
    path = tmp_path / "sweep" / RESULTS
    good = path.read_bytes()
    with open(path, "ab") as f:
        f.write(tail)
    assert [r["run_id"] for r in read_results(tmp_path / "sweep")] == ["r0", "r1"]
    err = capsys.readouterr().err
    length = len(tail.rstrip(b"\n"))
    assert f"skipped corrupted last line 3 ({length} bytes, {why})" in err
    store.close()
    resumed = ResultStore.resume(tmp_path / "sweep", grid_hash="h1")
    assert "It is removed; that run will be done again" in capsys.readouterr().err
    assert path.read_bytes() == good and resumed.done == {"r0", "r1"}
    resumed.append({"run_id": "r2", "status": "ok"})
    assert [r["run_id"] for r in read_results(tmp_path / "sweep")] == ["r0", "r1", "r2"]


def test_a_corrupted_line_before_the_last_is_an_error(tmp_path):
    store = _store(tmp_path)
    store.append({"run_id": "r0", "status": "ok"})
    path = tmp_path / "sweep" / RESULTS
    path.write_bytes(b"garbage\n" + path.read_bytes())
    with pytest.raises(ValueError, match="line 1 is corrupted"):
        read_results(tmp_path / "sweep")


def test_a_long_torn_last_line_is_cut_off_on_resume_without_being_held(tmp_path, capsys):
    import tracemalloc

    store = _store(tmp_path)
    store.append({"run_id": "r0", "status": "ok"})
    store.close()
    path = tmp_path / "sweep" / RESULTS
    good = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"run_id": "r1", "note": "' + b"x" * 6_000_000 + b'"}\n')
    tracemalloc.start()
    try:
        resumed = ResultStore.resume(tmp_path / "sweep", grid_hash="h1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "skipped corrupted last line 2 (over a line's limit, longer than 1,048,576 bytes)" in capsys.readouterr().err
    assert path.read_bytes() == good and resumed.done == {"r0"} and peak < 3_000_000


@pytest.mark.parametrize("line, why", [
    (b'{"run_id": "r1", "seed": ' + b"9" * 40 + b"}", "the integer 999999999999... is beyond ±2**53"),
    (b'{"run_id": "r1", "loss": NaN}', "NaN is not a number"),
    (b'{"run_id": "r1", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
])
def test_a_line_no_sweep_writes_before_the_last_is_an_error(tmp_path, line, why):
    store = _store(tmp_path)
    store.append({"run_id": "r0", "status": "ok"})
    path = tmp_path / "sweep" / RESULTS
    path.write_bytes(line + b"\n" + path.read_bytes())
    with pytest.raises(ValueError, match=re.escape(f"line 1 is corrupted ({why}")):
        read_results(tmp_path / "sweep")


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(n_runs="3"), "n_runs is '3', expected an integer >= 0"),
    (lambda m: m["sessions"].append({"seconds": 1.0}), "no 'sessions\\[0\\].where'"),
    (lambda m: m.update(data={"moons": 5}), "data is"),
    (lambda m: m.update(grid_hash=None), "grid_hash"),
])
def test_an_edited_manifest_is_refused_by_resume_in_one_line(tmp_path, edit, match):
    import json

    _store(tmp_path).close()
    path = tmp_path / "sweep" / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=match) as info:
        ResultStore.resume(tmp_path / "sweep", grid_hash="h1")
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_store_refuses_other_sweeps_and_other_directories(tmp_path):
    _store(tmp_path)
    with pytest.raises(ValueError, match="made with a different grid \\(grid hash h1, this one h2\\)"):
        ResultStore.resume(tmp_path / "sweep", grid_hash="h2")
    with pytest.raises(ValueError, match="already holds a sweep; add --resume"):
        _store(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        ResultStore.create(tmp_path / "other", grid={}, grid_hash="h", n_runs=1)
    with pytest.raises(ValueError, match="not a sweep directory \\(no manifest.json\\)"):
        ResultStore.resume(tmp_path / "other", grid_hash="h")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        read_results(tmp_path / "absent")
    (tmp_path / "other" / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a twinnet sweep manifest"):
        read_manifest(tmp_path / "other")


def test_one_store_at_a_time_writes_a_sweep(tmp_path):
    store = _store(tmp_path)
    busy = f"another sweep \\(process {os.getpid()}\\) is writing there"
    with pytest.raises(ValueError, match=busy):
        ResultStore.resume(tmp_path / "sweep", grid_hash="h1")
    with pytest.raises(ValueError, match=busy):  # said before "already holds a sweep"
        _store(tmp_path)
    store.append({"run_id": "r0", "status": "ok"})
    store.close()
    with ResultStore.resume(tmp_path / "sweep", grid_hash="h1") as resumed:
        assert resumed.done == {"r0"}
        with pytest.raises(ValueError, match=busy):
            ResultStore.resume(tmp_path / "sweep", grid_hash="h1")
    ResultStore.resume(tmp_path / "sweep", grid_hash="h1").close()


@pytest.mark.parametrize("existed", [False, True], ids=["made-by-the-store", "an-empty-folder-of-the-user"])
def test_a_new_sweep_that_never_ran_is_discarded_and_the_users_folder_kept(tmp_path, existed):
    directory = tmp_path / "sweep"
    if existed:
        directory.mkdir()
    store = _store(tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "results.jsonl", "sweep.lock"]
    store.discard()
    assert directory.exists() == existed and (not existed or not any(directory.iterdir()))
    _store(tmp_path).append({"run_id": "r0", "status": "ok"})  # and the folder takes a new sweep
    store = ResultStore.resume(directory, grid_hash="h1")
    with pytest.raises(ValueError, match="holds 1 finished runs; not removed"):
        store.discard()


def test_a_regression_row_round_trips_through_the_store_and_into_the_report(tmp_path):
    from twinnet.lab import grid as G
    from twinnet.lab import sweep
    from twinnet.lab.rows import read_rows

    runs, _ = sweep.plan(G.check_grid({"data": "diabetes", "layers": [10, 4, 1], "epochs": [2, 4],
                                       "engines": ["numpy"]}))
    row = sweep.execute_run(runs[0])
    assert row["status"] == "ok" and row["config"]["output"] == "linear", row["error"]
    assert [set(point) for point in row["checkpoints"]] == [
        {"epoch", "train_loss", "train_rmse", "train_r2", "test_loss", "test_rmse", "test_r2"}] * 2
    with ResultStore.create(tmp_path / "sweep", grid={}, grid_hash="h", n_runs=1) as store:
        store.append(row)
    assert read_results(tmp_path / "sweep") == [row]
    rows, warnings = read_rows(tmp_path / "sweep")
    assert rows == [row] and warnings == []


def test_a_lock_file_removed_as_its_holder_ends_is_not_locked_in_place_of_the_new_one(tmp_path, monkeypatch):
    import fcntl

    from twinnet.lab.store import hold

    real, calls = fcntl.flock, []

    def flock(f, operation):  # the holder ends between this run's open and its flock, removing the file
        calls.append(f)
        if len(calls) == 1:
            (tmp_path / ".lock").unlink()
        return real(f, operation)

    (tmp_path / ".lock").write_text("1")
    monkeypatch.setattr(fcntl, "flock", flock)
    held = hold(tmp_path, ".lock", "another run")
    try:
        assert len(calls) == 2 and os.fstat(held.fileno()).st_ino == os.stat(tmp_path / ".lock").st_ino
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
    finally:
        held.close()
