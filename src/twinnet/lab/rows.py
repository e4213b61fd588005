"""A sweep's result rows: the one module that writes a row and reads it back.

:func:`result_row` is the row a sweep stores for one run; :func:`read_rows` reads a sweep's rows
back for the report, migrating rows stored before a field existed and skipping, with a warning,
every line that is not a row this module wrote (:func:`problem` says why). The file around the
rows (manifest, lock, bounded lines) is :mod:`twinnet.lab.store`'s.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from twinnet.lab.config import CONTROLS, RunConfig
from twinnet.lab.environment import environment
from twinnet.lab.results import STATUSES, finite_or_none, metric_keys, metric_names
from twinnet.lab.store import RESULTS, line_limit, loads, read_lines, read_manifest
from twinnet.nn.engine import n_params
from twinnet.nn.heads import DEFAULT_OUTPUT

__all__ = ["CONFIG_FIELDS", "LARGEST", "METRIC_RANGES", "SHORTEST", "TIMES", "problem", "read_rows", "result_row"]

#: The fields of a run's configuration that tell configurations apart (the seed and epochs aside).
CONFIG_FIELDS = ("data", "output", "layers", "learning_rate", "batch_size", "optimizer", "hidden_activation",
                 "init", "dtype", *CONTROLS, "validation_fraction")
#: What a row stored before a field existed meant: the field's value that turns it off.
_ADDED_FIELDS = {**CONTROLS, "validation_fraction": RunConfig.validation_fraction}


def result_row(spec, *, status, error=None, result=None, checkpoints=(), attempts=1, threads=1):
    """The stored row of one run of a sweep: its configuration, status, figures and environment.

    ``result`` is the run's :class:`~twinnet.lab.results.EngineResult` (None when the run failed
    before it had one); non-finite numbers are stored as null, so the line stays standard JSON.
    """
    env = environment()
    row = {
        "run_id": spec.run_id, "engine": spec.engine, "seed": spec.config.seed, "config": spec.record(),
        "status": status, "error": error,
        "n_parameters": n_params(spec.config.layers),
        "checkpoints": list(checkpoints),
        "loss_curve": [], "seconds": None, "ms_per_epoch": None,
        "attempts": attempts, "threads": threads, "pid": os.getpid(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": dict(env["versions"]), "machine": env["machine"],
    }
    if result is not None:
        row["loss_curve"] = [finite_or_none(float(v)) for v in result.loss_curve]
        row["seconds"], row["ms_per_epoch"] = finite_or_none(result.seconds), finite_or_none(result.ms_per_epoch)
        row["same_trajectory"], row["note"] = result.same_trajectory, result.note
        row["epochs_run"], row["stopped_epoch"], row["best_epoch"] = \
            result.epochs_run, result.stopped_epoch, result.best_epoch
    return row

#: A figure of a usable row (a loss, a metric, a time) lies within ±LARGEST: means, spreads (squares)
#: and ratios of such figures cannot overflow a float.
LARGEST = 1e150
#: No run or epoch takes less than a nanosecond, about the clock's resolution: a shorter time was
#: not measured.
SHORTEST = 1e-9
#: The range of a checkpoint's metric, by its name after ``train_`` / ``test_``.
METRIC_RANGES = {"loss": (0.0, LARGEST), "accuracy": (0.0, 1.0), "rmse": (0.0, LARGEST), "r2": (-LARGEST, 1.0)}
#: The times of a row and their units, in seconds.
TIMES = {"seconds": 1.0, "ms_per_epoch": 1e-3}


def _numbers(values, *, none=True):
    return isinstance(values, list) and all(
        (v is None and none) or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)


def _ints(values):
    return isinstance(values, list) and values != [] and all(
        isinstance(v, int) and not isinstance(v, bool) for v in values)


def _out_of_range(key, value, low, high):
    """``key`` and its value when a number is outside [low, high] (None is no figure), else None."""
    return None if value is None or low <= value <= high else f"{key} {value!r} is outside [{low:g}, {high:g}]"


def _config_problem(row):
    """Why a row's config is not one a sweep ran (RunConfig's own checks), or None."""
    config = row["config"]
    epochs = config["epochs"]
    if not (_ints(epochs) and all(a < b for a, b in zip([0, *epochs], epochs))):
        return "the config's epochs are not increasing positive integers"
    if not isinstance(config["data"], str):
        return "the config's data is not a name"
    try:
        RunConfig(**{k: config[k] for k in CONFIG_FIELDS}, epochs=epochs[-1], seed=row["seed"]).validate()
    except ValueError as exc:
        return f"the config is not a run's: {' '.join(str(exc).split())[:160]}"
    if row["n_parameters"] != n_params(config["layers"]):
        return f"n_parameters {row['n_parameters']} is not the count of layers {str(config['layers'])[:60]}"
    return None


def _figures_problem(row):
    """Why a row's epochs, times, loss curve or checkpoints cannot be figures of its run, or None."""
    last, ok = row["config"]["epochs"][-1], row["status"] == "ok"
    for key in ("epochs_run", "stopped_epoch", "best_epoch"):
        if row.get(key) is not None and not (_ints([row[key]]) and 1 <= row[key] <= last):
            return f"{key} is not an epoch from 1 to {last}"
    if not _numbers(row["loss_curve"]) or len(row["loss_curve"]) > last:
        return f"loss_curve is not a list of at most {last} numbers"
    for key, unit in TIMES.items():
        value = row.get(key)
        measured = _numbers([value], none=False) and SHORTEST <= value * unit <= LARGEST
        if not measured and (ok or value is not None):
            return f"{key} {str(value)[:20]} is not a time (from {SHORTEST:g} s to {LARGEST:g} s)"
    points = row["checkpoints"]
    if not all(isinstance(p, dict) and p.get("epoch") in row["config"]["epochs"] for p in points):
        return "a checkpoint is not at an epoch of the config"
    for point in points:
        if not _numbers([point.get(k) for k in metric_keys(row["config"]["output"])]):
            return "a checkpoint's metrics are not numbers"
    if ok:  # the figures that go into the means, ratios and plots
        for point in points:
            for key in metric_keys(row["config"]["output"]):
                why = _out_of_range(key, point[key], *METRIC_RANGES[key.split("_", 1)[1]])
                if why:
                    return why
        if any(_out_of_range("", v, *METRIC_RANGES["loss"]) for v in row["loss_curve"]):
            return f"loss_curve holds a loss outside [0, {LARGEST:g}]"
    return None


def problem(row):
    """Why a stored row cannot go into the report (a phrase), or None.

    A row written before rows had a ``status`` gets one from its ``error``, as the sweep derived it;
    one written before heads, whose config has no ``output``, was the notebook's sigmoid; one
    written before regularization and training control had none (``l2`` 0, ``dropout`` 0, a
    constant learning rate, no early stopping: every epoch run). Every field the report reads is
    checked for its type and range, the config by :meth:`RunConfig.validate`.
    """
    if not isinstance(row, dict):
        return "not a JSON object"
    if "status" not in row and (row.get("error") is None or isinstance(row.get("error"), str)):
        row["status"] = _legacy_status(row.get("error"))
    if isinstance(row.get("config"), dict):
        if row["config"].get("output") is None:
            row["config"]["output"] = DEFAULT_OUTPUT
        for key, off in _ADDED_FIELDS.items():
            row["config"].setdefault(key, off)
    kinds = {"run_id": str, "engine": str, "status": str, "seed": int, "n_parameters": int, "config": dict,
             "checkpoints": list, "loss_curve": list, "versions": dict, "machine": dict}
    for key, kind in kinds.items():
        if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
            return f"{key!r} is missing or not of type {kind.__name__}"
    for key, kind in {"error": str, "note": str, "same_trajectory": bool}.items():
        if row.get(key) is not None and not isinstance(row[key], kind):
            return f"{key!r} is not of type {kind.__name__}"
    if not all(isinstance(v, str) for v in row["versions"].values()):
        return "'versions' are not strings"
    if row["status"] not in STATUSES:
        return f"status {row['status'][:40]!r} is not one of {', '.join(STATUSES)}"
    missing = [k for k in (*CONFIG_FIELDS, "epochs") if k not in row["config"]]
    if missing:
        return f"the config has no {missing[0]!r}"
    why = _config_problem(row) or _figures_problem(row)
    if why:
        return why
    if row["status"] == "ok":
        reached = {p["epoch"] for p in row["checkpoints"]}
        key = f"test_{metric_names(row['config']['output'])[0]}"
        if not set(row["config"]["epochs"]) <= reached or any(p.get(key) is None for p in row["checkpoints"]):
            return "an ok run without a result at every checkpoint epoch"
    return None


def _legacy_status(error):
    """The status of a row stored before rows had one: sweeps of that time wrote it only into the
    error's first word (``"diverged: ..."``). Reading that stored format is the one place a status
    comes from text; every row written since carries its ``status`` field."""
    return "ok" if error is None else "diverged" if error.startswith("diverged:") else "failed"


def read_rows(directory):
    """The usable result rows of a sweep directory, and one warning per line left out.

    The report only reads: a line it cannot use (cut short, not JSON, binary, longer than any run
    of the sweep writes, a second row of one run, a row beyond the manifest's ``n_runs``, or not a
    result row: a field of the wrong type or out of its range) is named in a warning and skipped,
    and the report is built from the rest. Lines are read one at a time within
    :func:`twinnet.lab.store.line_limit`, and at most ``n_runs`` rows are kept: memory stays
    bounded whatever the file holds.

    Returns
    -------
    rows : list of dict
    warnings : list of str

    Raises
    ------
    ValueError
        The manifest is damaged, or the results are not a regular file.
    """
    manifest = read_manifest(directory)
    path = Path(directory) / RESULTS
    rows, warnings, seen = [], [], set()
    for number, line, _ in read_lines(directory, manifest):
        if line is None:
            why = f"longer than {line_limit(manifest):,} bytes, more than any run of this sweep writes"
        elif not line.strip():
            continue
        else:
            try:
                row = loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                why = f"not JSON ({type(exc).__name__})"
            except ValueError as exc:  # a number or a nesting no sweep writes
                why = str(exc)
            else:
                why = problem(row) or (f"a second row of run {row['run_id'][:40]!r}" if row["run_id"] in seen
                                        else f"more rows than the manifest's n_runs={manifest['n_runs']}"
                                        if len(rows) == manifest["n_runs"] else None)
        if why:
            warnings.append(f"{path}: skipped line {number}: {why}.")
        else:
            rows.append(row)
            seen.add(row["run_id"])
    return rows, warnings
