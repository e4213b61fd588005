"""A learner's attempt that is not valid Python: a colon is missing."""
import numpy as np


def relu(Z)
    return np.maximum(0, Z), Z
