"""``twinnet check``: grade a learner's own implementation of the exercise's 15 functions.

Each function the learner's file defines (under the exercise's name) runs on randomized cases
beside :mod:`twinnet.functional`, in a separate process with a time limit; a wrong one is matched
against a table of classic mistakes (:mod:`twinnet.check.diagnose`), and ``L_layer_model`` is
trained beside the reference from the same initial weights.

Example
-------
>>> from twinnet.check import check
>>> [report] = check(["my_exercise.py"])                          # doctest: +SKIP
>>> report.functions["linear_backward"].diagnosis                  # doctest: +SKIP
'missing 1/m in dW'
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from twinnet.check.report import FileReport, FunctionResult, plot
from twinnet.check.runner import check_file
from twinnet.check.source import read_source

__all__ = ["FileReport", "FunctionResult", "check"]


def check(paths, *, time_limit=10.0, iterations=100, seed=1, plot_dir=None, jobs=1) -> list[FileReport]:
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
        Draw each file's two loss curves into this folder.
    jobs : int
        Files checked at once (each in its own process).
    """
    if not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 seconds; got time_limit={time_limit!r}.")
    if not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be an integer >= 0; got iterations={iterations!r}.")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1; got jobs={jobs!r}.")
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("paths is empty: give at least one .py file or .ipynb notebook.")
    for path in paths:  # usage errors (a missing file, another kind of file) before running anything
        read_source(path)

    def one(path):
        report = check_file(path, time_limit=time_limit, iterations=iterations, seed=seed)
        e2e = report.end_to_end
        if plot_dir is not None and e2e and e2e.get("learner"):
            report.plot = plot(report, plot_dir)
        return report

    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait: the work is in processes
        return list(pool.map(one, paths))
