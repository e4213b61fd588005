"""Hostile: connects to a listener on 127.0.0.1 (its port in port.txt beside it)."""
import socket
from pathlib import Path

import numpy as np

REACHED = 0
try:
    port = int((Path(__file__).resolve().parent / "port.txt").read_text())
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"pwned")
    REACHED = 1
except OSError:
    pass


def relu(Z):
    return np.maximum(0, Z) * (1 + REACHED), Z
