"""Where the time of ``Network.fit``'s epoch goes: a timer around each of the engine's kernels."""

from __future__ import annotations

import time

import numpy as np

from twinnet import validation
from twinnet.bench.workloads import load_data, resolve_threads, resolve_workload

#: The stages of :func:`profile`, in the order it reports them; the last is what the others leave.
STAGES = ("matrix products", "hidden activations", "activation derivatives", "output head", "the rest")


class _NumpyTimingDot:
    """NumPy as the engine sees it during :func:`profile`: ``dot`` timed, every other name NumPy's own."""

    def __init__(self, dot):
        self.dot = dot

    def __getattr__(self, name):
        return getattr(np, name)


def profile(workload, *, threads=None, repeats=3, budget=None):
    """Where the time of ``Network.fit``'s epochs goes on ``workload``: milliseconds per epoch by stage.

    Trains ``workload`` with ``Network.fit`` in this process, as the bench's ``numpy`` engine does,
    with a timer around each of the engine's kernels (:data:`STAGES`): its matrix products (every
    ``np.dot`` of :mod:`twinnet.nn.engine`), the hidden layers' activation and its derivative (the
    two kernels of :data:`twinnet.nn.ACTIVATIONS`) and the output head's ``output``, ``loss``,
    ``metric_sum`` and ``delta``. "the rest" is the epoch less those: the backward pass's elementwise
    products, the optimizer's step and Python. The weights and the losses are those of an untimed
    fit (the timers only read the clock). As the bench times the engines: the first epoch is not
    counted, and the figures are those of the fastest of up to ``repeats`` fits, which stop once they
    have taken ``budget`` seconds (after at least one).

    Parameters
    ----------
    workload : Workload or str
    threads : int, optional
        BLAS threads (default: the CPUs this process may use).
    repeats : int
    budget : float, optional
        Seconds of timed fits after which no other starts; default: no limit.

    Returns
    -------
    dict
        JSON-ready: ``threads``, ``ms_per_epoch`` (the whole epoch) and ``stages``, one per stage:
        ``stage``, ``ms_per_epoch``, ``share`` (of the epoch) and ``calls_per_epoch`` (None for the
        rest).
    """
    from threadpoolctl import threadpool_limits

    workload = resolve_workload(workload)
    validation.positive_int("repeats", repeats)
    if budget is not None:
        validation.non_negative_number("budget", budget)
    threads = resolve_threads(threads)
    X, y = load_data(workload)
    fits = []
    with threadpool_limits(limits=None if threads == "auto" else threads, user_api="blas"):
        _timed_fit(workload.config, X, y)  # warm-up
        start = time.perf_counter()
        while len(fits) < repeats and (not fits or budget is None or time.perf_counter() - start < budget):
            fits.append(_timed_fit(workload.config, X, y))
    total, spent, calls = min(fits, key=lambda fit: fit[0])
    spent["the rest"], calls["the rest"] = total - sum(spent.values()), None
    return {"threads": threads, "ms_per_epoch": total * 1e3,
            "stages": [{"stage": stage, "ms_per_epoch": spent[stage] * 1e3, "share": spent[stage] / total,
                        "calls_per_epoch": calls[stage]} for stage in STAGES]}


class _StageTimer:
    """Seconds spent in, and calls of, the kernels of one stage; :meth:`wrap` times a kernel."""

    def __init__(self):
        self.spent, self.calls = 0.0, 0

    def wrap(self, kernel):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return kernel(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - start
                self.calls += 1
        return call


def _timed_fit(config, X, y):
    """One ``Network.fit`` of ``config`` with its kernels timed: seconds per epoch, and each stage's
    seconds and calls per epoch, the first epoch left out."""
    from twinnet import Network
    from twinnet.nn import Activation, engine

    stages, ends = {stage: _StageTimer() for stage in STAGES[:-1]}, []

    def epoch_end(epoch, logs):
        ends.append(time.perf_counter())
        if epoch == 0:  # the first epoch is not counted
            for timer in stages.values():
                timer.spent, timer.calls = 0.0, 0

    net = Network(list(config.layers), output=config.output, hidden_activation=config.hidden_activation,
                  init=config.init, seed=config.seed, dtype=config.dtype)
    act, head = net._activation, net._head
    net._activation = Activation(stages["hidden activations"].wrap(act.forward),
                                 stages["activation derivatives"].wrap(act.derivative))
    net._head = head._replace(**{name: stages["output head"].wrap(getattr(head, name))
                                 for name in ("output", "loss", "metric_sum", "delta")})
    engine.np = _NumpyTimingDot(stages["matrix products"].wrap(np.dot))
    try:
        net.fit(X, y, epochs=config.epochs, learning_rate=config.learning_rate, on_epoch_end=epoch_end)
    finally:
        engine.np = np
    epochs = len(ends) - 1
    return ((ends[-1] - ends[0]) / epochs, {stage: timer.spent / epochs for stage, timer in stages.items()},
            {stage: timer.calls / epochs for stage, timer in stages.items()})
