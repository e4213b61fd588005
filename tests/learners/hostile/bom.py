"""A learner's file saved by Windows Notepad: it starts with a byte-order mark."""
import numpy as np


def relu(Z):
    return np.maximum(0, Z), Z
