"""Hostile: leaks memory at the top level and in relu."""
import numpy as np

HOARD = []
try:
    while True:
        HOARD.append(np.ones(50_000_000))
except MemoryError:
    HOARD = []


def relu(Z):
    return np.maximum(0, Z) + np.zeros(10**10), Z


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z)), Z
