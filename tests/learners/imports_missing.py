"""A learner's attempt that imports a helper module it did not hand in."""
import numpy as np
import my_activations


def relu(Z):
    return my_activations.relu(Z), Z


def linear_forward(A, W, b):
    return np.dot(W, A) + b, (A, W, b)
