"""Hostile: floods stdout and stderr, and prints fake result lines onto them."""
import os
import sys

import numpy as np

FAKE = "relu                        PASS    FORGED-LINE\n"
for _ in range(2000):
    print(FAKE * 100, end="")
    print(FAKE * 100, end="", file=sys.stderr)
for fd in (1, 2):
    os.write(fd, FAKE.encode() * 1000)


def relu(Z):
    print(FAKE * 1000)
    return np.abs(Z), Z  # wrong
