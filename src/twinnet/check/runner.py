"""Check one learner's file: run it in its sandbox, ask for its functions' outputs, judge them here.

The child (:mod:`twinnet.check._worker`, in :mod:`twinnet.check.sandbox`) parses the code and
says which of the exercise's functions a ``def`` defines before any of it runs; then it runs it
statement by statement. A statement that runs past the time limit, or ends the process, is
skipped and the file loaded again without it; a function that does is reported as failing and
the next one gets a fresh process. The time limit starts when the learner's code starts; the
budget bounds all of the file's time, its processes' start-ups included.

Phase one asks for the outputs that the verdicts are computed from (every function, and the
training); only then does phase two give the child the reference, to find which failing
functions are wrong only through the functions they call: a cheat there can change the words of
a diagnosis, never a verdict.
"""

from __future__ import annotations

import functools
import time

import numpy as np

from twinnet import data
from twinnet import functional as F
from twinnet.check import cases as C
from twinnet.check import verdict
from twinnet.check._worker import MAX_HEADER, ProtocolError
from twinnet.check.report import FileReport, FunctionResult
from twinnet.check.sandbox import START_TIME, Child
from twinnet.check.source import read_source

FUNCTIONS = verdict.FUNCTIONS
TRAINING_DATA = "synthetic"  # shaped like the exercise's data.pickle: 100 features, 1600 to train on
E2E_DIMS, E2E_RATE = C.NOTEBOOK_DIMS, 0.1  # the notebook's network and rate on its 100-feature data
# costs of two correct implementations drift apart by rounding only (measured: 4e-16 relative over
# 100 iterations for the exercise's own code); a wrong gradient moves the cost by more than 1e-3
E2E_RTOL = 1e-9
OPEN_FILES, PROCESSES, FILE_SIZE = 64, 16, 64 << 20
# the replies whose body is read as a dict: any other body breaks the protocol ("outputs" is read by
# verdict.outcomes, "statement" by _File.start)
BODIES = {"parsed": dict, "loaded": dict, "trained": dict}
# what judging a reply of the wrong shape raises: that function fails, the file's check goes on
UNREADABLE = (ValueError, TypeError)


@functools.cache
def training_data():
    """The end-to-end training's data, in the exercise's layout: X (100, 1600), Y (1, 1600)."""
    X, y = data.load(TRAINING_DATA)
    s = data.split(X, y, test_size=0.2, seed=0)
    return s.X_train.T.copy(), s.y_train.reshape(1, -1).astype(float)


def _initial(seed):
    # the draws of the learner's np.random.seed(seed), without touching this process's global
    # state: np.random.randn is the global RandomState's standard_normal
    return np.random.RandomState(seed)


@functools.cache
def reference_costs(iterations, seed):
    """The reference's cost at each iteration of the end-to-end training."""
    X, Y = training_data()
    _, costs = F.L_layer_model(X, Y, E2E_DIMS, E2E_RATE, iterations, return_costs=True, rng=_initial(seed))
    return costs


def keras_costs(iterations, seed):
    """The Keras twin's cost at each iteration of the end-to-end training, or None when
    TensorFlow is not installed.

    The twin (float64, plain SGD) starts from the reference's initial weights and trains
    full-batch on :func:`training_data`; the learner's code plays no part, so this runs here, in
    this process, once for any number of files.
    """
    from twinnet import keras_twin

    X, Y = training_data()
    initial = F.initialize_parameters(E2E_DIMS, rng=_initial(seed))
    try:
        model = keras_twin.to_keras(initial, learning_rate=E2E_RATE)
    except ModuleNotFoundError:  # raised by keras_twin when TensorFlow is missing
        return None
    # full batch: each epoch's loss is the cost before its one update, the iteration's cost as
    # functional.L_layer_model records it. "tf-loop" runs the same compiled loss and optimizer as
    # model.fit without its per-epoch machinery: the same curve to the last bit, in a fraction of
    # the time
    history = keras_twin.train(model, X.T, Y.ravel(), epochs=iterations, loop="tf-loop")
    return history["loss"]


def _learner_costs(trained, iterations):
    """The learner's cost curve, measured here by the reference's cost of the parameters its
    update_parameters received (else what its compute_cost returned), and how it was measured."""
    X, Y = training_data()
    shapes = {key: value.shape for key, value in F.initialize_parameters(E2E_DIMS, rng=_initial(0)).items()}
    parameters = trained.get("parameters")
    if isinstance(parameters, list) and parameters:
        for p in parameters[:iterations + 1]:
            if not (isinstance(p, dict) and {k: np.shape(v) for k, v in p.items()} == shapes
                    and all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in p.values())):
                raise ValueError(f"update_parameters received parameters other than the layers {E2E_DIMS}' "
                                 "W1 ... b3")
        with np.errstate(all="ignore"):
            return [float(verdict.cost(X, Y, p)) for p in parameters[:iterations + 1]], "update_parameters"
    costs = trained.get("costs")
    if isinstance(costs, list) and costs:
        return [float(c) for c in costs[:iterations + 1]], "compute_cost"
    return [], None


class _Stopped(Exception):
    """The child ran past its time limit (``why`` says so), died, broke the protocol, or the file's
    time budget is spent (``budget``)."""

    def __init__(self, why, budget=False):
        super().__init__(why)
        self.why, self.budget = why, budget


def _sanitized(value, kind, limit=1000):
    """``value`` when it is a list of ``kind`` (at most ``limit`` long), else an empty list."""
    return value[:limit] if isinstance(value, list) and all(isinstance(v, kind) for v in value) else []


def _places(value, limit=1000):
    """The [cell, line, text] triples in ``value`` (the child's notes and failures)."""
    return [v for v in _sanitized(value, list, limit) if len(v) == 3 and isinstance(v[0], int)
            and isinstance(v[1], int) and isinstance(v[2], str)]


class _File:
    """One file's child process, restarted as needed, and the learner time left to it."""

    def __init__(self, path, source, *, mode, time_limit, budget, memory, hidden, children=None):
        self.path, self.source, self.mode, self.hidden, self.children = path, source, mode, hidden, children
        self.time_limit, self.left, self.memory = time_limit, budget, memory
        self.budget = budget
        self.skip, self.skipped, self.child, self.parsed, self.places = set(), [], None, None, []

    def _wait(self, kind, reset=None, request=None):
        """The child's next message of ``kind``, within the time limit and the budget, after
        sending it ``request`` (kind, body) in the same time; ``reset`` handles the messages that
        start the limit again (a new statement)."""
        started = time.monotonic()
        deadline = started + min(self.time_limit, self.left)
        try:
            if request is not None:
                self.child.send(*request, deadline=deadline)
            while True:
                got, body = self.child.receive(deadline)
                if got == kind:
                    if not isinstance(body, BODIES.get(kind, object)):
                        raise ProtocolError(f"sent a {kind!r} message whose body is not a {BODIES[kind].__name__}")
                    return body
                if reset is None or got != "statement":
                    raise ProtocolError(f"sent {got!r} where {kind!r} was due")
                reset(body)
                self.left -= time.monotonic() - started
                started = time.monotonic()
                deadline = started + min(self.time_limit, self.left)
        except TimeoutError:
            budget = self.left <= self.time_limit
            raise _Stopped(f"the file's time budget of {self.budget:g} s is spent" if budget else
                           f"did not finish within {self.time_limit:g} s (an infinite loop?)", budget) from None
        except ProtocolError as exc:
            self.child.process.poll()
            why = (f"ended the checking process ({self.child.exit_status()})" if self.child.process.returncode
                   is not None or "closed" in str(exc) else f"broke the checking protocol: {exc}")
            raise _Stopped(why) from None
        finally:
            self.left -= time.monotonic() - started

    def start(self):
        """A child with the file loaded: statements that hang or crash it are skipped.

        Each start-up is counted in the file's budget, though not in the time limit: a file that
        ends its process at every statement is started again for each, and the budget bounds its
        wall time only when they count.
        """
        while True:
            self.close()
            started = time.monotonic()
            self.child = Child(self.mode, self.path, self.hidden, self.children)
            try:
                self.child.receive(started + START_TIME)
            except (TimeoutError, ProtocolError):
                raise _Stopped(f"the checking process did not start ({self.child.exit_status()})") from None
            finally:
                self.left -= time.monotonic() - started
            limits = {"RLIMIT_AS": self.memory << 20, "RLIMIT_CPU": int(self.budget) + 30, "RLIMIT_CORE": 0,
                      "RLIMIT_NPROC": PROCESSES, "RLIMIT_FSIZE": FILE_SIZE, "RLIMIT_NOFILE": OPEN_FILES}
            parsed = self._wait("parsed", request=("load", {
                "cells": self.source.cells, "skip": sorted(self.skip), "filename": str(self.child.path),
                "functions": list(FUNCTIONS), "memory": self.memory, "limits": limits}))
            if self.parsed is None:  # sent before any of the learner's code ran: believed
                self.parsed = parsed
                # every statement's place (a header of MAX_HEADER bytes holds fewer): each can be named
                self.places = [p for p in _sanitized(parsed.get("places"), list, MAX_HEADER) if len(p) == 2]
            if parsed.get("error") or parsed.get("takes_reference"):
                return None
            current = [-1]

            def reached(k):  # sent while the learner's code runs: one of the parsed statements, or a forgery
                if not (isinstance(k, int) and not isinstance(k, bool) and 0 <= k < len(self.places)):
                    raise ProtocolError(f"sent a 'statement' message for statement {k!r:.40}; the file has "
                                        f"{len(self.places)}")
                current[0] = k

            try:
                return self._wait("loaded", reset=reached)
            except _Stopped as stop:
                if stop.budget or current[0] < 0:
                    raise
                self.skip.add(current[0])
                self.skipped.append((current[0], "ran longer than the time limit" if "did not finish" in stop.why
                                     else stop.why.replace("ended the checking process", "ended the process")))

    def ask(self, kind, body, reply):
        return self._wait(reply, request=(kind, body))

    def close(self):
        if self.child is not None:
            self.child.kill()
            self.child = None


def check_file(path, *, case_seed, time_limit=10.0, budget=60.0, iterations=100, seed=1, sandbox="none",
               memory=1024, hidden=(), children=None) -> FileReport:
    """Check the exercise's functions that the file at ``path`` defines on the cases drawn from
    ``case_seed``; ``hidden``: the other submissions in its folder, which its sandbox cannot open;
    ``children``: the run's :class:`~twinnet.check.sandbox.Children`, whose ``stop`` ends the check
    (``Interrupted``). See :func:`twinnet.check.check`."""
    report = FileReport(str(path), sandbox=sandbox, case_seed=case_seed)
    try:
        source = read_source(path)
    except (ValueError, OSError) as exc:
        report.error = str(exc)
        return report
    report.notes = list(source.notes)
    run = _File(path, source, mode=sandbox, time_limit=time_limit, budget=budget, memory=memory, hidden=hidden,
                children=children)
    try:
        _check(run, report, iterations, seed, case_seed)
    except _Stopped as stop:
        report.error = stop.why
    except Exception as exc:  # noqa: BLE001  (a backstop: see the comment)
        # the child's replies are checked where they are read, but they are hostile code's: a
        # shape that slips past those checks costs this file its check, never the class its run
        report.error = f"could not be checked: {type(exc).__name__}: {exc}"[:500]
    finally:
        run.close()  # every process of the submission is gone before its report is returned
    report.resolve_through()
    if report.end_to_end is not None:
        report.explain_end_to_end()
    return report


def _parse_facts(run, report):
    parsed, places = run.parsed, run.places
    report.statements = len(places)
    report.notes += [f"{run.source.where(cell, line) if line else run.source.cells[cell][0]}: {text}"
                     for cell, line, text in _places(parsed.get("notes"))]
    if parsed.get("error"):
        report.error = str(parsed["error"])[:500]
    elif parsed.get("takes_reference"):
        where = run.source.where(*parsed["takes_reference"])
        report.imports_reference = where
        report.error = f"takes the reference: {where} imports twinnet, so none of its functions is credited"
    return places, set(_sanitized(parsed.get("defined"), str, 10_000))


def _check(run, report, iterations, seed, case_seed):
    try:
        loaded = run.start()
    except _Stopped:
        if run.parsed is not None:  # the statements skipped before the budget was spent
            places, _ = _parse_facts(run, report)
            report.failures = [f"{run.source.where(*places[k])}: {why}, skipped" for k, why in run.skipped]
        raise
    places, defined = _parse_facts(run, report)
    if report.error:
        return
    report.failures = [f"{run.source.where(cell, line)}: {message[:500]}"
                       for cell, line, message in _places(loaded.get("failures"))]
    report.failures += [f"{run.source.where(*places[k])}: {why}, skipped" for k, why in run.skipped]
    # a function counts only when the file's own source defines it with a def
    report.found = [n for n in FUNCTIONS if n in _sanitized(loaded.get("found"), str) and n in defined]
    if not report.found:
        report.error = "defines none of the exercise's 15 functions (looked for " + ", ".join(FUNCTIONS) + ")"
        return
    facts = loaded.get("facts") if isinstance(loaded.get("facts"), dict) else {}
    facts = {n: facts.get(n) if isinstance(facts.get(n), dict) else {} for n in report.found}
    facts = {n: {k: _sanitized(facts[n].get(k), str) for k in ("calls", "globals")} for n in report.found}
    failed_imports = {str(k): str(v)[:500] for k, v in (loaded.get("failed_imports") or {}).items()} \
        if isinstance(loaded.get("failed_imports"), dict) else {}
    judged, stopped = {}, ""
    for name in FUNCTIONS:  # phase one: every output a verdict is computed from
        if name not in report.found:
            report.functions[name] = FunctionResult("MISSING")
        elif run.child is None:
            report.functions[name] = FunctionResult("FAIL", diagnosis=f"not checked: {stopped}")
        else:
            try:
                outcomes = verdict.outcomes(name, run.ask("call", {"name": name, "helpers": [],
                                                                   "cases": _cases(name, case_seed)}, "outputs"),
                                            case_seed)
                judged[name] = outcomes
                report.functions[name] = verdict.judge(name, outcomes, facts[name], report.found, failed_imports)
            except _Stopped as stop:
                report.functions[name] = FunctionResult("FAIL", diagnosis=stop.why)
                stopped = _restart(run, stop)
            except UNREADABLE as exc:  # a reply that does not hold the cases' outputs
                report.functions[name] = FunctionResult("FAIL", diagnosis=f"sent a reply twinnet cannot read: {exc}")
                stopped = _restart(run, None)
    if "L_layer_model" in report.found and iterations and run.child is not None:
        report.end_to_end = _train(run, iterations, seed)
    _phase_two(run, report, judged, facts, failed_imports, case_seed)


def _cases(name, case_seed):
    """What the child gets of the cases: their inputs (and np.random.seed's), never ``case_seed``."""
    return [{"args": list(case.args), "seed": case.seed} for case in verdict.reference(name, case_seed)[0]]


def _restart(run, stop):
    """A fresh child after one that failed, unless the budget is spent; why there is none."""
    run.close()
    if stop is not None and stop.budget:
        return stop.why
    try:
        run.start()
    except _Stopped as again:
        run.close()
        return again.why
    return ""


def _train(run, iterations, seed):
    X, Y = training_data()
    e2e = {"reference": reference_costs(iterations, seed), "learner": [], "measured_by": None, "error": None,
           "layers": E2E_DIMS, "learning_rate": E2E_RATE, "seed": seed, "rtol": E2E_RTOL,
           "data": f"{TRAINING_DATA} ({Y.shape[1]} examples)"}
    try:
        trained = run.ask("train", {"X": X, "Y": Y, "dims": E2E_DIMS, "rate": E2E_RATE, "iterations": iterations,
                                    "seed": seed}, "trained")
        e2e["error"] = None if trained.get("error") is None else str(trained["error"])[:500]
        e2e["learner"], e2e["measured_by"] = _learner_costs(trained, iterations)
    except _Stopped as stop:
        e2e["error"] = f"training {stop.why}"
        run.close()
    except UNREADABLE as exc:
        e2e["error"] = str(exc)
    return e2e


def _phase_two(run, report, judged, facts, failed_imports, case_seed):
    """Which failing functions are wrong only through the functions they call: their outputs with
    those replaced by the reference's. Every verdict is already computed: this only words them."""
    todo = [n for n in judged if report.functions[n].status != "PASS" and report.functions[n].calls]
    if not todo or run.child is None:
        return
    try:
        run.ask("reference", verdict.reference_source(), "ready")
        for name in todo:
            alone = verdict.outcomes(name, run.ask("call", {"name": name, "helpers": report.functions[name].calls,
                                                            "cases": _cases(name, case_seed)}, "outputs"), case_seed)
            result = verdict.judge(name, judged[name], facts[name], report.found, failed_imports, alone)
            if result.status == report.functions[name].status:  # never a verdict from this phase
                report.functions[name] = result
    except (_Stopped, *UNREADABLE):
        pass  # the diagnoses of phase one stand
