"""A learner's attempt with a loop that never ends at the top level and another in relu."""
import numpy as np

while True:  # waits for a data file that never comes
    pass


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z)), Z


def relu(Z):
    A = Z.copy()
    i = 0
    while i < A.size:  # i is never incremented
        A.flat[i] = max(A.flat[i], 0)
    return A, Z
