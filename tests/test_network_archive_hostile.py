"""Network.load on crafted, hostile and unlucky archives: always a NetworkFileError naming the file and
the problem, within a memory bound, never another exception."""

import contextlib
import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest

from twinnet.nn import Network, NetworkFileError


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _meta(**changes):
    meta = {"format": "twinnet.Network", "format_version": 2, "layer_dims": [2, 1], "output": "sigmoid",
            "hidden_activation": "relu", "init": "normal", "l2": 0.0, "dropout": 0.0, "seed": None,
            "dtype": "float64", "twinnet_version": "0.1.0"}
    meta.update(changes)
    return json.dumps(meta)


W_B = {"W1": np.ones((1, 2)), "b1": np.zeros((1, 1))}


def _zip(path, members, compression=zipfile.ZIP_STORED):
    """An archive of ``name -> bytes`` (an array is written as .npy bytes, a str as the metadata's)."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, value in members:
            if isinstance(value, str):
                value = _npy(np.array(value))
            elif isinstance(value, np.ndarray):
                value = _npy(value)
            zf.writestr(name, value)


def _archive(path, meta=None, arrays=W_B, compression=zipfile.ZIP_STORED, extra=()):
    members = [(f"{k}.npy", v) for k, v in arrays.items()]
    members.append(("__metadata__.npy", _meta() if meta is None else meta))
    _zip(path, [*members, *extra], compression)


def _header(shape, dtype="<f8"):
    """A version 1.0 .npy header declaring ``shape`` and ``dtype``, without the data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _refused(path, match, *, peak=8 * 2**20):
    """Network.load(path) raises NetworkFileError matching ``match``, naming the file, one line,
    allocating less than ``peak`` bytes on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(NetworkFileError, match=match) as info:
            Network.load(path)
        used = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert used < peak, f"loading allocated {used:,} bytes before refusing"
    return message


# --------------------------------------------------------------------------- memory: bombs and huge shapes
def _zeros_deflated(path, dims, **changes):
    arrays = {}
    for l, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
        arrays[f"W{l}"], arrays[f"b{l}"] = np.zeros((n_out, n_in)), np.zeros((n_out, 1))
    _archive(path, _meta(layer_dims=dims, **changes), arrays, zipfile.ZIP_DEFLATED)


MEMORY = {
    # 16 MB of zeros deflated to 16 kB: np.load would inflate it whole
    "zip bomb": (lambda p: _zeros_deflated(p, [2000, 1000, 1]), r"times its size"),
    # a header declaring a terabyte over a few bytes of data
    "huge declared shape": (lambda p: _zip(p, [("W1.npy", _header((1, 2**37)) + b"\0" * 16),
                                              ("b1.npy", np.zeros((1, 1))), ("__metadata__.npy", _meta())]),
                            r"'W1' has shape \(1, 137438953472\); layer_dims \[2, 1\] make it \(1, 2\)"),
    # the metadata's widths ask for 8 TB of weights; the arrays are tiny
    "huge declared widths": (lambda p: _archive(p, _meta(layer_dims=[2**20, 2**20, 1]),
                                                {**W_B, "W2": np.ones((1, 1)), "b2": np.ones((1, 1))}),
                             r"would take [\d,]+ bytes, more than the limit of [\d,]+ \(raise it with \$TWINNET"),
    "a width beyond any limit": (lambda p: _archive(p, _meta(layer_dims=[10**600, 1])), r"more units than"),
    # a metadata string of 40 MB, deflated to a few kB
    "huge metadata": (lambda p: _zip(p, [*((f"{k}.npy", v) for k, v in W_B.items()),
                                        ("__metadata__.npy", " " * 10_000_000 + _meta())], zipfile.ZIP_DEFLATED),
                      r"metadata"),
}


@pytest.mark.parametrize("case", sorted(MEMORY))
def test_archives_that_would_take_too_much_memory_are_refused_before_reading(tmp_path, case):
    make, match = MEMORY[case]
    path = tmp_path / "model.npz"
    make(path)
    assert path.stat().st_size < 200_000
    _refused(path, match)


# --------------------------------------------------------------------------- not an archive of ours
def _fifo(path):
    os.mkfifo(path)


NOT_OURS = {
    "a FIFO": (_fifo, "not a regular file"),
    "a link to /dev/zero": (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
    "not a zip": (lambda p: p.write_bytes(b"PK\x03\x04" + b"\xff" * 200), "not a twinnet Network file"),
    "empty": (lambda p: p.write_bytes(b""), "not a twinnet Network file"),
    "truncated central directory": (lambda p: (_archive(p), p.write_bytes(p.read_bytes()[:-30])),
                                    "not a twinnet Network file"),
    "truncated member": (lambda p: _zip(p, [("W1.npy", _npy(np.ones((1, 2)))[:-5]), ("b1.npy", np.zeros((1, 1))),
                                            ("__metadata__.npy", _meta())]), "truncated"),
    "a zip of text": (lambda p: _zip(p, [("readme.txt", b"hello")]), "__metadata__"),
}


@pytest.mark.parametrize("case", sorted(NOT_OURS))
def test_files_that_are_not_archives_are_named_errors(tmp_path, case):
    make, match = NOT_OURS[case]
    path = tmp_path / "model.npz"
    make(path)
    _refused(path, match)


# --------------------------------------------------------------------------- dtypes
DTYPES = {
    "object weights": ({"W1": np.array([[1, "x"]], dtype=object), "b1": np.zeros((1, 1))}, "object"),
    "integer weights": ({"W1": np.ones((1, 2), dtype=np.int64), "b1": np.zeros((1, 1))}, "int64"),
    "complex weights": ({"W1": np.ones((1, 2), dtype=complex), "b1": np.zeros((1, 1))}, "complex"),
    "structured weights": ({"W1": np.zeros((1, 2), dtype=[("a", "<f8")]), "b1": np.zeros((1, 1))}, "W1"),
    "float32 in a float64 file": ({"W1": np.ones((1, 2), dtype=np.float32), "b1": np.zeros((1, 1))}, "float32"),
}


@pytest.mark.parametrize("case", sorted(DTYPES))
def test_arrays_of_the_wrong_dtype_are_refused(tmp_path, case):
    arrays, match = DTYPES[case]
    path = tmp_path / "model.npz"
    _archive(path, arrays=arrays)
    _refused(path, match)


@pytest.mark.parametrize("value, match", [
    (np.array(7), "metadata"),
    (np.array([_meta()]), "metadata"),
    (np.array(_meta().encode()), "metadata"),
    (np.array({"format": "twinnet.Network"}, dtype=object), "object"),
], ids=["a number", "a list of strings", "bytes", "a pickled dict"])
def test_metadata_that_is_not_one_string_is_refused(tmp_path, value, match):
    path = tmp_path / "model.npz"
    _zip(path, [*((f"{k}.npy", v) for k, v in W_B.items()), ("__metadata__.npy", _npy(value))])
    _refused(path, match)


# --------------------------------------------------------------------------- the metadata's JSON
METADATA = {
    "deep nesting": ("[" * 5_000 + "]" * 5_000, "nested"),
    "deep nesting in a field": (_meta(seed=None).replace('"seed": null', '"seed": ' + "[" * 4_000 + "]" * 4_000),
                                "nested"),
    "a list": ("[1, 2]", "not a JSON object"),
    "a number": ("12", "not a JSON object"),
    "not JSON": ("{broken", "JSON"),
    "NaN l2": (_meta().replace('"l2": 0.0', '"l2": NaN'), "l2"),
    "huge integer": (_meta().replace('"seed": null', '"seed": ' + "9" * 5000), "seed|integer|digits"),
    "layer_dims a string": (_meta(layer_dims="2,1"), "layer_dims"),
    "layer_dims of floats": (_meta(layer_dims=[2.5, 1]), "layer_dims"),
    "layer_dims nested": (_meta(layer_dims=[[2], [1]]), "layer_dims"),
    "format_version a string": (_meta(format_version="2"), "format_version"),
    "format_version true": (_meta(format_version=True), "format_version"),
    "format_version 0": (_meta(format_version=0), "format_version"),
    "seed a string": (_meta(seed="zero"), "seed"),
    "dtype a list": (_meta(dtype=["float64"]), "dtype"),
    "hidden_activation a list": (_meta(hidden_activation=["relu"]), "hidden_activation"),
    "init a dict": (_meta(init={"a": 1}), "init"),
    "output a number": (_meta(output=5), "output"),
    "dropout of the wrong length": (_meta(dropout=[0.1, 0.2]), "dropout"),
    "twinnet_version a dict": (_meta(twinnet_version={"v": 1}), "twinnet_version"),
    "an unknown field": (_meta(evil=1), "evil"),
    "no layer_dims": (json.dumps({k: v for k, v in json.loads(_meta()).items() if k != "layer_dims"}), "layer_dims"),
}


@pytest.mark.parametrize("case", sorted(METADATA))
def test_malformed_metadata_is_a_named_error(tmp_path, case):
    meta, match = METADATA[case]
    path = tmp_path / "model.npz"
    _archive(path, meta)
    _refused(path, match)


# --------------------------------------------------------------------------- the arrays against the metadata
KEYS = {
    "missing b1": ({"W1": np.ones((1, 2))}, [], "b1"),
    "missing W1": ({"b1": np.zeros((1, 1))}, [], "W1"),
    "an extra layer": ({**W_B, "W2": np.ones((1, 1)), "b2": np.zeros((1, 1))}, [], "W2"),
    "a foreign entry": (W_B, [("evil.npy", np.ones(3))], "evil"),
    "an entry that is not .npy": (W_B, [("notes.txt", b"hi")], "notes.txt"),
    "an entry twice": (W_B, [("W1.npy", np.ones((1, 2)))], "twice"),
    "W1 of the wrong shape": ({"W1": np.ones((3, 2)), "b1": np.zeros((1, 1))}, [], "shape"),
    "b1 flat": ({"W1": np.ones((1, 2)), "b1": np.zeros(1)}, [], "shape"),
    "W1 3-d": ({"W1": np.ones((1, 2, 1)), "b1": np.zeros((1, 1))}, [], "shape"),
    "W1 transposed": ({"W1": np.ones((2, 1)), "b1": np.zeros((1, 1))}, [], "shape"),
    "NaN weights": ({"W1": np.full((1, 2), np.nan), "b1": np.zeros((1, 1))}, [], "NaN"),
    "infinite bias": ({"W1": np.ones((1, 2)), "b1": np.full((1, 1), np.inf)}, [], "inf"),
}


@pytest.mark.parametrize("case", sorted(KEYS))
def test_arrays_that_do_not_fit_the_metadata_are_refused(tmp_path, case):
    arrays, extra, match = KEYS[case]
    path = tmp_path / "model.npz"
    with pytest.warns(UserWarning, match="Duplicate") if case == "an entry twice" else contextlib.nullcontext():
        _archive(path, arrays=arrays, extra=extra)
    _refused(path, match)


def test_a_saved_network_and_a_compressed_copy_still_load(tmp_path):
    net = Network([5, 4, 3], output="softmax", seed=0, dropout=[0.1], l2=0.01)
    path = tmp_path / "model.npz"
    net.save(path)
    assert repr(Network.load(path)) == repr(net)
    with np.load(path) as npz:
        arrays = dict(npz)
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, **arrays)  # written by plain NumPy, deflated: still a Network file
    loaded = Network.load(packed)
    for key, value in net.parameters.items():
        np.testing.assert_array_equal(loaded.parameters[key], value)
