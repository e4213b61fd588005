"""``twinnet check`` against hostile submissions (tests/learners/hostile/), under both sandboxes.

docs/check-threat-model.md says what each sandbox promises. Under ``none`` the promises are the
ones twinnet's own process keeps: nothing the child sends is unpickled, every verdict is computed
here, resource limits, the session killed, stdout out of reach. The filesystem, the network and
detached processes are held only under ``bwrap``, and are tested there. CI must run both: there a
missing bubblewrap fails these tests instead of skipping them.
"""

import json
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from twinnet.check import _worker, check, runner
from twinnet.check.compare import compare
from twinnet.check.report import WHERE
from twinnet.check.sandbox import bwrap_problem
from twinnet.check.source import MAX_BYTES
from twinnet.cli import main

pytestmark = pytest.mark.slow  # half a minute or more in CI: started first (tests/conftest.py)

HOSTILE = Path(__file__).parent / "learners" / "hostile"
LEARNERS = Path(__file__).parent / "learners"
MODES = ["bwrap", "none"]
SECRET = "TWINNET_SECRET_FOR_THE_HOSTILE_TESTS"


def _need(mode):
    if mode == "bwrap" and bwrap_problem():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the bwrap sandbox: {bwrap_problem()} (install bubblewrap)")
        pytest.skip(f"bubblewrap cannot sandbox here: {bwrap_problem()}")


def _processes_with(text):
    """PIDs whose command line holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module", params=MODES)
def hostile(request, tmp_path_factory):
    """The whole corpus checked as one class folder, with the canaries its attacks aim at."""
    mode = request.param
    _need(mode)
    root = tmp_path_factory.mktemp(f"hostile-{mode}")
    folder = root / "class"
    shutil.copytree(HOSTILE, folder)
    (folder / "victim.txt").write_text("victim")
    (root / "keep").mkdir()
    (root / "keep" / "file.txt").write_text("keep")
    (root / "secret.txt").write_text("secret")
    token = uuid.uuid4().hex
    (folder / "token.txt").write_text(token)
    (folder / "data.pickle").write_bytes(pickle.dumps({"scale": 1.0}))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    (folder / "port.txt").write_text(str(listener.getsockname()[1]))
    os.environ[SECRET] = "secret"
    try:
        reports = check([folder], sandbox=mode, time_limit=5, budget=14, iterations=0, keras=False, jobs=4,
                        memory=512)
    finally:
        del os.environ[SECRET]
    running = _processes_with(token) + _processes_with(str(folder))  # the orphans; a sandbox's bwrap
    time.sleep(2.5)  # what a detached process would do after twinnet exits
    try:
        reached = listener.accept()[0].recv(16)
    except OSError:
        reached = b""
    listener.close()
    yield SimpleNamespace(mode=mode, root=root, folder=folder, running=running, reached=reached,
                          reports={Path(r.path).name: r for r in reports})
    for pid in _processes_with(token):  # under none, a detached process may be left: the test says so
        os.kill(pid, 9)


def _statuses(report):
    return {name: result.status for name, result in report.functions.items() if result.status != "MISSING"}


def test_importing_the_reference_is_reported_and_credits_nothing(hostile):
    report = hostile.reports["import_reference.py"]
    assert report.error == "takes the reference: line 2 imports twinnet, so none of its functions is credited"
    assert report.imports_reference == "line 2" and report.functions == {} and not report.passes()


def test_the_reference_cannot_be_reached_at_run_time(hostile):
    report = hostile.reports["import_reference_hidden.py"]
    assert _statuses(report) == {"relu": "FAIL", "linear_backward": "FAIL"}
    assert "ModuleNotFoundError: No module named 'twinnet'" in report.functions["relu"].case["message"]


def test_patching_the_checker_changes_no_verdict(hostile):
    report = hostile.reports["patch_checker.py"]
    assert report.functions["linear_backward"].status == "FAIL"
    assert report.functions["linear_backward"].diagnosis.startswith("missing 1/m in dW")
    assert not report.passes()


@pytest.mark.parametrize("name", ["forged_reply.py", "pickle_reply.py"])
def test_a_forged_or_pickled_reply_is_not_believed_nor_unpickled(hostile, name):
    report = hostile.reports[name]
    assert report.functions["relu"].status == "FAIL" and not report.passes()
    assert "TWINNET_HOSTILE_UNPICKLED" not in os.environ


def test_the_other_files_verdicts_stand(hostile):
    assert _statuses(hostile.reports["bom.py"]) == {"relu": "PASS"}
    assert not hostile.reports["bom.py"].error


def test_memory_is_bounded_and_named(hostile):
    report = hostile.reports["memory_hog.py"]
    assert report.functions["relu"].status == "FAIL"
    assert "MemoryError: used more than 512 MB of memory" in report.functions["relu"].diagnosis
    assert report.functions["sigmoid"].status == "UNSAFE"  # the process lived on


def test_sleeping_statements_spend_one_budget(hostile):
    # 5 s per statement, 14 s in all: two statements are skipped, the third spends what is left (the
    # processes' start-ups count too: up to 4 s of them leave these words as they are)
    report = hostile.reports["sleeper.py"]
    assert report.failures == ["line 4: ran longer than the time limit, skipped",
                               "line 5: ran longer than the time limit, skipped"]
    assert report.error == "the file's time budget of 14 s is spent" and not report.passes()


def test_a_process_that_ends_itself_is_reported(hostile):
    report = hostile.reports["dies.py"]
    assert report.failures == ["line 6: SystemExit: 3"]
    assert report.functions["relu"].diagnosis == "ended the checking process (exit status 7)"
    assert report.functions["sigmoid"].diagnosis == "ended the checking process (killed by SIGKILL)"
    assert report.functions["linear_forward"].status == "FAIL"


def test_a_notebook_with_magics_and_a_data_file_is_checked(hostile):
    report = hostile.reports["magics_and_data.ipynb"]
    assert report.failures == [] and not report.error
    assert _statuses(report) == {"relu": "PASS", "linear_forward": "PASS"}  # SCALE came from data.pickle
    assert report.notes == [
        "cell 2 (In [2]): a %%bash cell is not Python; skipped",
        "cell 3 (In [3]), line 1: IPython syntax (a magic, a shell command or help) skipped",
        "cell 4 (In [4]), line 1: IPython syntax (a magic, a shell command or help) skipped",
        "cell 4 (In [4]), line 2: IPython syntax (a magic, a shell command or help) skipped",
        "cell 5 (In [5]), line 1: does not parse ('(' was never closed); the cell was skipped",
    ]


def test_the_session_is_killed(hostile):
    # without a sandbox, the grandchild that left the session in a session of its own may outlive it
    assert len(hostile.running) <= {"bwrap": 0, "none": 1}[hostile.mode], hostile.running


@pytest.mark.parametrize("hostile", ["bwrap"], indirect=True)  # without a sandbox it has the user's rights
def test_no_file_outside_the_temporary_folder_changes(hostile):
    assert (hostile.folder / "victim.txt").read_text() == "victim"
    assert (hostile.root / "keep" / "file.txt").read_text() == "keep"
    assert not (hostile.root / "outside.txt").exists()
    assert not (hostile.root / "orphan_was_here").exists()  # the detached process died with the sandbox
    assert hostile.reports["escape_files.py"].functions["relu"].status == "PASS"


@pytest.mark.parametrize("hostile", ["bwrap"], indirect=True)
def test_nothing_outside_is_read_and_the_network_is_off(hostile):
    assert _statuses(hostile.reports["escape_reads.py"]) == {"relu": "PASS"}  # it read nothing it sought
    assert _statuses(hostile.reports["network.py"]) == {"relu": "PASS"}
    assert hostile.reached == b""


@pytest.mark.parametrize("mode", MODES)
def test_output_and_fake_result_lines_never_reach_twinnets_output(mode, tmp_path):
    _need(mode)
    shutil.copy(HOSTILE / "output_flood.py", tmp_path)
    done = subprocess.run([sys.executable, "-m", "twinnet", "check", str(tmp_path / "output_flood.py"), "--sandbox",
                           mode, "--iterations", "0", "--no-keras", "--time-limit", "30"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(
                              Path(__file__).parents[1] / "src")})
    assert done.returncode == 1, done.stderr
    assert "FORGED-LINE" not in done.stdout + done.stderr
    assert "relu                        FAIL" in done.stdout
    # the first line says where it ran; rich wraps it at 80 columns, anywhere in a long path (xdist's tmp_path)
    first = f"twinnet check: runs the code in {tmp_path / 'output_flood.py'} ({WHERE[mode]})"
    assert "".join(done.stdout.split()).startswith("".join(first.split())), done.stdout[:500]


@pytest.mark.parametrize("mode, signum, status", [
    ("bwrap", signal.SIGINT, 130), ("none", signal.SIGINT, 130), ("none", signal.SIGTERM, 143),
], ids=["bwrap", "none", "none-sigterm"])
def test_ctrl_c_ends_every_learners_process_at_once(mode, signum, status, tmp_path):
    _need(mode)
    folder, temp = tmp_path / "class", tmp_path / "tmp"
    folder.mkdir()
    temp.mkdir()
    for k in range(3):
        shutil.copy(HOSTILE / "sleeper.py", folder / f"sleeper{k}.py")
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "  # as in a terminal
            "from twinnet.cli import main; sys.exit(main(sys.argv[1:]))")
    process = subprocess.Popen(
        [sys.executable, "-c", code, "check", str(folder), "--sandbox", mode, "--no-keras", "--iterations", "0",
         "--time-limit", "60", "--jobs", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    try:
        deadline = time.monotonic() + 120
        while len(list(temp.glob("twinnet-check-*"))) < 3 and time.monotonic() < deadline:  # one process a file
            time.sleep(0.1)
        time.sleep(2)  # the learners' code sleeping
        interrupted = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)  # each file had 60 s a statement: none is waited for
    finally:
        process.kill()
        left = _processes_in(temp)
        for pid in left:  # a failure leaves no process behind
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == status, err
    assert time.monotonic() - interrupted < 15
    assert left == [] and _processes_with(str(folder)) == []
    assert list(temp.iterdir()) == []  # every process's folder removed


def _processes_in(folder):
    """PIDs whose working folder is in ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


BOMBS = {
    "sum_bomb.py": "x = " + "+".join(["1"] * 300_000) + "\n",
    "nested_bomb.py": "x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n",
    "huge.py": "# " + "x" * (5 << 20) + "\n",
    "broken.ipynb": "{ this is not json",
    "code_bomb.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": "# " + "x" * (5 << 20), "metadata": {},
                                              "outputs": [], "execution_count": None}],
                                   "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
}


@pytest.mark.parametrize("mode", MODES)
def test_one_bad_file_gets_its_own_row_and_the_batch_finishes(mode, tmp_path, capsys):
    _need(mode)
    for name, text in BOMBS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "a_folder.py").mkdir()  # a folder named like a file is searched, not read
    shutil.copy(HOSTILE / "bom.py", tmp_path / "a_folder.py" / "ok.py")
    status = main(["check", str(tmp_path), "--sandbox", mode, "--iterations", "0", "--no-keras",
                   "--csv", str(tmp_path / "c.csv"), "--time-limit", "30"])
    assert status == 1
    out = capsys.readouterr().out
    rows = (tmp_path / "c.csv").read_text().splitlines()
    assert any("ok.py,relu,PASS" in row for row in rows), out
    errors = {row.split(",")[0].rsplit("/", 1)[1]: row for row in rows if ",,ERROR," in row}
    assert sorted(errors) == sorted(BOMBS), out
    assert "does not parse" in errors["sum_bomb.py"] and "does not parse" in errors["nested_bomb.py"]
    assert "is 5.0 MB; twinnet check reads .py files up to 4 MB" in errors["huge.py"]
    assert "is not a readable notebook" in errors["broken.ipynb"]
    assert "holds 5.0 MB of code; twinnet check reads notebooks with up to 4 MB of it" in errors["code_bomb.ipynb"]
    assert "Traceback" not in out


def test_several_files_without_a_sandbox_say_what_that_risks(tmp_path, cli):
    for name in ("a.py", "b.py"):
        shutil.copy(HOSTILE / "bom.py", tmp_path / name)
    status, out, err = cli("check", tmp_path, "--sandbox", "none", "--iterations", 0, "--no-keras")
    assert status == 0
    assert " ".join(out.split()).startswith("twinnet check: runs the code in each of 2 files (in a separate process, "
                                            "not sandboxed)")
    assert err.startswith("twinnet check: warning: checking 2 files without a sandbox (--sandbox none): each "
                          "runs with your permissions and can read and change your files")
    assert len(err.splitlines()) == 1


def test_a_learners_module_beside_the_file_is_imported(tmp_path):
    # the folder is visible read-only: a helper module handed in beside the file is found
    shutil.copy(LEARNERS / "imports_missing.py", tmp_path)
    (tmp_path / "my_activations.py").write_text("import numpy as np\n\n\ndef relu(Z):\n    return np.maximum(0, Z)\n")
    [report] = check([tmp_path / "imports_missing.py"], iterations=0, keras=False)
    assert report.failures == [] and _statuses(report) == {"relu": "PASS", "linear_forward": "PASS"}


def test_outputs_hard_coded_for_the_cases_of_one_seed_fail_on_a_fresh_draw(hostile):
    # the corpus ran with a case seed drawn for the run: the outputs recorded for seed 0 are wrong
    report = hostile.reports["hard_coded_outputs.py"]
    assert report.case_seed is not None
    assert _statuses(report) == {"compute_cost": "FAIL", "accuracy": "FAIL"}


def test_outputs_hard_coded_for_the_cases_of_one_seed_pass_only_on_those_cases():
    # what the fixture exploits: with --case-seed 0 the cases are the recorded ones
    path = HOSTILE / "hard_coded_outputs.py"
    [known] = check([path], sandbox="none", iterations=0, keras=False, case_seed=0)
    [other] = check([path], sandbox="none", iterations=0, keras=False, case_seed=1)
    assert _statuses(known) == {"compute_cost": "PASS", "accuracy": "PASS"}
    assert _statuses(other) == {"compute_cost": "FAIL", "accuracy": "FAIL"}


def test_a_process_that_stops_reading_cannot_block_twinnet(hostile):
    # it answers for relu itself and sleeps: the next request, larger than a pipe, times out
    report = hostile.reports["stops_reading.py"]
    assert report.functions["relu"].status == "FAIL"
    assert report.functions["linear_activation_forward"].diagnosis == "did not finish within 5 s (an infinite loop?)"
    assert report.functions["sigmoid"].status == "UNSAFE"


def test_an_array_header_claiming_terabytes_is_refused_not_allocated(hostile):
    report = hostile.reports["huge_array_reply.py"]
    assert report.functions["relu"].diagnosis == ("broke the checking protocol: a malformed array (8 bytes for "
                                                  "the shape (1000000000000,) of float64)")
    assert report.functions["sigmoid"].status == "UNSAFE"  # checked, the batch went on


def test_the_other_submissions_of_the_folder_cannot_be_read_in_the_sandbox(hostile):
    # under none the submission has the teacher's rights: it reads them (the threat model says so)
    status = hostile.reports["reads_classmates.py"].functions["relu"].status
    assert status == {"bwrap": "PASS", "none": "FAIL"}[hostile.mode]


def test_a_symbolic_link_is_not_checked_in_place_of_the_file_it_names(tmp_path):
    # else a.py -> /home/teacher/solution.py is graded as the student's, with its folder bound
    (tmp_path / "key").mkdir()
    shutil.copy(LEARNERS / "correct.py", tmp_path / "key" / "solution.py")
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "a.py").symlink_to(tmp_path / "key" / "solution.py")
    [report] = check([tmp_path / "class"], sandbox="none", iterations=0, keras=False)
    assert report.error == "is a symbolic link; twinnet check reads only regular files (give the file it points to)"
    assert report.functions == {} and not report.passes()


@pytest.mark.parametrize("mode", MODES)
def test_the_terminal_cannot_be_written_through_dev_tty(mode, tmp_path):
    # twinnet under a terminal of its own (script): the submission's session has no terminal
    _need(mode)
    shutil.copy(HOSTILE / "writes_tty.py", tmp_path)
    command = (f"{sys.executable} -m twinnet check {tmp_path / 'writes_tty.py'} --sandbox {mode} --iterations 0 "
               "--no-keras")
    done = subprocess.run(["script", "-qec", command, str(tmp_path / "typescript")], capture_output=True,
                          timeout=300, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    seen = (tmp_path / "typescript").read_text(errors="replace")
    assert done.returncode == 0 and "relu                        PASS" in seen, seen
    assert "TTY-LINE" not in seen


def test_forged_load_messages_of_the_wrong_shape_break_the_protocol(hostile):
    # the first two forgeries are refused, each its statement's failure; the third (a dict, its
    # facts of the wrong shape) passes for the end of the load, and relu's call then meets the
    # file's next statement
    report = hostile.reports["forged_load_messages.py"]
    assert report.failures == [
        "line 19: broke the checking protocol: sent a 'statement' message for statement 999999; the file has 10, "
        "skipped",
        "line 20: broke the checking protocol: sent a 'loaded' message whose body is not a dict, skipped"]
    assert report.functions["relu"].diagnosis == "broke the checking protocol: sent 'statement' where 'outputs' was due"


def test_float_errors_that_are_not_names_are_not_believed(hostile):
    report = hostile.reports["forged_float_errors.py"]
    assert report.functions["relu"].status == "FAIL"
    assert report.functions["relu"].case["message"] == "the result: expected a tuple of 2, got NoneType"


@pytest.mark.parametrize("kind", sorted(runner.BODIES))
def test_a_reply_whose_body_is_not_a_dict_breaks_the_protocol(kind):
    run = runner._File("a.py", None, mode="none", time_limit=5, budget=10, memory=512, hidden=())
    run.child = SimpleNamespace(receive=lambda deadline: (kind, [1]),
                                process=SimpleNamespace(poll=lambda: None, returncode=None))
    with pytest.raises(runner._Stopped, match=f"^broke the checking protocol: sent a '{kind}' message whose body "
                                              "is not a dict$"):
        run._wait(kind)


def test_an_error_no_check_foresaw_costs_its_file_only_its_check(monkeypatch):
    def judge(*args, **kwargs):
        raise RuntimeError("a reply of a shape no check foresaw")

    monkeypatch.setattr(runner.verdict, "judge", judge)
    report = runner.check_file(HOSTILE / "bom.py", case_seed=0, iterations=0)
    assert report.error == "could not be checked: RuntimeError: a reply of a shape no check foresaw"


def test_values_that_are_not_data_hold_no_memory_once_read():
    # a class made per name and kept for good: one 4 MB reply of distinct names cost twinnet 600 MB
    body = {"l": [{"o": f"name{i}"} for i in range(20_000)]}
    tracemalloc.start()
    try:
        _worker.decode(body, [])
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept < 1 << 20, kept


def test_values_that_are_not_data_are_named_by_their_type():
    function, module = _worker.decode({"l": [{"o": "function"}, {"o": "module"}]}, [])
    assert compare({"W1": np.zeros(2)}, function).message == "the result: expected a dict, got function"
    assert compare((np.zeros(2), 0.0), function).message == "the result: expected a tuple of 2, got function"
    assert compare(np.zeros(2), module).message == ("the result: expected a number or an array of numbers, got "
                                                    "module")


def test_the_budget_counts_the_restarts_of_a_file_that_ends_its_process_at_every_statement(tmp_path):
    # each statement is skipped and the file loaded again: uncounted, 300 start-ups took a minute
    path = tmp_path / "exits.py"
    path.write_text("import os\n" + "os._exit(0)\n" * 300 + "\n\ndef relu(Z):\n    return Z\n")
    started = time.monotonic()
    [report] = check([path], sandbox="none", iterations=0, keras=False, time_limit=1, budget=2)
    assert report.error == "the file's time budget of 2 s is spent"
    assert time.monotonic() - started < 2 + 5


@pytest.mark.parametrize("text", [
    "# привет мир\n" * 75_000,  # 1.6 MB; 4.5 MB as JSON with every letter escaped (\u043f)
    "x = '" + "\x01" * ((4 << 20) - 100) + "'\n",  # JSON's worst: 6 bytes a byte (\u0001)
], ids=["cyrillic", "control_characters"])
def test_a_file_within_the_size_limit_is_loaded_whatever_its_characters(tmp_path, text):
    path = tmp_path / "a.py"
    path.write_text(text + "\n\ndef relu(Z):\n    return np.maximum(0, Z), Z\n\n\nimport numpy as np\n",
                    encoding="utf-8")
    assert path.stat().st_size <= MAX_BYTES[".py"]
    [report] = check([path], sandbox="none", iterations=0, keras=False)
    assert not report.error and _statuses(report) == {"relu": "PASS"}


def test_the_learners_process_bounds_what_it_reads_too():
    read, write = os.pipe()
    try:
        os.write(write, struct.pack("<Q", _worker.MAX_REQUEST + 1))
        with pytest.raises(_worker.ProtocolError, match=f"^a header of {_worker.MAX_REQUEST + 1} bytes$"):
            _worker.receive(read, max_header=_worker.MAX_REQUEST)
    finally:
        os.close(read)
        os.close(write)
