"""``twinnet data`` and the CLI's error contract: one line on stderr, exit status 2."""

import os
import re
import subprocess
import sys

import pytest

from twinnet import data
from twinnet.cli import main


def test_data_make_writes_a_notebook_pickle_and_inspect_describes_it(tmp_path, capsys):
    path = tmp_path / "sub" / "data.pickle"
    assert main(["data", "make", str(path), "--dataset", "moons"]) == 0
    assert "wrote" in capsys.readouterr().out
    X, _y = data.load(path)
    assert X.shape == (400, 2)
    assert main(["data", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "examples    400" in out and "features    2" in out and "0: 200   1: 200" in out


def test_inspect_a_builtin_name(capsys):
    assert main(["data", "inspect", "breast_cancer"]) == 0
    assert "examples    569" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["data", "inspect", "mnist"], "Unknown data set 'mnist'"),
        (["data", "inspect", "{tmp}/absent.pickle"], "no such file"),
        (["data", "inspect", "{tmp}"], "is a directory"),
        (["data", "inspect", "{tmp}/bad.csv"], "line 2, column 2 is not a number"),
        (["data", "make", "{tmp}/out.txt"], "PATH must end in .pickle or .pkl"),
        (["data", "make", "{tmp}/x.pickle", "--dataset", "nope"], "invalid choice: 'nope'"),
        (["data", "make", "{tmp}/exists.pickle"], "exists.pickle exists; pass --force to overwrite it"),
        (["data", "make", "{tmp}/bad.csv/x.pickle"], "cannot write .*bad.csv/x.pickle: .*bad.csv"),
        (["data", "inspect", "{tmp}/exists.pickle", "--max-bytes", "31"],
         "its 4 values would take 32 bytes, more than the limit max_bytes=31"),
        (["data", "inspect", "{tmp}/fifo.csv"], "is not a regular file"),
        (["data", "inspect", "{tmp}/exists.pickle", "--max-bytes", "many"], "argument --max-bytes: invalid int value"),
        (["data"], "the following arguments are required: ACTION"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
    ids=["unknown-name", "missing-file", "directory", "csv-text", "make-suffix", "make-dataset",
         "make-would-overwrite", "make-under-a-file", "inspect-past-max-bytes", "inspect-a-fifo",
         "max-bytes-not-a-number", "no-action", "no-command"],
)
def test_user_errors_are_one_line_and_status_2(tmp_path, capsys, argv, match):
    (tmp_path / "bad.csv").write_text("1,2,0\n2,x,1\n")
    data.save_pickle(tmp_path / "exists.pickle", [[1.0], [2.0]], [0, 1])
    os.mkfifo(tmp_path / "fifo.csv")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert re.search(match, err), err


def test_python_dash_m_twinnet_runs_and_fails_cleanly(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "twinnet", "--help"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "data" in ok.stdout
    (tmp_path / "evil.pickle").write_bytes(
        b"cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR."
    )
    bad = subprocess.run([sys.executable, "-m", "twinnet", "data", "inspect", str(tmp_path / "evil.pickle")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "refusing to unpickle os.system" in bad.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("existing", ["file", "symlink", "dangling-symlink"])
def test_data_make_never_overwrites_without_force(tmp_path, capsys, existing):
    path, target = tmp_path / "data.pickle", tmp_path / "mine.txt"
    target.write_text("the user's own file")
    if existing == "file":
        path.write_text("the user's own file")
    elif existing == "symlink":
        path.symlink_to(target)
    else:
        path.symlink_to(tmp_path / "nowhere")
    assert main(["data", "make", str(path), "--dataset", "moons"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path} exists; pass --force to overwrite it" in err
    assert target.read_text() == "the user's own file"
    assert path.is_symlink() or path.read_text() == "the user's own file"
    assert main(["data", "make", str(path), "--dataset", "moons", "--force"]) == 0
    assert data.load(path)[0].shape == (400, 2)


def test_inspect_takes_the_limit_from_the_environment(tmp_path, capsys, monkeypatch):
    data.save_pickle(tmp_path / "d.pickle", [[1.0], [2.0]], [0, 1])  # 4 values: 32 bytes
    monkeypatch.setenv("TWINNET_MAX_BYTES", "31")
    assert main(["data", "inspect", str(tmp_path / "d.pickle")]) == 2
    assert "more than the limit max_bytes=31" in capsys.readouterr().err
    assert main(["data", "inspect", str(tmp_path / "d.pickle"), "--max-bytes", "32"]) == 0
