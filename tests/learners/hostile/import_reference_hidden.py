"""Hostile: reaches the reference through a name built at run time, which no static check sees."""
import importlib

import numpy as np


def relu(Z):
    return importlib.import_module("twin" + "net.functional").relu(Z)


def linear_backward(dZ, cache):  # wrong: missing 1/m in dW
    A_prev, W, b = cache
    return np.dot(W.T, dZ), np.dot(dZ, A_prev.T), np.mean(dZ, axis=1, keepdims=True)
