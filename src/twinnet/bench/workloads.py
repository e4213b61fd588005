"""The bench's workloads: what is trained, on which data, and the matrix products an epoch does.

A :class:`Workload` is a :class:`~twinnet.lab.config.RunConfig` plus its data size and targets;
:data:`WORKLOADS` are those ``twinnet bench`` runs by name.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from twinnet import validation
from twinnet.lab.config import RunConfig, default_layers
from twinnet.nn.heads import head

#: Engines in the order they are run and printed: ``numpy`` (``twinnet.Network``) first, the
#: reference of the relative times.
ENGINE_ORDER = ("numpy", "functional", "sklearn", "torch", "tf-loop", "keras")

#: Data a workload can train on.
DATA = ("gaussian", "synthetic", "digits10")


#: The fields of a :class:`Workload` that are targets.
_TARGETS = ("speedup_target", "roofline_target", "memory_target", "products_target")


@dataclass(frozen=True)
class Workload:
    """A benchmark: a run's :class:`~twinnet.lab.config.RunConfig`, and what only the bench needs.

    Parameters
    ----------
    name : str
    config : RunConfig
        Its ``layers`` (input first), ``output``, ``epochs`` (at least 2: the first epoch is not
        timed), ``dtype``, ``learning_rate``, ``init``, ``optimizer`` and ``batch_size`` are the
        workload's. Its ``data`` is ``"synthetic"`` or ``"digits10"``: the training part (80 %,
        standardized) of that built-in data set, or ``"gaussian"``: ``n_train`` standard normal examples
        labelled by the sign of a random linear function (a fixed seed), or for a softmax head of
        ``K`` units by the largest of ``K`` random linear functions.
    n_train : int
        Number of training examples (for ``"synthetic"``, the size of its training part).
    speedup_target, roofline_target, memory_target : float
        The performance targets: ``numpy`` at least ``speedup_target`` times faster than every
        other engine, its time at most ``roofline_target`` times the roofline's, and the peak
        extra memory of ``Network.fit`` at most ``memory_target`` times the bytes of data,
        activations and gradients.
    products_target : float or None
        The full batch's products in ``Network``'s layouts at most ``products_target`` times as
        long as in NumPy's fastest, the two timed in turn (:func:`~twinnet.bench.gemm.fastest_layouts`);
        None: not checked.
    """

    name: str
    config: RunConfig
    n_train: int
    speedup_target: float = 1.0
    roofline_target: float = 1.5
    memory_target: float = 1.5
    products_target: float | None = None

    def record(self):
        """JSON-ready: the name, the config's fields, ``n_train`` and the targets."""
        return {"name": self.name, **self.config.to_dict(), "n_train": self.n_train,
                **{key: getattr(self, key) for key in _TARGETS}}

    @classmethod
    def from_record(cls, record):
        """The workload that :meth:`record` describes (how a child of the bench receives it)."""
        config = {f.name: record[f.name] for f in fields(RunConfig) if f.name in record}
        if config.get("layers") is not None:
            config["layers"] = tuple(config["layers"])
        return cls(record["name"], RunConfig(**config), record["n_train"],
                   **{key: record[key] for key in _TARGETS})


WORKLOADS = {
    # the notebook's experiment: its network, its 250 epochs, data shaped like its data.pickle
    "seed": Workload("seed", RunConfig(layers=default_layers(100)), 1600, speedup_target=2.2, roofline_target=1.15),
    # an MNIST-sized network whose time is all in large products
    "large": Workload("large", RunConfig(data="gaussian", layers=(784, 512, 256, 1), epochs=5, dtype="float32",
                                         learning_rate=0.01, init="glorot"), 20000, speedup_target=1.1,
                      roofline_target=1.1, products_target=1.03),
    # the MNIST shape itself: ten classes, a softmax head
    "large10": Workload("large10", RunConfig(data="gaussian", layers=(784, 512, 256, 10), output="softmax", epochs=5,
                                             dtype="float32", learning_rate=0.01, init="glorot"), 20000,
                        speedup_target=1.1, roofline_target=1.1, products_target=1.03),
    # small products, where threads cost more than they give on a busy machine: the issue's
    # mini-batch training (twinnet bench --batch-size); its roofline stays the full batch's products
    "digits10": Workload("digits10", RunConfig(data="digits10", layers=(64, 64, 32, 10), output="softmax",
                                               epochs=30, optimizer="adam", learning_rate=0.001), 1437),
}


def resolve_workload(workload):
    """``workload``, a :class:`Workload` or a key of :data:`WORKLOADS`, checked; or ``ValueError``."""
    if isinstance(workload, str):
        workload = WORKLOADS[validation.choice("workload", workload, WORKLOADS)]
    if not isinstance(workload, Workload):
        raise ValueError(  # noqa: TRY004  (the project raises ValueError for every bad argument)
            f"workload must be a Workload or one of {sorted(WORKLOADS)}; got {workload!r}.")
    workload.config.validate()
    if workload.config.epochs < 2:
        raise ValueError(f"epochs must be an integer >= 2 (the first epoch is not timed); "
                         f"got epochs={workload.config.epochs!r}.")
    validation.choice("data", workload.config.data, DATA)
    validation.positive_int("n_train", workload.n_train)
    return workload


def resolve_threads(threads):
    """``threads`` checked, or by default the CPUs this process may use; ``"auto"``: each library's own
    choice (``Network``'s: :mod:`twinnet.nn.threads`)."""
    if threads == "auto":
        return threads
    if threads is not None:
        return validation.positive_int("threads", threads)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_data(workload):
    """The training data of ``workload``.

    Returns
    -------
    X : ndarray of shape (n_train, layers[0])
        C-ordered, in the workload's dtype.
    y : ndarray of int64 of shape (n_train,)
        Labels 0 and 1, or ``0 .. K-1`` for a softmax head of ``K`` units.
    """
    from twinnet.lab.run import load_split

    config = workload.config
    n_features = config.layers[0]
    if config.data == "gaussian":
        rng = np.random.default_rng(0)
        X = rng.standard_normal((workload.n_train, n_features), dtype=config.dtype)
        if not head(config.output).binary:  # softmax: the class whose random direction X points most to
            return X, np.argmax(X @ rng.standard_normal((n_features, config.layers[-1])).astype(config.dtype), axis=1)
        y = (X @ rng.standard_normal(n_features).astype(config.dtype) > 0).astype(np.int64)
        return X, y
    split = load_split(config)
    X, y = np.ascontiguousarray(split.X_train), split.y_train
    if X.shape != (workload.n_train, n_features):
        raise ValueError(f"workload {workload.name!r} expects {workload.n_train} x {n_features} "
                         f"training data; data set {config.data!r} gives {X.shape[0]} x {X.shape[1]}.")
    return X, y


def save_inputs(path, workload):
    """Write ``workload``'s data and initial weights to ``path`` (``.npz``), for the children to read."""
    from twinnet.lab.run import initial_parameters

    X, y = load_data(workload)
    initial = initial_parameters(workload.config)
    np.savez(path, X=X, y=y, **{f"parameter_{key}": value for key, value in initial.items()})


def load_inputs(path):
    """``X, y, initial`` as :func:`save_inputs` wrote them."""
    with np.load(path, allow_pickle=False) as saved:
        initial = {key.removeprefix("parameter_"): saved[key] for key in saved.files if key.startswith("parameter_")}
        return saved["X"], saved["y"], initial


def products(layers, m):
    """The matrix products of one full-batch epoch, in the notebook's column layout.

    Returns
    -------
    list of (label, M, K, N)
        ``C (M, N) = A (M, K) B (K, N)``: ``Z_l = W_l A_{l-1}``, ``dW_l = dZ_l A_{l-1}^T`` for every
        layer, ``dA_{l-1} = W_l^T dZ_l`` for layers 2 .. L (nothing needs ``dA_0``, the gradient
        with respect to the data).
    """
    out = []
    for l, (n_prev, n) in enumerate(itertools.pairwise(layers), start=1):
        out.append((f"Z{l} = W{l} A{l - 1}", n, n_prev, m))
        out.append((f"dW{l} = dZ{l} A{l - 1}^T", n, m, n_prev))
        if l > 1:
            out.append((f"dA{l - 1} = W{l}^T dZ{l}", n_prev, n, m))
    return out


def flops_per_epoch(layers, m):
    """Floating-point operations of one epoch's matrix products (:func:`products`): ``2 M K N`` each.

    Every engine's GFLOP/s is this count over its time, so the column compares times, not the work
    each library chooses to do.
    """
    return sum(2 * M * K * N for _, M, K, N in products(layers, m))


class Run(NamedTuple):
    """One timed run: ``seconds`` over ``epochs`` epochs, and the last epoch's loss (nan for products alone)."""

    seconds: float
    epochs: int
    loss: float
