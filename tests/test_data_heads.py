"""The data layer for every output head: built-ins, head inference, validation, files, describe, split."""

import pickle
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from twinnet import data, validation

# --------------------------------------------------------------------------- built-in data sets
NEW_BUILTINS = [  # name, shape of X, head, classes (None for a regression target)
    ("digits10", (1797, 64), "softmax", list(range(10))),
    ("iris", (150, 4), "softmax", [0, 1, 2]),
    ("wine", (178, 13), "softmax", [0, 1, 2]),
    ("synthetic_multiclass", (2000, 20), "softmax", [0, 1, 2, 3]),
    ("diabetes", (442, 10), "linear", None),
    ("synthetic_regression", (2000, 10), "linear", None),
]


@pytest.mark.parametrize("name, shape, output, classes", NEW_BUILTINS, ids=[c[0] for c in NEW_BUILTINS])
def test_new_builtins_have_their_shape_head_and_classes(name, shape, output, classes):
    loaded = data.load_dataset(name)
    assert data.DATASETS[name].output == output
    assert loaded.X.shape == shape and loaded.X.dtype == np.float64
    assert loaded.output == output and loaded.note is None  # built-ins declare, never infer
    if classes is None:
        assert loaded.classes is None and loaded.y.dtype == np.float64 and loaded.y.shape == (shape[0],)
        assert np.unique(loaded.y).size > data.MAX_INFERRED_CLASSES  # a real target, not disguised classes
    else:
        assert loaded.classes.tolist() == classes
        assert loaded.y.dtype == np.int64 and sorted(set(loaded.y.tolist())) == classes
    again = data.load(name)
    assert_array_equal(again[0], loaded.X)
    assert_array_equal(again[1], loaded.y)


def test_every_builtin_declares_a_known_head():
    assert {d.output for d in data.DATASETS.values()} == set(validation.OUTPUTS)
    for name, d in data.DATASETS.items():
        assert d.output in validation.OUTPUTS, name
        assert d.description.split(" x ")[0].isdigit(), name  # "m x n, ...", as the others


def test_scikit_learn_sets_are_taken_as_they_are():
    from sklearn.datasets import load_diabetes, load_digits, load_iris, load_wine

    for name, load in [("digits10", load_digits), ("iris", load_iris), ("wine", load_wine),
                       ("diabetes", load_diabetes)]:
        X, y = data.load(name)
        assert_array_equal(X, load().data, err_msg=name)
        assert_array_equal(y, load().target, err_msg=name)


def test_synthetic_multiclass_is_learnable_by_a_small_relu_net():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y = data.load("synthetic_multiclass")
    assert np.bincount(y).min() >= 0.2 * len(y)  # four roughly balanced classes: chance is about 0.25
    s = data.split(X, y, seed=0, standardize=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(s.X_train, s.y_train)
    # "Well above chance": 0.7 is nearly three times chance, far from what noise could give on 400 tests.
    assert net.score(s.X_test, s.y_test) > 0.7


def test_synthetic_regression_is_nonlinear_and_learnable_by_a_small_relu_net():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LinearRegression
    from sklearn.neural_network import MLPRegressor

    X, y = data.load("synthetic_regression")
    s = data.split(X, y, seed=0, standardize=True)
    mean, std = s.y_train.mean(), s.y_train.std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = MLPRegressor(hidden_layer_sizes=(16,), max_iter=1000, random_state=0)
        net.fit(s.X_train, (s.y_train - mean) / std)
    r2_net = net.score(s.X_test, (s.y_test - mean) / std)
    r2_linear = LinearRegression().fit(s.X_train, s.y_train).score(s.X_test, s.y_test)
    # Nonlinear: a ReLU net explains clearly more of the variance than the best linear model.
    assert r2_net > 0.8 and r2_net > r2_linear + 0.1, (r2_net, r2_linear)


# --------------------------------------------------------------------------- inferring the head
M = data.MAX_INFERRED_CLASSES
INFERENCE = [  # y, inferred head, a regex the note must match
    ([0, 1, 1, 0], "sigmoid",
     r"^src: 2 distinct whole-number labels \(0, 1\): treated as binary labels mapped to 0 and 1 \(output "
     r"'sigmoid'\); pass --output softmax \(output='softmax'\) for a two-class softmax, or --output linear "
     r"\(output='linear'\) for a regression target\.$"),
    (np.array([True, False, True]), "sigmoid", r"2 distinct whole-number labels \(False, True\)"),
    (np.array([3, 7, 3], dtype=np.uint8), "sigmoid", r"\(3, 7\): treated as binary labels"),
    ([-1.0, 1.0, 1.0], "sigmoid",
     r"2 distinct whole numbers stored as floats \(-1, 1\): treated as binary labels.*"
     r"--output linear \(output='linear'\) to make them a regression target\.$"),
    ([2, 0, 1, 2], "softmax",
     r"^src: 3 distinct whole-number labels \(0, 1, 2\): treated as 3 classes \(output 'softmax'\); "
     r"pass --output linear \(output='linear'\) for a regression target\.$"),
    ([[2], [0], [1]], "softmax", r"3 distinct whole-number labels"),  # a column is read as (m,)
    ([0.0, 1.0, 2.0, 5.0], "softmax",
     r"^src: 4 distinct whole numbers stored as floats \(0, 1, 2, 5\): treated as 4 classes \(output "
     r"'softmax'\); pass --output linear \(output='linear'\) to make them a regression target\.$"),
    (np.arange(M), "softmax", rf"{M} distinct whole-number labels \(0, 1, 2, 3, 4, \.\.\.\): treated as {M} classes"),
    (np.arange(M + 1), "linear",
     rf"^src: {M + 1} distinct whole-number labels: treated as a regression target \(output 'linear'\), more "
     rf"than the {M} read as classes; pass --output softmax \(output='softmax'\) for classes\.$"),
    (np.arange(214.0) + 25, "linear",
     r"214 distinct whole numbers stored as floats: treated as a regression target .* pass --output softmax"),
    ([0.0, 1.0, 2.5], "linear",
     r"^src: labels are not whole numbers \(e\.g\. 2\.5\): treated as a regression target \(output 'linear'\); "
     r"pass --output softmax \(output='softmax'\) to make each distinct value a class\.$"),
    (np.float32([0.25, 0.25]), "linear", r"not whole numbers \(e\.g\. 0\.25\)"),
    (np.zeros((4, 3), dtype=np.int64), "linear",
     r"^src: labels of shape \(4, 3\): treated as 3 regression targets \(output 'linear'\); a classifier's "
     r"labels have shape \(m,\)\.$"),
]


@pytest.mark.parametrize("y, output, note", INFERENCE, ids=[
    "int-binary", "bool", "uint8-binary", "float-binary", "int-3", "column-3", "float-4", "max-classes",
    "max-classes+1", "214-floats", "non-integral", "float32-non-integral", "2-d"])
def test_infer_output_follows_type_of_target_and_says_how_to_override(y, output, note):
    got, text = data.infer_output(y, source="src")
    assert got == output
    assert "\n" not in text
    assert re.search(note, text), text


INFERENCE_ERRORS = [
    ([1, 1, 1], r"src: labels hold one value only \(1\): no head can be inferred; .*--output linear"),
    ([0.0, np.nan, 1.0], r"src: labels contain NaN or inf \(first at row 1\)"),
    ([0.5, 1.5, -np.inf], r"labels contain NaN or inf \(first at row 2\)"),
    ([], "src: labels are empty"),
    (np.ones(3, dtype=complex), "labels must be real numbers; got dtype complex128"),
    (["a", "b"], "labels must be real numbers; got dtype <U1"),
    (np.ones((2, 2, 2)), r"labels must be of shape \(m,\) or \(m, k\); got shape \(2, 2, 2\)"),
]


@pytest.mark.parametrize("y, match", INFERENCE_ERRORS, ids=["one-value", "nan", "inf", "empty", "complex",
                                                           "text", "3-d"])
def test_infer_output_refuses_what_no_head_takes(y, match):
    with pytest.raises(ValueError, match=match):
        data.infer_output(y, source="src")


# --------------------------------------------------------------------------- check_dataset per head
X4 = np.arange(8.0).reshape(4, 2)


@pytest.mark.parametrize("y, output, expected", [
    ([-1, 1, 1, -1], "sigmoid", [0, 1, 1, 0]),
    ([10, -3, 7.5, 10], "softmax", [2, 0, 1, 2]),
    ([True, False, False, True], "softmax", [1, 0, 0, 1]),  # two classes: a two-unit softmax
    ([[4], [2], [3], [4]], "softmax", [2, 0, 1, 2]),
])
def test_check_dataset_numbers_classes_in_sorted_order(y, output, expected):
    _X, labels = data.check_dataset(X4, y, output=output)
    assert labels.dtype == np.int64
    assert_array_equal(labels, expected)


@pytest.mark.parametrize("y, dtype, shape", [
    ([1, 2, 3, 4], np.float64, (4,)),
    (np.float32([0.5, 1, 2, 3]), np.float32, (4,)),
    ([[0.5], [1], [2], [3]], np.float64, (4,)),
    (np.arange(12).reshape(4, 3), np.float64, (4, 3)),
    (np.float32(np.ones((4, 2))), np.float32, (4, 2)),
    ([True, False, True, True], np.float64, (4,)),
])
def test_check_dataset_keeps_regression_targets(y, dtype, shape):
    _X, target = data.check_dataset(X4, y, output="linear")
    assert target.dtype == dtype and target.shape == shape
    assert_array_equal(target.reshape(-1), np.asarray(y, dtype=float).reshape(-1))


CHECK_ERRORS = [  # X, y, output, match
    (X4, [0, 1, 2, 1], "sigmoid",
     r"src: labels must be binary \(exactly two distinct values\); got 3 distinct values: 0, 1, 2 \(pass --output "
     r"softmax \(output='softmax'\) for 3 classes\)\.$"),
    (X4, [0.1, 0.2, 0.3, 0.4], "sigmoid",
     r"got 4 distinct values: 0\.1, 0\.2, 0\.3, 0\.4 \(pass --output softmax .* for 4 classes, or --output linear "
     r"\(output='linear'\) for a regression target\)"),
    (X4, [1, 1, 1, 1], "sigmoid", r"labels must be binary .* got 1 distinct values: 1\.$"),
    (X4, [1, 1, 1, 1], "softmax", r"labels must hold at least two classes for output 'softmax'; got 1 distinct"),
    (X4, np.ones((4, 2)), "softmax",
     r"labels must be 1-D of shape \(m,\) for output 'softmax'; got shape \(4, 2\) \(a target of shape \(m, k\) "
     r"needs output 'linear'\)"),
    (X4, np.ones((4, 2)), "sigmoid", r"for output 'sigmoid'; got shape \(4, 2\)"),
    (X4, [0.0, 1.0, np.nan, 2.0], "linear", r"src: labels contain NaN or inf \(first at row 2\)"),
    (X4, [[0.0, 1.0]] * 3 + [[np.inf, 2.0]], "linear", r"labels contain NaN or inf \(first at row 3\)"),
    (X4, [0.0, 1.0, np.nan, 2.0], "softmax", r"labels contain NaN or inf"),
    (X4, np.ones(4, dtype=complex), "linear", "labels must be real numbers; got dtype complex128"),
    (X4, ["a", "b", "c", "d"], "linear", "labels must be real numbers"),
    (X4, np.ones((4, 2, 1)), "linear", r"labels must be of shape \(m,\) or \(m, k\); got shape \(4, 2, 1\)"),
    (X4, np.ones((3, 2)), "linear",
     r"different numbers of examples: features.shape=\(4, 2\), labels.shape=\(3, 2\)"),
    (np.ones((0, 2)), np.ones((0, 2)), "linear", r"features is empty: features.shape=\(0, 2\)"),
    (np.ones((0, 2)), np.ones(0), "softmax", "features is empty"),
    (X4, [0, 1, 0, 1], "tanh", r"Unknown output 'tanh'. Expected one of: 'linear', 'sigmoid', 'softmax'\."),
    (X4, [0, 1, 0, 1], None, "Unknown output None"),
]


@pytest.mark.parametrize("X, y, output, match", CHECK_ERRORS, ids=[
    "sigmoid-3-classes", "sigmoid-continuous", "sigmoid-one-value", "softmax-one-value", "softmax-2-d",
    "sigmoid-2-d", "linear-nan", "linear-inf", "softmax-nan", "linear-complex", "linear-text", "linear-3-d",
    "linear-lengths", "linear-empty", "softmax-empty", "unknown-output", "output-none"])
def test_check_dataset_errors_name_the_problem(X, y, output, match):
    with pytest.raises(ValueError, match=match):
        data.check_dataset(X, y, source="src", output=output)


def test_an_unknown_output_is_an_invalid_argument_everywhere(tmp_path):
    for call in (lambda: data.check_dataset(X4, [0, 1, 0, 1], output="relu"),
                 lambda: data.load_dataset("iris", output="relu"),
                 lambda: data.load(tmp_path / "absent.npz", output="relu"),
                 lambda: data.describe(X4, [0, 1, 0, 1], output="relu")):
        with pytest.raises(validation.InvalidArgument, match="Unknown output 'relu'"):
            call()


# --------------------------------------------------------------------------- load_dataset
def test_load_dataset_overrides_a_builtin_head_only_when_asked():
    assert data.load_dataset("digits").output == "sigmoid"
    two = data.load_dataset("digits", output="softmax")
    assert two.output == "softmax" and two.classes.tolist() == [0, 1] and two.note is None
    assert_array_equal(two.y, data.load("digits")[1])
    target = data.load_dataset("iris", output="linear")
    assert target.classes is None and target.y.dtype == np.float64
    with pytest.raises(ValueError, match=r"iris: labels must be binary .* got 3 distinct values: 0, 1, 2 "
                                         r"\(pass --output softmax"):
        data.load("iris", output="sigmoid")


def test_load_keeps_returning_two_arrays():
    got = data.load("diabetes")
    assert isinstance(got, tuple) and len(got) == 2
    assert isinstance(data.load_dataset("diabetes"), data.Loaded)


# --------------------------------------------------------------------------- files, per head
RNG = np.random.default_rng(0)
FEATURES = RNG.standard_normal((40, 3))
HEADS = [  # name, labels as written, head inferred from them, labels as loaded, classes
    ("binary", np.arange(40) % 2 * 2 - 1, "sigmoid", np.arange(40) % 2, [-1, 1]),
    ("four-classes", np.arange(40) % 4 + 3, "softmax", np.arange(40) % 4, [3, 4, 5, 6]),
    ("target", RNG.standard_normal(40), "linear", None, None),
    ("three-targets", RNG.standard_normal((40, 3)), "linear", None, None),
]


def _write_file(path, X, y):
    if path.suffix == ".npz":
        np.savez(path, features=X, labels=y)
    elif path.suffix == ".csv":
        rows = [",".join(repr(float(v)) for v in [*row, label]) for row, label in zip(X, y)]
        path.write_text("f1,f2,f3,label\n" + "\n".join(rows) + "\n")
    else:  # plain lists in a protocol-2 pickle, as another program might write them
        path.write_bytes(pickle.dumps({"features": X.tolist(), "labels": y.tolist()}, protocol=2))
    return path


# A CSV holds one label column: (m, k) targets are stored in .npz or .pickle files.
ROUND_TRIPS = [(suffix, *case) for suffix in (".pickle", ".npz", ".csv") for case in HEADS
               if not (suffix == ".csv" and case[1].ndim == 2)]


@pytest.mark.parametrize("suffix, name, y, output, labels, classes", ROUND_TRIPS,
                         ids=[f"{c[1]}{c[0]}" for c in ROUND_TRIPS])
def test_files_of_every_head_round_trip_through_the_safe_loaders(tmp_path, suffix, name, y, output, labels,
                                                                 classes):
    loaded = data.load_dataset(_write_file(tmp_path / f"d{suffix}", FEATURES, y))
    assert_array_equal(loaded.X, FEATURES)
    assert loaded.output == output
    assert loaded.note.startswith(str(tmp_path / f"d{suffix}") + ": ")
    assert "--output" in loaded.note or y.ndim == 2  # (m, k) targets fit no other head: nothing to override
    if labels is None:
        assert loaded.classes is None and loaded.y.dtype == np.float64
        assert_array_equal(loaded.y, y)  # repr() of a float reads back exactly
    else:
        assert loaded.classes.tolist() == classes
        assert_array_equal(loaded.y, labels)
        # CSV labels are read as floats: the note says whole numbers were taken for classes.
        assert ("stored as floats" in loaded.note) == (suffix == ".csv")


@pytest.mark.parametrize("name, y, output, labels, classes", HEADS, ids=[c[0] for c in HEADS])
def test_save_pickle_writes_every_head_in_the_notebook_format(tmp_path, name, y, output, labels, classes):
    path = tmp_path / "d.pickle"
    written = data.save_pickle(path, FEATURES, y)
    assert written.output == output
    with open(path, "rb") as f:  # the notebook's own reader
        raw = pickle.load(f)
    assert sorted(raw) == ["features", "labels"]
    assert_array_equal(raw["labels"], y if labels is None else labels)
    back = data.load_dataset(path)
    assert back.output == output
    assert_array_equal(back.y, written.y)


def test_save_pickle_keeps_a_target_when_told_and_refuses_to_overwrite(tmp_path):
    whole = np.arange(40.0) % 5  # whole numbers: classes unless told otherwise
    path = tmp_path / "d.pickle"
    assert data.save_pickle(path, FEATURES, whole, output="linear").output == "linear"
    assert_array_equal(data.load(path, output="linear")[1], whole)
    assert data.load_dataset(path).output == "softmax"  # the file itself does not say; the note does
    with pytest.raises(FileExistsError):
        data.save_pickle(path, FEATURES, whole, overwrite=False)


def test_float32_targets_of_shape_m_k_keep_their_dtype(tmp_path):
    target = RNG.standard_normal((40, 2)).astype(np.float32)
    for path in (tmp_path / "d.npz", tmp_path / "d.pickle"):
        if path.suffix == ".npz":
            np.savez(path, features=FEATURES, labels=target)
        else:
            path.write_bytes(pickle.dumps({"features": FEATURES, "labels": target}))
        _X, y = data.load(path)
        assert y.dtype == np.float32 and y.shape == (40, 2)
        assert_array_equal(y, target)


@pytest.mark.parametrize("suffix", [".npz", ".pickle"])
def test_the_limit_counts_every_target(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"  # 10 x 2 features + 10 x 3 targets: 50 values, 400 bytes
    X, y = np.ones((10, 2)), np.ones((10, 3)) / 3
    if suffix == ".npz":
        np.savez(path, features=X, labels=y)
    else:
        data.save_pickle(path, X, y)
    with pytest.raises(ValueError, match="more than the limit max_bytes=399"):
        data.load(path, max_bytes=399)
    assert data.load(path, max_bytes=400)[1].shape == (10, 3)


BAD_TARGET_FILES = [  # file name, (X, y) or text, output, match
    ("inf.npz", (np.ones((3, 2)), [0.5, np.inf, 1.5]), None, r"inf.npz: labels contain NaN or inf \(first at row 1\)"),
    ("inf.pickle", (np.ones((3, 2)), [[0.5, 1], [1, 2], [2, -np.inf]]), "linear", r"NaN or inf \(first at row 2\)"),
    ("nan.csv", "1,2,0.5\n3,4,nan\n", "linear", "nan.csv: labels contain NaN or inf"),
    ("lengths.npz", (np.ones((3, 2)), np.ones((4, 2))), None, r"features.shape=\(3, 2\), labels.shape=\(4, 2\)"),
    ("empty.npz", (np.ones((0, 2)), np.ones((0, 3))), None, "features is empty"),
    ("two-d.npz", (np.ones((3, 2)), np.ones((3, 2))), "softmax", "needs output 'linear'"),
    ("classes.csv", "1,2,0\n3,4,1\n5,6,2\n", "sigmoid", r"got 3 distinct values: 0, 1, 2 \(pass --output softmax"),
]


@pytest.mark.parametrize("name, content, output, match", BAD_TARGET_FILES, ids=[c[0] for c in BAD_TARGET_FILES])
def test_bad_targets_in_files_are_named(tmp_path, name, content, output, match):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif path.suffix == ".npz":
        np.savez(path, features=content[0], labels=np.asarray(content[1]))
    else:
        path.write_bytes(pickle.dumps({"features": content[0], "labels": content[1]}))
    with pytest.raises(ValueError, match=match):
        data.load_dataset(path, output=output)


# --------------------------------------------------------------------------- describe
def test_describe_keeps_the_binary_keys():
    info = data.describe(*data.load("moons"))
    assert (info["class_0"], info["class_1"], info["fraction_1"]) == (200, 200, 0.5)
    assert info["output"] == "sigmoid" and info["classes"] == 2 and info["labels"] == [0, 1]


def test_describe_counts_every_class():
    X, y = data.load("digits10")
    info = data.describe(X, y)
    counts = np.bincount(y)
    assert info["output"] == "softmax" and info["classes"] == 10 and info["labels"] == list(range(10))
    assert [info[f"class_{i}"] for i in range(10)] == counts.tolist()
    assert sum(info[f"fraction_{i}"] for i in range(10)) == pytest.approx(1.0, abs=1e-12)  # rounding only
    raw = data.describe(X4, [-1, 5, 5, 5])  # numbered as check_dataset numbers them
    assert raw["labels"] == [-1, 5] and (raw["class_0"], raw["class_1"]) == (1, 3)


def test_describe_gives_the_range_of_a_regression_target():
    X, y = data.load("diabetes")
    info = data.describe(X, y)
    assert info["output"] == "linear" and info["targets"] == 1 and "class_0" not in info
    assert (info["target_min"], info["target_max"]) == (y.min(), y.max())
    # The same sums, perhaps added in another order: equal to rounding.
    assert (info["target_mean"], info["target_std"]) == pytest.approx((y.mean(), y.std()), rel=1e-12)
    Y = np.column_stack([y, -2 * y])
    wide = data.describe(X, Y)
    assert wide["targets"] == 2
    assert wide["target_min"] == Y.min(axis=0).tolist() and wide["target_max"] == Y.max(axis=0).tolist()
    assert wide["target_std"] == pytest.approx(Y.std(axis=0).tolist(), rel=1e-12)
    whole = data.describe(X4, [1.0, 2.0, 3.0, 3.0], output="linear")  # inferred, it would be classes
    assert whole["output"] == "linear" and whole["target_max"] == 3.0


# --------------------------------------------------------------------------- split
def test_split_stratifies_every_class():
    X, y = data.load("iris")
    s = data.split(X, y, test_size=0.2, seed=0)
    assert np.bincount(s.y_test).tolist() == [10, 10, 10]
    X, y = data.load("digits10")
    s = data.split(X, y, test_size=0.2, seed=0)
    expected = np.bincount(y) * len(s.y_test) / len(y)
    assert np.abs(np.bincount(s.y_test) - expected).max() <= 1  # stratified: each class within one example


@pytest.mark.parametrize("name", ["diabetes", "synthetic_regression"])
def test_split_of_a_regression_target_leaves_the_target_alone(name):
    X, y = data.load(name)
    s = data.split(X, y, test_size=0.2, seed=0, standardize=True)
    assert s.y_train.dtype == np.float64 and len(s.y_test) == int(np.ceil(0.2 * len(y)))
    assert_array_equal(np.sort(np.concatenate([s.y_train, s.y_test])), np.sort(y))  # the same values, unscaled
    again = data.split(X, y, test_size=0.2, seed=0, standardize=True)
    assert_array_equal(again.y_test, s.y_test)


def test_split_takes_targets_of_shape_m_k():
    X, Y = np.arange(40.0).reshape(20, 2), np.arange(60).reshape(20, 3)  # integers, but 2-D: a target
    s = data.split(X, Y, test_size=0.25, seed=0, standardize=True)
    assert s.y_train.shape == (15, 3) and s.y_test.shape == (5, 3)
    rows = {tuple(r) for r in np.concatenate([s.y_train, s.y_test]).tolist()}
    assert rows == {tuple(r) for r in Y.tolist()}
    # A target's row follows its example: X[i] = (2i, 2i+1) goes with Y[i] = (3i, 3i+1, 3i+2).
    raw = data.split(X, Y, test_size=0.25, seed=0)
    assert_array_equal(raw.X_test[:, 0] * 3 / 2, raw.y_test[:, 0])


@pytest.mark.parametrize("y, match", [
    (np.array([0] * 10 + [1] * 10 + [2]), r"21 examples in 3 classes \(smallest class 1\)"),
    (np.arange(12) % 6, r"12 examples in 6 classes \(smallest class 2\) with test_size=0.2; need .* one of each "
                        r"class in each part"),
])
def test_split_needs_enough_of_every_class(y, match):
    with pytest.raises(ValueError, match="too few examples to split: " + match):
        data.split(np.ones((len(y), 2)), y, test_size=0.2)


def test_split_names_mismatched_lengths():
    with pytest.raises(ValueError, match=r"X and y have different numbers of examples: "
                       r"X.shape=\(10, 2\), y.shape=\(9,\)"):
        data.split(np.ones((10, 2)), np.arange(9.0))
