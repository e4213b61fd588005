"""``twinnet data`` and the CLI's error contract: one line on stderr, exit status 2."""

import os
import re
import subprocess
import sys

import numpy as np
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


# --------------------------------------------------------------------------- every output head
def test_inspect_shows_the_classes_of_a_multiclass_builtin(cli):
    status, out, err = cli("data", "inspect", "iris")
    assert status == 0, err
    assert "output      softmax (3 classes)" in out and "classes     0: 50   1: 50   2: 50" in out
    assert "note" not in out and "labels" not in out  # declared, not inferred; labels already 0..2
    status, out, _ = cli("data", "inspect", "digits10")
    assert status == 0 and "output      softmax (10 classes)" in out and "   9: 180" in out


def test_inspect_shows_the_range_of_a_regression_target(cli):
    status, out, err = cli("data", "inspect", "diabetes")
    assert status == 0, err
    assert "output      linear (1 target)" in out
    assert re.search(r"^target +min 25 +max 346 +mean 152\.133 +std 77\.0057$", out, re.M), out


def test_inspect_a_file_says_what_it_inferred_and_takes_output(cli, tmp_path):
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,-1\n3,4,1\n5,6,3\n7,8,3\n")
    status, out, err = cli("data", "inspect", tmp_path / "d.csv")
    assert status == 0, err
    assert "output      softmax (3 classes)" in out and "classes     0: 1   1: 1   2: 2" in out
    assert "labels      0: -1.0   1: 1.0   2: 3.0" in out  # the file's own values, numbered in sorted order
    assert re.search(r"^note +.*d\.csv: 3 distinct whole numbers stored as floats \(-1, 1, 3\): treated as 3 "
                     r"classes .* pass --output linear .* regression target\.$", out, re.M), out
    status, out, err = cli("data", "inspect", tmp_path / "d.csv", "--output", "linear")
    assert status == 0, err
    assert "output      linear (1 target)" in out and "note" not in out
    assert re.search(r"^target +min -1 +max 3 +mean 1\.5 +std 1\.6583", out, re.M), out


def test_inspect_targets_of_shape_m_k(cli, tmp_path):
    np.savez(tmp_path / "d.npz", features=np.ones((4, 2)), labels=np.arange(8.0).reshape(4, 2))
    status, out, err = cli("data", "inspect", tmp_path / "d.npz")
    assert status == 0, err
    assert "output      linear (2 targets)" in out
    assert re.search(r"^target 0 +min 0 +max 6 +mean 3 ", out, re.M), out
    assert re.search(r"^target 1 +min 1 +max 7 ", out, re.M), out
    assert re.search(r"^note +.*labels of shape \(4, 2\): treated as 2 regression targets", out, re.M), out


def test_inspect_binary_data_as_a_two_class_softmax(cli):
    status, out, _ = cli("data", "inspect", "moons", "--output", "softmax")
    assert status == 0 and "output      softmax (2 classes)" in out and "0: 200   1: 200" in out


@pytest.mark.parametrize("name", ["iris", "diabetes"])
def test_data_make_writes_every_head(cli, tmp_path, name):
    path = tmp_path / f"{name}.pickle"
    status, _, err = cli("data", "make", path, "--dataset", name)
    assert status == 0, err
    X, y = data.load(name)
    loaded = data.load_dataset(path)
    assert loaded.output == data.DATASETS[name].output
    np.testing.assert_array_equal(loaded.X, X)
    np.testing.assert_array_equal(loaded.y, y)


HEAD_ERRORS = [  # file, its content, extra arguments, error
    ("nan.csv", "1,2,0\n3,4,nan\n", [], r"nan.csv: labels contain NaN or inf \(first at row 1\)"),
    ("inf.npz", (np.ones((3, 2)), np.array([0.5, np.inf, 1.5])), ["--output", "linear"],
     "inf.npz: labels contain NaN or inf"),
    ("wide.npz", (np.ones((3, 2)), np.ones((3, 2))), ["--output", "softmax"],
     r"labels must be 1-D of shape \(m,\) for output 'softmax'; got shape \(3, 2\) .*needs output 'linear'"),
    ("lengths.npz", (np.ones((3, 2)), np.ones(4)), [], r"features.shape=\(3, 2\), labels.shape=\(4,\)"),
    ("empty.npz", (np.ones((0, 2)), np.ones(0)), [], r"features is empty: features.shape=\(0, 2\)"),
    ("three.csv", "1,2,0\n3,4,1\n5,6,2\n", ["--output", "sigmoid"],
     r"got 3 distinct values: 0, 1, 2 \(pass --output softmax"),
    ("one.csv", "1,2,1\n3,4,1\n", [], r"labels hold one value only \(1\): no head can be inferred"),
    ("ok.csv", "1,2,0\n3,4,1\n", ["--output", "tanh"], "argument --output: invalid choice: 'tanh'"),
]


@pytest.mark.parametrize("name, content, extra, match", HEAD_ERRORS, ids=[c[0] for c in HEAD_ERRORS])
def test_inspect_errors_of_every_head_are_one_line_and_status_2(cli, tmp_path, name, content, extra, match):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        np.savez(path, features=content[0], labels=content[1])
    status, out, err = cli("data", "inspect", path, *extra)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(match, err), err
