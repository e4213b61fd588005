"""The child process of ``twinnet check``: runs the learner's code and checks its functions.

Everything the learner wrote runs here, never in the ``twinnet`` process: the parent
(:mod:`twinnet.check.runner`) kills this process when a statement or a function takes too long.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import inspect
import io
import itertools
import os
import sys
import types
import warnings

import numpy as np

from twinnet import functional as F
from twinnet.check import cases as C
from twinnet.check import diagnose as D
from twinnet.check.compare import compare, mutated

FUNCTIONS = tuple(F.__all__)
FD_EPS = 1e-6
# central differences of a smooth cost: error ~eps^2 + rounding / eps ~ 1e-10 against gradients
# of order 1e-2 .. 1, so 1e-6 relative separates a right gradient from a wrong one by far
FD_RTOL = 1e-6
E2E_DIMS, E2E_RATE = C.NOTEBOOK_DIMS, 0.1  # the notebook's network and rate on its 100-feature data
# costs of two correct implementations drift apart by rounding only (measured: 4e-16 relative over
# 100 iterations for the exercise's own code); a wrong gradient moves the cost by more than 1e-3
E2E_RTOL = 1e-9


def main(conn, text, filename, workdir, skip, progress):
    """Entry point of the process: load the code, then answer the parent's requests until "stop"."""
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the cases are small, several files may be checked at once, and OpenBLAS's
    # threads spin on a busy machine, which slows training many times over
    threadpool_limits(1)
    os.chdir(workdir)
    sys.path.insert(0, os.path.dirname(os.path.abspath(filename)))
    warnings.simplefilter("ignore")
    namespace, report = load(text, filename, skip, progress)
    conn.send(report)
    for name in FUNCTIONS:  # the reference stands in for what the file does not define
        namespace.setdefault(name, getattr(F, name))
    while True:
        try:
            request, argument = conn.recv()
        except EOFError:  # the parent is gone
            return
        if request == "stop":
            return
        if request == "check":
            conn.send(check_function(namespace, argument, report["found"], report["failed_imports"]))
        elif request == "train":
            conn.send(train(namespace, **argument))


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _error(exc):
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


def load(text, filename, skip, progress):
    """Execute the module statement by statement: one that fails does not stop the next ones, so
    the functions are defined even when the data loading above them fails."""
    namespace = {"__name__": "__main__", "__file__": filename, "__builtins__": builtins}
    tree = ast.parse(text, filename=filename)
    failures, failed_imports = [], {}
    for k, statement in enumerate(tree.body):
        if k in skip:
            continue
        progress.value = k
        code = compile(ast.Module([statement], type_ignores=[]), filename, "exec")
        try:
            with _quiet():
                exec(code, namespace)  # noqa: S102  (running the learner's file is the point)
        except BaseException as exc:  # noqa: BLE001  (SystemExit and KeyboardInterrupt are the learner's too)
            failures.append((statement.lineno, _error(exc)))
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                for alias in statement.names:
                    failed_imports[alias.asname or alias.name.split(".")[0]] = _error(exc)
    progress.value = -1
    found = [name for name in FUNCTIONS if isinstance(namespace.get(name), types.FunctionType)]
    # failed_imports: the names that a failed top-level import would have defined -> its error
    return namespace, {"statements": len(tree.body), "failures": failures, "found": found,
                       "failed_imports": failed_imports}


class Outcome:
    """One case, run by the learner's function and by the reference."""

    def __init__(self, case, expected, received=None, raised=None, changed=(), float_errors=(),
                 names="the result"):
        self.case, self.expected, self.received, self.raised = case, expected, received, raised
        self.changed, self.float_errors = list(changed), sorted(set(float_errors))
        self.difference = None if raised else compare(expected, received, names)
        self.fd_message = None

    @property
    def ok(self):
        return not self.raised and self.difference.ok and not self.changed and not self.fd_message

    @property
    def safe(self):
        return self.ok and not self.float_errors

    @property
    def message(self):
        if self.raised:
            return f"raised {self.raised}"
        if not self.difference.ok:
            return self.difference.message
        if self.fd_message:
            return self.fd_message
        if self.changed:
            return f"changes its argument {' and '.join(self.changed)} in place"
        return ", ".join(self.float_errors) + " in a floating-point operation" if self.float_errors else ""


def _call(function, case, float_errors):
    args = copy.deepcopy(case.args)
    if case.seed is not None:
        np.random.seed(case.seed)
    old = np.seterrcall(lambda kind, flag: float_errors.append(kind))
    try:
        with _quiet(), np.errstate(over="call", divide="call", invalid="call", under="ignore"):
            return function(*args), args
    finally:
        np.seterrcall(old)


def run_case(function, reference, case, may_change=(), names="the result"):
    expected, _ = _call(reference, case, [])
    float_errors = []
    try:
        received, args = _call(function, case, float_errors)
    except Exception as exc:  # noqa: BLE001  (whatever the learner's function raises is its result)
        return Outcome(case, expected, raised=_error(exc), float_errors=float_errors)
    arguments = list(inspect.signature(reference).parameters)
    changed = [arguments[k] for k, (before, after) in enumerate(zip(case.args, args))
               if arguments[k] not in may_change and mutated(before, after)]
    return Outcome(case, expected, received, changed=changed, float_errors=float_errors, names=names)


def _cost(X, Y, parameters):
    return F.compute_cost(F.L_model_forward(X, parameters)[0], Y)


def finite_difference_check(outcome):
    """L_model_backward's dW and db against central differences of the reference's cost."""
    _, Y, caches = outcome.case.args
    X = caches[0][0][0]
    parameters = {}
    for l, ((_, W, b), _) in enumerate(caches, start=1):
        parameters["W" + str(l)], parameters["b" + str(l)] = W, b
    for key, value in parameters.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in parameters.items()}
            shifted[key][index] = value[index] + FD_EPS
            up = _cost(X, Y, shifted)
            shifted[key][index] = value[index] - FD_EPS
            numeric[index] = (up - _cost(X, Y, shifted)) / (2 * FD_EPS)
        received = outcome.received.get("d" + key)
        if np.shape(received) != numeric.shape:
            continue  # the comparison with the reference reports it
        scale = max(np.max(np.abs(numeric)), 1e-8)
        error = np.max(np.abs(np.asarray(received) - numeric)) / scale
        if error > FD_RTOL:
            outcome.fd_message = (f"d{key} differs from the finite-difference gradient of the cost by "
                                  f"{error:.1e} (relative)")
            return


def run_cases(function, name, cases):
    reference, names = getattr(F, name), D.OUTPUTS.get(name, "the result")
    outcomes = [run_case(function, reference, case, D.MAY_CHANGE.get(name, ()), names) for case in cases]
    if name == "L_model_backward":
        for outcome in outcomes:
            if outcome.ok and not outcome.case.saturated and not outcome.case.notebook:
                finite_difference_check(outcome)
    return outcomes


@contextlib.contextmanager
def _reference_helpers(namespace, helpers):
    saved = {h: namespace[h] for h in helpers}
    namespace.update({h: getattr(F, h) for h in helpers})
    try:
        yield
    finally:
        namespace.update(saved)


def _matches(apply, outcomes):
    """Whether a mistake's outputs equal the learner's on every case (and at least one returned)."""
    returned = False
    for o in outcomes:
        try:
            wrong = apply(o.case, o.expected)
        except Exception:  # noqa: BLE001  (the mistake cannot run on this case: the learner's must not either)
            if o.raised is None:
                return False
            continue
        if o.raised is not None or not compare(wrong, o.received).ok:
            return False
        returned = True
    return returned


def _compose(first, second):
    return lambda case, out: second.apply(case, first.apply(case, out))


def diagnose(name, function, namespace, outcomes, failed_imports):
    """The likely mistake behind the failing ordinary ``outcomes`` of the learner's function."""
    variants = D.VARIANTS.get(name, [])
    for variant in variants:
        if _matches(variant.apply, outcomes):
            return variant.diagnosis
    for first, second in itertools.combinations(variants, 2):
        if _matches(_compose(first, second), outcomes):
            return f"two mistakes: {first.diagnosis}; and {second.diagnosis}"
    failed = [o for o in outcomes if not o.ok]
    if all(not o.raised and o.difference.ok and not o.fd_message for o in failed):
        return f"changes its argument {' and '.join(failed[0].changed)} in place; work on a copy"
    imports = [n for n in D.globals_read(function, namespace) if n in failed_imports]
    if imports:
        return f"uses {imports[0]}, whose import failed: {failed_imports[imports[0]]}"
    read = D.globals_read(function, namespace)
    if read:
        return (f"reads the global{'s' if len(read) > 1 else ''} {', '.join(read)} instead of its "
                f"arguments ({_smallest(failed)})")
    notebook = [o for o in outcomes if o.case.notebook]
    if notebook and all(o.ok for o in notebook):
        return (f"hard-coded shapes: right for the notebook's shapes ({notebook[0].case.label}) but "
                f"not for others: {_smallest(failed)}")
    return _smallest(failed)


def _smallest(failed):
    o = min(failed, key=lambda o: o.case.size)
    return f"on {o.case.label}: {o.message}"


def check_function(namespace, name, found, failed_imports):
    """Run every case of function ``name``; a plain dict for the parent."""
    function = namespace[name]
    cases = C.cases_for(name)
    outcomes = run_cases(function, name, cases)
    helpers = D.calls(function, [f for f in found if f != name])
    if helpers:
        with _reference_helpers(namespace, helpers):
            alone = run_cases(function, name, cases)
    else:
        alone = outcomes
    ordinary = [o for o in outcomes if not o.case.saturated]
    errors = [o.difference.error if o.difference else np.nan for o in ordinary]
    # no single number when a failing case could not be compared at all (it raised, or a shape)
    measurable = not any(np.isnan(e) for o, e in zip(ordinary, errors) if not o.ok)
    finite = [e for e in errors if not np.isnan(e)]
    result = {"status": "PASS", "largest_error": max(finite) if finite and measurable else None,
              "diagnosis": "", "calls": helpers, "through": False, "case": None}
    failing = next((o for o in ordinary if not o.ok), None) or next((o for o in outcomes if not o.safe), None)
    if failing is None:
        return result
    result["case"] = {"label": failing.case.label, "message": failing.message}
    alone_ordinary = [o for o in alone if not o.case.saturated]
    if any(not o.ok for o in ordinary):
        result["status"] = "FAIL"
        if helpers and all(o.ok for o in alone_ordinary):
            result["through"] = True
        else:
            result["diagnosis"] = diagnose(name, function, namespace, alone_ordinary, failed_imports)
    else:
        result["status"] = "UNSAFE"
        if helpers and all(o.safe for o in alone):
            result["through"] = True
        else:
            bad = next(o for o in alone if not o.safe)
            result["diagnosis"] = D.SAFETY.get(name) or f"on {bad.case.label}: {bad.message}"
    return result


def train(namespace, X, Y, iterations, seed):
    """The learner's L_layer_model and the reference's, from the same seed, on ``X`` and ``Y``
    (columns): both cost curves, the learner's measured by the reference's cost on its parameters."""
    np.random.seed(seed)
    _, reference = F.L_layer_model(X, Y, E2E_DIMS, E2E_RATE, iterations, return_costs=True)
    seen = {"update_parameters": [], "compute_cost": []}

    def spy(name):
        real = namespace[name]

        def recorded(*args, **kwargs):
            if name == "update_parameters":  # the parameters of this iteration, before its update
                parameters = args[0] if args else kwargs["parameters"]
                seen[name].append(float(_cost(X, Y, parameters)))
            result = real(*args, **kwargs)
            if name == "compute_cost":
                seen[name].append(float(np.squeeze(result)))
            return result
        return recorded

    saved = {name: namespace[name] for name in seen}
    namespace.update({name: spy(name) for name in seen})
    error = None
    try:
        np.random.seed(seed)
        with _quiet(), np.errstate(all="ignore"):
            namespace["L_layer_model"](X, Y, list(E2E_DIMS), E2E_RATE, iterations, False)
    except Exception as exc:  # noqa: BLE001  (whatever the learner's training raises is reported)
        error = _error(exc)
    finally:
        namespace.update(saved)
    source = next((name for name in seen if seen[name]), None)
    return {"reference": reference, "learner": seen[source] if source else [], "measured_by": source,
            "error": error, "layers": E2E_DIMS, "learning_rate": E2E_RATE,
            "seed": seed, "rtol": E2E_RTOL}
