"""Runner of the ``functional`` engine: the notebook's ``L_layer_model``, one iteration per call."""

import numpy as np

from twinnet.lab.results import Trained
from twinnet.lab.runners._timing import timed


def run(config, split, initial, observe):
    from twinnet import functional as F

    X = np.ascontiguousarray(split.X_train.T)
    # labels in the features' dtype, so that float32 runs stay float32
    Y = split.y_train.reshape(1, -1).astype(X.dtype)
    parameters, curve = initial, []

    def train():
        nonlocal parameters
        # one iteration per call, so that every epoch can be observed
        for epoch in range(config.epochs):
            parameters, costs = F.L_layer_model(X, Y, list(config.layers), config.learning_rate, 1,
                                                 initial_parameters=parameters, return_costs=True)
            curve.append(costs[0])
            observe(epoch + 1, lambda: parameters)  # noqa: B023  (read at once, by the observer)

    _, seconds = timed(train)
    return Trained(curve, parameters, seconds)
