"""The sweep survives faults: SIGKILL and resume, worker processes that die (loky and a real local
Dask cluster), runs that fail or diverge, a Dask scheduler that does not answer."""

import contextlib
import http.server
import json
import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from dataclasses import replace

import cloudpickle
import pytest

from twinnet.cli import main
from twinnet.lab import grid as G
from twinnet.lab import sweep
from twinnet.lab.store import RESULTS, ResultStore, read_results

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)

# The run functions below are sent to worker processes by value: the workers cannot import tests/.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

# Small real runs: the moons data, a tiny network, a few hundred full-batch epochs (~0.1 s each).
TINY = {"data": "moons", "layers": [[2, 8, 1]], "learning_rate": [0.5], "epochs": [50, 300],
        "seeds": [0, 1, 2, 3], "engines": ["numpy"]}


def _sweep_dir(tmp_path, grid):
    runs, _ = sweep.plan(G.check_grid(grid))
    store = ResultStore.create(tmp_path / "sweep", grid={}, grid_hash=G.grid_hash(runs), n_runs=len(runs))
    return runs, store


def _claim(path):
    """True the first time any process calls it with ``path`` (an atomic create)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


def kill_mid_run_once(marker_dir):
    """A run function whose first run of seed 1 is killed (SIGKILL) 50 ms into its training."""
    def run(spec, threads, attempt):
        if spec.config.seed == 1 and _claim(os.path.join(marker_dir, spec.run_id)):
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()
            time.sleep(10)  # the timer kills this process long before
        return sweep.execute_run(spec, threads, attempt)
    return run


def always_kills_seed_2(spec, threads, attempt):
    if spec.config.seed == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return sweep.execute_run(spec, threads, attempt)


def _check_complete(directory, runs):
    rows = read_results(directory)
    ids = [r["run_id"] for r in rows]
    assert sorted(ids) == sorted(r.run_id for r in runs), "every run exactly once"
    return {r["run_id"]: r for r in rows}


def test_a_worker_killed_mid_run_is_replaced_and_its_run_retried_loky(tmp_path):
    runs, store = _sweep_dir(tmp_path, TINY)
    with sweep.executor(jobs=2) as where:
        outcome = sweep.run_sweep(runs, store, where, show_progress=False,
                                  run=kill_mid_run_once(str(tmp_path)))
    rows = _check_complete(tmp_path / "sweep", runs)
    assert outcome.counts == {"ok": len(runs)}
    victim = next(r for r in runs if r.config.seed == 1)
    assert rows[victim.run_id]["attempts"] == 2
    # loky stops the whole pool when one worker dies: the runs dispatched at that moment (running,
    # or finished with their result not yet collected; which ones depends on timing) run once more
    assert all(r["attempts"] <= 2 for r in rows.values())


def test_a_run_that_always_kills_its_worker_is_recorded_failed_and_the_others_finish(tmp_path):
    runs, store = _sweep_dir(tmp_path, TINY)
    with sweep.executor(jobs=2) as where:
        outcome = sweep.run_sweep(runs, store, where, show_progress=False, max_attempts=2,
                                  run=always_kills_seed_2)
    rows = _check_complete(tmp_path / "sweep", runs)
    assert outcome.counts == {"ok": len(runs) - 1, "failed": 1}
    [bad] = [r for r in rows.values() if r["status"] != "ok"]
    assert bad["seed"] == 2 and bad["error"].startswith("the worker process died 2 times")
    # the runs that shared the pool with it when it died were retried alone, not blamed
    assert all(r["status"] == "ok" for r in rows.values() if r["seed"] != 2)


def test_a_worker_killed_mid_run_on_a_real_local_dask_cluster(tmp_path):
    runs, store = _sweep_dir(tmp_path, TINY)
    with sweep.executor(dask_local=2) as where:
        outcome = sweep.run_sweep(runs, store, where, show_progress=False,
                                  run=kill_mid_run_once(str(tmp_path)))
    rows = _check_complete(tmp_path / "sweep", runs)
    assert outcome.counts == {"ok": len(runs)} and outcome.slots == 2
    # Dask's nanny restarts the worker and the scheduler reschedules the run on a live one
    victim = next(r for r in runs if r.config.seed == 1)
    pids = {r["pid"] for r in rows.values()}
    assert rows[victim.run_id]["status"] == "ok" and len(pids) >= 2


def test_failed_and_diverged_runs_are_recorded_and_the_sweep_goes_on(tmp_path):
    grid = dict(TINY, learning_rate=[0.5, 1e6], seeds=[0])
    runs, store = _sweep_dir(tmp_path, grid)
    # a data file that disappears between planning and running: the run fails, the sweep does not
    missing = replace(runs[0], run_id="missing", config=replace(runs[0].config, data=str(tmp_path / "gone.npz")))
    with sweep.executor(jobs=2) as where:
        outcome = sweep.run_sweep([*runs, missing], store, where, show_progress=False)
    rows = _check_complete(tmp_path / "sweep", [*runs, missing])
    assert outcome.counts == {"ok": 1, "diverged": 1, "failed": 1}
    diverged = next(r for r in rows.values() if r["config"]["learning_rate"] == 1e6 and r["run_id"] != "missing")
    assert diverged["status"] == "diverged" and "diverged" in diverged["error"]
    assert rows["missing"]["status"] == "failed"
    assert rows["missing"]["error"].startswith("FileNotFoundError:") and "gone.npz" in rows["missing"]["error"]


def test_sigkill_loses_no_finished_run_and_resume_duplicates_none(tmp_path):
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "twinnet", "sweep", "--data", "synthetic", "--layers", "100,32,1",
            "--epochs", "50,200", "--seeds", ",".join(map(str, range(10))), "--engines", "numpy",
            "--jobs", "2", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    results = out / RESULTS
    deadline = time.time() + 120
    while time.time() < deadline and (not results.exists() or results.read_bytes().count(b"\n") < 3):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, mid-sweep
    proc.wait()
    before = results.read_bytes()
    finished = [json.loads(line)["run_id"] for line in before.splitlines()]
    assert 3 <= len(finished) < 10, "killed in the middle of the sweep"
    assert main(["sweep", "--resume", "--out", str(out), "--no-progress"]) == 0
    after = results.read_bytes()
    assert after.startswith(before), "finished runs are kept as they were"
    ids = [r["run_id"] for r in read_results(out)]
    assert len(ids) == 10 and len(set(ids)) == 10
    # a second resume has nothing left to do
    assert main(["sweep", "--resume", "--out", str(out), "--no-progress"]) == 0
    assert results.read_bytes() == after


class _Server(socketserver.ThreadingTCPServer):
    """A TCP server on 127.0.0.1 in a thread, stopped (its connections too) when the block ends."""

    daemon_threads = True

    def __init__(self, handler, port=0):
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", port), handler)

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return f"tcp://127.0.0.1:{self.server_address[1]}"

    def __exit__(self, *exc):
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Silent(socketserver.BaseRequestHandler):
    def handle(self):  # accepts, never writes
        self.server.stopping.wait(120)


class _OtherProtocol(socketserver.BaseRequestHandler):
    def handle(self):  # speaks first, as SSH does: its bytes read as a length are exabytes
        self.request.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        self.server.stopping.wait(120)


class _Closes(socketserver.BaseRequestHandler):
    def handle(self):
        pass


class _Http(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_error(404)


def _nothing_listens():
    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        return contextlib.nullcontext(f"tcp://127.0.0.1:{s.getsockname()[1]}")


@pytest.mark.timeout(120)  # a hang is the bug this test is about
@pytest.mark.parametrize("server, match", [
    (_nothing_listens, "no Dask scheduler answered within 1 s (Connection refused)"),
    (lambda: _Server(_Silent), "no Dask scheduler answered within 1 s (timed out)"),
    (lambda: _Server(_Http), "no Dask scheduler answered within 1 s (timed out)"),  # waits for a request
    (lambda: _Server(_OtherProtocol), "the server there is not a Dask scheduler"),
    (lambda: _Server(_Closes), "no Dask scheduler answered within 1 s (the server closed the connection)"),
], ids=["nothing-listens", "never-answers", "http", "other-protocol", "closes"])
def test_a_scheduler_that_does_not_answer_is_one_line_within_its_timeout(tmp_path, capsys, server, match):
    with server() as address:
        start = time.monotonic()
        status = main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "5",
                       "--scheduler", address, "--scheduler-timeout", "1", "--out", str(tmp_path / "s"),
                       "--no-progress"])
        elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"twinnet sweep: error: --scheduler {address}: ") and match in err[0], err
    # the 1 s deadline plus the grid's planning; without a deadline these cases hang for good
    assert elapsed < 30, elapsed
    assert not (tmp_path / "s").exists(), "a sweep that could not start leaves no directory behind"


@pytest.mark.timeout(120)
def test_the_default_scheduler_timeout_is_stated_and_kept(tmp_path, capsys):
    with _Server(_Silent) as address:
        start = time.monotonic()
        status = main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "5",
                       "--scheduler", address, "--out", str(tmp_path / "s"), "--no-progress"])
        elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert f"no Dask scheduler answered within {sweep.SCHEDULER_TIMEOUT} s" in err[0]
    assert sweep.SCHEDULER_TIMEOUT <= elapsed < sweep.SCHEDULER_TIMEOUT + 20, elapsed


class _Handshake(socketserver.BaseRequestHandler):
    def handle(self):  # speaks first, as a Dask scheduler does: an 8-byte length, then that many bytes
        self.request.sendall(struct.pack("Q", 5) + b"hello")


@pytest.mark.timeout(120)
def test_a_scheduler_that_starts_listening_a_moment_later_is_found():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    servers = []

    def start_late():  # after the probe has begun: its first connections are refused
        time.sleep(0.5)
        servers.append(_Server(_Handshake, port))
        servers[0].__enter__()

    late = threading.Thread(target=start_late)
    late.start()
    try:
        assert sweep.check_scheduler(f"127.0.0.1:{port}", timeout=60) == f"tcp://127.0.0.1:{port}"
    finally:
        late.join()
        servers[0].__exit__()


@pytest.mark.parametrize("address", ["tcp://", "foo", "tcp://127.0.0.1:notaport", "tcp://127.0.0.1:99999",
                                     "tcp://127.0.0.1:0", "tls://127.0.0.1:8786", "tcp://127.0.0.1:8786/x",
                                     "127.0.0.1"])
def test_a_malformed_scheduler_address_is_one_line(tmp_path, capsys, address):
    status = main(["sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "5", "--scheduler", address,
                   "--out", str(tmp_path / "s"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    malformed = (f"twinnet sweep: error: --scheduler {address!r}: expected tcp://HOST:PORT, such as "
                 "tcp://127.0.0.1:8786.")
    assert status == 2 and err == [malformed]
    assert not (tmp_path / "s").exists()


def _start_sweep(out, *where, seeds=10, epochs="50,200"):
    """``twinnet sweep`` in a subprocess of its own process group (as a terminal starts it), and
    the moment it has saved 2 runs."""
    argv = [sys.executable, "-m", "twinnet", "sweep", "--data", "synthetic", "--layers", "100,32,1",
            "--epochs", epochs, "--seeds", ",".join(map(str, range(seeds))), "--engines", "numpy",
            *where, "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    results = out / RESULTS
    deadline = time.time() + 120
    while time.time() < deadline and (not results.exists() or results.read_bytes().count(b"\n") < 2):
        time.sleep(0.05)
    return proc


def _group_ended(pgid, wait=30):
    """True once no process of the group is left (the workers exit after the sweep's process)."""
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def _port_taken(port):
    """Within the block, ``port`` of 127.0.0.1 is taken: by this test, or already by another process."""
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError):  # taken already (another Dask cluster's, another test's)
            stack.enter_context(socket.create_server(("127.0.0.1", port)))
        yield


@pytest.mark.timeout(300)
@pytest.mark.parametrize("where", [["--jobs", "2"], ["--dask-local", "2"]], ids=["loky", "dask-local"])
def test_ctrl_c_on_a_parallel_sweep_is_one_line_and_keeps_the_finished_runs(tmp_path, where):
    out = tmp_path / "sweep"
    with _port_taken(8787):  # Dask's default HTTP port, as another cluster on the machine holds it
        proc = _start_sweep(out, *where)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
        _, err = proc.communicate(timeout=120)
        assert _group_ended(proc.pid), "no worker is left running"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    before = (out / RESULTS).read_bytes()
    saved = len(read_results(out))
    assert proc.returncode == 130
    # the start line, then exactly one line for the interrupt: no worker's traceback
    interrupted = f"twinnet sweep: interrupted; {saved}/10 runs saved in {out}, resume with --resume"
    assert err.splitlines()[1:] == [interrupted], err
    assert 2 <= saved < 10
    assert main(["sweep", "--resume", "--out", str(out), "--jobs", "2", "--no-progress"]) == 0
    assert (out / RESULTS).read_bytes().startswith(before), "finished runs are kept as they were"
    ids = [r["run_id"] for r in read_results(out)]
    assert len(ids) == 10 and len(set(ids)) == 10


@pytest.mark.timeout(300)
def test_a_sweep_folder_is_locked_while_a_sweep_writes_it(tmp_path, capsys):
    out = tmp_path / "sweep"
    proc = _start_sweep(out, "--jobs", "1", seeds=20)
    try:
        busy = f"twinnet sweep: error: --out {out}: another sweep (process {proc.pid}) is writing there"
        for second in (["--resume"], ["--data", "synthetic", "--layers", "100,32,1", "--epochs", "50,200",
                                      "--seeds", ",".join(map(str, range(20))), "--engines", "numpy"]):
            assert main(["sweep", *second, "--out", str(out), "--jobs", "1", "--no-progress"]) == 2, second
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(busy), (second, err)
        assert proc.poll() is None, "the first sweep was still running"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # its lock goes with it: the system releases flock locks
        proc.communicate()
    before = (out / RESULTS).read_bytes()
    assert main(["sweep", "--resume", "--out", str(out), "--jobs", "2", "--no-progress"]) == 0
    assert (out / RESULTS).read_bytes().startswith(before.rpartition(b"\n")[0])
    ids = [r["run_id"] for r in read_results(out)]
    assert len(ids) == 20 and len(set(ids)) == 20
