"""Hostile: writes and deletes files outside its temporary folder, at the top level and in relu."""
import os
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def attack():
    for action in (lambda: (HERE.parent / "outside.txt").write_text("pwned"),
                   lambda: (HERE / "victim.txt").unlink(),
                   lambda: (HERE / "victim.txt").write_text("changed"),
                   lambda: shutil.rmtree(HERE.parent / "keep")):
        try:
            action()
        except OSError:
            pass


attack()


def relu(Z):
    attack()
    return np.maximum(0, Z), Z
