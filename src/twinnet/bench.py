"""The performance harness behind ``twinnet bench``: every engine on one workload, and the BLAS floor.

One process, one data set, one set of initial weights, full-batch gradient descent: each engine of
:data:`twinnet.lab.ENGINES` trains the same network for the same number of epochs and is timed
after a warm-up, best of several runs. Beside them, the *roofline*: the same workload's matrix
products alone, with preallocated operands and outputs, each in the fastest layout and thread
count this machine's BLAS offers for it (found by timing every one), run for the same epochs and
timed in the same way. No engine can do the products in less time, so ``numpy / roofline`` says
how much of an epoch is spent outside the BLAS. Finally the peak memory that ``Network.fit``
allocates, against the bytes of the data, the activations and the gradients it must hold.

Timing protocol
---------------
- Warm-up: each engine first trains once for two epochs, untimed (libraries load their kernels,
  thread pools start, caches warm).
- Runs: then the engines and the roofline take turns, one run each per round, so that the load
  of a shared machine falls on all of them alike. An engine stops after ``repeats`` runs, or after its
  first run once its runs have taken ``budget`` seconds in all. Its figure is its fastest run.
- What is timed is the steady state: the time from the end of the first epoch to the end of the
  last, over the epochs in between, so that what a library does once per training call (checking
  and copying the data, allocating its buffers, for the Keras engines tracing a new graph) is
  left out alike. ``numpy`` is ``Network.fit`` as a user calls it, whose optimizer notes the end
  of each step; functional, torch, keras (``model.fit``) and tf-loop (a ``tf.function`` step) are
  the runners of :mod:`twinnet.lab.runners`, which report each epoch's end. scikit-learn's
  ``MLPClassifier.fit`` cannot be observed between epochs: its whole ``fit`` is timed, over
  ``epochs``.

FLOP count
----------
Per epoch, for ``m`` examples and widths ``n_0 .. n_L``: the forward products
``Z_l = W_l A_{l-1}`` and weight gradients ``dW_l = dZ_l A_{l-1}^T`` of every layer, and the
input gradients ``dA_{l-1} = W_l^T dZ_l`` of layers 2 .. L (nothing needs ``dA_0``, the gradient
with respect to the data), ``2 m n_l n_{l-1}`` floating-point operations each. Every engine's
GFLOP/s is this count over its time, so the column compares times, not the work each library
chooses to do.

Example
-------
>>> from twinnet.bench import Workload, run_workload
>>> from twinnet.lab import RunConfig
>>> tiny = Workload("tiny", RunConfig(data="gaussian", layers=(8, 4, 1), epochs=3), n_train=64)
>>> result = run_workload(tiny, engines=["numpy", "functional"], repeats=1)
>>> [row["engine"] for row in result["engines"]]
['numpy', 'functional']
>>> result["flops_per_epoch"] == 2 * 64 * (2 * (8 * 4 + 4 * 1) + 4 * 1)
True
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, replace

import numpy as np

from twinnet import validation
from twinnet.lab.config import RunConfig, default_layers

__all__ = [
    "DATA",
    "ENGINE_ORDER",
    "WORKLOADS",
    "Workload",
    "fit_memory",
    "flops_per_epoch",
    "load_data",
    "machine",
    "products",
    "roofline",
    "run_workload",
]

#: Engines in the order they are run and printed: ``numpy`` (``twinnet.Network``) first, the
#: reference of the relative times.
ENGINE_ORDER = ("numpy", "functional", "sklearn", "torch", "tf-loop", "keras")


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
        labelled by the sign of a random linear function (a fixed seed).
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


#: Data a workload can train on.
DATA = ("gaussian", "synthetic")

WORKLOADS = {
    # the notebook's experiment: its network, its 250 epochs, data shaped like its data.pickle
    "seed": Workload("seed", RunConfig(layers=default_layers(100)), 1600, speedup_target=2.0),
    # an MNIST-sized network whose time is all in large products
    "large": Workload("large", RunConfig(data="gaussian", layers=(784, 512, 256, 1), epochs=5, dtype="float32",
                                         learning_rate=0.01, init="glorot"), 20000, roofline_target=1.15),
}


def _check(workload, engines, repeats, budget):
    """The workload (a name resolved), the engines in :data:`ENGINE_ORDER`, or ``ValueError``."""
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
    for engine in engines:
        validation.choice("engine", engine, ENGINE_ORDER, ordered=True)
    validation.positive_int("repeats", repeats)
    if not (isinstance(budget, (int, float)) and budget >= 0):
        raise ValueError(f"budget must be a number of seconds >= 0; got budget={budget!r}.")
    return workload, [e for e in ENGINE_ORDER if e in set(engines)] + [e for e in engines if e not in ENGINE_ORDER]


# --------------------------------------------------------------------------- data and work
def load_data(workload):
    """The training data of ``workload``.

    Returns
    -------
    X : ndarray of shape (n_train, layers[0])
        C-ordered, in the workload's dtype.
    y : ndarray of int64 of shape (n_train,)
        Labels 0 and 1.
    """
    from twinnet.lab.run import load_split

    config = workload.config
    n_features = config.layers[0]
    if config.data == "gaussian":
        rng = np.random.default_rng(0)
        X = rng.standard_normal((workload.n_train, n_features), dtype=config.dtype)
        y = (X @ rng.standard_normal(n_features).astype(config.dtype) > 0).astype(np.int64)
        return X, y
    split = load_split(config)
    X, y = np.ascontiguousarray(split.X_train), split.y_train
    if X.shape != (workload.n_train, n_features):
        raise ValueError(f"workload {workload.name!r} expects {workload.n_train} x {n_features} "
                         f"training data; data set {config.data!r} gives {X.shape[0]} x {X.shape[1]}.")
    return X, y


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


def _gemm_variants(M, K, N, dtype, rng):
    """Every way NumPy can hand ``C = A B`` to BLAS with contiguous operands and output.

    Each operand is stored as is or transposed (a BLAS transpose flag, no copy), and the output is
    ``C`` or ``C^T = B^T A^T``: eight calls, each a ``(label, function)`` pair.
    """
    A = rng.standard_normal((M, K)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    stored = {"A": A, "A^T": np.ascontiguousarray(A.T).T, "B": B, "B^T": np.ascontiguousarray(B.T).T}
    C, Ct = np.empty((M, N), dtype), np.empty((N, M), dtype)
    variants = []
    for a in ("A", "A^T"):
        for b in ("B", "B^T"):
            x, y = stored[a], stored[b]
            variants.append((f"C = {a} {b}", lambda x=x, y=y: np.dot(x, y, out=C)))
            variants.append((f"C^T = {b} {a} (transposed)", lambda x=x, y=y: np.dot(y.T, x.T, out=Ct)))
    return variants


def _fastest_layouts(layers, m, dtype, samples, budget):
    """The fastest layout and thread count of each product of :func:`products`.

    Each product is timed once in each of its eight layouts (:func:`_gemm_variants`), with the
    BLAS's threads and, if it has more, with one thread; the two fastest candidates are timed
    again, best of ``samples``.

    Returns
    -------
    rows : list of dict
        Per product: ``label``, ``shape`` ``(M, K, N)``, ``flops``, ``seconds`` (its best timing),
        ``layout`` and ``threads``.
    plan : list of (int, list of callable)
        The products' fastest calls grouped by thread count, to be run in that order.
    """
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    rng = np.random.default_rng(0)
    threads = _blas_threads(controller)
    rows, groups = [], {}
    for label, M, K, N in products(layers, m):
        candidates = []
        for layout, fn in _gemm_variants(M, K, N, np.dtype(dtype), rng):
            for t in sorted({1, threads}):
                with controller.limit(limits=t, user_api="blas"):
                    candidates.append((_best_time(fn, 1, budget), layout, t, fn))
        candidates.sort(key=lambda c: c[0])
        timed = []
        for seconds, layout, t, fn in candidates[:2]:
            with controller.limit(limits=t, user_api="blas"):
                timed.append((min(seconds, _best_time(fn, samples, budget)), layout, t, fn))
        seconds, layout, t, fn = min(timed, key=lambda c: c[0])
        rows.append({"label": label, "shape": [M, K, N], "flops": 2 * M * K * N, "seconds": seconds,
                     "layout": layout, "threads": t})
        groups.setdefault(t, []).append(fn)
    return rows, sorted(groups.items())


def _blas_threads(controller):
    return max([lib.num_threads for lib in controller.lib_controllers if lib.user_api == "blas"],
               default=1)


def _run_products(plan, epochs):
    """Run the roofline's products for ``epochs`` epochs, timed as the engines are (:class:`_Run`)."""
    from threadpoolctl import ThreadpoolController

    blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    before = [lib.num_threads for lib in blas]
    ends = []
    try:
        for _ in range(epochs):
            for threads, calls in plan:
                for lib in blas:  # about a microsecond: threadpoolctl's limit() takes ten
                    lib.set_num_threads(threads)
                for call in calls:
                    call()
            ends.append(time.perf_counter())
    finally:
        for lib, n in zip(blas, before):
            lib.set_num_threads(n)
    return _Run(ends[-1] - ends[0], epochs - 1, float("nan"))


def roofline(layers, m, dtype, *, epochs=2, repeats=1, samples=5, budget=0.5):
    """Time of one epoch's matrix products alone: the floor this machine's BLAS sets.

    Each product of :func:`products` is first timed alone in every layout and thread count to find
    its fastest (see :func:`_fastest_layouts`); then the products, each in its fastest form, are
    run for ``epochs`` epochs, ``repeats`` times, and timed as the engines are, from the end of the
    first epoch to the end of the last.

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
    rows, plan = _fastest_layouts(layers, m, dtype, samples, budget)
    runs = [_run_products(plan, epochs) for _ in range(repeats)]
    return _roofline_result(rows, [1e3 * run.seconds / run.epochs for run in runs])


def _roofline_result(rows, times):
    from threadpoolctl import ThreadpoolController

    return {"ms_per_epoch": min(times), "ms_per_epoch_runs": times,
            "flops": sum(r["flops"] for r in rows), "threads": _blas_threads(ThreadpoolController()),
            "products": rows, "products_ms": 1e3 * sum(r["seconds"] for r in rows)}


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
    net = Network.from_parameters(initial, dtype=config.dtype)
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
        net = Network.from_parameters(initial, dtype=config.dtype)
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


def _skip_reason(engine):
    from twinnet.lab.runners import ENGINES, installed

    if not installed(engine):
        spec = ENGINES[engine]
        return f"{spec.module} is not installed (pip install 'twinnet[{spec.extra}]')"
    return None


def _diverged(row, exc):
    # the status of a run is a field of its row: ``error`` only says why
    row["status"], row["error"] = "diverged", f"diverged: {exc}"


def _time_engines(workload, engines, split, initial, plan, repeats, budget, announce):
    """Warm each engine up, then time engines and roofline in turns; return the rows and roofline times."""
    rows = {e: {"engine": e, "status": None, "runs": 0, "ms_per_epoch_runs": [], "final_loss": None,
                "error": None, "skipped": _skip_reason(e)} for e in engines}
    active = [e for e in engines if rows[e]["skipped"] is None]
    warm_up = replace(workload, config=replace(workload.config, epochs=2))
    for engine in list(active):
        announce(f"{workload.name}: {engine} warm-up")
        try:
            _train(engine, warm_up, split, initial)
        except FloatingPointError as exc:
            _diverged(rows[engine], exc)
            active.remove(engine)
    roof_times, spent = [], dict.fromkeys([*active, "roofline"], 0.0)
    for round_ in range(repeats):
        for engine in [e for e in [*active, "roofline"] if round_ == 0 or spent[e] < budget]:
            announce(f"{workload.name}: {engine} run {round_ + 1}")
            if engine == "roofline":  # it takes its turns with the engines, under the same conditions
                run = _run_products(plan, workload.config.epochs)
                roof_times.append(1e3 * run.seconds / run.epochs)
            else:
                try:
                    run = _train(engine, workload, split, initial)
                except FloatingPointError as exc:
                    _diverged(rows[engine], exc)
                    active.remove(engine)
                    continue
                rows[engine]["runs"] += 1
                rows[engine]["ms_per_epoch_runs"].append(1e3 * run.seconds / run.epochs)
                rows[engine]["final_loss"] = run.loss
            spent[engine] += run.seconds
    return rows, roof_times


def _figures(rows, flops):
    """Each row's best time, GFLOP/s and time relative to numpy's; its status once timed."""
    for row in rows.values():
        times = row["ms_per_epoch_runs"]
        if row["status"] is None and not row["skipped"]:
            row["status"] = "ok"
        row["ms_per_epoch"] = min(times) if times and row["status"] == "ok" else None
        row["gflops"] = flops / row["ms_per_epoch"] / 1e6 if row["ms_per_epoch"] else None
    base = rows.get("numpy", {}).get("ms_per_epoch")
    for row in rows.values():
        row["vs_numpy"] = row["ms_per_epoch"] / base if base and row["ms_per_epoch"] else None
    return base


def run_workload(workload, *, engines=ENGINE_ORDER, repeats=10, budget=3.0, memory=True,
                 announce=lambda message: None):
    """Benchmark ``engines`` and the roofline on ``workload``.

    Parameters
    ----------
    workload : Workload or str
        A :class:`Workload` or a key of :data:`WORKLOADS`.
    engines : sequence of str
        Keys of :data:`twinnet.lab.ENGINES`; run (and reported) in :data:`ENGINE_ORDER`. Those
        whose library is not installed are reported as skipped.
    repeats : int
        Timed runs per engine, at most.
    budget : float
        Seconds of timed runs after which an engine stops repeating (after at least one run).
    memory : bool
        Measure ``Network.fit``'s peak memory (:func:`fit_memory`).
    announce : callable
        Called with a short message before each step.

    Returns
    -------
    dict
        JSON-ready: ``workload`` (:meth:`Workload.record`), ``flops_per_epoch``, ``roofline`` (as
        :func:`roofline` returns it, plus ``gflops``), ``engines`` (one row per engine:
        ``engine``, ``status`` (``ok``, ``diverged``, or None when skipped), ``ms_per_epoch`` of its
        fastest run, ``gflops``, ``vs_numpy`` = its time / numpy's, ``runs``, ``ms_per_epoch_runs``,
        ``final_loss``, ``error``, ``skipped``), ``numpy_vs_roofline``, ``memory`` and ``targets``.
    """
    from twinnet.data import Split
    from twinnet.lab.run import initial_parameters

    workload, engines = _check(workload, engines, repeats, budget)
    config = workload.config
    announce(f"{workload.name}: data")
    X, y = load_data(workload)
    # the engines train on the training part only; the bench evaluates nothing
    split, initial = Split(X, X[:0], y, y[:0]), initial_parameters(config)
    flops = flops_per_epoch(config.layers, X.shape[0])
    announce(f"{workload.name}: roofline")
    products_alone, plan = _fastest_layouts(config.layers, X.shape[0], config.dtype, samples=5, budget=0.5)
    rows, roof_times = _time_engines(workload, engines, split, initial, plan, repeats, budget, announce)
    roof = _roofline_result(products_alone, roof_times)
    roof["gflops"] = flops / roof["ms_per_epoch"] / 1e6
    base = _figures(rows, flops)
    result = {"workload": {**workload.record(), "n_train": X.shape[0]}, "flops_per_epoch": flops,
              "roofline": roof, "engines": list(rows.values()),
              "numpy_vs_roofline": base / roof["ms_per_epoch"] if base else None, "memory": None}
    if memory and "numpy" in rows:
        announce(f"{workload.name}: memory")
        result["memory"] = fit_memory(workload, X, y, initial)
    result["targets"] = _targets(workload, result)
    return result


def _targets(workload, result):
    """The workload's targets (``speedup``, ``roofline``, ``memory``) that its figures allow checking.

    Each is a dict: ``name``, ``target`` (in words), ``value`` measured, ``bound``, ``met``. The
    speedup is the fastest other engine's time over numpy's.
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
    if numpy_ms:
        ratio = result["numpy_vs_roofline"]
        target("roofline", f"numpy within {workload.roofline_target:g}x of the roofline",
               ratio, workload.roofline_target, ratio <= workload.roofline_target)
    if result["memory"]:
        ratio = result["memory"]["ratio"]
        target("memory", f"Network.fit's peak extra memory at most {workload.memory_target:g}x "
               "data + activations + gradients", ratio, workload.memory_target, ratio <= workload.memory_target)
    return targets


# --------------------------------------------------------------------------- machine
def machine():
    """The machine and libraries the figures come from, as a JSON-ready dict.

    :func:`twinnet.lab.environment.machine`'s record (``cpu``, ``cpus``, ``usable_cpus``, ...) with
    ``versions``, ``thread_pools``: the BLAS and OpenMP libraries loaded (threadpoolctl's view), each
    with the package that brought it, its version, CPU kernels and threads; and ``thread_variables``,
    the environment variables that set their threads.
    """
    from threadpoolctl import threadpool_info

    from twinnet.lab.environment import environment

    libraries = [{"package": _package(lib.get("filepath", "")),
                  **{key: lib.get(key) for key in ("user_api", "internal_api", "version", "architecture",
                                                   "num_threads", "threading_layer")}}
                 for lib in threadpool_info()]
    variables = {key: os.environ[key] for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                                  "OMP_NUM_THREADS", "MKL_NUM_THREADS") if key in os.environ}
    record = environment()
    return {**record["machine"], "versions": record["versions"], "thread_pools": libraries,
            "thread_variables": variables}


def _package(filepath):
    # .../site-packages/numpy.libs/libscipy_openblas64_-....so -> "numpy"
    parts = filepath.replace("\\", "/").split("/")
    if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
        return parts[parts.index("site-packages") + 1].removesuffix(".libs")
    return parts[-1]
