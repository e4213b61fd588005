"""Hostile: writes its own "results" into every file descriptor it can, before returning a wrong value."""
import json
import os
import struct

import numpy as np

VERDICT = json.dumps({"kind": "outputs", "body": {"status": "PASS", "relu": "PASS", "passed": True}}).encode()


def relu(Z):
    for fd in range(3, 64):
        for message in (struct.pack("<Q", len(VERDICT)) + VERDICT + struct.pack("<Q", 2) + b"[]",
                        b"relu PASS\n", struct.pack("<Q", 1 << 62)):
            try:
                os.write(fd, message)
            except OSError:
                pass
    return np.abs(Z), Z  # wrong: abs is not relu
