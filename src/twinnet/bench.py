"""The performance harness behind ``twinnet bench``: every engine on one workload, and the roofline.

One data set, one set of initial weights, full-batch gradient descent: each engine of
:data:`twinnet.lab.ENGINES` trains the same network for the same number of epochs and is timed
after a warm-up, best of several runs, each engine in a fresh Python process of its own. Beside
them, the *roofline*: the same workload's matrix products alone, with each library that can do
them (:data:`ROOFLINES`: NumPy's BLAS, TensorFlow, PyTorch), each product in the fastest layout
(and, where the library allows it, thread count) that library offers for it on this machine, found
by timing every one; run for the same epochs and timed in the same way. The fastest library sets
the roofline: no engine can do the products in less time, so ``numpy / roofline`` says how much of
an epoch is spent outside the products. Finally the peak memory that ``Network.fit`` allocates,
against the bytes of the data, the activations and the gradients it must hold.

Timing protocol
---------------
- Processes: each engine, each roofline library and the memory measurement run in a child process
  of their own (:mod:`twinnet._bench_worker`), started fresh, which reads the data and the initial
  weights that the calling process drew once (a temporary ``.npz`` file); the calling process imports
  neither TensorFlow nor PyTorch, whose idle thread pools would otherwise spin on the cores beside
  the engine being timed.
  Every child gets the same threads: ``threads`` (default: the CPUs this process may use) for the
  BLAS and OpenMP (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``), for
  TensorFlow's intra- and inter-op pools and for PyTorch.
- Warm-up: once every child has started, each trains once for two epochs, untimed (libraries load
  their kernels, thread pools start, caches warm); a roofline child finds its fastest layouts.
- Runs: then the children take turns, one run each per round and never two at once, so that the
  load of a shared machine falls on all of them alike; before each run the parent waits
  :data:`SETTLE` seconds, for the threads of the last turn to go to sleep. A child stops after
  ``repeats`` runs, or after its first run once its runs have taken ``budget`` seconds in all. Its
  figure is its fastest run.
- What is timed is the steady state: the time from the end of the first epoch to the end of the
  last, over the epochs in between, so that what a library does once per training call (checking
  and copying the data, allocating its buffers, for the Keras engines tracing a new graph) is
  left out alike. ``numpy`` is ``Network.fit`` as a user calls it, whose optimizer notes the end
  of each step; functional, torch, keras (``model.fit``) and tf-loop (a ``tf.function`` step) are
  the runners of :mod:`twinnet.lab.runners`, which report each epoch's end. scikit-learn's
  ``MLPClassifier.fit`` cannot be observed between epochs: its whole ``fit`` is timed, over
  ``epochs``.
- Failures: a child that raises, ends, or gives no answer within ``timeout`` seconds (to start:
  :data:`START_TIMEOUT` at least) is stopped, and its row says ``failed`` and why; one whose loss
  diverges says ``diverged``. The others go on.

FLOP count
----------
Per epoch, for ``m`` examples and widths ``n_0 .. n_L``: the forward products
``Z_l = W_l A_{l-1}`` and weight gradients ``dW_l = dZ_l A_{l-1}^T`` of every layer, and the
input gradients ``dA_{l-1} = W_l^T dZ_l`` of layers 2 .. L (nothing needs ``dA_0``, the gradient
with respect to the data), ``2 m n_l n_{l-1}`` floating-point operations each. Every engine's
GFLOP/s is this count over its time, so the column compares times, not the work each library
chooses to do.

Examples
--------
>>> from twinnet.bench import Workload, run_workload
>>> from twinnet.lab import RunConfig
>>> tiny = Workload("tiny", RunConfig(data="gaussian", layers=(8, 4, 1), epochs=3), n_train=64)
>>> result = run_workload(tiny, engines=["numpy", "functional"], rooflines=["numpy"], repeats=1)
>>> [row["engine"] for row in result["engines"]], result["roofline"]["library"]
(['numpy', 'functional'], 'numpy')
>>> result["flops_per_epoch"] == 2 * 64 * (2 * (8 * 4 + 4 * 1) + 4 * 1)
True
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import time
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from twinnet import validation
from twinnet.lab.config import RunConfig, default_layers

__all__ = [
    "DATA",
    "ENGINE_ORDER",
    "ROOFLINES",
    "SETTLE",
    "STAGES",
    "START_TIMEOUT",
    "VECTOR_EXTENSIONS",
    "WORKLOADS",
    "Roofline",
    "Workload",
    "cpu_record",
    "fit_memory",
    "flops_per_epoch",
    "load_data",
    "machine",
    "products",
    "profile",
    "roofline",
    "run_workload",
    "thread_pools",
]

#: Engines in the order they are run and printed: ``numpy`` (``twinnet.Network``) first, the
#: reference of the relative times.
ENGINE_ORDER = ("numpy", "functional", "sklearn", "torch", "tf-loop", "keras")


class Roofline(NamedTuple):
    """An entry of :data:`ROOFLINES`: a library that can do an epoch's matrix products alone."""

    call: str  # what the table prints
    module: str | None  # the optional library it needs, or None
    extra: str | None  # pip extra that installs it
    description: str


#: Libraries timed at the epoch's products alone, in the order they are run and printed; the fastest
#: sets the roofline.
ROOFLINES = {
    "numpy": Roofline("np.dot", None, None, "NumPy's BLAS: np.dot into preallocated outputs, "
                      "each product in its fastest layout, with one thread or all"),
    "tensorflow": Roofline("tf.matmul", "tensorflow", "tf", "tf.linalg.matmul, each product in its fastest "
                           "layout, the epoch's products in one tf.function"),
    "torch": Roofline("torch.mm", "torch", "torch", "torch.mm into preallocated outputs, each product in "
                      "its fastest layout, with one thread or all"),
}

#: Seconds a child may take to start at least, whatever the ``timeout``: importing TensorFlow takes tens of
#: seconds on a busy machine.
START_TIMEOUT = 120.0

#: Seconds the parent waits before each timed run of a child: long enough for the threads of the last
#: one to stop spinning (OpenBLAS's wait 2^28 cycles, about 0.1 s, before they sleep; OpenMP's and
#: TensorFlow's less).
SETTLE = 0.15


@dataclass(frozen=True)
class Workload:
    """A benchmark: a run's :class:`~twinnet.lab.config.RunConfig`, and what only the bench needs.

    Parameters
    ----------
    name : str
    config : RunConfig
        Its ``layers`` (input first, output 1), ``epochs`` (at least 2: the first epoch is not
        timed), ``dtype``, ``learning_rate`` and ``init`` are the workload's; it trains full-batch
        SGD. Its ``data`` is ``"synthetic"``: the training part (80 %, standardized) of the built-in
        data set shaped like the notebook's, or ``"gaussian"``: ``n_train`` standard normal examples
        labelled by the sign of a random linear function (a fixed seed), or for a softmax head of
        ``K`` units by the largest of ``K`` random linear functions.
    n_train : int
        Number of training examples (for ``"synthetic"``, the size of its training part).
    speedup_target, roofline_target, memory_target : float
        The performance targets: ``numpy`` at least ``speedup_target`` times faster than every
        other engine, its time at most ``roofline_target`` times the roofline's, and the peak
        extra memory of ``Network.fit`` at most ``memory_target`` times the bytes of data,
        activations and gradients.
    """

    name: str
    config: RunConfig
    n_train: int
    speedup_target: float = 1.0
    roofline_target: float = 1.5
    memory_target: float = 1.5

    def record(self):
        """JSON-ready: the name, the config's fields, ``n_train`` and the targets."""
        return {"name": self.name, **self.config.to_dict(), "n_train": self.n_train,
                "speedup_target": self.speedup_target, "roofline_target": self.roofline_target,
                "memory_target": self.memory_target}

    @classmethod
    def from_record(cls, record):
        """The workload that :meth:`record` describes (how a child of the bench receives it)."""
        config = {f.name: record[f.name] for f in fields(RunConfig) if f.name in record}
        if config.get("layers") is not None:
            config["layers"] = tuple(config["layers"])
        return cls(record["name"], RunConfig(**config), record["n_train"],
                   **{key: record[key] for key in ("speedup_target", "roofline_target", "memory_target")})


#: Data a workload can train on.
DATA = ("gaussian", "synthetic")

WORKLOADS = {
    # the notebook's experiment: its network, its 250 epochs, data shaped like its data.pickle
    "seed": Workload("seed", RunConfig(layers=default_layers(100)), 1600, speedup_target=2.2, roofline_target=1.15),
    # an MNIST-sized network whose time is all in large products
    "large": Workload("large", RunConfig(data="gaussian", layers=(784, 512, 256, 1), epochs=5, dtype="float32",
                                         learning_rate=0.01, init="glorot"), 20000, speedup_target=1.1,
                      roofline_target=1.1),
    # the MNIST shape itself: ten classes, a softmax head
    "large10": Workload("large10", RunConfig(data="gaussian", layers=(784, 512, 256, 10), output="softmax", epochs=5,
                                             dtype="float32", learning_rate=0.01, init="glorot"), 20000,
                        speedup_target=1.1, roofline_target=1.1),
}


def _ordered(names, order):
    # in the table's order, whatever order they were asked in
    return [name for name in order if name in set(names)]


def _check(workload, engines, rooflines, repeats, budget, threads, timeout):
    """The workload (a name resolved), the engines and libraries in their order, the threads; or ``ValueError``."""
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
    for engine in engines:
        validation.choice("engine", engine, ENGINE_ORDER, ordered=True)
    for library in rooflines:
        validation.choice("roofline library", library, ROOFLINES, ordered=True)
    validation.positive_int("repeats", repeats)
    if not (isinstance(budget, (int, float)) and budget >= 0):
        raise ValueError(f"budget must be a number of seconds >= 0; got budget={budget!r}.")
    threads = _usable_cpus() if threads is None else validation.positive_int("threads", threads)
    validation.positive_number("timeout", timeout)
    return workload, _ordered(engines, ENGINE_ORDER), _ordered(rooflines, ROOFLINES), threads


def _usable_cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --------------------------------------------------------------------------- data and work
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
        if config.output == "softmax":  # the class whose random direction X points most to
            return X, np.argmax(X @ rng.standard_normal((n_features, config.layers[-1])).astype(config.dtype), axis=1)
        y = (X @ rng.standard_normal(n_features).astype(config.dtype) > 0).astype(np.int64)
        return X, y
    split = load_split(config)
    X, y = np.ascontiguousarray(split.X_train), split.y_train
    if X.shape != (workload.n_train, n_features):
        raise ValueError(f"workload {workload.name!r} expects {workload.n_train} x {n_features} "
                         f"training data; data set {config.data!r} gives {X.shape[0]} x {X.shape[1]}.")
    return X, y


def _save_inputs(path, workload):
    """Write ``workload``'s data and initial weights to ``path`` (``.npz``), for the children to read."""
    from twinnet.lab.run import initial_parameters

    X, y = load_data(workload)
    initial = initial_parameters(workload.config)
    np.savez(path, X=X, y=y, **{f"parameter_{key}": value for key, value in initial.items()})


def _load_inputs(path):
    """``X, y, initial`` as :func:`_save_inputs` wrote them."""
    with np.load(path, allow_pickle=False) as saved:
        initial = {key.removeprefix("parameter_"): saved[key] for key in saved.files if key.startswith("parameter_")}
        return saved["X"], saved["y"], initial


def products(layers, m):
    """The matrix products of one full-batch epoch, in the notebook's column layout.

    Returns
    -------
    list of (label, M, K, N)
        ``C (M, N) = A (M, K) B (K, N)``: ``Z_l = W_l A_{l-1}``, ``dW_l = dZ_l A_{l-1}^T`` for every
        layer, ``dA_{l-1} = W_l^T dZ_l`` for layers 2 .. L.
    """
    out = []
    for l, (n_prev, n) in enumerate(itertools.pairwise(layers), start=1):
        out.append((f"Z{l} = W{l} A{l - 1}", n, n_prev, m))
        out.append((f"dW{l} = dZ{l} A{l - 1}^T", n, m, n_prev))
        if l > 1:
            out.append((f"dA{l - 1} = W{l}^T dZ{l}", n_prev, n, m))
    return out


def flops_per_epoch(layers, m):
    """Floating-point operations of one epoch's matrix products: ``2 M K N`` each."""
    return sum(2 * M * K * N for _, M, K, N in products(layers, m))


# --------------------------------------------------------------------------- roofline
def _best_time(fn, samples, budget):
    """Fastest of up to ``samples`` timings of ``fn`` (each of enough calls to last about 1 ms).

    Stops early once the samples have taken ``budget`` seconds, after at least two.
    """
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(1e-3 / once))
    best, spent = once, 0.0
    for k in range(samples):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed / calls), spent + elapsed
        if k >= 1 and spent > budget:
            break
    return best


def _gemm_variants(M, K, N, dtype, rng, *, convert=None, empty=None, matmul=None):
    """Every way a library can compute ``C = A B`` with contiguous operands and output.

    Each operand is stored as is or transposed (a transpose flag, no copy), and the output is
    ``C`` or ``C^T = B^T A^T``: eight calls, each a ``(label, function)`` pair. By default NumPy's
    ``np.dot(x, y, out=out)``; ``convert`` (a NumPy array to the library's), ``empty`` (a shape to
    an uninitialized output) and ``matmul(x, y, out)`` make them another library's.
    """
    convert = convert or (lambda array: array)
    empty = empty or (lambda shape: np.empty(shape, dtype))
    matmul = matmul or (lambda x, y, out: np.dot(x, y, out=out))
    A = rng.standard_normal((M, K)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    stored = {"A": A, "A^T": np.ascontiguousarray(A.T).T, "B": B, "B^T": np.ascontiguousarray(B.T).T}
    stored = {name: convert(array) for name, array in stored.items()}
    C, Ct = empty((M, N)), empty((N, M))
    variants = []
    for a in ("A", "A^T"):
        for b in ("B", "B^T"):
            x, y = stored[a], stored[b]
            variants.append((f"C = {a} {b}", lambda x=x, y=y: matmul(x, y, C)))
            variants.append((f"C^T = {b} {a} (transposed)", lambda x=x, y=y: matmul(y.T, x.T, Ct)))
    return variants


class _NumpyGemm:
    """NumPy's BLAS for :func:`_fastest_layouts`: its layouts, with one thread or all of the BLAS's.

    A roofline library is an object with ``variants(M, K, N, dtype, rng)`` (as
    :func:`_gemm_variants`), ``thread_counts()`` to try, ``threads()`` and ``set_threads(n)``, and
    ``plan(chosen)``: the products' fastest calls, ``[(threads, call), ...]``, grouped into what
    :func:`_run_products` runs. TensorFlow's and PyTorch's are in :mod:`twinnet._bench_worker`.
    """

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self.blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]

    @staticmethod
    def variants(M, K, N, dtype, rng):
        return _gemm_variants(M, K, N, dtype, rng)

    def threads(self):
        return max([lib.num_threads for lib in self.blas], default=1)

    def thread_counts(self):
        return sorted({1, self.threads()})

    def set_threads(self, n):
        for lib in self.blas:  # about a microsecond: threadpoolctl's limit() takes ten
            lib.set_num_threads(n)

    @contextlib.contextmanager
    def restored(self):
        before = [lib.num_threads for lib in self.blas]
        try:
            yield
        finally:
            for lib, n in zip(self.blas, before):
                lib.set_num_threads(n)

    @staticmethod
    def plan(chosen):
        return _plan_by_threads(chosen)


def _plan_by_threads(chosen):
    """``[(threads, call), ...]`` grouped by thread count: ``[(threads, [call, ...]), ...]``."""
    groups = {}
    for threads, call in chosen:
        groups.setdefault(threads, []).append(call)
    return sorted(groups.items())


def _fastest_layouts(layers, m, dtype, samples, budget, gemm=None):
    """The fastest layout and thread count of each product of :func:`products`, with one library.

    Each product is timed once in each of its eight layouts (:func:`_gemm_variants`), with each of
    the library's thread counts (NumPy's BLAS: its threads and, if it has more, one); the two
    fastest candidates are timed again, best of ``samples``.

    Parameters
    ----------
    gemm : object, optional
        The library (see :class:`_NumpyGemm`); default NumPy's BLAS.

    Returns
    -------
    rows : list of dict
        Per product: ``label``, ``shape`` ``(M, K, N)``, ``flops``, ``seconds`` (its best timing),
        ``layout`` and ``threads``.
    plan : list of (int, list of callable)
        The products' fastest calls grouped by thread count, to be run in that order.
    """
    gemm = gemm or _NumpyGemm()
    rng = np.random.default_rng(0)
    rows, chosen = [], []
    with _restored(gemm):
        for label, M, K, N in products(layers, m):
            candidates = []
            for layout, fn in gemm.variants(M, K, N, np.dtype(dtype), rng):
                for t in gemm.thread_counts():
                    gemm.set_threads(t)
                    candidates.append((_best_time(fn, 1, budget), layout, t, fn))
            candidates.sort(key=lambda c: c[0])
            timed = []
            for seconds, layout, t, fn in candidates[:2]:
                gemm.set_threads(t)
                timed.append((min(seconds, _best_time(fn, samples, budget)), layout, t, fn))
            seconds, layout, t, fn = min(timed, key=lambda c: c[0])
            rows.append({"label": label, "shape": [M, K, N], "flops": 2 * M * K * N, "seconds": seconds,
                         "layout": layout, "threads": t})
            chosen.append((t, fn))
    return rows, gemm.plan(chosen)


@contextlib.contextmanager
def _restored(gemm):
    """The library's threads as they were, after the block."""
    if hasattr(gemm, "restored"):
        with gemm.restored():
            yield
        return
    before = gemm.threads()
    try:
        yield
    finally:
        gemm.set_threads(before)


def _run_products(plan, epochs, gemm=None):
    """Run the roofline's products for ``epochs`` epochs, timed as the engines are (:class:`_Run`)."""
    gemm = gemm or _NumpyGemm()
    ends = []
    with _restored(gemm):
        for _ in range(epochs):
            for threads, calls in plan:
                gemm.set_threads(threads)
                for call in calls:
                    call()
            ends.append(time.perf_counter())
    return _Run(ends[-1] - ends[0], epochs - 1, float("nan"))


def roofline(layers, m, dtype, *, epochs=2, repeats=1, samples=5, budget=0.5):
    """Time of one epoch's matrix products alone with NumPy's BLAS, in this process.

    Each product of :func:`products` is first timed alone in every layout and thread count to find
    its fastest (see :func:`_fastest_layouts`); then the products, each in its fastest form, are
    run for ``epochs`` epochs, ``repeats`` times, and timed as the engines are, from the end of the
    first epoch to the end of the last. (:func:`run_workload` does the same with every library of
    :data:`ROOFLINES`, each in a process of its own.)

    Parameters
    ----------
    layers : sequence of int
    m : int
        Examples per (full) batch.
    dtype : {"float32", "float64"}
    epochs, repeats : int
        Epochs per run (at least 2) and runs.
    samples : int
        Timings of each product's two fastest candidates.
    budget : float
        Seconds after which a candidate's timings stop (after at least two).

    Returns
    -------
    dict
        ``ms_per_epoch`` of the fastest run and ``ms_per_epoch_runs``; ``flops`` per epoch;
        ``threads``, the BLAS's; ``products``: one dict per product with ``label``, ``shape``
        ``(M, K, N)``, ``flops``, ``seconds`` (timed alone), ``layout`` and ``threads`` of its
        fastest form; ``products_ms``, the sum of their ``seconds`` in milliseconds.
    """
    gemm = _NumpyGemm()
    rows, plan = _fastest_layouts(layers, m, dtype, samples, budget, gemm)
    times = []
    for _ in range(repeats):
        run = _run_products(plan, epochs, gemm)
        times.append(1e3 * run.seconds / run.epochs)
    return {"ms_per_epoch": min(times), "ms_per_epoch_runs": times, **_products_summary(rows),
            "threads": gemm.threads()}


def _products_summary(rows):
    return {"flops": sum(r["flops"] for r in rows), "products": rows,
            "products_ms": 1e3 * sum(r["seconds"] for r in rows)}


# --------------------------------------------------------------------------- memory
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


#: The stages of :func:`profile`, in the order it reports them; the last is what the others leave.
STAGES = ("matrix products", "hidden activations", "activation derivatives", "output head", "the rest")


class _NumpyTimingDot:
    """NumPy as the engine sees it during :func:`profile`: ``dot`` timed, every other name NumPy's own."""

    def __init__(self, dot):
        self.dot = dot

    def __getattr__(self, name):
        return getattr(np, name)


def profile(workload, *, threads=None, repeats=3):
    """Where the time of ``Network.fit``'s epochs goes on ``workload``: milliseconds per epoch by stage.

    Trains ``workload`` with ``Network.fit`` in this process, as the bench's ``numpy`` engine does,
    with a timer around each of the engine's kernels (:data:`STAGES`): its matrix products (every
    ``np.dot`` of :mod:`twinnet.nn.engine`), the hidden layers' activation and its derivative (the
    two kernels of :data:`twinnet.nn.ACTIVATIONS`) and the output head's ``output``, ``loss``,
    ``hits`` and ``delta``. "the rest" is the epoch less those: the backward pass's elementwise
    products, the optimizer's step and Python. The weights and the losses are those of an untimed
    fit (the timers only read the clock). As the bench: the first epoch is not counted, and the
    figures are those of the fastest of ``repeats`` fits.

    Parameters
    ----------
    workload : Workload or str
    threads : int, optional
        BLAS threads (default: the CPUs this process may use).
    repeats : int

    Returns
    -------
    dict
        JSON-ready: ``threads``, ``ms_per_epoch`` (the whole epoch) and ``stages``, one per stage:
        ``stage``, ``ms_per_epoch``, ``share`` (of the epoch) and ``calls_per_epoch`` (None for the
        rest).
    """
    from threadpoolctl import threadpool_limits

    from twinnet import Network
    from twinnet.nn import Activation, engine

    workload, _, _, threads = _check(workload, (), (), repeats, 0, threads, 1.0)
    config = workload.config
    X, y = load_data(workload)
    timed_stages = STAGES[:-1]

    def fit_once():
        spent, calls, ends = dict.fromkeys(timed_stages, 0.0), dict.fromkeys(timed_stages, 0), []

        def timed(stage, kernel):
            def call(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return kernel(*args, **kwargs)
                finally:
                    spent[stage] += time.perf_counter() - start
                    calls[stage] += 1
            return call

        def epoch_end(epoch, logs):
            ends.append(time.perf_counter())
            if epoch == 0:  # the first epoch is not counted
                spent.update(dict.fromkeys(timed_stages, 0.0))
                calls.update(dict.fromkeys(timed_stages, 0))

        net = Network(list(config.layers), output=config.output, hidden_activation=config.hidden_activation,
                      init=config.init, seed=config.seed, dtype=config.dtype)
        act, head = net._activation, net._head
        net._activation = Activation(timed("hidden activations", act.forward),
                                     timed("activation derivatives", act.derivative))
        net._head = head._replace(**{name: timed("output head", getattr(head, name))
                                     for name in ("output", "loss", "hits", "delta")})
        engine.np = _NumpyTimingDot(timed("matrix products", np.dot))
        try:
            net.fit(X, y, epochs=config.epochs, learning_rate=config.learning_rate, on_epoch_end=epoch_end)
        finally:
            engine.np = np
        epochs = len(ends) - 1
        per_epoch = {stage: spent[stage] / epochs for stage in timed_stages}
        return (ends[-1] - ends[0]) / epochs, per_epoch, {stage: calls[stage] / epochs for stage in timed_stages}

    with threadpool_limits(limits=threads, user_api="blas"):
        fit_once()  # warm-up
        total, spent, calls = min((fit_once() for _ in range(repeats)), key=lambda fit: fit[0])
    spent["the rest"], calls["the rest"] = total - sum(spent.values()), None
    return {"threads": threads, "ms_per_epoch": total * 1e3,
            "stages": [{"stage": stage, "ms_per_epoch": spent[stage] * 1e3, "share": spent[stage] / total,
                        "calls_per_epoch": calls[stage]} for stage in STAGES]}


# --------------------------------------------------------------------------- engines
class _Run:
    """One timed training run: ``seconds`` over ``epochs`` epochs, and the last epoch's loss."""

    __slots__ = ("epochs", "loss", "seconds")

    def __init__(self, seconds, epochs, loss):
        self.seconds, self.epochs, self.loss = seconds, epochs, float(loss)


def _train(engine, workload, split, initial):
    """Train ``engine`` once on ``workload`` from ``initial``; return the timed :class:`_Run`."""
    from twinnet import Network
    from twinnet.lab.runners import ENGINES

    config, ends = workload.config, []
    if engine == "numpy":  # Network.fit as a user calls it
        net = Network.from_parameters(initial, output=config.output, dtype=config.dtype)
        history = net.fit(split.X_train, split.y_train, epochs=config.epochs, learning_rate=config.learning_rate,
                          on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
        loss = history.history["loss"][-1]
    else:
        trained = ENGINES[engine].runner(config, split, initial,
                                         lambda epochs_done, current=None: ends.append(time.perf_counter()))
        loss = trained.loss_curve[-1]
        if not ends:  # scikit-learn: one call, not observable between epochs
            return _Run(trained.seconds, config.epochs, loss)
    return _Run(ends[-1] - ends[0], len(ends) - 1, loss)


def _installed(module):
    """Whether ``module`` can be imported, without importing it."""
    import importlib.util

    return module is None or importlib.util.find_spec(module) is not None


def _skip_reason(module, extra):
    if _installed(module):
        return None
    return f"{module} is not installed" + (f" (pip install 'twinnet[{extra}]')" if extra else "")


# --------------------------------------------------------------------------- the children, in turns
class _Turn:
    """One child of the bench and its row: what it is, its process, its state."""

    def __init__(self, kind, name, row):
        self.kind, self.name, self.row, self.child = kind, name, row, None
        self.label = name if kind == "engine" else f"{kind}:{name}" if kind == "roofline" else kind
        self.spent = 0.0

    def job(self, workload, threads, inputs):
        return {"kind": self.kind, "name": self.name, "label": self.label, "workload": workload.record(),
                "threads": threads, "inputs": inputs, "parent": os.getpid()}

    def fail(self, exc):
        """Record the failure (:class:`twinnet._bench_worker.ChildFailed`) and stop the child."""
        self.row["status"], self.row["error"] = exc.status, exc.reason
        self.child.close()


def _row(kind, name, workload):
    skipped = None
    if kind == "engine":
        from twinnet.lab.runners import ENGINES, unsupported_reason

        spec = ENGINES[name]
        head = {"engine": name}
        skipped = unsupported_reason(name, workload.config, workload.n_train)  # the functional net on a softmax
    else:
        spec = ROOFLINES[name]
        head = {"library": name, "call": spec.call}
    return {**head, "status": None, "runs": 0, "ms_per_epoch_runs": [], "error": None,
            "skipped": skipped or _skip_reason(spec.module, spec.extra), "process": None}


def _take_turns(workload, turns, threads, inputs, repeats, budget, timeout, announce):
    """Start the children, warm each up, then ask them for runs in turn; fill the rows."""
    from twinnet._bench_worker import Child, ChildFailed

    active = [turn for turn in turns if turn.row["skipped"] is None]
    announce(f"{workload.name}: starting {len(active)} processes")
    for turn in active:  # started together: importing the libraries is not timed
        turn.child = Child(turn.job(workload, threads, inputs))
    for turn in list(active):
        try:
            turn.row["process"] = turn.child.receive(max(timeout, START_TIMEOUT), "while starting")
        except ChildFailed as exc:
            turn.fail(exc)
            active.remove(turn)

    def ask(turn, request, during):
        if request == "run":  # a timed run starts once the threads of the last turn have gone to sleep
            time.sleep(SETTLE)
        try:
            return turn.child.ask(request, timeout, during)
        except ChildFailed as exc:
            turn.fail(exc)
            active.remove(turn)
            return None

    for turn in list(active):
        announce(f"{workload.name}: {turn.label} warm-up")
        answer = ask(turn, "warm_up", "in its warm-up")
        if answer:
            turn.row["process"] = answer["process"]
        if answer and turn.kind == "roofline":
            turn.row.update(_products_summary(answer["products"]), threads=answer["threads"])
    for round_ in range(repeats):
        for turn in [t for t in active if round_ == 0 or t.spent < budget]:
            announce(f"{workload.name}: {turn.label} run {round_ + 1}")
            run = ask(turn, "run", f"in run {round_ + 1}")
            if run is None:
                continue
            turn.row["runs"] += 1
            turn.row["ms_per_epoch_runs"].append(1e3 * run["seconds"] / run["epochs"])
            if "loss" in run:
                turn.row["final_loss"] = run["loss"]
            turn.spent += run["seconds"]


def _measure_memory(workload, threads, inputs, timeout, announce):
    """:func:`fit_memory` in a child of its own: ``(memory, None)`` or ``(None, why it failed)``."""
    from twinnet._bench_worker import Child, ChildFailed

    announce(f"{workload.name}: memory")
    turn = _Turn("memory", "memory", {})
    turn.child = Child(turn.job(workload, threads, inputs))
    try:
        turn.child.receive(max(timeout, START_TIMEOUT), "while starting")
        return turn.child.ask("run", timeout, "while measuring"), None
    except ChildFailed as exc:
        return None, exc.reason
    except BaseException:  # Ctrl-C
        turn.child.kill()
        raise
    finally:
        turn.child.close()


def _figures(rows, flops, base=None):
    """Each row's best time, GFLOP/s and time relative to ``base`` (numpy's); its status once timed."""
    for row in rows:
        times = row["ms_per_epoch_runs"]
        if row["status"] is None and not row["skipped"]:
            row["status"] = "ok"
        row["ms_per_epoch"] = min(times) if times and row["status"] == "ok" else None
        row["gflops"] = flops / row["ms_per_epoch"] / 1e6 if row["ms_per_epoch"] else None
    base = base or next((r["ms_per_epoch"] for r in rows if r.get("engine") == "numpy"), None)
    for row in rows:
        row["vs_numpy"] = row["ms_per_epoch"] / base if base and row["ms_per_epoch"] else None
    return base


def run_workload(workload, *, engines=ENGINE_ORDER, rooflines=tuple(ROOFLINES), repeats=10, budget=3.0,
                 memory=True, threads=None, timeout=300.0, announce=lambda message: None):
    """Benchmark ``engines`` and the roofline of each library of ``rooflines`` on ``workload``.

    Each engine, each library and the memory measurement run in a fresh process of their own (see
    the module's timing protocol); this process imports neither TensorFlow nor PyTorch. Ctrl-C
    (``KeyboardInterrupt``) stops every child before it propagates.

    Parameters
    ----------
    workload : Workload or str
        A :class:`Workload` or a key of :data:`WORKLOADS`.
    engines : sequence of str
        Keys of :data:`twinnet.lab.ENGINES`; run (and reported) in :data:`ENGINE_ORDER`. Those
        whose library is not installed are reported as skipped.
    rooflines : sequence of str
        Keys of :data:`ROOFLINES`; those not installed are reported as skipped.
    repeats : int
        Timed runs per engine and library, at most.
    budget : float
        Seconds of timed runs after which an engine stops repeating (after at least one run).
    memory : bool
        Measure ``Network.fit``'s peak memory (:func:`fit_memory`).
    threads : int, optional
        Threads of every child's BLAS, OpenMP, TensorFlow (intra- and inter-op) and PyTorch;
        default: the CPUs this process may use.
    timeout : float
        Seconds a child may take to warm up or for one run (to start: at least
        :data:`START_TIMEOUT`) before it is stopped and its row reported as failed.
    announce : callable
        Called with a short message before each step.

    Returns
    -------
    dict
        JSON-ready: ``workload`` (:meth:`Workload.record`), ``flops_per_epoch``, ``threads`` (the
        count and the environment variables every child got), ``engines`` (one row per engine:
        ``engine``, ``status`` (``ok``, ``diverged``, ``failed``, or None when skipped),
        ``ms_per_epoch`` of its fastest run, ``gflops``, ``vs_numpy`` = its time / numpy's,
        ``runs``, ``ms_per_epoch_runs``, ``final_loss``, ``error``, ``skipped``, ``process``: the
        child's pid, versions and threads), ``rooflines`` (one row per library, the same fields
        with ``library`` and ``call`` for ``engine``, no loss, plus ``flops``, ``threads``,
        ``products`` as :func:`roofline` gives them and ``products_ms``), ``roofline`` (the
        fastest library's row, or None), ``numpy_vs_roofline``, ``memory`` (:func:`fit_memory`'s
        dict or None) with ``memory_error``, and ``targets``.
    """
    from twinnet._bench_worker import close_all
    from twinnet.lab.sweep import _THREAD_ENV

    workload, engines, rooflines, threads = _check(workload, engines, rooflines, repeats, budget, threads,
                                                   timeout)
    flops = flops_per_epoch(workload.config.layers, workload.n_train)
    turns = [_Turn("engine", e, {**_row("engine", e, workload), "final_loss": None}) for e in engines]
    turns += [_Turn("roofline", lib, {**_row("roofline", lib, workload), **_products_summary([]), "threads": None})
              for lib in rooflines]
    with tempfile.TemporaryDirectory(prefix="twinnet-bench-") as folder:
        # drawn once, here, where a wrong size of the data is one error, not one per child
        announce(f"{workload.name}: data")
        inputs = os.path.join(folder, "inputs.npz")
        _save_inputs(inputs, workload)
        try:
            _take_turns(workload, turns, threads, inputs, repeats, budget, timeout, announce)
        except BaseException:  # Ctrl-C included: no child outlives the bench
            for turn in turns:
                if turn.child is not None:
                    turn.child.kill()
            raise
        finally:
            close_all([turn.child for turn in turns if turn.child is not None])
        memory_figures, memory_error = (_measure_memory(workload, threads, inputs, timeout, announce)
                                        if memory and "numpy" in engines else (None, None))
    engine_rows = [t.row for t in turns if t.kind == "engine"]
    roof_rows = [t.row for t in turns if t.kind == "roofline"]
    for row in roof_rows:
        if not row["products"]:  # skipped, or failed before its warm-up answered
            row["flops"] = flops
    base = _figures(engine_rows, flops)
    _figures(roof_rows, flops, base)
    fastest = min((r for r in roof_rows if r["ms_per_epoch"]), key=lambda r: r["ms_per_epoch"], default=None)
    result = {"workload": workload.record(), "flops_per_epoch": flops,
              "threads": {"threads": threads, "environment": dict.fromkeys(_THREAD_ENV, str(threads))},
              "engines": engine_rows, "rooflines": roof_rows, "roofline": dict(fastest) if fastest else None,
              "numpy_vs_roofline": base / fastest["ms_per_epoch"] if base and fastest else None,
              "memory": memory_figures, "memory_error": memory_error}
    result["targets"] = _targets(workload, result)
    return result


def _targets(workload, result):
    """The workload's targets (``speedup``, ``roofline``, ``memory``) that its figures allow checking.

    Each is a dict: ``name``, ``target`` (in words), ``value`` measured, ``bound``, ``met``. The
    speedup is the fastest other engine's time over numpy's; the roofline, the fastest library's.
    """
    rows = {row["engine"]: row for row in result["engines"]}
    numpy_ms = rows.get("numpy", {}).get("ms_per_epoch")
    others = [row["ms_per_epoch"] for row in rows.values()
              if row["engine"] != "numpy" and row["ms_per_epoch"]]
    targets = []

    def target(name, words, value, bound, met):
        targets.append({"name": name, "target": words, "value": value, "bound": bound, "met": met})

    if numpy_ms and others:
        speedup = min(others) / numpy_ms
        target("speedup", f"numpy at least {workload.speedup_target:g}x faster than every other engine",
               speedup, workload.speedup_target, speedup >= workload.speedup_target)
    if result["numpy_vs_roofline"] is not None:
        ratio = result["numpy_vs_roofline"]
        target("roofline", f"numpy within {workload.roofline_target:g}x of the roofline "
               f"({result['roofline']['call']}, the fastest library)",
               ratio, workload.roofline_target, ratio <= workload.roofline_target)
    if result["memory"]:
        ratio = result["memory"]["ratio"]
        target("memory", f"Network.fit's peak extra memory at most {workload.memory_target:g}x "
               "data + activations + gradients", ratio, workload.memory_target, ratio <= workload.memory_target)
    return targets


# --------------------------------------------------------------------------- machine
#: Vector extensions looked for, as Linux's ``/proc/cpuinfo`` names them (x86 ``flags``, Arm
#: ``Features``): those present are recorded, so that figures from an AVX2 machine and an AVX-512
#: one are told apart.
VECTOR_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512dq", "avx512cd",
                     "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                     "amx_int8", "asimd", "sve", "sve2")
# NumPy's names of the same extensions (its run-time dispatch), read where /proc/cpuinfo is not
_NUMPY_FEATURES = {"sse4_2": "SSE42", "avx": "AVX", "avx2": "AVX2", "fma": "FMA3", "f16c": "F16C",
                   "avx512f": "AVX512F", "avx512dq": "AVX512DQ", "avx512cd": "AVX512CD", "avx512bw": "AVX512BW",
                   "avx512vl": "AVX512VL", "avx512_vnni": "AVX512VNNI", "avx512_fp16": "AVX512FP16",
                   "asimd": "ASIMD", "sve": "SVE"}
_CPUINFO = "/proc/cpuinfo"
#: Environment variables that change the threads or the kernels of a library, recorded when set.
LIBRARY_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                     "TF_NUM_INTEROP_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE",
                     "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE", "TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA",
                     "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "NPY_DISABLE_CPU_FEATURES", "OMP_WAIT_POLICY",
                     "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def cpu_record():
    """The CPU: ``cpu`` (its model name), ``cpu_id`` (vendor, family, model, stepping, where Linux
    says them: the model name of a virtual machine may be only ``AMD EPYC``) and
    ``vector_extensions``, those of :data:`VECTOR_EXTENSIONS` it has, with ``vector_extensions_from``:
    ``/proc/cpuinfo``, or ``numpy`` (its run-time CPU dispatch, which knows fewer of them) elsewhere.
    """
    from twinnet.lab.environment import machine as host

    fields_ = {}
    try:
        with open(_CPUINFO, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():  # the first CPU's block is enough
                    break
                key, _, value = line.partition(":")
                fields_.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set((fields_.get("flags") or fields_.get("Features") or "").split())
    if flags:
        present, source = [e for e in VECTOR_EXTENSIONS if e in flags], _CPUINFO
    else:
        present, source = _numpy_features(), "numpy"
    cpu_id = " ".join(f"{name} {fields_[key]}" for name, key in
                      [("", "vendor_id"), ("family", "cpu family"), ("model", "model"), ("stepping", "stepping"),
                       ("implementer", "CPU implementer"), ("part", "CPU part")] if key in fields_).strip()
    return {"cpu": fields_.get("model name") or host()["cpu"], "cpu_id": cpu_id or None,
            "vector_extensions": present, "vector_extensions_from": source}


def _numpy_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # NumPy 1
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return []
    return [e for e in VECTOR_EXTENSIONS if features.get(_NUMPY_FEATURES.get(e))]


def thread_pools():
    """The BLAS and OpenMP libraries this process has loaded (threadpoolctl's view): each with the
    package that brought it, ``user_api``, ``internal_api``, ``version``, ``architecture`` (the
    CPU kernels), ``num_threads`` and ``threading_layer``."""
    from threadpoolctl import threadpool_info

    return [{"package": _package(lib.get("filepath", "")),
             **{key: lib.get(key) for key in ("user_api", "internal_api", "version", "architecture",
                                              "num_threads", "threading_layer")}}
            for lib in threadpool_info()]


def machine(results=()):
    """The machine and libraries the figures come from, as a JSON-ready dict.

    :func:`twinnet.lab.environment.machine`'s record (``cpus``, ``usable_cpus``, ``platform``, ...)
    with :func:`cpu_record`'s; ``numpy_blas``, the BLAS behind ``np.dot`` (``internal_api``,
    ``version``, ``architecture``: its kernels, ``num_threads`` by default); ``thread_pools`` of
    this process (:func:`thread_pools`); ``library_variables``, those of :data:`LIBRARY_VARIABLES`
    set in this process's environment (the bench's children get their thread variables from
    ``threads``); and ``versions``, this process's, with those the children of ``results``
    (:func:`run_workload`'s) report: TensorFlow's and PyTorch's are loaded only there.
    """
    from twinnet.lab.environment import environment

    record = environment()
    pools = thread_pools()
    numpy_blas = next((lib for lib in pools if lib["user_api"] == "blas" and lib["package"] == "numpy"),
                      next((lib for lib in pools if lib["user_api"] == "blas"), None))
    versions = dict(record["versions"])
    for result in results:
        for row in [*result["engines"], *result["rooflines"]]:
            versions.update((row.get("process") or {}).get("versions", {}))
    return {**record["machine"], **cpu_record(), "numpy_blas": numpy_blas, "thread_pools": pools,
            "library_variables": {key: os.environ[key] for key in LIBRARY_VARIABLES if key in os.environ},
            "versions": versions}


def _package(filepath):
    # .../site-packages/numpy.libs/libscipy_openblas64_-....so -> "numpy"
    parts = filepath.replace("\\", "/").split("/")
    if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
        return parts[parts.index("site-packages") + 1].removesuffix(".libs")
    return parts[-1]
