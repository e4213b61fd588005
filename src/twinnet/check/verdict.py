"""The verdicts, computed in twinnet's process from the raw outputs the learner's process sent.

Nothing the learner's process says decides a status: it sends what the learner's function
returned (or raised) and its arguments after the call; the reference's outputs, every comparison,
the finite-difference check and the diagnosis are computed here. The facts it reports about the
function's code (the exercise's functions it calls, the globals it reads) only choose the words
of a diagnosis.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import itertools

import numpy as np

from twinnet import functional as F
from twinnet.check import cases as C
from twinnet.check import diagnose as D
from twinnet.check.compare import compare, mutated
from twinnet.check.report import FunctionResult

FUNCTIONS = tuple(F.__all__)
FD_EPS = 1e-6
# central differences of a smooth cost: error ~eps^2 + rounding / eps ~ 1e-10 against gradients
# of order 1e-2 .. 1, so 1e-6 relative separates a right gradient from a wrong one by far
FD_RTOL = 1e-6


def _call(function, case):
    """The reference on a copy of the case's arguments (update_parameters writes into its dict),
    drawing from the case's seed without touching NumPy's global state."""
    args = copy.deepcopy(case.args)
    rng = {} if case.seed is None else {"rng": np.random.RandomState(case.seed)}
    with np.errstate(all="ignore"):
        return function(*args, **rng)


@functools.lru_cache(maxsize=2 * len(FUNCTIONS))
def reference(name, seed):
    """The cases of function ``name`` drawn from ``seed`` and the reference's output on each: the
    same for every file of a run."""
    cases = C.cases_for(name, seed)
    return cases, [_call(getattr(F, name), case) for case in cases]


@functools.cache
def reference_source() -> str:
    """twinnet.functional's code without its imports of twinnet, for the learner's process in the
    second phase (it supplies ``validation``, with no checks: the inputs there are the cases')."""
    tree = ast.parse(inspect.getsource(F))
    tree.body = [s for s in tree.body if not (isinstance(s, ast.ImportFrom) and (s.module or "").startswith("twinnet"))]
    return ast.unparse(tree)


class Outcome:
    """One case, run by the learner's function (in its process) and by the reference (here)."""

    def __init__(self, name, case, expected, reply):
        self.case, self.expected = case, expected
        self.received, self.raised = reply.get("result"), reply.get("raised")
        self.raised = None if self.raised is None else str(self.raised)[:500]
        errors = reply.get("float_errors")
        self.float_errors = sorted({e[:20] for e in errors if isinstance(e, str)}) if isinstance(errors, list) else []
        self.changed = [] if self.raised else _changed(name, case.args, reply.get("args"))
        self.difference = None if self.raised else compare(expected, self.received, D.OUTPUTS.get(name, "the result"))
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


def _changed(name, before, after):
    """The arguments the learner's function changed in place (and was not expected to)."""
    arguments = list(inspect.signature(getattr(F, name)).parameters)
    if not isinstance(after, (list, tuple)) or len(after) != len(before):
        return list(arguments[:len(before)])
    return [arguments[k] for k, (b, a) in enumerate(zip(before, after))
            if arguments[k] not in D.MAY_CHANGE.get(name, ()) and mutated(b, a)]


def outcomes(name, replies, seed):
    """The outcomes of every case of ``name`` drawn from ``seed``, from the learner's process's ``replies``."""
    cases, expected = reference(name, seed)
    if not (isinstance(replies, list) and len(replies) == len(cases) and all(isinstance(r, dict) for r in replies)):
        raise ValueError("a reply that does not match the cases sent")
    found = [Outcome(name, case, out, reply) for case, out, reply in zip(cases, expected, replies)]
    if name == "L_model_backward":
        for k, outcome in enumerate(found):
            if outcome.ok and not outcome.case.saturated and not outcome.case.notebook:
                finite_difference_check(k, outcome, seed)
    return found


def cost(X, Y, parameters):
    """The reference's cost of ``parameters`` on ``(X, Y)``."""
    return F.compute_cost(F.L_model_forward(X, parameters)[0], Y)


@functools.lru_cache(maxsize=16)
def numeric_gradients(k, seed):
    """Central differences of the reference's cost at L_model_backward's case ``k`` of ``seed``."""
    _, Y, caches = reference("L_model_backward", seed)[0][k].args
    X = caches[0][0][0]
    parameters = {}
    for l, ((_, W, b), _) in enumerate(caches, start=1):
        parameters["W" + str(l)], parameters["b" + str(l)] = W, b
    gradients = {}
    for key, value in parameters.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in parameters.items()}
            shifted[key][index] = value[index] + FD_EPS
            up = cost(X, Y, shifted)
            shifted[key][index] = value[index] - FD_EPS
            numeric[index] = (up - cost(X, Y, shifted)) / (2 * FD_EPS)
        gradients["d" + key] = numeric
    return gradients


def finite_difference_check(k, outcome, seed):
    """L_model_backward's dW and db against central differences of the reference's cost.

    The differences are held to the reference's own gradient as closely as it meets them, and at
    least to ``FD_RTOL``: where a ReLU's input lies within ``FD_EPS`` of its kink, the central
    difference straddles it and is off for every gradient, the right one included.
    """
    for key, numeric in numeric_gradients(k, seed).items():
        received = outcome.received.get(key)
        if np.shape(received) != numeric.shape:
            continue  # the comparison with the reference reports it
        scale = max(np.max(np.abs(numeric)), 1e-8)
        reference_error = np.max(np.abs(outcome.expected[key] - numeric)) / scale
        with np.errstate(all="ignore"):
            error = np.max(np.abs(np.asarray(received, dtype=float) - numeric)) / scale
        if not error <= max(FD_RTOL, 2 * reference_error):
            outcome.fd_message = (f"{key} differs from the finite-difference gradient of the cost by "
                                  f"{error:.1e} (relative)")
            return


def _matches(apply, outcomes):
    """Whether a mistake's outputs equal the learner's on every case (and at least one returned)."""
    returned = False
    for o in outcomes:
        try:
            with np.errstate(all="ignore"):
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


def diagnose(name, outcomes, facts, found, failed_imports):
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
    read = facts["globals"]
    imports = [n for n in read if n in failed_imports]
    if imports:
        return f"uses {imports[0]}, whose import failed: {failed_imports[imports[0]]}"
    undefined = [n for n in facts["calls"] if n not in found]
    if undefined:
        return f"calls {', '.join(undefined)}, which this file does not define"
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


def helpers(facts, found, name):
    """The learner's own functions that ``name`` calls: replaced by the reference's in phase two."""
    return [n for n in FUNCTIONS if n in facts["calls"] and n in found and n != name]


def judge(name, outcomes, facts, found, failed_imports, alone=None) -> FunctionResult:
    """The verdict on function ``name`` from its ``outcomes``; ``alone``: its outcomes with the
    functions it calls replaced by the reference's (phase two), which only choose the diagnosis."""
    alone = outcomes if alone is None else alone
    calls = helpers(facts, found, name)
    ordinary = [o for o in outcomes if not o.case.saturated]
    errors = [o.difference.error if o.difference else np.nan for o in ordinary]
    # no single number when a failing case could not be compared at all (it raised, or a shape)
    measurable = not any(np.isnan(e) for o, e in zip(ordinary, errors) if not o.ok)
    finite = [e for e in errors if not np.isnan(e)]
    result = FunctionResult("PASS", largest_error=max(finite) if finite and measurable else None, calls=calls)
    failing = next((o for o in ordinary if not o.ok), None) or next((o for o in outcomes if not o.safe), None)
    if failing is None:
        return result
    result.case = {"label": failing.case.label, "message": failing.message}
    alone_ordinary = [o for o in alone if not o.case.saturated]
    if any(not o.ok for o in ordinary):
        result.status = "FAIL"
        if calls and alone is not outcomes and all(o.ok for o in alone_ordinary):
            result.through = True
        else:
            result.diagnosis = diagnose(name, alone_ordinary, facts, found, failed_imports)
    else:
        result.status = "UNSAFE"
        if calls and alone is not outcomes and all(o.safe for o in alone):
            result.through = True
        else:
            bad = next(o for o in alone if not o.safe)
            result.diagnosis = D.SAFETY.get(name) or f"on {bad.case.label}: {bad.message}"
    return result
