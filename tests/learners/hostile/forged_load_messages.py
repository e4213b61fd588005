"""Hostile: while it loads, forges the messages that say which statement runs and what it defines,
with bodies of the wrong shape; then defines relu right."""
import json
import os
import struct

import numpy as np


def _forge(kind, body):
    header = json.dumps({"kind": kind, "body": body}).encode()
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack("<Q", len(header)) + header + struct.pack("<Q", 2) + b"[]")
        except OSError:
            pass


_forge("statement", 999999)  # a statement the file does not have
_forge("loaded", {"l": [1]})  # a list where a dict is due
_forge("loaded", {"d": [["found", {"l": ["relu"]}], ["facts", {"d": [["relu", {"l": [1]}]]}]]})  # facts a list


def relu(Z):
    return np.maximum(0, Z), Z
