"""The peak memory that ``Network.fit`` allocates, against the bytes it must hold."""

from __future__ import annotations

import numpy as np


def fit_memory(workload, X, y, initial):
    """Peak memory that ``Network.fit`` allocates, against what it must hold.

    Measured with :mod:`tracemalloc` (NumPy reports its array buffers to it) over a two-epoch fit
    of ``workload``; the caller's ``X`` and ``y`` are not counted.

    Returns
    -------
    dict
        ``peak_bytes``: the peak of the memory allocated during ``fit`` above what was allocated
        before it. ``needed_bytes``: data (``X`` and the labels in the workload's dtype),
        activations (one value per unit and example, output included) and gradients (one per
        parameter), with their parts ``data_bytes``, ``activation_bytes`` and ``gradient_bytes``.
        ``ratio``: ``peak_bytes / needed_bytes``.
    """
    import tracemalloc

    from twinnet import Network

    config = workload.config
    net = Network.from_parameters(initial, output=config.output, dtype=config.dtype)
    itemsize = np.dtype(config.dtype).itemsize
    m = X.shape[0]
    data_bytes = m * (config.layers[0] + 1) * itemsize
    activation_bytes = m * sum(config.layers[1:]) * itemsize
    gradient_bytes = net.n_params * itemsize
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        net.fit(X, y, epochs=2, learning_rate=config.learning_rate)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()
    needed = data_bytes + activation_bytes + gradient_bytes
    return {"peak_bytes": peak, "needed_bytes": needed, "data_bytes": data_bytes,
            "activation_bytes": activation_bytes, "gradient_bytes": gradient_bytes,
            "ratio": peak / needed}
