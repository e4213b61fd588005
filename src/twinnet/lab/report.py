"""The sweep report, rebuilt from the stored results without training anything.

:func:`build_report` reads a sweep directory (:mod:`twinnet.lab.store`) and writes into it
``summary.csv`` (one row per configuration, engine and epoch checkpoint, aggregated over seeds), the
PNG figures of :mod:`twinnet.lab.report_plots`, and ``report.html``: one self-contained file with the
figures embedded and a generated summary that answers the notebook's closing question in words and
numbers: where the engines agree, where either wins, by how much.

Examples
--------
>>> from twinnet.lab.report import build_report
>>> paths = build_report("twinnet-runs/sweep")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from collections.abc import Callable
from typing import NamedTuple

from twinnet.lab.config import CONTROLS
from twinnet.lab.results import STATUSES, finite_or_none, format_number, metric_keys, metric_names
from twinnet.lab.rows import CONFIG_FIELDS, read_rows
from twinnet.lab.store import read_manifest
from twinnet.nn.heads import HEADS

__all__ = ["AGREE", "SCORES", "SUMMARY_FIELDS", "Score", "build_report", "summarize", "summary_rows"]

#: Two mean test accuracies closer than this (one half of a percentage point) count as a tie.
AGREE = 0.005


def _pp(x):
    return f"{100 * x:.1f} pp"


def _plain(x):
    return f"{x:.2g}"


class Score(NamedTuple):
    """What the report ranks a head's runs by: test accuracy for classifiers, test RMSE for regression."""

    metric: str  # the checkpoints' key after "test_": "accuracy" or "rmse"
    name: str  # in sentences and axis labels
    higher_is_better: bool
    tie: float  # two means closer than this count as a tie
    gap: Callable  # a difference, in words: 1.5 pp, 0.012
    better: str  # "more accurate", "lower RMSE"
    best: str  # "Best numpy" / "Best numpy (lowest test RMSE)"
    units: str  # a sentence on the units, or ""


#: Score per kind of head: classifiers (sigmoid, softmax) and regression (linear).
SCORES = {
    "accuracy": Score("accuracy", "test accuracy", True, AGREE, _pp, "more accurate", "", ""),
    "rmse": Score("rmse", "test RMSE", False, AGREE, _plain, "lower test RMSE", " (lowest test RMSE)",
                  "Regression: the loss (mean squared error) and the RMSE are in (squared) standard deviations "
                  "of the target, standardized on each run's training part; R² is unitless."),
}

SUMMARY_FIELDS = (*CONFIG_FIELDS, "depth", "width", "n_parameters", "engine", "epoch", "runs", "ok",
                  "diverged",
                  "train_loss", "train_accuracy", "test_loss", "test_accuracy", "test_accuracy_sd",
                  "train_rmse", "test_rmse", "test_rmse_sd", "train_r2", "test_r2", "gap",
                  "epochs_run", "stopped", "seconds", "ms_per_epoch")


def _score(row):
    """The :class:`Score` of a result row's head."""
    return SCORES[metric_names(row["config"]["output"])[0]]


def _metrics(row):
    """The checkpoint keys of a row's head: train/test loss and accuracy; or loss, RMSE and R^2."""
    return metric_keys(row["config"]["output"])


# --------------------------------------------------------------------------- small helpers
def _count(n, noun):
    """``1 seed``, ``2 seeds``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _config_key(row):
    return json.dumps({k: row["config"][k] for k in CONFIG_FIELDS}, sort_keys=True)


def _depth(config):
    return len(config["layers"]) - 2  # hidden layers


def _width(config):
    return max(config["layers"][1:-1], default=0)  # the widest hidden layer


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else float("nan")


def _sd(values):
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) > 1 else 0.0 if values else float("nan")


def _final(row):
    return row["checkpoints"][-1] if row["checkpoints"] else {}


def _varying(rows):
    """Configuration fields that take more than one value in the sweep (the rest is constant)."""
    return [k for k in CONFIG_FIELDS if len({json.dumps(r["config"][k]) for r in rows}) > 1]


def _label(config, fields):
    parts = []
    for key in fields or ("layers",):
        value = config[key]
        if key == "layers":
            parts.append("layers " + "-".join(map(str, value)))
        elif key == "learning_rate":
            parts.append(f"lr {value:g}")
        elif key == "batch_size":
            parts.append("full batch" if value is None else f"batch {value}")
        elif key in ("l2", "dropout", "validation_fraction"):
            parts.append(f"{key.replace('_', ' ')} {value:g}")
        elif key == "lr_schedule":
            parts.append("constant lr" if value is None else value)
        elif key == "early_stopping":
            parts.append("no early stopping" if value is None else f"early stopping {value}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def _times(ratio):
    return f"{ratio:.2g}×" if ratio < 10 else f"{ratio:.0f}×"


# --------------------------------------------------------------------------- aggregation
def summary_rows(rows):
    """Aggregate over seeds: one dict per (configuration, engine, epoch checkpoint).

    Metrics are means over the seeds whose run finished ``ok``, those of the configuration's head
    (accuracy; or RMSE and R^2, the others left None); ``test_accuracy_sd`` or ``test_rmse_sd`` is
    their standard deviation (0 for one seed); ``gap`` the mean train-test gap (:func:`_gap`).
    ``runs`` counts every stored run, ``ok`` the finished ones, ``diverged`` those left out of the
    means because they diverged. At the last checkpoint, ``epochs_run`` is the mean number of
    epochs trained and ``stopped`` the number of runs that early stopping ended before their last.
    """
    groups = defaultdict(list)
    for row in rows:
        groups[(_config_key(row), row["engine"])].append(row)
    out = []
    for (key, engine), group in sorted(groups.items()):
        config = group[0]["config"]
        ok = [r for r in group if r["status"] == "ok"]
        for epoch in config["epochs"]:
            points = [next(p for p in r["checkpoints"] if p["epoch"] == epoch) for r in ok]
            entry = {k: config[k] for k in CONFIG_FIELDS}
            entry["layers"] = "-".join(map(str, config["layers"]))
            entry.update(depth=_depth(config), width=_width(config),
                         n_parameters=group[0]["n_parameters"], engine=engine, epoch=epoch,
                         runs=len(group), ok=len(ok),
                         diverged=sum(r["status"] == "diverged" for r in group))
            entry.update(dict.fromkeys(SUMMARY_FIELDS[SUMMARY_FIELDS.index("train_loss"):-2]))
            for metric in _metrics(group[0]):
                entry[metric] = _mean(p[metric] for p in points)
            score = _score(group[0])
            key = f"test_{score.metric}"
            entry[f"{key}_sd"] = _sd([p[key] for p in points])
            entry["gap"] = _mean(_gap(p, score) for p in points)
            if epoch == config["epochs"][-1]:  # where the runs ended, with their last checkpoint
                entry["epochs_run"] = _mean(r.get("epochs_run") or len(r["loss_curve"]) for r in ok)
                entry["stopped"] = sum(r.get("stopped_epoch") is not None for r in ok)
            entry["seconds"] = _mean(r["seconds"] for r in ok)
            entry["ms_per_epoch"] = _mean(r["ms_per_epoch"] for r in ok)
            out.append(entry)
    return out


def _gap(point, score):
    """The train-test gap of a checkpoint: how much better the run does on its training part than
    on the test part, in the score's units: train minus test accuracy; test minus train RMSE."""
    train, test = point[f"train_{score.metric}"], point[f"test_{score.metric}"]
    if train is None or test is None:
        return None
    return train - test if score.higher_is_better else test - train


def _factor_series(ok_rows, value_of, score=SCORES["accuracy"], *, all_checkpoints=False, measure=None):
    """engine -> (x, mean, sd): the score (test accuracy, test RMSE) against a factor, with the
    spread over seeds.

    For each seed, the scores of the runs with a given factor value are averaged over the other
    hyperparameters; the mean and standard deviation of these per-seed averages are plotted.
    ``measure(point)`` replaces the score by another figure of a checkpoint (the train-test gap).
    """
    key = f"test_{score.metric}"
    measure = measure or (lambda point: point[key])
    cells = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for row in ok_rows:
        points = row["checkpoints"] if all_checkpoints else [_final(row)]
        for point in points:
            x = point["epoch"] if all_checkpoints else value_of(row["config"])
            cells[row["engine"]][x][row["seed"]].append(measure(point))
    series = {}
    for engine, by_x in cells.items():
        xs = sorted(by_x)
        per_seed = [[_mean(values) for values in by_x[x].values()] for x in xs]
        series[engine] = (xs, [_mean(v) for v in per_seed], [_sd(v) for v in per_seed])
    return series


def _reference(engines):
    return "keras" if "keras" in engines else min(engines)


def _by_config(ok_rows):
    """config key -> engine -> list of ok rows (one per seed)."""
    out = defaultdict(lambda: defaultdict(list))
    for row in ok_rows:
        out[_config_key(row)][row["engine"]].append(row)
    return out


def _time_series(ok_rows):
    """Per engine, ms per epoch and its ratio to the reference engine, by parameter count.

    Returns ``times``: engine -> (n_parameters, mean ms, sd ms) over every run of that size;
    ``ratios``: engine -> (n_parameters, mean ratio) of runs paired with the reference by
    configuration and seed; and the reference engine.
    """
    engines = sorted({r["engine"] for r in ok_rows})
    reference = _reference(engines)
    ms, ratio = defaultdict(lambda: defaultdict(list)), defaultdict(lambda: defaultdict(list))
    ref_ms = {(_config_key(r), r["seed"]): r["ms_per_epoch"] for r in ok_rows if r["engine"] == reference}
    for row in ok_rows:
        n = row["n_parameters"]
        ms[row["engine"]][n].append(row["ms_per_epoch"])
        paired = ref_ms.get((_config_key(row), row["seed"]))
        if row["engine"] != reference and paired:
            ratio[row["engine"]][n].append(row["ms_per_epoch"] / paired)
    times = {e: (sorted(by_n), [_mean(by_n[n]) for n in sorted(by_n)], [_sd(by_n[n]) for n in sorted(by_n)])
             for e, by_n in ms.items()}
    ratios = {e: (sorted(by_n), [_mean(by_n[n]) for n in sorted(by_n)]) for e, by_n in ratio.items()}
    return times, ratios, reference


def _loss_panels(ok_rows, fields, limit=9):
    by_config = _by_config(ok_rows)
    panels = []
    for engines_rows in list(by_config.values())[:limit]:
        config = next(iter(engines_rows.values()))[0]["config"]
        curves = {}
        for engine, group in engines_rows.items():
            length = min(len(r["loss_curve"]) for r in group)
            stack = [[math.nan if v is None else v for v in r["loss_curve"][:length]] for r in group]
            columns = list(zip(*stack))
            curves[engine] = ([statistics.fmean(c) for c in columns], [min(c) for c in columns],
                              [max(c) for c in columns])
        panels.append((_label(config, fields), curves, HEADS[config["output"]].loss_name))
    return panels, max(0, len(by_config) - limit)


# --------------------------------------------------------------------------- the words
def _tasks(rows):
    """The rows grouped by their :class:`Score`: classifiers first, then regression."""
    groups = defaultdict(list)
    for row in rows:
        groups[_score(row).metric].append(row)
    return [(SCORES[metric], groups[metric]) for metric in SCORES if metric in groups]


def summarize(rows, manifest=None):
    """The report's findings as a list of sentences, every claim with its numbers.

    Classifiers are compared by test accuracy, regression by test RMSE (lower is better); a sweep
    of both says each part under its own heading line.

    Parameters
    ----------
    rows : list of dict
        Result rows from :func:`twinnet.lab.store.read_results`.
    manifest : dict, optional
        The sweep's manifest, for its wall time.
    """
    engines = sorted({r["engine"] for r in rows})
    configs = {_config_key(r) for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    status = defaultdict(int)
    for r in rows:
        status[r["status"]] += 1
    sessions = (manifest or {}).get("sessions", [])
    wall = sum(s["seconds"] for s in sessions)
    lines = [f"{len(rows)} runs ({', '.join(f'{n} {s}' for s, n in sorted(status.items()))}): "
             f"{_count(len(configs), 'configuration')} × {_count(len(seeds), 'seed')} × engines {', '.join(engines)}"
             + (f"; sweep wall time {wall:.0f} s over {len(sessions)} session(s)." if sessions else ".")]
    fields = _varying(rows)
    if not any(r["status"] == "ok" for r in rows):
        return lines + ["No run finished ok, so there is nothing to compare."]
    tasks = _tasks(rows)
    for score, task_rows in tasks:
        ok = [r for r in task_rows if r["status"] == "ok"]
        if len(tasks) > 1:
            kind = "Regression" if score.metric == "rmse" else "Classification"
            data = ", ".join(sorted({r["config"]["data"] for r in task_rows}))
            lines.append(f"{kind} ({len(task_rows)} runs, data {data}): compared by {score.name}.")
        if score.units:
            lines.append(score.units)
        if not ok:
            lines.append("No run of these finished ok, so there is nothing to compare.")
            continue
        task_engines = sorted({r["engine"] for r in task_rows})
        reference = _reference(task_engines)
        by_config = _by_config(ok)
        for engine in task_engines:
            if engine != reference:
                lines += _compare_pair(engine, reference, by_config, fields, score)
        lines += _fit_overhead(task_engines, by_config)
        lines += _best(ok, task_engines, fields, score)
        lines += _effects(ok, score)
        lines += _overfitting(ok, score)
    return lines + _early_stopping(rows, fields) + _not_ok(rows, fields)


def _not_ok(rows, fields):
    """A sentence per status other than ok, naming the engines and an example: none of these runs
    counts in the means, ties and bests above."""
    lines = []
    for status in STATUSES[1:]:
        bad = [r for r in rows if r["status"] == status]
        if not bad:
            continue
        per_engine = ", ".join(
            f"{engine} {sum(r['engine'] == engine for r in bad)} of {sum(r['engine'] == engine for r in rows)}"
            for engine in sorted({r["engine"] for r in bad}))
        first = bad[0]
        lines.append(f"{status.capitalize()}: {len(bad)} run(s) ({per_engine}), left out of every mean, "
                     f"tie and best above; e.g. {first['engine']} with {_label(first['config'], fields)}, "
                     f"seed {first['seed']}: {first.get('error')}")
    return lines


def _pair_figures(engine, reference, by_config, score):
    """The numbers comparing two engines over the configurations and seeds both ran.

    Returns a dict: ``score_gaps``, the absolute final score differences (test accuracy, test
    RMSE) of the runs paired by configuration and seed; ``curve_gaps``, the largest loss-curve
    difference of each pair on the same trajectory; ``mean_gaps``, per configuration, the
    difference of the mean scores over seeds; ``wins``, engine -> ``(gap, config)`` of the
    configurations it wins (higher accuracy, lower RMSE) by more than the score's tie.
    """
    key = f"test_{score.metric}"
    figures = {"score_gaps": [], "curve_gaps": [], "mean_gaps": [], "wins": {engine: [], reference: []}}
    for engines_rows in by_config.values():
        mine, theirs = engines_rows.get(engine), engines_rows.get(reference)
        if not mine or not theirs:
            continue
        by_seed = {r["seed"]: r for r in theirs}
        for r, other in ((r, by_seed[r["seed"]]) for r in mine if r["seed"] in by_seed):
            figures["score_gaps"].append(abs(_final(r)[key] - _final(other)[key]))
            if r.get("same_trajectory", True) and other.get("same_trajectory", True):
                figures["curve_gaps"].append(max((abs(a - b) for a, b in zip(r["loss_curve"], other["loss_curve"])
                                                  if a is not None and b is not None), default=0.0))
        gap = _mean(_final(r)[key] for r in mine) - _mean(_final(r)[key] for r in theirs)
        figures["mean_gaps"].append(gap)
        if abs(gap) > score.tie:
            figures["wins"][engine if (gap > 0) == score.higher_is_better else reference].append(
                (abs(gap), mine[0]["config"]))
    return figures


def _compare_pair(engine, reference, by_config, fields, score=SCORES["accuracy"]):
    """The sentences comparing two engines: agreement, score, speed (:func:`_pair_figures`)."""
    figures = _pair_figures(engine, reference, by_config, score)
    pairs, curve_gaps, wins = figures["score_gaps"], figures["curve_gaps"], figures["wins"]
    if not pairs:
        return [f"{engine} and {reference} share no configuration and seed, so they are not compared."]
    same = sum(p == 0 for p in pairs)
    lines = [f"Agreement, {engine} vs {reference}: over {len(pairs)} runs paired by configuration and "
             + (f"seed, the final {score.name} is identical in all {same}." if same == len(pairs) else
                f"seed, the final {score.name} is identical in {same} and differs by "
                f"{score.gap(statistics.fmean(pairs))} on average, {score.gap(max(pairs))} at most.")]
    if curve_gaps:
        lines[-1] += (f" Their training-loss curves (same initial weights, same batches) differ by "
                      f"at most {max(curve_gaps):.2g} over all epochs"
                      + (f", in the {len(curve_gaps)} runs on one trajectory; the other {len(pairs) - len(curve_gaps)} "
                         "draw their own dropout masks or batch order, or start elsewhere."
                         if len(curve_gaps) < len(pairs) else "."))
    ties = len(figures["mean_gaps"]) - len(wins[engine]) - len(wins[reference])
    title = score.name[0].upper() + score.name[1:]  # "Test RMSE": str.capitalize would lower RMSE
    sentence = (f"{title}, {engine} vs {reference}: tied (within {score.gap(score.tie)}, mean over seeds) "
                f"in {ties} of {len(figures['mean_gaps'])} configurations")
    if score.metric == "accuracy":  # the sentence as it always read
        sentence = sentence.replace("Test accuracy, ", "Accuracy, ", 1)
    for who in (engine, reference):
        if wins[who]:
            size, config = max(wins[who], key=lambda win: win[0])
            sentence += (f"; {who} {score.better} in {len(wins[who])}, by up to {score.gap(size)} "
                         f"({_label(config, fields)})")
    lines.append(sentence + ".")
    lines.append(_speed(engine, reference, by_config))
    return lines


def _named(engine):
    """``engine (what it runs)``: "keras" alone does not say whether model.fit is meant."""
    from twinnet.lab.runners import ENGINES

    return f"{engine} ({ENGINES[engine].description})" if engine in ENGINES else engine


def _speed(engine, other, by_config):
    """The sentence comparing two engines' time per epoch over the configurations both ran."""
    def ms(runs):
        return _mean(r["ms_per_epoch"] for r in runs)

    ratios = sorted(((ms(rows[engine]) / ms(rows[other]), rows[engine][0]["n_parameters"])
                     for rows in by_config.values() if rows.get(engine) and rows.get(other)),
                    key=lambda item: item[1])
    values = [r for r, _ in ratios]
    median = statistics.median(values)
    faster = engine if median < 1 else other
    speedup = [1 / r if median < 1 else r for r in values]
    return (f"Speed per epoch, {_named(engine)} vs {_named(other)}: {faster} is faster in "
            f"{sum(s > 1 for s in speedup)} of {len(values)} configurations, "
            f"{_times(statistics.median(speedup))} (median); {_times(speedup[0])} on the smallest network "
            f"({ratios[0][1]:,} parameters) and {_times(speedup[-1])} on the largest ({ratios[-1][1]:,}).")


def _fit_overhead(engines, by_config):
    """What Keras's model.fit adds per epoch to the same model trained by a tf.function loop, and
    the other engines against that loop: so that "faster than keras" is not read as TensorFlow's
    arithmetic being slow."""
    if not {"keras", "tf-loop"} <= set(engines):
        return []
    extra, share = [], []
    for rows in by_config.values():
        loop = {r["seed"]: r for r in rows.get("tf-loop", [])}
        for fit in rows.get("keras", []):
            if fit["seed"] in loop:
                extra.append(fit["ms_per_epoch"] - loop[fit["seed"]]["ms_per_epoch"])
                share.append(extra[-1] / fit["ms_per_epoch"])
    if not extra:
        return []
    lines = [(f"Keras's model.fit overhead: keras takes {statistics.median(extra):.3g} ms more per epoch "
             f"than tf-loop, the same model on the same batches ({100 * statistics.median(share):.0f}% of "
             f"keras's time per epoch; medians over {len(extra)} runs paired by configuration and seed, "
             "both timed with their one-off graph tracing).")]
    others = [e for e in engines if e not in ("keras", "tf-loop")
              and any(rows.get(e) and rows.get("tf-loop") for rows in by_config.values())]
    return lines + [_speed(e, "tf-loop", by_config) for e in others]


def _best(ok_rows, engines, fields, score=SCORES["accuracy"]):
    """Per engine, its best configuration and epoch: highest mean test accuracy, lowest test RMSE."""
    key = f"test_{score.metric}"
    lines = []
    for engine in engines:
        candidates = []
        for group in _by_config(ok_rows).values():
            runs = group.get(engine, [])
            for epoch in (runs[0]["config"]["epochs"] if runs else []):
                points = [next(p for p in r["checkpoints"] if p["epoch"] == epoch) for r in runs]
                values = [p[key] for p in points]
                candidates.append((_mean(values), _sd(values), epoch, runs, points))
        if candidates:
            pick = max if score.higher_is_better else min
            mean, sd, epoch, runs, points = pick(candidates, key=lambda c: c[0])
            extra = f" (R² {_mean(p['test_r2'] for p in points):.3f})" if score.metric == "rmse" else ""
            lines.append(f"Best {engine}{score.best}: {_label(runs[0]['config'], fields)}, {epoch} epochs: "
                         f"{score.name} {mean:.3f} ± {sd:.3f}{extra} over {len(runs)} seed(s).")
    return lines


def _effects(ok_rows, score=SCORES["accuracy"]):
    key = f"test_{score.metric}"
    factors = {"depth (hidden layers)": _depth, "widest hidden layer": _width,
               "learning rate": lambda c: c["learning_rate"], "l2": lambda c: c["l2"],
               "dropout": lambda c: c["dropout"]}
    parts = []
    for name, value_of in factors.items():
        means = defaultdict(list)
        for row in ok_rows:
            means[value_of(row["config"])].append(_final(row)[key])
        if len(means) > 1:
            parts.append(f"{name} " + ", ".join(f"{x:g}: {_mean(v):.3f}" for x, v in sorted(means.items())))
    epochs = defaultdict(list)
    for row in ok_rows:
        for point in row["checkpoints"]:
            epochs[point["epoch"]].append(point[key])
    if len(epochs) > 1:
        parts.append("epochs " + ", ".join(f"{x}: {_mean(v):.3f}" for x, v in sorted(epochs.items())))
    if not parts:
        return []
    return [f"Effect of each hyperparameter on {score.name} (mean over all engines, seeds and the "
            "other hyperparameters; final epoch unless epochs): " + "; ".join(parts) + "."]


#: The regularizers whose train-test gap the report shows, when a sweep varies them: config key -> what
#: raising it does, in words.
GAP_FACTORS = {"l2": "the L2 penalty", "dropout": "dropout"}


def _gap_means(ok_rows, factor, score):
    """factor value -> (mean gap, mean train score, mean test score) at the final epoch, over every engine,
    seed and other hyperparameter."""
    by_value = defaultdict(list)
    for row in ok_rows:
        by_value[row["config"][factor]].append(_final(row))
    return {value: (_mean(_gap(p, score) for p in points), _mean(p[f"train_{score.metric}"] for p in points),
                    _mean(p[f"test_{score.metric}"] for p in points))
            for value, points in sorted(by_value.items())}


def _overfitting(ok_rows, score):
    """The overfitting lesson, one sentence per regularizer of :data:`GAP_FACTORS` the sweep varies: how
    raising it from its lowest to its highest value changed the train-test gap and the test score."""
    lines = []
    for factor, what in GAP_FACTORS.items():
        means = _gap_means(ok_rows, factor, score)
        if len(means) < 2:
            continue
        low, high = min(means), max(means)
        (gap0, train0, test0), (gap1, train1, test1) = means[low], means[high]
        better = (test1 - test0) * (1 if score.higher_is_better else -1)
        change = f"the train-test gap from {score.gap(gap0)} to {score.gap(gap1)}"
        if gap0 <= score.tie:  # the network did no better on its training examples: nothing to cure
            verb = f"moved {change}"
            lesson = (f"there was no overfitting to curb, the gap being within {score.gap(score.tie)} at {factor} "
                      f"{low:g}" if gap0 >= -score.tie else
                      f"there was no overfitting to curb: at {factor} {low:g} the network already did worse on its "
                      "training examples than on the test examples")
        elif gap1 < gap0 - score.tie:
            verb = f"shrank {change}"
            lesson = (f"{what} traded fit to the training part for a better {score.name}" if better > score.tie else
                      f"less overfitting, but a worse {score.name}: at {factor} {high:g} the network underfits"
                      if better < -score.tie else f"less overfitting at about the same {score.name}")
        else:
            verb = f"widened {change}" if gap1 > gap0 + score.tie else \
                f"left the train-test gap about unchanged, {score.gap(gap0)} to {score.gap(gap1)}"
            lesson = f"no sign that {what} curbed overfitting here"
        pick = max if score.higher_is_better else min
        best = pick(means, key=lambda value: means[value][2])
        each = ", ".join(f"{value:g}: {score.gap(means[value][0])}" for value in means)
        lines.append(f"Overfitting and {factor} ({score.name}; final epoch, mean over engines, seeds and the other "
                     f"hyperparameters): raising {factor} from {low:g} to {high:g} {verb} (train {train0:.3f} → "
                     f"{train1:.3f}, test {test0:.3f} → "
                     f"{test1:.3f}): {lesson}. The gap at each {factor}: {each}; the best {score.name}, "
                     f"{means[best][2]:.3f}, at {factor} {best:g}.")
    return lines


def _stopped_epoch(row):
    return row.get("stopped_epoch")


def _early_stopping(rows, fields):
    """Where early stopping ended the runs, per patience, and whether engines on one trajectory stopped together."""
    ok = [r for r in rows if r["status"] == "ok" and r["config"]["early_stopping"] is not None]
    lines = []
    for patience in sorted({r["config"]["early_stopping"] for r in ok}):
        runs = [r for r in ok if r["config"]["early_stopping"] == patience]
        stopped = sorted(_stopped_epoch(r) for r in runs if _stopped_epoch(r) is not None)
        fractions = "/".join(f"{f:g}" for f in sorted({r["config"]["validation_fraction"] for r in runs}))
        budgets = "/".join(str(e) for e in sorted({r["config"]["epochs"][-1] for r in runs}))
        text = (f"Early stopping (patience {patience}, val_loss on {fractions} of each run's training part, the "
                f"best epoch's weights kept): it ended {len(stopped)} of {len(runs)} runs")
        if stopped:
            text += (f", after epoch {stopped[0]}" if stopped[0] == stopped[-1] else
                     f", after epochs {stopped[0]} to {stopped[-1]} (median {statistics.median(stopped):g})")
            text += f" of {budgets}"
        text += "; the others ran every epoch." if len(stopped) < len(runs) else "."
        together = defaultdict(list)
        for r in runs:
            if r.get("same_trajectory", True):
                together[(_config_key(r), r["seed"])].append(r)
        shared = [group for group in together.values() if len(group) > 1]
        if shared:
            engines = ", ".join(sorted({r["engine"] for group in shared for r in group}))
            apart = [group for group in shared if len({_stopped_epoch(r) for r in group}) > 1]
            text += (f" Engines on one trajectory ({engines}) stopped after the same epoch in "
                     f"{len(shared) - len(apart)} of the {len(shared)} (configuration, seed) pairs that more than one "
                     "of them ran")
            if apart:
                first = apart[0]
                text += (f"; not in {_label(first[0]['config'], fields)}, seed {first[0]['seed']}: "
                         + ", ".join(f"{r['engine']} {_stopped_epoch(r) or 'ran all'}" for r in first))
            text += "."
        lines.append(text)
    return lines


# --------------------------------------------------------------------------- files
def _write_csv(entries, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        for entry in entries:
            writer.writerow({k: "full" if k == "batch_size" and v is None else
                             "" if finite_or_none(v) is None else v
                             for k, v in entry.items()})


def _score_figures(score, ok, directory):
    """The figures of one score (test accuracy, test RMSE) against each factor: ``<metric>_vs_<factor>.png``."""
    from twinnet.lab import report_plots as rp

    name_of = score.name[0].upper() + score.name[1:]
    better = "" if score.higher_is_better else " (lower is better)"
    figures = []
    factors = [("depth", "depth (hidden layers)", _depth, False),
               ("width", "widest hidden layer", _width, False),
               ("learning_rate", "learning rate", lambda c: c["learning_rate"], True)]
    for factor, label, value_of, log_x in factors:
        name = f"{score.metric}_vs_{factor}.png"
        rp.plot_factor(_factor_series(ok, value_of, score), xlabel=label, path=directory / name, log_x=log_x,
                       metric=score.name)
        figures.append((name, (f"{name_of} at the final epoch against {label}{better}, averaged over the "
                               "other hyperparameters; error bars: standard deviation over seeds.")))
    name = f"{score.metric}_vs_epochs.png"
    rp.plot_factor(_factor_series(ok, None, score, all_checkpoints=True), xlabel="epochs", path=directory / name,
                   metric=score.name)
    figures.append((name, (f"{name_of} at each epoch checkpoint (one training run per configuration){better}, "
                           "averaged over the other hyperparameters; error bars over seeds.")))
    return figures + _gap_figures(score, ok, directory)


def _gap_figures(score, ok, directory):
    """The train-test gap against each regularizer of :data:`GAP_FACTORS` the sweep varies:
    ``<metric>_gap_vs_<factor>.png``."""
    from twinnet.lab import report_plots as rp

    figures = []
    metric = score.name.removeprefix("test ")
    gap = "train - test accuracy" if score.higher_is_better else "test - train RMSE"
    for factor in GAP_FACTORS:
        if len({r["config"][factor] for r in ok}) < 2:
            continue
        def value_of(config, factor=factor):
            return config[factor]
        pooled = {part: _factor_series([{**r, "engine": part} for r in ok], value_of, score,
                                       measure=lambda point, part=part: point[f"{part}_{score.metric}"])[part]
                  for part in ("train", "test")}
        gaps = _factor_series(ok, value_of, score, measure=lambda point: _gap(point, score))
        name = f"{score.metric}_gap_vs_{factor}.png"
        rp.plot_gap(pooled, gaps, xlabel=factor, metric=metric, gap=gap, path=directory / name)
        figures.append((name, (f"Overfitting against {factor}, final epoch: left, train and test {metric}, mean over "
                               f"engines, seeds and the other hyperparameters; right, the gap ({gap}: how much "
                               "better the network does on the examples it trained on) per engine. Error bars: "
                               "standard deviation over seeds; the values are evenly spaced.")))
    return figures


def _figures(rows, directory):
    """Draw every figure; return (file name, caption) pairs in report order."""
    from twinnet.lab import report_plots as rp

    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return []
    fields = _varying(rows)
    figures = []
    for score, task_rows in _tasks(ok):
        figures += _score_figures(score, task_rows, directory)
    times, ratios, reference = _time_series(ok)
    rp.plot_time(times, directory / "time_vs_parameters.png")
    figures.append(("time_vs_parameters.png", ("Milliseconds per epoch against the number of "
                                              "parameters (log-log): mean and standard deviation "
                                              "over the runs of each size.")))
    if ratios:
        rp.plot_time_ratio(ratios, reference, directory / "time_ratio.png")
        figures.append(("time_ratio.png", (f"Time per epoch of each engine over that of {_named(reference)} "
                                          "in the same configuration and seed, mean over the runs "
                                          "of each size; below 1 is faster.")))
    panels, omitted = _loss_panels(ok, fields)
    rp.plot_loss_overlays(panels, directory / "loss_curves.png", omitted=omitted)
    figures.append(("loss_curves.png", ("Training loss per epoch of every engine, per configuration: "
                                       "mean over seeds, band from lowest to highest.")))
    return figures


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em}li{margin:.4em 0}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.9em;color:#555}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th{background:#f3f3f3}td.t{text-align:left}"""


#: Columns shown as given (a hyperparameter), not rounded to four decimals.
_EXACT = ("learning_rate", "l2", "dropout", "validation_fraction")
#: What None means in a column of the final table.
_NONE_TEXT = {"batch_size": "full", "lr_schedule": "constant", "early_stopping": "off"}

#: The final-epoch table's metric columns per score.
_FINAL_COLUMNS = {"accuracy": ("test_accuracy", "test_accuracy_sd", "test_loss"),
                  "rmse": ("test_rmse", "test_rmse_sd", "test_r2", "test_loss")}


def _final_table(final, score, fields=()):
    """The HTML table of the final epoch's means over seeds, with the score's columns; ``fields`` are the
    regularization and control fields the sweep varies, shown after the others (and with early stopping,
    the mean epochs run and the number of runs it stopped)."""
    esc = html.escape
    stopping = any(e["early_stopping"] is not None for e in final)
    columns = ("data", "output", "layers", "learning_rate", "batch_size", "optimizer", "hidden_activation",
               *(f for f in (*CONTROLS, "validation_fraction") if f in fields), "engine", "epoch", "ok", "diverged",
               *_FINAL_COLUMNS[score.metric], "gap", *(("epochs_run", "stopped") if stopping else ()), "ms_per_epoch")
    what = "classifiers" if score.metric == "accuracy" else "regression"
    parts = [f"<h2>Final epoch, mean over seeds: {what}, by {esc(score.name)}</h2>"
             "<p>Every checkpoint is in summary.csv." + (f" {esc(score.units)}" if score.units else "") + "</p>"
             "<table><tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"]
    for e in final:
        cells = []
        for c in columns:
            v = e[c]
            text = format_number(v, ".4f", "") if isinstance(v, float) and c not in _EXACT else \
                (_NONE_TEXT.get(c, "") if v is None else f"{v:g}" if isinstance(v, float) else str(v))
            cells.append(f"<td class='t'>{esc(text)}</td>" if isinstance(v, str) else f"<td>{esc(text)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def _stopping_table(rows, fields):
    """The HTML table of where early stopping ended each run that had it ("" when none did)."""
    esc = html.escape
    runs = [r for r in rows if r["status"] == "ok" and r["config"]["early_stopping"] is not None]
    if not runs:
        return ""
    parts = ["<h2>Early stopping: where each run stopped</h2><p>Each run trained until val_loss (on its "
             "validation part) had not improved for patience epochs, then kept its best epoch's weights; "
             "the final metrics are those weights'.</p><table><tr><th>engine</th><th>seed</th>"
             "<th>configuration</th><th>patience</th><th>epochs</th><th>stopped after</th><th>best epoch</th>"
             "<th>test score</th></tr>"]
    for r in sorted(runs, key=lambda r: (_config_key(r), r["seed"], r["engine"])):
        score = _score(r)
        stopped = _stopped_epoch(r)
        parts.append(f"<tr><td class='t'>{esc(r['engine'])}</td><td>{r['seed']}</td>"
                     f"<td class='t'>{esc(_label(r['config'], fields))}</td><td>{r['config']['early_stopping']}</td>"
                     f"<td>{r['config']['epochs'][-1]}</td><td>{'ran all' if stopped is None else stopped}</td>"
                     f"<td>{r.get('best_epoch') or ''}</td>"
                     f"<td>{esc(score.name)} {format_number(_final(r)[f'test_{score.metric}'], '.4f')}</td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _html(summary, figures, entries, rows, manifest, directory):
    esc = html.escape
    parts = [(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>twinnet sweep report</title><style>{_CSS}</style></head><body>"),
             "<h1>twinnet sweep: NumPy network vs its Keras twin</h1>",
             "<h2>Summary</h2><ul>" + "".join(f"<li>{esc(s)}</li>" for s in summary) + "</ul>"]
    if figures:
        parts.append("<h2>Figures</h2>")
    for name, caption in figures:
        data = base64.b64encode((directory / name).read_bytes()).decode("ascii")
        parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{esc(name)}'>"
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    last = max(e["epoch"] for e in entries)
    varying = _varying(rows)
    for score in SCORES.values():
        final = [e for e in entries if e["epoch"] == last and metric_names(e["output"])[0] == score.metric]
        if final:
            parts.append(_final_table(final, score, varying))
    parts.append(_stopping_table(rows, varying))
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        parts.append("<h2>Runs that did not finish ok</h2><table><tr><th>engine</th><th>seed</th>"
                     "<th>configuration</th><th>status</th><th>error</th></tr>")
        for r in bad:
            parts.append(f"<tr><td class='t'>{esc(r['engine'])}</td><td>{r['seed']}</td>"
                         f"<td class='t'>{esc(_label(r['config'], CONFIG_FIELDS))}</td>"
                         f"<td class='t'>{esc(r['status'])}</td><td class='t'>{esc(str(r['error']))}</td></tr>")
        parts.append("</table>")
    env = rows[-1]
    versions = {}
    for r in rows:
        versions.update(r["versions"])
    parts.append("<h2>Environment</h2><p>" + esc(", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
                 + "<br>" + esc(", ".join(f"{k}: {v}" for k, v in env["machine"].items())) + "<br>"
                 + esc("; ".join(f"session {i}: {session['seconds']:.0f} s on {session['where']}, "
                                 f"{session['threads']} thread(s) per run, "
                                 + ", ".join(f"{n} {status}" for status, n in session["counts"].items())
                                 for i, session in enumerate(manifest.get("sessions", []), start=1)))
                 + "</p></body></html>")
    return "\n".join(parts)


def build_report(directory):
    """Write ``summary.csv``, the PNG figures and ``report.html`` into a sweep directory.

    Parameters
    ----------
    directory : path-like
        Made by ``twinnet sweep``; it is only read, except for the files written here, which replace
        what stands at their names (a symlink among them: nothing is written through it).

    Returns
    -------
    paths : list of pathlib.Path
        The files written, ``report.html`` first.
    summary : list of str
        The generated findings, as in the report.

    Raises
    ------
    FileNotFoundError
        ``directory`` does not exist.
    ValueError
        It is not a sweep directory, or holds no finished run.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    rows, warnings = read_rows(directory)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not rows:
        raise ValueError(f"{directory}: the sweep has no finished run"
                         + (" that can be read" if warnings else " yet") + "; nothing to report.")
    # Every file is written in a new folder of our own, then renamed into place: a rename replaces
    # what stands at the name (a file, or a symlink planted there), and never writes through a link.
    with tempfile.TemporaryDirectory(dir=directory, prefix=".report-") as work:
        work = Path(work)
        entries = summary_rows(rows)
        _write_csv(entries, work / "summary.csv")
        figures = _figures(rows, work)
        summary = summarize(rows, manifest)
        (work / "report.html").write_text(_html(summary, figures, entries, rows, manifest, work), encoding="utf-8")
        names = ["report.html", "summary.csv", *(name for name, _ in figures)]
        for name in names:
            os.replace(work / name, directory / name)
    return [directory / name for name in names], summary
