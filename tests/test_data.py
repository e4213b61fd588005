"""Built-in data sets, safe loaders, validation and splits."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from twinnet import data


# --------------------------------------------------------------------------- built-in data sets
@pytest.mark.parametrize("name", list(data.DATASETS))
def test_builtin_datasets_are_binary_and_deterministic(name):
    X, y = data.load(name)
    X2, y2 = data.load(name)
    assert_array_equal(X, X2)
    assert_array_equal(y, y2)
    assert X.ndim == 2 and X.dtype == np.float64 and y.shape == (X.shape[0],)
    assert set(np.unique(y)) == {0, 1}
    assert 0.3 < y.mean() < 0.7 or name == "breast_cancer"  # breast cancer: 357 / 569 benign


def test_synthetic_is_shaped_like_the_notebook_data():
    X, y = data.load()
    assert X.shape == (2000, 100)
    assert data.describe(X, y)["fraction_1"] == pytest.approx(0.5, abs=0.01)


def test_digits_label_is_digit_at_least_five():
    from sklearn.datasets import load_digits

    X, y = data.load("digits")
    assert_array_equal(y, load_digits().target >= 5)


# --------------------------------------------------------------------------- loaders
@pytest.fixture
def dataset():
    rng = np.random.default_rng(0)
    return rng.standard_normal((30, 4)), rng.integers(0, 2, 30)


def test_pickle_round_trip_in_the_notebook_format(tmp_path, dataset):
    X, y = dataset
    path = tmp_path / "data.pickle"
    data.save_pickle(path, X, y)
    with open(path, "rb") as f:  # the file is the notebook's format, readable by its own code
        raw = pickle.load(f)
    assert sorted(raw) == ["features", "labels"]
    X2, y2 = data.load(path)
    assert_array_equal(X2, X)
    assert_array_equal(y2, y)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickles_of_any_protocol_and_float32_load(tmp_path, dataset, protocol):
    X, y = dataset
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps({"features": X.astype(np.float32), "labels": y.tolist()},
                                  protocol=protocol))
    X2, y2 = data.load(str(path))
    assert X2.dtype == np.float32
    assert_array_equal(y2, y)


def test_npz_and_csv_load(tmp_path, dataset):
    X, y = dataset
    np.savez(tmp_path / "d.npz", features=X, labels=y)
    assert_array_equal(data.load(tmp_path / "d.npz")[0], X)
    lines = ["a,b,c,d,label"] + [",".join(str(float(v)) for v in [*row, label]) for row, label in zip(X, y)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    X2, y2 = data.load(tmp_path / "d.csv")
    assert_allclose(X2, X, rtol=1e-15)
    assert_array_equal(y2, y)
    (tmp_path / "noheader.csv").write_text("\n".join(lines[1:]))
    assert data.load(tmp_path / "noheader.csv")[0].shape == (30, 4)


def test_two_label_values_are_mapped_to_zero_and_one():
    X, y = data.check_dataset(np.ones((4, 2)), np.array([-1, 1, 1, -1]))
    assert_array_equal(y, [0, 1, 1, 0])


class _CreatesAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsAShellCommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("payload", [_CreatesAFile, _RunsAShellCommand])
def test_a_pickle_that_would_create_a_file_is_refused(tmp_path, payload):
    victim = tmp_path / "pwned"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"features": payload(str(victim)), "labels": [0, 1]}))
    with pytest.raises(ValueError, match="refusing to unpickle"):
        data.load(path)
    assert not victim.exists()


# --------------------------------------------------------------------------- bad input
def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


GOOD = {"features": np.ones((6, 3)), "labels": np.array([0, 1] * 3)}


def _pickled(obj):
    return pickle.dumps(obj)


BAD_FILES = [
    ("empty", "e.pickle", b"", "the file is empty"),
    ("truncated", "t.pickle", _pickled(GOOD)[:40], "truncated or corrupted"),
    ("not-a-dict", "l.pickle", _pickled([1, 2, 3]), "expected a dict with keys"),
    ("foreign-class", "o.pickle", _pickled({"features": np.ones((2, 2)), "labels": __import__("collections").OrderedDict()}),
     "refusing to unpickle collections.OrderedDict"),
    ("wrong-keys", "k.pickle", _pickled({"X": np.ones((4, 2)), "y": [0, 1, 0, 1]}), "missing key.*'features'"),
    ("1-D features", "f.pickle", _pickled({"features": np.ones(6), "labels": [0, 1] * 3}), "features must be 2-D"),
    ("lengths", "n.pickle", _pickled({"features": np.ones((5, 2)), "labels": [0, 1] * 3}),
     r"different numbers of examples: features.shape=\(5, 2\), labels.shape=\(6,\)"),
    ("3 classes", "c.pickle", _pickled({"features": np.ones((6, 2)), "labels": [0, 1, 2] * 2}),
     "labels must be binary .* got 3 distinct values: 0, 1, 2"),
    ("continuous", "r.pickle", _pickled({"features": np.ones((6, 2)), "labels": np.linspace(0, 1, 6)}),
     "labels must be binary .* got 6 distinct"),
    ("nan", "nan.pickle", _pickled({"features": np.array([[1.0, np.nan]] * 4), "labels": [0, 1] * 2}),
     r"NaN or inf \(first at row 0, column 1\)"),
    ("inf", "inf.pickle", _pickled({"features": np.array([[1.0, 2.0]] * 3 + [[np.inf, 0]]), "labels": [0, 1] * 2}),
     r"NaN or inf \(first at row 3, column 0\)"),
    ("object features", "obj.pickle", _pickled({"features": [[1, "a"], [2, "b"]], "labels": [0, 1]}),
     "features must be numeric"),
    ("text labels", "tl.pickle", _pickled({"features": np.ones((2, 2)), "labels": ["a", "b"]}),
     "labels must be numeric"),
    ("csv text cell", "t.csv", "1,2,0\n3,x,1\n", "line 2, column 2 is not a number: 'x'"),
    ("csv ragged", "r.csv", "1,2,0\n3,1\n", "line 2 has 2 cells, expected 3"),
    ("csv header only", "h.csv", "a,b,label\n", "header but no data rows"),
    ("npz missing key", "m.npz", None, "missing key.*'labels'"),
    ("npz garbage", "g.npz", b"not a zip file at all", "not a valid .npz"),
    ("unknown suffix", "d.txt", "1,2\n", "unknown file type '.txt'"),
]


@pytest.mark.parametrize("name, filename, content, match", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_raise_a_clear_value_error(tmp_path, name, filename, content, match):
    path = tmp_path / filename
    if content is None:
        np.savez(path, features=np.ones((4, 2)))
    else:
        _write(path, content)
    with pytest.raises(ValueError, match=match):
        data.load(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        data.load(tmp_path / "absent.pickle")
    with pytest.raises(ValueError, match="is a directory"):
        data.load_file(tmp_path)


def test_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown data set 'mnist'. Expected a file path or one of: 'synthetic', "):
        data.load("mnist")


# --------------------------------------------------------------------------- splits
def test_split_is_stratified_seeded_and_standardized_on_train_only():
    X, y = data.load("breast_cancer")
    a = data.split(X, y, test_size=0.2, seed=0, standardize=True)
    b = data.split(X, y, test_size=0.2, seed=0, standardize=True)
    assert_array_equal(a.X_train, b.X_train)
    assert a.X_test.shape[0] == 114 and a.X_train.shape[0] == 455
    assert abs(a.y_train.mean() - a.y_test.mean()) < 0.01  # stratified
    assert_allclose(a.X_train.mean(axis=0), 0, atol=1e-12)
    assert_allclose(a.X_train.std(axis=0), 1, rtol=1e-12)
    assert not np.allclose(a.X_test.mean(axis=0), 0, atol=1e-3)  # test part scaled with train stats
    assert data.split(X, y, seed=1).X_train.tolist() != a.X_train.tolist()
    assert data.split(X, y, dtype="float32").X_test.dtype == np.float32


@pytest.mark.parametrize(
    "m, test_size, match",
    [(3, 0.2, "too few examples to split"), (10, 1.5, "test_size must be a float in"),
     (10, 0, "test_size must be a float in")],
)
def test_split_rejects_too_little_data_and_bad_fractions(m, test_size, match):
    X, y = np.arange(2.0 * m).reshape(m, 2), np.arange(m) % 2
    with pytest.raises(ValueError, match=match):
        data.split(X, y, test_size=test_size)


# --------------------------------------------------------------------------- trust boundary
def test_plain_pickle_load_is_not_used_in_the_package():
    import pathlib

    import twinnet

    root = pathlib.Path(twinnet.__file__).parent
    offenders = [
        str(p) for p in root.rglob("*.py")
        if "pickle.load(" in p.read_text() or "pickle.loads(" in p.read_text()
        or "allow_pickle=True" in p.read_text()
    ]
    assert offenders == []


def test_import_twinnet_is_light():
    code = (
        "import sys, twinnet, twinnet.functional, twinnet.data, twinnet.cli; twinnet.cli.build_parser(); "
        "heavy = [m for m in ('tensorflow', 'keras', 'dask', 'distributed', 'matplotlib', 'torch') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_npz_with_object_arrays_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, features=np.array([[1, "a"]], dtype=object), labels=np.array([0]))
    with pytest.raises(ValueError, match="object arrays, which are refused"):
        data.load(path)
