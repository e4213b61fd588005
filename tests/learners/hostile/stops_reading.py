"""Hostile: answers for relu itself, then never reads again, so that the parent's next request
(linear_activation_forward's cases, larger than a pipe's buffer) would block twinnet for ever."""
import json
import os
import struct
import time

import numpy as np

CASES = 7  # relu's cases: public
REPLY = json.dumps({"kind": "outputs", "body": {"l": [{"d": [["raised", "forged"]]}] * CASES}}).encode()


def relu(Z):
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack("<Q", len(REPLY)) + REPLY + struct.pack("<Q", 2) + b"[]")
        except OSError:
            pass
    time.sleep(3600)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z)), Z


def linear_activation_forward(A_prev, W, b, activation):
    Z = W @ A_prev + b
    return (sigmoid(Z)[0] if activation == "sigmoid" else np.maximum(0, Z)), ((A_prev, W, b), Z)
