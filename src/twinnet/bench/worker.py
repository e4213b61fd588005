"""A child process of ``twinnet bench``: one engine, one library's roofline, or the memory measurement.

Each runs in a fresh process of its own: TensorFlow's and PyTorch's thread pools, once started, spin
on the cores while they wait and would slow an engine timed beside them.

Protocol
--------
The child (:data:`twinnet.bench.processes.BOOT`) reads one JSON line, its job: ``{"kind": "engine" |
"roofline" | "memory", "name", "label", "workload": Workload.record(), "threads", "inputs",
"parent"}`` (``inputs``: the ``.npz`` file of the data and the initial weights, written once by the
bench; ``parent``: its pid, with which the child ends). It limits its threads
(:func:`twinnet.lab.sweep.limit_threads`), imports its library, loads what it needs and answers
``{"ok": process}``: its pid, the versions and the thread counts it runs with (again after its
warm-up). Each further line is a request, ``{"do": "warm_up"}`` or ``{"do": "run"}``, answered by one
line: ``{"ok": figures}``, or ``{"status": "diverged" | "failed", "error": "..."}``. ``{"do":
"stop"}`` or the end of its input ends it. Answers go to the descriptor that was standard output;
whatever the libraries print goes to standard error.

Fault injection
---------------
For the tests, :data:`FAULT_ENV` (``TWINNET_BENCH_FAULT``) makes named children fail on purpose,
e.g. ``"functional=crash,sklearn=hang,roofline:torch=raise@warm_up"``: ``crash`` ends the process
(exit status 3), ``hang`` sleeps for good, ``raise`` raises ``RuntimeError``; at the first request
named after ``@`` (``start``, ``warm_up``, or ``run`` when none is named). The names are the
children's labels: an engine's name, ``roofline:<library>``, ``memory``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import replace

from twinnet.bench.gemm import GEMMS, ROOFLINES, fastest_layouts, run_products
from twinnet.bench.host import thread_pools
from twinnet.bench.memory import fit_memory
from twinnet.bench.workloads import Run, Workload, load_inputs

#: Environment variable that makes named children fail on purpose (see the module's docstring).
FAULT_ENV = "TWINNET_BENCH_FAULT"
FAULTS = ("crash", "hang", "raise")
STEPS = ("start", "warm_up", "run")


def main():
    """Entry point of a child: its job from standard input, then one answer per request."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what the libraries print at any level goes to standard error, never into the answers

    def answer(**message):
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    job = json.loads(sys.stdin.readline())
    _end_with(job["parent"])
    fault = _fault(job["label"])
    try:
        _strike(fault, "start")
        task = TASKS[job["kind"]](job)
        answer(ok=process_record(job["threads"]))
    except Exception as exc:  # noqa: BLE001  (reported to the parent, which names the engine)
        answer(status="failed", error=_error(exc))
        return
    for line in sys.stdin:
        request = json.loads(line)["do"]
        if request == "stop":
            return
        try:
            _strike(fault, request)
            figures = getattr(task, request)()
            if request == "warm_up":  # what the libraries loaded by now report, the engine's included
                figures["process"] = process_record(job["threads"])
            answer(ok=figures)
        except FloatingPointError as exc:
            answer(status="diverged", error=f"diverged: {exc}")
        except Exception as exc:  # noqa: BLE001
            answer(status="failed", error=_error(exc))


def _end_with(parent):
    """Have the kernel kill this process when the bench's process ends, however it ends (Linux).

    Elsewhere, or if that fails, a child whose parent is gone ends at its next request, which reads
    the end of its input.
    """
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):  # not Linux
        return
    if os.getppid() != parent:  # it ended before prctl
        os._exit(1)


def _error(exc):
    return " ".join(f"{type(exc).__name__}: {exc}".split()).rstrip(":")


def _fault(label):
    """``(kind, step)`` that :data:`FAULT_ENV` sets for ``label``, or None."""
    for item in filter(None, (part.strip() for part in os.environ.get(FAULT_ENV, "").split(","))):
        name, _, what = item.partition("=")
        kind, _, step = what.partition("@")
        if kind not in FAULTS or (step or "run") not in STEPS:
            raise ValueError(f"{FAULT_ENV}: expected name=fault[@step], a fault one of {FAULTS} and a step "
                             f"one of {STEPS}; got {item!r}.")
        if name.strip() == label:
            return kind, step or "run"
    return None


def _strike(fault, step):
    if fault is None or fault[1] != step:
        return
    if fault[0] == "crash":
        os._exit(3)
    if fault[0] == "hang":
        while True:
            time.sleep(60)
    raise RuntimeError(f"fault injected by {FAULT_ENV}")


def process_record(threads):
    """The child's pid, the thread count it was given, versions, and the threads each library reports."""
    from twinnet.lab.environment import versions

    record = {"pid": os.getpid(), "threads": threads, "versions": versions(),
              "thread_pools": thread_pools()}
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        record["tensorflow"] = {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
    if "torch" in sys.modules:
        import torch

        record["torch"] = {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                           "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    return record


def train(engine, workload, split, initial):
    """Train ``engine`` once on ``workload`` from ``initial``; return the timed :class:`Run`.

    What is timed is the steady state, from the end of the first epoch to the end of the last, so
    that what a library does once per training call (checking and copying the data, allocating its
    buffers, tracing a graph) is left out alike. scikit-learn's ``fit`` cannot be observed between
    epochs: it is timed whole.
    """
    from twinnet import Network
    from twinnet.lab.runners import ENGINES

    config, ends = workload.config, []
    if engine == "numpy":  # Network.fit as a user calls it
        net = Network.from_parameters(initial, output=config.output, dtype=config.dtype)
        history = net.fit(split.X_train, split.y_train, epochs=config.epochs, learning_rate=config.learning_rate,
                          batch_size=config.batch_size, optimizer=config.optimizer, seed=config.seed,
                          on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
        loss = history.history["loss"][-1]
    else:
        trained = ENGINES[engine].runner(config, split, initial,
                                         lambda epochs_done, current=None: ends.append(time.perf_counter()))
        loss = trained.loss_curve[-1]
        if not ends:  # scikit-learn: one call, not observable between epochs
            return Run(trained.seconds, config.epochs, float(loss))
    return Run(ends[-1] - ends[0], len(ends) - 1, float(loss))


class _Engine:
    """An engine of :data:`twinnet.lab.ENGINES` training the workload: warm-up, then timed runs."""

    def __init__(self, job):
        from twinnet.data import Split
        from twinnet.lab.runners import ENGINES
        from twinnet.lab.sweep import limit_threads

        self.engine, self.workload = job["name"], Workload.from_record(job["workload"])
        limit_threads(job["threads"], [ENGINES[self.engine].module])
        X, y, self.initial = load_inputs(job["inputs"])
        # the engines train on the training part only; the bench evaluates nothing
        self.split = Split(X, X[:0], y, y[:0])

    def warm_up(self):
        train(self.engine, replace(self.workload, config=replace(self.workload.config, epochs=2)),
              self.split, self.initial)
        return {}

    def run(self):
        run = train(self.engine, self.workload, self.split, self.initial)
        return {"seconds": run.seconds, "epochs": run.epochs, "loss": run.loss}


class _Roofline:
    """One library doing the epoch's matrix products alone: warm-up finds the fastest layouts."""

    def __init__(self, job):
        from twinnet.lab.sweep import limit_threads

        self.workload = Workload.from_record(job["workload"])
        self.library = job["name"]
        limit_threads(job["threads"], [ROOFLINES[self.library].module])
        self.gemm = GEMMS[self.library]()

    def warm_up(self):
        config = self.workload.config
        rows, self.plan = fastest_layouts(config.layers, self.workload.n_train, config.dtype,
                                          samples=5, budget=0.5, gemm=self.gemm, network=self.library == "numpy")
        run_products(self.plan, 2, self.gemm)  # TensorFlow traces its epoch here
        return {"products": rows, "threads": self.gemm.threads()}

    def run(self):
        run = run_products(self.plan, self.workload.config.epochs, self.gemm)
        return {"seconds": run.seconds, "epochs": run.epochs}


class _Memory:
    """``Network.fit``'s peak memory (:func:`~twinnet.bench.memory.fit_memory`), measured by ``run``."""

    def __init__(self, job):
        from twinnet.lab.sweep import limit_threads

        self.workload = Workload.from_record(job["workload"])
        limit_threads(job["threads"])
        self.X, self.y, self.initial = load_inputs(job["inputs"])

    def warm_up(self):
        return {}

    def run(self):
        return fit_memory(self.workload, self.X, self.y, self.initial)


TASKS = {"engine": _Engine, "roofline": _Roofline, "memory": _Memory}
