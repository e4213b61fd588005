"""Run one learner's file in a child process, under time limits, and collect its results.

The child (:mod:`twinnet.check._worker`) is started with ``spawn``: a fresh interpreter that shares
nothing with this one. A top-level statement that runs longer than the time limit, or kills its
process, is skipped and the file loaded again without it; a function that does is reported as
failing, and the next function gets a fresh process.
"""

from __future__ import annotations

import functools
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

from twinnet import data
from twinnet import functional as F
from twinnet.check import _worker
from twinnet.check.report import FileReport, FunctionResult
from twinnet.check.source import parse, read_source

POLL = 0.05  # seconds between looks at a busy child
TRAINING_DATA = "synthetic"  # shaped like the exercise's data.pickle: 100 features, 1600 to train on


@functools.cache
def training_data():
    """The end-to-end training's data, in the exercise's layout: X (100, 1600), Y (1, 1600)."""
    X, y = data.load(TRAINING_DATA)
    s = data.split(X, y, test_size=0.2, seed=0)
    return s.X_train.T.copy(), s.y_train.reshape(1, -1).astype(float)


def keras_costs(iterations, seed):
    """The Keras twin's cost at each iteration of the end-to-end training, or None when
    TensorFlow is not installed.

    The twin (float64, plain SGD) starts from the reference's initial weights and trains
    full-batch on :func:`training_data`; the learner's code plays no part, so this runs here, in
    this process, once for any number of files.
    """
    from twinnet import keras_twin

    X, Y = training_data()
    # the draws of the worker's np.random.seed(seed), without touching this process's global
    # state: np.random.randn is the global RandomState's standard_normal
    initial = F.initialize_parameters(_worker.E2E_DIMS, rng=np.random.RandomState(seed))
    try:
        model = keras_twin.to_keras(initial, learning_rate=_worker.E2E_RATE)
    except ModuleNotFoundError:  # raised by keras_twin when TensorFlow is missing
        return None
    # full batch: each epoch's loss is the cost before its one update, the iteration's cost as
    # functional.L_layer_model records it. "tf-loop" runs the same compiled loss and optimizer as
    # model.fit without its per-epoch machinery: the same curve to the last bit, in a fraction of
    # the time
    history = keras_twin.train(model, X.T, Y.ravel(), epochs=iterations, loop="tf-loop")
    return history["loss"]


class _Stopped(Exception):
    """The child ran past its time limit (``timed_out``) or died."""

    def __init__(self, timed_out, exitcode=None):
        super().__init__()
        self.timed_out, self.exitcode = timed_out, exitcode


class _Child:
    def __init__(self, text, filename, workdir, skip):
        context = multiprocessing.get_context("spawn")
        self.progress = context.Value("i", -1)
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_worker.main, daemon=True,
                                       args=(theirs, text, filename, workdir, skip, self.progress))
        self.process.start()
        theirs.close()

    def receive(self, time_limit, per_statement=False):
        """The child's next message; ``per_statement``: the limit applies to each statement loaded."""
        started, statement = time.monotonic(), self.progress.value
        while not self.conn.poll(POLL):
            if not self.process.is_alive() and not self.conn.poll():
                raise _Stopped(False, self.process.exitcode)
            if per_statement and self.progress.value != statement:
                started, statement = time.monotonic(), self.progress.value
            if time.monotonic() - started > time_limit:
                self.kill()
                raise _Stopped(True)
        try:
            return self.conn.recv()
        except EOFError:
            raise _Stopped(False, self.process.exitcode) from None

    def ask(self, request, argument, time_limit):
        self.conn.send((request, argument))
        return self.receive(time_limit)

    def kill(self):
        self.process.kill()
        self.process.join()

    def close(self):
        if self.process.is_alive():
            try:
                self.conn.send(("stop", None))
            except OSError:
                pass
            self.process.join(timeout=2)
        if self.process.is_alive():
            self.kill()
        self.conn.close()


def _start(text, filename, workdir, skip, time_limit, skipped):
    """A child with the file loaded; statements that hang or crash it are added to ``skip``."""
    while True:
        child = _Child(text, filename, workdir, frozenset(skip))
        try:
            return child, child.receive(time_limit, per_statement=True)
        except _Stopped as stop:
            statement = child.progress.value
            child.close()
            if statement < 0:
                raise RuntimeError(f"the checking process failed to start (exit status {stop.exitcode})") from None
            skip.add(statement)
            skipped.append((statement, "ran longer than the time limit" if stop.timed_out
                            else f"ended the process (exit status {stop.exitcode})"))


def check_file(path, *, time_limit=10.0, iterations=100, seed=1) -> FileReport:
    """Check the exercise's functions that the file at ``path`` defines; see :func:`twinnet.check.check`."""
    source = read_source(path)
    report = FileReport(str(path))
    try:
        tree = parse(source, str(path))
    except ValueError as exc:
        report.error = str(exc)
        return report
    lines = [statement.lineno for statement in tree.body]
    skip, skipped = set(), []
    with tempfile.TemporaryDirectory(prefix="twinnet-check-") as workdir:
        child, loaded = _start(source.text, str(Path(path).resolve()), workdir, skip, time_limit, skipped)
        try:
            report.statements = loaded["statements"]
            report.failures = [f"{source.where(line)}: {message}" for line, message in loaded["failures"]]
            report.failures += [f"{source.where(lines[k])}: {why}, skipped" for k, why in skipped]
            report.found = loaded["found"]
            if not report.found:
                report.error = ("defines none of the exercise's 15 functions (looked for "
                                + ", ".join(_worker.FUNCTIONS) + ")")
                return report
            for name in _worker.FUNCTIONS:
                if name not in report.found:
                    report.functions[name] = FunctionResult("MISSING")
                    continue
                try:
                    reply = child.ask("check", name, time_limit)
                    report.functions[name] = FunctionResult(**reply)
                except _Stopped as stop:
                    why = (f"did not finish within {time_limit:g} s (an infinite loop?)" if stop.timed_out
                           else f"ended the checking process (exit status {stop.exitcode})")
                    report.functions[name] = FunctionResult("FAIL", diagnosis=why)
                    child.close()
                    child, _ = _start(source.text, str(Path(path).resolve()), workdir, skip, time_limit, [])
            report.resolve_through()
            if "L_layer_model" in report.found and iterations:
                try:
                    X, Y = training_data()
                    report.end_to_end = child.ask("train", {"X": X, "Y": Y, "iterations": iterations,
                                                            "seed": seed}, time_limit)
                    report.end_to_end["data"] = f"{TRAINING_DATA} ({Y.shape[1]} examples)"
                except _Stopped as stop:
                    report.end_to_end = {"error": f"training did not finish within {time_limit:g} s"
                                         if stop.timed_out else f"training ended the process "
                                         f"(exit status {stop.exitcode})"}
                report.explain_end_to_end()
        finally:
            child.close()
    return report
