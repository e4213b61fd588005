"""``twinnet data`` and the CLI's error contract: one line on stderr, exit status 2."""

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
    X, y = data.load(path)
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
        (["data"], "the following arguments are required: ACTION"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
    ids=["unknown-name", "missing-file", "directory", "csv-text", "make-suffix", "make-dataset",
         "no-action", "no-command"],
)
def test_user_errors_are_one_line_and_status_2(tmp_path, capsys, argv, match):
    (tmp_path / "bad.csv").write_text("1,2,0\n2,x,1\n")
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
    ok = subprocess.run([sys.executable, "-m", "twinnet", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "data" in ok.stdout
    (tmp_path / "evil.pickle").write_bytes(
        b"cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR."
    )
    bad = subprocess.run([sys.executable, "-m", "twinnet", "data", "inspect", str(tmp_path / "evil.pickle")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "refusing to unpickle os.system" in bad.stderr
    assert not (tmp_path / "pwned").exists()
