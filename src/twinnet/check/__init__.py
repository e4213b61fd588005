"""``twinnet check``: grade a learner's own implementation of the exercise's 15 functions.

Each function the learner's file defines (under the exercise's name) runs on randomized cases
beside :mod:`twinnet.functional`, in a separate process with a time limit; a wrong one is matched
against a table of classic mistakes (:mod:`twinnet.check.diagnose`), and ``L_layer_model`` is
trained beside the reference (and the Keras twin, when TensorFlow is installed) from the same
initial weights.

Examples
--------
>>> from twinnet.check import check
>>> [report] = check(["my_exercise.py"])                          # doctest: +SKIP
>>> report.functions["linear_backward"].diagnosis                  # doctest: +SKIP
'missing 1/m in dW'
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from twinnet import validation
from twinnet.check.report import FileReport, FunctionResult, add_keras, plot
from twinnet.check.runner import check_file, keras_costs
from twinnet.check.source import read_source

__all__ = ["FileReport", "FunctionResult", "check"]


def check(paths, *, time_limit=10.0, iterations=100, seed=1, plot_dir=None, jobs=1,
          keras=True) -> list[FileReport]:
    """Check each learner's file in ``paths``: one :class:`FileReport` per file, in order.

    Parameters
    ----------
    paths : str, Path or a list of them
        ``.py`` files or ``.ipynb`` notebooks. Their code is executed, in a child process started
        in a temporary directory.
    time_limit : float
        Seconds allowed to each top-level statement, to the cases of each function, and to the
        end-to-end training; past it the process is killed.
    iterations : int
        Iterations of the end-to-end training (0: none).
    seed : int
        ``np.random.seed`` before both end-to-end trainings: the same initial weights.
    plot_dir : str or Path, optional
        Draw each file's loss curves into this folder.
    jobs : int
        Files checked at once (each in its own process).
    keras : bool
        Also train the Keras twin (float64, plain SGD) from the reference's initial weights and
        compare its cost with the reference's, when a file defines ``L_layer_model`` and
        TensorFlow is installed; importing TensorFlow takes several seconds.
    """
    time_limit = validation.positive_number("time_limit", time_limit)
    iterations = validation.non_negative_int("iterations", iterations)
    jobs = validation.positive_int("jobs", jobs)
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("paths is empty: give at least one .py file or .ipynb notebook.")
    for path in paths:  # usage errors (a missing file, another kind of file) before running anything
        read_source(path)

    def one(path):
        return check_file(path, time_limit=time_limit, iterations=iterations, seed=seed)

    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait: the work is in processes
        reports = list(pool.map(one, paths))
    trained = [r.end_to_end for r in reports if r.end_to_end and r.end_to_end.get("reference")]
    # one training for all files, in this thread: the twin starts from the reference's weights
    # whatever the learner wrote, and Keras's floatx is one setting for the whole process
    costs = keras_costs(iterations, seed) if keras and trained else None
    if costs is not None:
        for e2e in trained:
            add_keras(e2e, costs)
    for report in reports:  # pyplot is not thread-safe: the figures are drawn here too
        if plot_dir is not None and report.end_to_end and report.end_to_end.get("learner"):
            report.plot = plot(report, plot_dir)
    return reports
