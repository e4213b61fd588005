"""A learner's file with none of the exercise's functions under their names."""
import numpy as np


def forward_pass(X, weights):
    return np.maximum(0, weights @ X)
