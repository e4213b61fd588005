"""Built-in data sets, safe loaders, validation and splits."""

import io
import os
import pickle
import socket
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from twinnet import data


# --------------------------------------------------------------------------- built-in data sets
@pytest.mark.parametrize("name", [n for n, d in data.DATASETS.items() if d.output == "sigmoid"])
def test_builtin_binary_datasets_are_binary_and_deterministic(name):
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

    _X, y = data.load("digits")
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


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("dtype", ["float64", "uint8", "bool"])
def test_pickles_of_zeros_and_small_dtypes_are_not_taken_for_bombs(tmp_path, protocol, dtype):
    # Zero bytes take one byte each in a protocol-2 pickle's text: the least room data can take.
    X, y = np.zeros((500, 20), dtype=dtype), np.arange(500) % 2
    X[0, 0] = 1
    path = tmp_path / "d.pickle"
    path.write_bytes(pickle.dumps({"features": X, "labels": y.astype(dtype), "scalar": np.float64(0)},
                                  protocol=protocol))
    X2, y2 = data.load(path)
    assert_array_equal(X2, X)
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
    _X, y = data.check_dataset(np.ones((4, 2)), np.array([-1, 1, 1, -1]))
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
    ("foreign-class", "o.pickle",
     _pickled({"features": np.ones((2, 2)), "labels": __import__("collections").OrderedDict()}),
     "refusing to unpickle collections.OrderedDict"),
    ("wrong-keys", "k.pickle", _pickled({"X": np.ones((4, 2)), "y": [0, 1, 0, 1]}), "missing key.*'features'"),
    ("1-D features", "f.pickle", _pickled({"features": np.ones(6), "labels": [0, 1] * 3}), "features must be 2-D"),
    ("lengths", "n.pickle", _pickled({"features": np.ones((5, 2)), "labels": [0, 1] * 3}),
     r"different numbers of examples: features.shape=\(5, 2\), labels.shape=\(6,\)"),
    ("one label value", "c.pickle", _pickled({"features": np.ones((6, 2)), "labels": [1] * 6}),
     r"labels hold one value only \(1\): no head can be inferred"),
    ("nan", "nan.pickle", _pickled({"features": np.array([[1.0, np.nan]] * 4), "labels": [0, 1] * 2}),
     r"NaN or inf \(first at row 0, column 1\)"),
    ("inf", "inf.pickle", _pickled({"features": np.array([[1.0, 2.0]] * 3 + [[np.inf, 0]]), "labels": [0, 1] * 2}),
     r"NaN or inf \(first at row 3, column 0\)"),
    ("object features", "obj.pickle", _pickled({"features": [[1, "a"], [2, "b"]], "labels": [0, 1]}),
     "features must hold real numbers"),
    ("text labels", "tl.pickle", _pickled({"features": np.ones((2, 2)), "labels": ["a", "b"]}),
     "labels must be real numbers"),
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
    [(3, 0.2, "too few examples to split"), (10, 1.5, r"test_size must be a number in \(0, 1\); got test_size=1.5"),
     (10, 0, r"test_size must be a number in \(0, 1\); got test_size=0")],
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


# --------------------------------------------------------------------------- hostile inputs
# Each class of hostile or unlucky input is one parametrized test over the examples found; each
# example names the problem its error must state. Pickles are written opcode by opcode where
# pickle.dumps cannot make them (pickletools documents the opcodes).
def _str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _data_pickle(features: bytes, labels: bytes = b"]") -> bytes:
    """A protocol-2 pickle of {"features": <features>, "labels": <labels>} from raw opcodes."""
    return b"\x80\x02}(" + _str("features") + features + _str("labels") + labels + b"u."


_NP = b"cnumpy._core.multiarray\n"
_EMPTY_ARRAY = _NP + b"_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"  # _reconstruct(ndarray, (0,), b'b')
_F8 = b"cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R"  # dtype('f8', False, True)


def _array_state(shape: bytes, dtype: bytes, data: bytes) -> bytes:
    """BUILD an empty array with state (1, shape, dtype, False, data)."""
    return _EMPTY_ARRAY + b"(K\x01" + shape + dtype + b"\x89" + data + b"tb"


def _shared_lists(levels, width):
    row = [0.0] * width
    for _ in range(levels - 1):
        row = [row] * width  # one list referenced `width` times: the pickle stores it once
    return pickle.dumps({"features": row, "labels": [0, 1]})


def _self_containing():
    features = [[1.0, 2.0]]
    features.append(features)
    return pickle.dumps({"features": features, "labels": [0, 1]})


def _copies_of_one_buffer(copies, nbytes):
    # One bytes object in the memo (BINPUT 1), built into `copies` arrays: NumPy copies it each time.
    first = _array_state(b"J" + struct.pack("<i", nbytes // 8) + b"\x85", _F8,
                         b"B" + struct.pack("<I", nbytes) + b"\0" * nbytes + b"q\x01")
    again = _array_state(b"J" + struct.pack("<i", nbytes // 8) + b"\x85", _F8, b"h\x01")
    return _data_pickle(b"(" + first + again * (copies - 1) + b"l")


def _encodes_of_one_string(copies, nchars):
    # protocol 2's bytes: _codecs.encode(str, 'latin1'); one str in the memo encoded `copies` times
    encode = b"c_codecs\nencode\n"
    first = encode + _str("a" * nchars) + b"q\x01" + _str("latin1") + b"q\x02\x86R"
    again = encode + b"h\x01h\x02\x86R"
    return _data_pickle(b"(" + first + again * (copies - 1) + b"l")


def _shared_tuples(levels=80):
    """Opcodes leaving one tuple t on the stack, t_i = (t_{i-1}, t_{i-1}): hashing it takes 2**80 steps."""
    ops = b"K\x00\x85q\x000"  # t_0 = (0,), memo 0, popped
    for i in range(1, levels):
        ops += b"h" + bytes([i - 1]) + b"h" + bytes([i - 1]) + b"\x86q" + bytes([i]) + b"0"
    return ops + b"h" + bytes([levels - 1])


def _deep_lists(depth):
    return _data_pickle(b"]" * depth + b"a" * (depth - 1))


_BIG = struct.pack("<i", 10**9)
PICKLE_BOMBS = [
    ("lists-sharing-1e9-values", _shared_lists(3, 1000), "declares 1,000,000,002 values in 13,052 bytes"),
    ("lists-sharing-1e12-values", _shared_lists(4, 1000), "declares 1,000,000,000,002 values in"),
    ("list-contains-itself", _self_containing(), "a list in the pickle contains itself"),
    ("reconstruct-with-a-huge-shape",
     _data_pickle(_NP + b"_reconstruct\ncnumpy\nndarray\nJ" + _BIG + b"\x85C\x01b\x87R"),
     "refusing numpy _reconstruct other than of an empty ndarray"),
    ("ndarray-called-with-a-huge-shape", _data_pickle(b"cnumpy\nndarray\nJ" + _BIG + b"\x85\x85R"),
     "refusing to call numpy.ndarray"),
    ("state-declares-more-than-its-data", _data_pickle(_array_state(b"J" + _BIG + b"\x85", _F8, b"C\x08" + b"\0" * 8)),
     r"array of shape \(1000000000,\) whose data is not 8000000000 bytes"),
    ("object-array-state-with-a-huge-shape",
     _data_pickle(_array_state(b"J" + _BIG + b"\x85", b"cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R", b"]")),
     "refusing dtype"),
    ("frombuffer-shape-past-its-buffer",
     _data_pickle(b"cnumpy._core.numeric\n_frombuffer\n(C\x08" + b"\0" * 8 + _F8
                  + b"J" + _BIG + b"\x85X\x01\x00\x00\x00Ct" + b"R"),
     "builds more array data than the file holds"),
    ("one-buffer-copied-200-times", _copies_of_one_buffer(200, 2**16), "builds more array data than the file holds"),
    ("one-string-encoded-200-times", _encodes_of_one_string(200, 2**16), "builds more array data than the file holds"),
    ("bytes8-declaring-2**60-bytes", _data_pickle(b"\x8e" + struct.pack("<Q", 2**60) + b"abc"),
     "truncated or corrupted"),
    ("frame-declaring-2**60-bytes", b"\x80\x04\x95" + struct.pack("<Q", 2**60) + b"}.", "missing key.*'features'"),
    ("dict-key-of-shared-tuples", b"\x80\x02}" + _shared_tuples() + b"Ns.",
     "refusing a dict whose keys are not strings"),
    ("dict-built-with-a-shared-tuple-key", b"\x80\x02(" + _shared_tuples() + b"Nd.", "refusing a dict whose keys"),
    ("set-of-shared-tuples", b"\x80\x04\x8f(" + _shared_tuples() + b"\x90.", "refusing a set"),
    ("frozenset-of-shared-tuples", b"\x80\x04(" + _shared_tuples() + b"\x91.", "refusing a set"),
    ("lists-nested-100000-deep", _deep_lists(100_000), "features must be an array"),
    ("long-text-int-of-100000-digits", _data_pickle(b"L" + b"9" * 100_000 + b"L\n"), "truncated or corrupted"),
]


@pytest.mark.parametrize("content, match", [c[1:] for c in PICKLE_BOMBS], ids=[c[0] for c in PICKLE_BOMBS])
def test_a_pickle_that_would_expand_past_its_size_is_refused_before_allocating(tmp_path, content, match):
    path = tmp_path / "bomb.pickle"
    path.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            data.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Bounded by a multiple of the file (an opcode byte can make a Python object of ~100 bytes),
    # never the gigabytes these files declare.
    assert peak < 200 * len(content) + 2**20, f"peak {peak:,} bytes for a file of {len(content):,}"


def _npz(path, members, compress=zipfile.ZIP_STORED, descr="<f8"):
    """An .npz whose members have .npy headers declaring ``shape`` and hold ``nbytes`` zeros."""
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, shape, nbytes in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = compress
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
            with zf.open(info, "w", force_zip64=True) as f:
                f.write(header.getvalue())
                for start in range(0, nbytes, 2**20):
                    f.write(bytes(min(2**20, nbytes - start)))
    return path


_LABELS = ("labels.npy", (2,), 16)
NPZ_BOMBS = [
    ("header-declares-a-petabyte", [("features.npy", (10**15,), 0), _LABELS], {},
     r"'features' of shape \(1000000000000000,\) would take 8,000,000,000,000,000 bytes, more than the limit"),
    ("header-declares-more-than-its-data", [("features.npy", (10**4, 2), 80), _LABELS], {},
     r"'features' declares shape \(10000, 2\) \(160,000 bytes of float64\) but holds 80 bytes"),
    ("zip-bomb-64-MiB-of-zeros", [("features.npy", (2**22, 2), 2**26), _LABELS], {"compress": zipfile.ZIP_DEFLATED},
     r"'features' of shape \(4194304, 2\) would take 67,108,864 bytes, more than the limit max_bytes=1,048,576"),
    ("labels-past-the-limit-left", [("features.npy", (2**16, 1), 2**19), ("labels.npy", (2**16 + 1,), 2**19 + 8)],
     {"compress": zipfile.ZIP_DEFLATED},
     r"'labels' of shape \(65537,\) with the arrays before it would take 1,048,584 bytes, "
     r"more than the limit max_bytes=1,048,576"),
    ("void-items-of-2-GB", [("features.npy", (1, 1), 0), _LABELS], {"descr": "|V2000000000"},
     r"'features' of shape \(1, 1\) would take 2,000,000,000 bytes"),
    ("key-twice", [("features.npy", (2, 1), 16), ("features.npy", (2, 1), 16), _LABELS], {},
     "holds 'features' 2 times"),
]


@pytest.mark.parametrize("members, options, match", [c[1:] for c in NPZ_BOMBS], ids=[c[0] for c in NPZ_BOMBS])
def test_an_npz_that_declares_more_than_the_limit_is_refused_before_allocating(tmp_path, members, options, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name" for key-twice
        path = _npz(tmp_path / "bomb.npz", members, **options)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            data.load(path, max_bytes=2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**21, f"peak {peak:,} bytes"


CSV_FLOODS = [
    ("one-line-of-4-MiB", b"1," * 2**21 + b"0\n", r"line 1 is longer than the limit max_bytes=1,048,576 characters"),
    ("2**19-columns", b",".join([b"1"] * 2**19) + b"\n", "its values up to line 1 would take 4,194,304 bytes"),
    ("many-short-rows", b"1,0\n" * 2**18, r"its values up to line 65537 would take 1,048,592 bytes"),
    ("binary-garbage-without-a-newline", bytes(range(14, 256)) * 2**13, "line 1 is longer than the limit"),
]


@pytest.mark.parametrize("content, match", [c[1:] for c in CSV_FLOODS], ids=[c[0] for c in CSV_FLOODS])
def test_a_csv_past_the_limit_is_refused_line_by_line(tmp_path, content, match):
    path = tmp_path / "flood.csv"
    path.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            data.load(path, max_bytes=2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * 2**20, f"peak {peak:,} bytes"


def test_the_limit_can_be_raised_by_keyword_or_environment(tmp_path, monkeypatch, dataset):
    X, y = dataset  # 30 x 4 + 30 labels: 150 values, 1,200 bytes as float64
    np.savez(tmp_path / "d.npz", features=X, labels=y)
    data.save_pickle(tmp_path / "d.pickle", X, y)
    (tmp_path / "d.csv").write_text("\n".join(",".join(map(str, [*r, l])) for r, l in zip(X, y)))
    for name in ("d.npz", "d.pickle", "d.csv"):
        with pytest.raises(ValueError, match="more than the limit max_bytes=1,199"):
            data.load(tmp_path / name, max_bytes=1199)
        assert data.load(tmp_path / name, max_bytes=1200)[0].shape == (30, 4)
        monkeypatch.setenv("TWINNET_MAX_BYTES", "1199")
        with pytest.raises(ValueError, match="raise it with --max-bytes or TWINNET_MAX_BYTES"):
            data.load(tmp_path / name)
        monkeypatch.delenv("TWINNET_MAX_BYTES")


def test_a_pickle_larger_than_twice_the_limit_is_not_unpickled(tmp_path):
    path = tmp_path / "d.pickle"
    path.write_bytes(pickle.dumps({"features": [[float(i), 0.0] for i in range(20_000)], "labels": [0, 1] * 10_000}))
    size = path.stat().st_size
    limit = (size - 2**16 - 1) // 2  # the largest refused before unpickling
    with pytest.raises(ValueError,
                       match=f"a pickle of {size:,} bytes is more than twice the limit max_bytes={limit:,}"):
        data.load(path, max_bytes=limit)
    with pytest.raises(ValueError, match="its 60,000 values would take 480,000 bytes"):  # unpickled, then counted
        data.load(path, max_bytes=limit + 1)


@pytest.mark.parametrize("env, kwarg, match", [
    ("abc", None, "TWINNET_MAX_BYTES must be a positive whole number of bytes; got TWINNET_MAX_BYTES='abc'"),
    ("-5", None, "TWINNET_MAX_BYTES must be a positive"),
    (None, 0, "max_bytes must be a positive whole number of bytes; got max_bytes=0"),
    (None, 1.5e9, "max_bytes must be a positive whole number of bytes; got max_bytes=1500000000.0"),
    (None, "4GiB", "max_bytes must be a positive whole number"),
])
def test_a_bad_limit_is_named(tmp_path, monkeypatch, env, kwarg, match):
    data.save_pickle(tmp_path / "d.pickle", np.ones((2, 2)), [0, 1])
    if env is not None:
        monkeypatch.setenv("TWINNET_MAX_BYTES", env)
    with pytest.raises(ValueError, match=match):
        data.load(tmp_path / "d.pickle", max_bytes=kwarg)


def _fifo(path):
    os.mkfifo(path)


def _symlink_to(target):
    return lambda path: path.symlink_to(target)


def _socket(path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    return s


NOT_FILES = [
    ("fifo", "d.csv", _fifo, "is not a regular file"),
    ("symlink-to-dev-zero", "d.pickle", _symlink_to("/dev/zero"), "is not a regular file"),
    ("symlink-to-dev-urandom", "d.npz", _symlink_to("/dev/urandom"), "is not a regular file"),
    ("unix-socket", "d.csv", _socket, "is not a regular file"),
    ("directory-named-like-data", "d.pickle", os.mkdir, "is a directory"),
    ("dangling-symlink", "d.csv", _symlink_to("/nonexistent/x.csv"), "no such file"),
]


@pytest.mark.parametrize("name, make, match", [c[1:] for c in NOT_FILES], ids=[c[0] for c in NOT_FILES])
def test_only_regular_files_are_read(tmp_path, name, make, match):
    path = tmp_path / name
    keep = make(path)  # a FIFO with no writer: a plain open() would block forever
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        data.load(path)
    if keep is not None:
        keep.close()


def test_a_file_that_cannot_be_opened_is_a_value_error(tmp_path):
    path = tmp_path / "d.csv"
    path.symlink_to(path)  # a loop: refused by the kernel whoever asks, root included
    with pytest.raises(ValueError, match=r"d.csv: cannot be opened \(Too many levels of symbolic links\)"):
        data.load(path)


GOOD_CSV = "f1,f2,label\n1,2,0\n3,4,1\n"
CSV_TEXT = [  # (content, expected X or an error to match)
    ("bom-before-a-header", "\ufeff" + GOOD_CSV, [[1, 2], [3, 4]]),
    ("bom-before-the-first-row", "\ufeff1,2,0\n3,4,1\n", [[1, 2], [3, 4]]),
    ("crlf-line-ends", GOOD_CSV.replace("\n", "\r\n"), [[1, 2], [3, 4]]),
    ("blank-lines-and-spaces", "\n f1 , f2 , label \n\n 1 , 2 , 0 \n3,4,1\n\n", [[1, 2], [3, 4]]),
    ("first-row-with-a-typo", "1,2x,0\n3,4,1\n", r"line 1, column 2 is not a number: '2x' \(a header line must"),
    ("header-mixing-a-number", "f1,2,label\n1,2,0\n3,4,1\n", "line 1, column 1 is not a number: 'f1'"),
    ("typo-counted-in-file-lines", "f1,f2,label\n\n1,2,0\n\n3,4x,1\n", "line 5, column 2 is not a number: '4x'"),
    ("empty-field", "1,2,0\n3,,1\n", "line 2, column 2 is not a number: ''"),
    ("nul-in-a-field", "1,2,0\n3,4\0,1\n", r"line 2, column 2 is not a number: '4\\x00'"),
    ("nul-in-the-first-row", "1,2\0,0\n3,4,1\n", r"line 1, column 2 is not a number: '2\\x00'"),
    ("trailing-comma", "1,2,0\n3,4,1,\n", "line 2 has 4 cells, expected 3"),
    ("half-written-last-line", "1,2,0\n3,4,1\n5,", "line 3 has 2 cells, expected 3"),
    ("quoted-fields", '"1","2","0"\n"3","4","1"\n', "line 2, column 1 is not a number: '\"3\"'"),
    ("semicolons", "1;2;0\n3;4;1\n", "line 2, column 1 is not a number: '3;4;1'"),
    ("one-column", "x\n1\n0\n", "a CSV needs feature columns and a last label column; got 1 column"),
    ("nan-label", "1,2,0\n3,4,nan\n5,6,1\n", "labels contain NaN or inf"),
    ("inf-feature", "1,inf,0\n3,4,1\n", r"NaN or inf \(first at row 0, column 1\)"),
    ("only-blank-lines", "\n\n  \n", "the CSV file is empty"),
    ("only-a-bom", "\ufeff", "the CSV file is empty"),
    ("latin-1-bytes", b"f\xe9,f2,label\n1,2,0\n3,4,1\n", [[1, 2], [3, 4]]),
]


@pytest.mark.parametrize("content, expected", [c[1:] for c in CSV_TEXT], ids=[c[0] for c in CSV_TEXT])
def test_csv_keeps_every_row_and_names_the_line_and_column_of_a_bad_field(tmp_path, content, expected):
    path = _write(tmp_path / "d.csv", content.encode() if isinstance(content, str) else content)
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            data.load(path)
    else:
        X, y = data.load(path)
        assert_array_equal(X, expected)
        assert_array_equal(y, [0, 1])


def _cuts(content, n=12):
    """``n`` prefixes of ``content``, spread over its length: files cut while being written."""
    return sorted({len(content) * i // n for i in range(1, n)})


_GOOD_PICKLES = {p: pickle.dumps(GOOD, protocol=p) for p in (2, 4, 5)}
_TRUNCATED = [(f"pickle-protocol-{p}-cut-at-{k}", "t.pickle", raw[:k]) for p, raw in _GOOD_PICKLES.items()
              for k in _cuts(raw)]
_npz_bytes = io.BytesIO()
np.savez_compressed(_npz_bytes, **GOOD)
_TRUNCATED += [(f"npz-cut-at-{k}", "t.npz", _npz_bytes.getvalue()[:k]) for k in _cuts(_npz_bytes.getvalue())]


@pytest.mark.parametrize("filename, content", [c[1:] for c in _TRUNCATED], ids=[c[0] for c in _TRUNCATED])
def test_a_truncated_file_is_a_value_error(tmp_path, filename, content):
    with pytest.raises(ValueError, match="truncated|corrupted|not a valid .npz"):
        data.load(_write(tmp_path / filename, content))


def _np_pickle(features, labels=(0, 1)):
    return pickle.dumps({"features": features, "labels": np.asarray(labels)})


ODD_CONTENT = [
    ("pickle-object-array", "o.pickle", _np_pickle(np.array([[1, 2]], dtype=object)), "refusing dtype dtype.'O'"),
    ("pickle-text-array", "s.pickle", _np_pickle(np.array([["1", "2"], ["3", "4"]])), "refusing dtype dtype.'<U1'"),
    ("pickle-structured-array", "r.pickle", _np_pickle(np.zeros(2, dtype=[("a", "f8"), ("b", "f8")])),
     "refusing dtype"),
    ("pickle-complex-features", "c.pickle", _np_pickle(np.ones((2, 2), dtype=complex)), "refusing dtype"),
    ("pickle-complex-list", "cl.pickle", pickle.dumps({"features": [[1j, 2.0], [3.0, 4.0]], "labels": [0, 1]}),
     "refusing to unpickle builtins.complex"),
    ("pickle-3d-features", "3.pickle", _np_pickle(np.ones((2, 2, 2))),
     r"features must be 2-D .* got features.shape=\(2, 2, 2\)"),
    ("pickle-ragged-lists", "rg.pickle", pickle.dumps({"features": [[1.0, 2.0], [3.0]], "labels": [0, 1]}),
     "features must be an array"),
    ("pickle-nan-labels", "nl.pickle", _np_pickle(np.ones((3, 2)), [0.0, np.nan, 1.0]), "labels contain NaN or inf"),
    ("pickle-int-keys", "ik.pickle", pickle.dumps({1: np.ones((2, 2)), "labels": [0, 1]}),
     "dict whose keys are not strings"),
    ("pickle-a-set", "st.pickle", pickle.dumps({"features": np.ones((2, 2)), "labels": [0, 1], "x": {1}}),
     "refusing a set"),
    ("pickle-set-state-of-a-list", "sl.pickle", b"\x80\x02]}b.", "refusing to set the state of a list"),
    ("pickle-persistent-id", "pid.pickle", b"\x80\x02P0\n.",
     "corrupted pickle .UnpicklingError: unsupported persistent id"),
    ("pickle-out-of-band-buffer", "oob.pickle", b"\x80\x05\x97.",
     "corrupted pickle .UnpicklingError: pickle stream refers to out-of-band"),
    ("pickle-extension-code", "ext.pickle", b"\x80\x02\x82\x7f.",
     "corrupted pickle .ValueError: unregistered extension code"),
    ("pickle-stack-global-of-os-system", "sg.pickle", b"\x80\x04\x8c\x02os\x8c\x06system\x93.",
     "refusing to unpickle os.system"),
    ("npz-3d-features", "3.npz", {"features": np.ones((2, 2, 2)), "labels": [0, 1]}, "features must be 2-D"),
    ("npz-text-features", "s.npz", {"features": np.array([["a", "b"], ["c", "d"]]), "labels": [0, 1]},
     "features must hold real numbers; got dtype <U1"),
    ("npz-complex-features", "c.npz", {"features": np.ones((2, 2), dtype=complex), "labels": [0, 1]},
     "features must hold real numbers; got dtype complex128"),
    ("npz-nan-labels", "nl.npz", {"features": np.ones((3, 2)), "labels": [0.0, np.nan, 1.0]},
     "labels contain NaN or inf"),
    ("npz-1-d-labels-of-length-0", "e.npz", {"features": np.ones((0, 2)), "labels": np.ones(0)},
     "features is empty"),
    ("pickle-named-npz", "p.npz", pickle.dumps(GOOD), r"not a valid .npz file \(not a zip archive|BadZipFile"),
    ("npz-named-pickle", "z.pickle", "npz", "truncated or corrupted pickle"),
    ("csv-named-pickle", "c.pickle", b"1,2,0\n3,4,1\n", "truncated or corrupted pickle"),
    ("pickle-named-csv", "p.csv", pickle.dumps(GOOD, protocol=2), "line 2, column 1 is not a number"),
]


@pytest.mark.parametrize("filename, content, match", [c[1:] for c in ODD_CONTENT], ids=[c[0] for c in ODD_CONTENT])
def test_odd_content_and_wrong_extensions_are_named(tmp_path, filename, content, match):
    path = tmp_path / filename
    if isinstance(content, dict):
        np.savez(path.with_suffix(".npz"), **content)
        path.with_suffix(".npz").rename(path)
    elif content == "npz":
        np.savez(tmp_path / "x.npz", **GOOD)
        (tmp_path / "x.npz").rename(path)
    else:
        _write(path, content)
    with pytest.raises(ValueError, match=match):
        data.load(path)
