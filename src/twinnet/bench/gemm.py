"""The roofline: an epoch's matrix products alone, each in the fastest layout a library offers.

Every product of :func:`~twinnet.bench.workloads.products` is timed in each of its eight layouts
(and, where the library allows it, thread counts); the fastest forms are then run for the
workload's epochs and timed as the engines are. A library is one entry of :data:`GEMMS`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from typing import NamedTuple

import numpy as np

from twinnet.bench.workloads import Run, products


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


def best_time(fn, samples, budget):
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


def gemm_variants(M, K, N, dtype, rng, *, convert=None, empty=None, matmul=None):
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


def plan_by_threads(chosen):
    """``[(threads, call), ...]`` grouped by thread count: ``[(threads, [call, ...]), ...]``."""
    groups = {}
    for threads, call in chosen:
        groups.setdefault(threads, []).append(call)
    return sorted(groups.items())


class NumpyGemm:
    """NumPy's BLAS: its layouts, with one thread or all of the BLAS's.

    A library of :data:`GEMMS` is an object with ``variants(M, K, N, dtype, rng)`` (as
    :func:`gemm_variants`), ``thread_counts()`` to try, ``threads()``, ``set_threads(n)`` and
    ``plan(chosen)``: the products' fastest calls, ``[(threads, call), ...]``, grouped into what
    :func:`run_products` runs.
    """

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self.blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]

    @staticmethod
    def variants(M, K, N, dtype, rng):
        return gemm_variants(M, K, N, dtype, rng)

    def threads(self):
        return max([lib.num_threads for lib in self.blas], default=1)

    def thread_counts(self):
        return sorted({1, self.threads()})

    def set_threads(self, n):
        for lib in self.blas:  # the controllers directly: threadpoolctl's limit() costs ten times more
            lib.set_num_threads(n)

    @contextlib.contextmanager
    def restored(self):
        """The BLAS's threads as they were, after the block."""
        before = [lib.num_threads for lib in self.blas]
        try:
            yield
        finally:
            for lib, n in zip(self.blas, before):
                lib.set_num_threads(n)

    @staticmethod
    def plan(chosen):
        return plan_by_threads(chosen)


class TorchGemm:
    """``torch.mm`` into preallocated outputs, in the eight layouts of :func:`gemm_variants`, with one
    thread or all."""

    def __init__(self):
        import torch

        self.torch = torch
        self.all_threads = torch.get_num_threads()

    def variants(self, M, K, N, dtype, rng):
        torch = self.torch
        # from_numpy keeps the strides: a transposed operand stays a transpose flag, not a copy
        return gemm_variants(M, K, N, dtype, rng, convert=torch.from_numpy,
                             empty=lambda shape: torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name)),
                             matmul=lambda x, y, out: torch.mm(x, y, out=out))

    def thread_counts(self):
        return sorted({1, self.all_threads})

    def threads(self):
        return self.torch.get_num_threads()

    def set_threads(self, n):
        self.torch.set_num_threads(n)

    @staticmethod
    def plan(chosen):
        return plan_by_threads(chosen)


class TensorFlowGemm:
    """``tf.linalg.matmul`` with its transpose flags; the epoch's products run in one ``tf.function``,
    where TensorFlow may overlap the independent ones. Its thread pools are fixed once it runs.

    In a child of the bench, :func:`twinnet.lab.sweep.limit_threads` has already imported TensorFlow
    quietly.
    """

    def __init__(self):
        import tensorflow as tf

        self.tf = tf

    def variants(self, M, K, N, dtype, rng):
        """``(label, function)`` pairs, labelled as :func:`gemm_variants` labels them."""
        tf = self.tf
        A = rng.standard_normal((M, K)).astype(dtype)
        B = rng.standard_normal((K, N)).astype(dtype)
        stored = {"A": tf.constant(A), "A^T": tf.constant(np.ascontiguousarray(A.T)),
                  "B": tf.constant(B), "B^T": tf.constant(np.ascontiguousarray(B.T))}
        variants = []
        for a in ("A", "A^T"):
            for b in ("B", "B^T"):
                x, y, ta, tb = stored[a], stored[b], a == "A^T", b == "B^T"
                variants.append((f"C = {a} {b}", lambda x=x, y=y, ta=ta, tb=tb: tf.linalg.matmul(
                    x, y, transpose_a=ta, transpose_b=tb)))
                # C^T = B^T A^T: B^T is the stored B^T as is, or the stored B with its flag; A^T likewise
                variants.append((f"C^T = {b} {a} (transposed)", lambda x=x, y=y, ta=ta, tb=tb: tf.linalg.matmul(
                    y, x, transpose_a=not tb, transpose_b=not ta)))
        return variants

    def thread_counts(self):
        return [self.threads()]

    def threads(self):
        return self.tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()

    def set_threads(self, n):
        pass  # fixed for the process's life

    def plan(self, chosen):
        calls = [call for _, call in chosen]
        # the outputs are returned, so that no product is pruned from the graph
        epoch = self.tf.function(lambda: [call() for call in calls])
        return [(self.threads(), [epoch])]


#: Each library of :data:`ROOFLINES`, as the object that times its products.
GEMMS = {"numpy": NumpyGemm, "tensorflow": TensorFlowGemm, "torch": TorchGemm}


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


def network_layouts(layers):
    """The layout in which ``Network`` computes each product of :func:`~twinnet.bench.products`, as
    :func:`gemm_variants` labels it, in the same order.

    From :mod:`twinnet.nn.engine`'s storage, every array C-contiguous: the input in rows (``A_0^T``),
    each layer's kernel ``K_l = W_l^T``, the hidden activations and each ``dZ_l`` in columns;
    ``Z_l = K_l^T A_{l-1}``, ``dK_l = A_{l-1} dZ_l^T`` (``dW_l`` written transposed) and
    ``dA_{l-1} = K_l dZ_l``. None for a product it does not form: one output unit's ``dA_{L-1}``, an
    outer product done a block of rows at a time (a test holds this to the engine's own calls).
    """
    L = len(layers) - 1
    layouts = []
    for l in range(1, L + 1):
        layouts.append("C = A^T B^T" if l == 1 else "C = A^T B")
        layouts.append("C^T = B A (transposed)" if l == 1 else "C^T = B^T A (transposed)")
        if l > 1:
            layouts.append(None if l == L and layers[-1] == 1 else "C = A B")
    return layouts


def fastest_layouts(layers, m, dtype, samples, budget, gemm=None, *, network=False):
    """The fastest layout and thread count of each product of :func:`~twinnet.bench.products`, with one library.

    Each product is timed once in each of its eight layouts (:func:`gemm_variants`), with each of
    the library's thread counts (NumPy's BLAS: its threads and, if it has more, one); the two
    fastest candidates are timed again, best of ``samples``.

    Parameters
    ----------
    gemm : object, optional
        A library of :data:`GEMMS`, made; default NumPy's BLAS.
    network : bool
        Also compare the layout ``Network`` uses (:func:`network_layouts`) to the fastest, both
        with the fastest form's threads (``Network``'s threads are :mod:`twinnet.nn.threads`'
        business): ``samples`` rounds, each timing the two one after the other, so that both meet
        the same moments of a shared machine and neither is the best of more timings than the
        other. NumPy's BLAS only.

    Returns
    -------
    rows : list of dict
        Per product: ``label``, ``shape`` ``(M, K, N)``, ``flops``, ``seconds`` (its best timing),
        ``layout``, ``threads``, and ``network``: None (without ``network``, or for a product
        ``Network`` does not form), or ``layout``, ``seconds`` and ``fastest_seconds``, the best of
        the rounds of its form and of the fastest (the same timings when they are one form).
    plan : list of (int, list of callable)
        The products' fastest calls grouped by thread count, to be run in that order.
    """
    gemm = gemm or NumpyGemm()
    rng = np.random.default_rng(0)
    rows, chosen = [], []
    mine = network_layouts(layers) if network else itertools.repeat(None)
    with _restored(gemm):
        counts = gemm.thread_counts()  # read once: setting the threads changes what NumPy's BLAS reports
        for (label, M, K, N), own in zip(products(layers, m), mine):
            candidates = []
            for layout, fn in gemm.variants(M, K, N, np.dtype(dtype), rng):
                for t in counts:
                    gemm.set_threads(t)
                    candidates.append((best_time(fn, 1, budget), layout, t, fn))
            candidates.sort(key=lambda c: c[0])
            timed = []
            for seconds, layout, t, fn in candidates[:2]:
                gemm.set_threads(t)
                timed.append((min(seconds, best_time(fn, samples, budget)), layout, t, fn))
            seconds, layout, t, fn = min(timed, key=lambda c: c[0])
            rows.append({"label": label, "shape": [M, K, N], "flops": 2 * M * K * N, "seconds": seconds,
                         "layout": layout, "threads": t, "network": None})
            if own is not None:
                forms = {layout: fn}  # the fastest layout, and Network's if it is another
                forms.setdefault(own, next(c[3] for c in candidates if c[1:3] == (own, t)))
                best = dict.fromkeys(forms, float("inf"))
                gemm.set_threads(t)
                for _ in range(samples):
                    for form, call in forms.items():
                        best[form] = min(best[form], best_time(call, 1, budget))
                rows[-1]["network"] = {"layout": own, "seconds": best[own], "fastest_seconds": best[layout]}
            chosen.append((t, fn))
    return rows, gemm.plan(chosen)


def run_products(plan, epochs, gemm=None):
    """Run the roofline's products for ``epochs`` epochs, timed as the engines are: a :class:`Run`
    from the end of the first epoch to the end of the last."""
    gemm = gemm or NumpyGemm()
    ends = []
    with _restored(gemm):
        for _ in range(epochs):
            for threads, calls in plan:
                gemm.set_threads(threads)
                for call in calls:
                    call()
            ends.append(time.perf_counter())
    return Run(ends[-1] - ends[0], epochs - 1, float("nan"))


def products_summary(rows):
    """The products' ``flops``, their rows, ``products_ms``, the sum of their timings alone, and
    ``network_vs_fastest``: over the products ``Network`` forms, the sum of their timings in its
    layouts over the sum in the fastest, timed in the same rounds (None where they were not timed)."""
    own = [r["network"] for r in rows if r["network"]]
    return {"flops": sum(r["flops"] for r in rows), "products": rows,
            "products_ms": 1e3 * sum(r["seconds"] for r in rows),
            "network_vs_fastest": (sum(n["seconds"] for n in own) / sum(n["fastest_seconds"] for n in own)
                                   if own else None)}


def roofline(layers, m, dtype, *, epochs=2, repeats=1, samples=5, budget=0.5):
    """Time of one epoch's matrix products alone with NumPy's BLAS, in this process.

    Each product of :func:`~twinnet.bench.products` is first timed alone in every layout and thread count to find
    its fastest (see :func:`fastest_layouts`); then the products, each in its fastest form, are
    run for ``epochs`` epochs, ``repeats`` times, and timed as the engines are, from the end of the
    first epoch to the end of the last. (:func:`twinnet.bench.run_workload` does the same with
    every library of :data:`ROOFLINES`, each in a process of its own.)

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
        fastest form, and ``network`` (:func:`fastest_layouts`);
        ``products_ms``, the sum of their ``seconds`` in milliseconds; ``network_vs_fastest``
        (:func:`products_summary`).
    """
    gemm = NumpyGemm()
    rows, plan = fastest_layouts(layers, m, dtype, samples, budget, gemm, network=True)
    times = []
    for _ in range(repeats):
        run = run_products(plan, epochs, gemm)
        times.append(1e3 * run.seconds / run.epochs)
    return {"ms_per_epoch": min(times), "ms_per_epoch_runs": times, **products_summary(rows),
            "threads": gemm.threads()}
