"""``twinnet check``: grade a learner's own implementation of the exercise's 15 functions.

Each function the learner's file defines (under the exercise's name) runs on randomized cases in
a sandboxed process of its own (:mod:`twinnet.check.sandbox`: the submission is untrusted, see
docs/check-threat-model.md); its raw outputs are compared here with :mod:`twinnet.functional`'s,
a wrong one is matched against a table of classic mistakes (:mod:`twinnet.check.diagnose`), and
``L_layer_model`` is trained beside the reference (and the Keras twin, when TensorFlow is
installed) from the same initial weights.

Examples
--------
>>> from twinnet.check import check
>>> [report] = check(["my_exercise.py"])                          # doctest: +SKIP
>>> report.functions["linear_backward"].diagnosis                  # doctest: +SKIP
'missing 1/m in dW'
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from twinnet import validation
from twinnet.check import sandbox as S
from twinnet.check.report import FileReport, FunctionResult, add_keras, file_names, plot
from twinnet.check.runner import check_file, keras_costs
from twinnet.check.source import SUFFIXES, check_path

__all__ = ["FileReport", "FunctionResult", "check", "find_files"]

#: The longest ``time_limit``, in seconds: a day.
MAX_TIME_LIMIT = 24 * 3600
#: The default ``budget``, in time limits.
BUDGET_TIME_LIMITS = 6
#: The longest ``budget``, in seconds: the default of the longest time limit, 6 days.
MAX_BUDGET = BUDGET_TIME_LIMITS * MAX_TIME_LIMIT
#: The most ``memory``, in megabytes: a terabyte, well within the address-space limit's 64 bits of bytes.
MAX_MEMORY = 1 << 20
#: The most ``iterations``: the reference's training runs in twinnet's own process, which no time
#: limit stops.
MAX_ITERATIONS = 10_000


def find_files(paths) -> list[Path]:
    """The learners' files: each path a ``.py`` file, a notebook, or a folder searched for both
    (leaving out hidden folders, such as Jupyter's ``.ipynb_checkpoints``)."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("paths is empty: give at least one .py file, .ipynb notebook or folder.")
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and not p.is_dir()
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not inside:
                raise ValueError(f"no .py file or .ipynb notebook in the folder {str(path)!r}")
            found += inside
        else:
            found.append(check_path(path))
    return found


def check(paths, *, time_limit=10.0, budget=None, iterations=100, seed=1, case_seed=None, plot_dir=None,
          jobs=None, keras=True, sandbox="auto", memory=1024) -> list[FileReport]:
    """Check each learner's file in ``paths``: one :class:`FileReport` per file, in order.

    Parameters
    ----------
    paths : str, Path or a list of them
        ``.py`` files, ``.ipynb`` notebooks, or folders holding them. Their code is executed, each
        file in a sandboxed process of its own; a file that cannot be read or checked gets its own
        report with ``error`` set, and the others are checked all the same.
    time_limit : float
        Seconds allowed to each top-level statement, to the cases of each function, and to the
        end-to-end training, counted from when the learner's code starts; past it the process is
        killed. At most :data:`MAX_TIME_LIMIT` (a day).
    budget : float, optional
        Seconds allowed to all of a file's time, restarts and their start-ups included (default:
        6 * ``time_limit``); what is left unchecked once it is spent fails, saying so. At most
        :data:`MAX_BUDGET` (6 days).
    iterations : int
        Iterations of the end-to-end training (0: none), at most :data:`MAX_ITERATIONS` (10000).
    seed : int
        ``np.random.seed`` before both end-to-end trainings: the same initial weights.
    case_seed : int, optional
        What the randomized cases are drawn from, the same for every file of the run (default: a
        new one each run, drawn from ``secrets``, so that no file can hard-code the outputs the
        cases expect; the learner's process never sees it, only the inputs). Each report's
        ``case_seed`` says which it was: give it to draw the same cases again.
    plot_dir : str or Path, optional
        Draw each file's loss curves into this folder, as ``<name>_loss_curves.png`` with the
        names of :func:`twinnet.check.report.file_names` (two files of one name do not clash).
    jobs : int, optional
        Files checked at once, each in its own process (default: the number of CPU cores).
    keras : bool
        Also train the Keras twin (float64, plain SGD) from the reference's initial weights and
        compare its cost with the reference's, when a file defines ``L_layer_model`` and
        TensorFlow is installed; importing TensorFlow takes several seconds.
    sandbox : {"auto", "bwrap", "none"}
        ``bwrap``: each file runs in a bubblewrap sandbox (no network, no file outside its own
        temporary folder but its own folder, read-only); ``none``: only resource limits and its own
        session; ``auto``: bwrap where it works.
    memory : int
        Megabytes of address space allowed to each file's process, at most :data:`MAX_MEMORY` (a
        terabyte).
    """
    time_limit = validation.at_most("time_limit", validation.positive_number("time_limit", time_limit),
                                    MAX_TIME_LIMIT)
    budget = (BUDGET_TIME_LIMITS * time_limit if budget is None else
              validation.at_most("budget", validation.positive_number("budget", budget), MAX_BUDGET))
    iterations = validation.at_most("iterations", validation.non_negative_int("iterations", iterations),
                                    MAX_ITERATIONS)
    jobs = os.cpu_count() or 1 if jobs is None else validation.positive_int("jobs", jobs)
    memory = validation.at_most("memory", validation.positive_int("memory", memory), MAX_MEMORY)
    case_seed = secrets.randbits(32) if case_seed is None else validation.seed(case_seed, "case_seed")
    files = find_files(paths)  # usage errors (a missing file, another kind of file) before running anything
    mode = S.resolve(sandbox)

    resolved = [path.resolve() for path in files]

    def one(path):
        # a class folder holds every submission: under bwrap the others' files cannot be opened
        here = path.resolve()
        hidden = [other for other in resolved if other != here and other.is_relative_to(here.parent)]
        return check_file(path, case_seed=case_seed, time_limit=time_limit, budget=budget, iterations=iterations,
                          seed=seed, sandbox=mode, memory=memory, hidden=hidden, children=children)

    children = S.Children()
    pool = ThreadPoolExecutor(max_workers=jobs)  # threads only wait: the work is in processes
    try:
        reports = list(pool.map(one, files))
    except BaseException:  # Ctrl-C: every learner's process ends now and none starts, so no file is waited for
        children.stop()
        raise
    finally:
        pool.shutdown(cancel_futures=True)
    trained = [r.end_to_end for r in reports if r.end_to_end and r.end_to_end.get("reference")]
    # one training for all files, in this thread: the twin starts from the reference's weights
    # whatever the learner wrote, and Keras's floatx is one setting for the whole process
    costs = _quietly(keras_costs, iterations, seed) if keras and trained else None
    if costs is not None:
        for e2e in trained:
            add_keras(e2e, costs)
    for report, name in zip(reports, file_names([r.path for r in reports])):  # pyplot: not thread-safe
        if plot_dir is not None and report.end_to_end and report.end_to_end.get("learner"):
            report.plot = plot(report, plot_dir, name)
    return reports


def _quietly(function, *args):
    """``function(*args)`` with what TensorFlow's C++ libraries write to file descriptor 2 kept
    off the terminal: not only its import (:func:`twinnet.quiet.import_keras` hides that)
    but the lines it writes when it first makes a device or compiles a step, which
    ``TF_CPP_MIN_LOG_LEVEL`` does not silence either. With ``TWINNET_VERBOSE`` set nothing is
    hidden; if ``function`` raises, what was written is shown before the error."""
    from twinnet import quiet

    if os.environ.get(quiet.VERBOSE_ENV):
        return function(*args)
    with quiet.descriptor_2_captured():
        return function(*args)
