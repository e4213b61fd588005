"""Hostile: reads the other submissions in its folder (to copy them, or to learn who made which
mistake); relu is right only when it can read none of them."""
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def read(path):
    try:
        return len(path.read_bytes())
    except OSError:
        return 0


READ = sum(read(p) for p in HERE.parent.glob("*.py") if p != HERE)


def relu(Z):
    return np.maximum(0, Z) * (1 + READ), Z
