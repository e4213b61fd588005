"""The processes of ``twinnet bench``: each engine, each library's roofline and the memory measurement
in a fresh Python process of its own.

An engine timed in the process of another inherits its state: TensorFlow's and PyTorch's thread
pools, once started, spin on the cores while they wait, and slow whatever runs beside them
(``Network`` was measured 20 % slower on two cores after them). So :func:`twinnet.bench.run_workload`
starts one child per engine and per roofline library, all with the same thread settings, and asks
them in turn for one run each; its own process imports neither TensorFlow nor PyTorch.

Protocol
--------
A child is ``python -c BOOT``, with SIGINT ignored: Ctrl-C is for the parent, which stops its
children. It reads one JSON line, its job: ``{"kind": "engine" | "roofline" | "memory", "name",
"label", "workload": Workload.record(), "threads", "inputs", "parent"}`` (``inputs``: the ``.npz``
file of the data and the initial weights, written once by the parent; ``parent``: its pid, with
which the child ends). It limits its threads (:func:`twinnet.lab.sweep.limit_threads`), imports its
library, loads what it needs and answers ``{"ok": process}``: its pid, the versions and the thread
counts it runs with (again after its warm-up, with what its library loaded by then). Each further line
is a request, ``{"do": "warm_up"}`` or ``{"do": "run"}``, answered by one line: ``{"ok": figures}``,
or ``{"status": "diverged" | "failed", "error": "..."}``. ``{"do": "stop"}`` or the end of its
input ends it. Answers go to the descriptor that was standard output; whatever the libraries print
goes to standard error, which the parent keeps in a temporary file and quotes when a child dies
(with ``--verbose``, :data:`twinnet.keras_twin.VERBOSE_ENV`, it goes to the terminal instead).

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
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace

import numpy as np

from twinnet import bench

#: Environment variable that makes named children fail on purpose (see the module's docstring).
FAULT_ENV = "TWINNET_BENCH_FAULT"
FAULTS = ("crash", "hang", "raise")
STEPS = ("start", "warm_up", "run")

BOOT = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "from twinnet._bench_worker import main; main()")


# =========================================================================== the parent's side
class ChildFailed(Exception):
    """A child that failed, diverged, ended or gave no answer in time: ``status`` and one line why."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Child:
    """One child process of the bench, started with its job; :meth:`receive` its answers.

    Parameters
    ----------
    job : dict
        The job (see the module's docstring); ``job["threads"]`` also goes to the thread variables
        of its environment, read by the libraries as they load.
    """

    def __init__(self, job):
        import twinnet
        from twinnet.keras_twin import VERBOSE_ENV
        from twinnet.lab.sweep import _THREAD_ENV

        source = os.path.dirname(os.path.dirname(os.path.abspath(twinnet.__file__)))
        env = {**os.environ, **dict.fromkeys(_THREAD_ENV, str(job["threads"])),
               # this twinnet, not another one installed in the environment
               "PYTHONPATH": os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.label = job["label"]
        # kept, to quote when the child dies; with --verbose, shown as it comes
        self.stderr = None if os.environ.get(VERBOSE_ENV) else tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-c", BOOT], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, env=env,
                                        text=True, encoding="utf-8")
        self.answers = queue.Queue()
        self.reader = threading.Thread(target=self._read, name=f"bench child {self.label}", daemon=True)
        self.reader.start()
        self._send(job)

    def _read(self):
        try:
            for line in self.process.stdout:
                self.answers.put(line)
        except (OSError, ValueError):  # closed by close(), the child killed
            pass
        finally:
            self.answers.put(None)  # the child closed its end: it ended

    def _send(self, message):
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):  # it ended, or was stopped; the next receive says how
            pass

    def ask(self, request, timeout, during):
        """Send ``request`` (``"warm_up"``, ``"run"``) and return its answer (see :meth:`receive`)."""
        self._send({"do": request})
        return self.receive(timeout, during)

    def receive(self, timeout, during):
        """The child's next answer, or :class:`ChildFailed`; a child silent for ``timeout`` s is killed.

        ``during`` says what it was doing, for the reason: ``"while starting"``, ``"in run 2"``.
        """
        try:
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise ChildFailed("failed", f"no answer within {timeout:g} s {during}; stopped") from None
        if line is None:
            raise ChildFailed("failed", self._ended(during))
        answer = json.loads(line)
        if "error" in answer:
            raise ChildFailed(answer["status"], answer["error"])
        return answer["ok"]

    def _ended(self, during):
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it closed its output but lives on
            self.kill()
            code = self.process.returncode
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exit status {code}"
        last = _last_line(self.stderr)
        return f"the process ended {during} ({how})" + (f": {last}" if last else "")

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self):
        """Ask the child to stop (it ends once its current request is answered)."""
        if self.process.poll() is None and not self.process.stdin.closed:
            self._send({"do": "stop"})
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def close(self, grace=2.0):
        """Stop the child, killed if it has not ended within ``grace`` seconds; release its files. Idempotent."""
        self.stop()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self.reader.join(timeout=1)  # it reads to the end of the ended child's output
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.stderr is not None:
            self.stderr.close()


def close_all(children, grace=1.0):
    """:meth:`Child.close` each of ``children``, all asked to stop at once and given ``grace`` seconds in all
    (TensorFlow's may take longer to end: they are idle, and killed)."""
    for child in children:
        child.stop()
    deadline = time.monotonic() + grace
    for child in children:
        child.close(max(0.0, deadline - time.monotonic()))


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(file, limit=300):
    """The last non-blank line of what the child wrote to standard error, shortened to ``limit``."""
    if file is None:  # shown, not kept
        return ""
    try:
        file.seek(0, os.SEEK_END)
        file.seek(max(0, file.tell() - 8192))
        lines = [line.strip() for line in file.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except (OSError, ValueError):
        return ""
    if not lines:
        return ""
    return lines[-1] if len(lines[-1]) <= limit else lines[-1][:limit - 3] + "..."


# =========================================================================== the child's side
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
              "thread_pools": bench.thread_pools()}
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        record["tensorflow"] = {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
    if "torch" in sys.modules:
        import torch

        record["torch"] = {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                           "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    return record


class _Engine:
    """An engine of :data:`twinnet.lab.ENGINES` training the workload: warm-up, then timed runs."""

    def __init__(self, job):
        from twinnet.data import Split
        from twinnet.lab.runners import ENGINES
        from twinnet.lab.sweep import limit_threads

        self.engine, self.workload = job["name"], bench.Workload.from_record(job["workload"])
        limit_threads(job["threads"], [ENGINES[self.engine].module])
        X, y, self.initial = bench._load_inputs(job["inputs"])
        # the engines train on the training part only; the bench evaluates nothing
        self.split = Split(X, X[:0], y, y[:0])

    def warm_up(self):
        bench._train(self.engine, replace(self.workload, config=replace(self.workload.config, epochs=2)),
                     self.split, self.initial)
        return {}

    def run(self):
        run = bench._train(self.engine, self.workload, self.split, self.initial)
        return {"seconds": run.seconds, "epochs": run.epochs, "loss": run.loss}


class _Roofline:
    """One library doing the epoch's matrix products alone: warm-up finds the fastest layouts."""

    def __init__(self, job):
        from twinnet.lab.sweep import limit_threads

        self.workload = bench.Workload.from_record(job["workload"])
        limit_threads(job["threads"], [bench.ROOFLINES[job["name"]].module])
        self.gemm = GEMMS[job["name"]]()

    def warm_up(self):
        config = self.workload.config
        rows, self.plan = bench._fastest_layouts(config.layers, self.workload.n_train, config.dtype,
                                                 samples=5, budget=0.5, gemm=self.gemm)
        bench._run_products(self.plan, 2, self.gemm)  # TensorFlow traces its epoch here
        return {"products": rows, "threads": self.gemm.threads()}

    def run(self):
        run = bench._run_products(self.plan, self.workload.config.epochs, self.gemm)
        return {"seconds": run.seconds, "epochs": run.epochs}


class _Memory:
    """``Network.fit``'s peak memory (:func:`twinnet.bench.fit_memory`), measured by ``run``."""

    def __init__(self, job):
        from twinnet.lab.sweep import limit_threads

        self.workload = bench.Workload.from_record(job["workload"])
        limit_threads(job["threads"])
        self.X, self.y, self.initial = bench._load_inputs(job["inputs"])

    def warm_up(self):
        return {}

    def run(self):
        return bench.fit_memory(self.workload, self.X, self.y, self.initial)


TASKS = {"engine": _Engine, "roofline": _Roofline, "memory": _Memory}


# --------------------------------------------------------------------------- the other libraries' products
class _TorchGemm:
    """``torch.mm`` into preallocated outputs, in the eight layouts of :func:`twinnet.bench._gemm_variants`,
    with one thread or all."""

    def __init__(self):
        import torch

        self.torch = torch
        self.all_threads = torch.get_num_threads()

    def variants(self, M, K, N, dtype, rng):
        torch = self.torch
        # from_numpy keeps the strides: a transposed operand stays a transpose flag, not a copy
        return bench._gemm_variants(M, K, N, dtype, rng, convert=torch.from_numpy,
                                    empty=lambda shape: torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name)),
                                    matmul=lambda x, y, out: torch.mm(x, y, out=out))

    def thread_counts(self):
        return sorted({1, self.all_threads})

    def threads(self):
        return self.torch.get_num_threads()

    def set_threads(self, n):
        self.torch.set_num_threads(n)

    def plan(self, chosen):
        return bench._plan_by_threads(chosen)


class _TensorFlowGemm:
    """``tf.linalg.matmul`` with its transpose flags; the epoch's products run in one ``tf.function``,
    where TensorFlow may overlap the independent ones. Its thread pools are fixed once it runs."""

    def __init__(self):
        from twinnet import keras_twin

        keras_twin._import_keras()  # TensorFlow's start-up messages kept off the terminal
        import tensorflow as tf

        self.tf = tf

    def variants(self, M, K, N, dtype, rng):
        """``(label, function)`` pairs, labelled as :func:`twinnet.bench._gemm_variants` labels them."""
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


GEMMS = {"numpy": bench._NumpyGemm, "tensorflow": _TensorFlowGemm, "torch": _TorchGemm}
