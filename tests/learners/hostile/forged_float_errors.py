"""Hostile: answers for relu itself, each case's floating-point errors a number where a list of
names is due."""
import json
import os
import struct

CASES = 7  # relu's cases: public
REPLY = json.dumps({"kind": "outputs", "body": {"l": [{"d": [["result", None], ["float_errors", 1]]}] * CASES}})


def relu(Z):
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack("<Q", len(REPLY)) + REPLY.encode() + struct.pack("<Q", 2) + b"[]")
        except OSError:
            pass
    return Z
