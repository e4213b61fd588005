"""Every engine and every library's roofline on one workload, each in a process of its own, taking turns.

The bench draws the data and the initial weights once, starts one child per engine and per roofline
library (:mod:`twinnet.bench.worker`), warms each up, then asks them in turn for one timed run each,
never two at once, so that the load of a shared machine falls on all of them alike; an engine's
figure is its fastest run. A child that fails, ends or hangs is reported as failed; the others go on.
"""

from __future__ import annotations

import os
import tempfile
import time

from twinnet import validation
from twinnet.bench import profiling
from twinnet.bench.gemm import ROOFLINES, products_summary
from twinnet.bench.workloads import (ENGINE_ORDER, flops_per_epoch, resolve_threads, resolve_workload,
                                     save_inputs)

#: Seconds a child may take to start at least, whatever the ``timeout``: importing TensorFlow takes tens of
#: seconds on a busy machine.
START_TIMEOUT = 120.0

#: Seconds the bench waits before each timed run of a child: long enough for the threads of the last
#: one to stop spinning (OpenBLAS's wait 2^28 cycles before they sleep; OpenMP's and TensorFlow's less).
SETTLE = 0.15


def _ordered(names, order):
    # in the table's order, whatever order they were asked in
    return [name for name in order if name in set(names)]


def _check(workload, engines, rooflines, repeats, budget, threads, timeout):
    """The workload (a name resolved), the engines and libraries in their order, the threads; or ``ValueError``."""
    workload = resolve_workload(workload)
    for engine in engines:
        validation.choice("engine", engine, ENGINE_ORDER, ordered=True)
    for library in rooflines:
        validation.choice("roofline library", library, ROOFLINES, ordered=True)
    validation.positive_int("repeats", repeats)
    validation.non_negative_number("budget", budget)
    threads = resolve_threads(threads)
    validation.positive_number("timeout", timeout)
    return workload, _ordered(engines, ENGINE_ORDER), _ordered(rooflines, ROOFLINES), threads


def _installed(module):
    """Whether ``module`` can be imported, without importing it."""
    import importlib.util

    return module is None or importlib.util.find_spec(module) is not None


def _skip_reason(module, extra):
    if _installed(module):
        return None
    return f"{module} is not installed" + (f" (pip install 'twinnet[{extra}]')" if extra else "")


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
        """Record the failure (:class:`~twinnet.bench.processes.ChildFailed`) and stop the child."""
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
    from twinnet.bench.processes import Child, ChildFailed

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
            turn.row.update(products_summary(answer["products"]), threads=answer["threads"])
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
    """:func:`~twinnet.bench.fit_memory` in a child of its own: ``(memory, None)`` or ``(None, why it failed)``."""
    from twinnet.bench.processes import Child, ChildFailed

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
                 memory=True, profile=False, threads=None, timeout=300.0, announce=lambda message: None):
    """Benchmark ``engines`` and the roofline of each library of ``rooflines`` on ``workload``.

    Each engine, each library and the memory measurement run in a fresh process of their own (see
    the module's docstring); this process imports neither TensorFlow nor PyTorch. Ctrl-C
    (``KeyboardInterrupt``) stops every child before it propagates.

    Parameters
    ----------
    workload : Workload or str
        A :class:`~twinnet.bench.Workload` or a key of :data:`~twinnet.bench.WORKLOADS`.
    engines : sequence of str
        Keys of :data:`twinnet.lab.ENGINES`; run (and reported) in :data:`ENGINE_ORDER`. Those
        whose library is not installed are reported as skipped.
    rooflines : sequence of str
        Keys of :data:`~twinnet.bench.ROOFLINES`; those not installed are reported as skipped.
    repeats : int
        Timed runs per engine and library, at most.
    budget : float
        Seconds of timed runs after which an engine stops repeating (after at least one run).
    memory : bool
        Measure ``Network.fit``'s peak memory (:func:`~twinnet.bench.fit_memory`).
    profile : bool
        Time each stage of ``Network.fit``'s epoch (:func:`~twinnet.bench.profile`, in this process,
        after the others, with the same ``repeats`` and ``budget``).
    threads : int or "auto", optional
        Threads of every child's BLAS, OpenMP, TensorFlow (intra- and inter-op) and PyTorch;
        default: the CPUs this process may use; ``"auto"``: each library's own choice.
    timeout : float
        Seconds a child may take to warm up or for one run (to start: at least
        :data:`START_TIMEOUT`) before it is stopped and its row reported as failed.
    announce : callable
        Called with a short message before each step.

    Returns
    -------
    dict
        JSON-ready: ``workload`` (:meth:`~twinnet.bench.Workload.record`), ``flops_per_epoch``, ``threads`` (the
        count and the environment variables every child got), ``engines`` (one row per engine:
        ``engine``, ``status`` (``ok``, ``diverged``, ``failed``, or None when skipped),
        ``ms_per_epoch`` of its fastest run, ``gflops``, ``vs_numpy`` = its time / numpy's,
        ``runs``, ``ms_per_epoch_runs``, ``final_loss``, ``error``, ``skipped``, ``process``: the
        child's pid, versions and threads), ``rooflines`` (one row per library, the same fields
        with ``library`` and ``call`` for ``engine``, no loss, plus ``flops``, ``threads``,
        ``products``, ``products_ms`` and ``network_vs_fastest`` as :func:`~twinnet.bench.roofline` gives
        them), ``roofline`` (the fastest library's row, or None), ``numpy_vs_roofline``, ``memory``
        (:func:`~twinnet.bench.fit_memory`'s
        dict or None) with ``memory_error``, ``targets``, and with ``profile`` :func:`~twinnet.bench.profile`'s
        dict.
    """
    from twinnet.bench.processes import close_all
    from twinnet.lab.sweep import THREAD_ENV

    workload, engines, rooflines, threads = _check(workload, engines, rooflines, repeats, budget, threads,
                                                   timeout)
    flops = flops_per_epoch(workload.config.layers, workload.n_train)
    turns = [_Turn("engine", e, {**_row("engine", e, workload), "final_loss": None}) for e in engines]
    turns += [_Turn("roofline", lib, {**_row("roofline", lib, workload), **products_summary([]), "threads": None})
              for lib in rooflines]
    with tempfile.TemporaryDirectory(prefix="twinnet-bench-") as folder:
        # drawn once, here, where a wrong size of the data is one error, not one per child
        announce(f"{workload.name}: data")
        inputs = os.path.join(folder, "inputs.npz")
        save_inputs(inputs, workload)
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
              "threads": {"threads": threads,
                          "environment": {} if threads == "auto" else dict.fromkeys(THREAD_ENV, str(threads))},
              "engines": engine_rows, "rooflines": roof_rows, "roofline": dict(fastest) if fastest else None,
              # the roofline is the full batch's products: no bound on mini-batch training
              "numpy_vs_roofline": (base / fastest["ms_per_epoch"]
                                    if base and fastest and not workload.config.batch_size else None),
              "memory": memory_figures, "memory_error": memory_error}
    if profile:
        announce(f"{workload.name}: profile of Network.fit")
        result["profile"] = profiling.profile(workload, threads=threads, repeats=repeats, budget=budget)
    result["targets"] = _targets(workload, result)
    return result


def _targets(workload, result):
    """The workload's targets (``speedup``, ``roofline``, ``memory``, ``products``) that its figures allow checking.

    Each is a dict: ``name``, ``target`` (in words), ``value`` measured, ``bound``, ``met``. The
    speedup is the fastest other engine's time over numpy's; the roofline, the fastest library's;
    the products, ``Network``'s layouts of the full batch's products against NumPy's fastest
    (:func:`~twinnet.bench.gemm.products_summary`), not checked for mini-batch training.
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
    ratio = next((row["network_vs_fastest"] for row in result["rooflines"] if row["library"] == "numpy"), None)
    if ratio is not None and workload.products_target and not workload.config.batch_size:
        target("products", f"Network's layouts within {workload.products_target:g}x of NumPy's fastest, "
               "its products timed one by one", ratio, workload.products_target, ratio <= workload.products_target)
    return targets
