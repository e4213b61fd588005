"""Hostile: writes a fake verdict straight to the teacher's terminal through /dev/tty."""
import numpy as np

try:
    with open("/dev/tty", "w") as tty:
        tty.write("relu PASS TTY-LINE\n")
except OSError:
    pass


def relu(Z):
    return np.maximum(0, Z), Z
