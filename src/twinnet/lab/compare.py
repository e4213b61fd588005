"""Compare: one configuration, several engines, one set of initial weights, one table.

Examples
--------
>>> from twinnet.lab import RunConfig, compare
>>> result = compare(RunConfig(data="moons", epochs=20), engines=["functional", "numpy"])
>>> [row["engine"] for row in result.rows()]
['functional', 'numpy']
>>> result.rows()[1]["max_loss_diff"] < 1e-12
True

Every head: a softmax on ten digits, the functional engine (binary, the notebook's) left out with a
note, every other engine on one trajectory:

>>> result = compare(RunConfig(data="digits10", layers=(64, 16, 10), epochs=5), engines=["numpy", "sklearn"])
>>> result.config.output, list(result.rows()[0])[:4]
('softmax', ['engine', 'train_loss', 'train_accuracy', 'test_loss'])
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twinnet import validation
from twinnet.lab.config import RunConfig
from twinnet.lab.environment import environment
from twinnet.lab.results import EngineResult, finite_or_none, metric_keys

from twinnet.lab.run import initial_parameters, load_split, run_engine
from twinnet.lab.runners import DEFAULT_ENGINES, ENGINES, installed, unsupported_reason
from twinnet.nn.heads import DEFAULT_OUTPUT, head
from twinnet.nn.network import LARGE_FEATURE

__all__ = [
    "CSV_FIELDS",
    "Comparison",
    "csv_fields",
    "compare",
    "resolve_engines",
]

#: Columns of ``results.csv`` and of :meth:`Comparison.rows` after the metrics.
_TIMES = ("seconds", "ms_per_epoch", "speed_vs_keras", "max_loss_diff", "status", "error", "note")
#: Columns added with early stopping: the epochs each engine trained, where it stopped, whose weights it kept.
STOPPING_FIELDS = ("epochs_run", "stopped_epoch", "best_epoch")


def csv_fields(output, early_stopping=False):
    """Columns of ``results.csv`` and of :meth:`Comparison.rows` for a head: the engine, the head's
    metrics (:func:`twinnet.lab.results.metric_keys`: accuracy; or RMSE and R^2), then the times;
    with ``early_stopping``, then :data:`STOPPING_FIELDS`."""
    return ("engine", *metric_keys(output), *_TIMES, *(STOPPING_FIELDS if early_stopping else ()))


#: The classifiers' columns (the notebook's sigmoid head).
CSV_FIELDS = csv_fields(DEFAULT_OUTPUT)


@dataclass
class Comparison:
    """The results of several engines on one configuration.

    ``reference`` is the engine whose loss curve the others are measured against: the notebook's
    functional network when it ran, else ``numpy`` (``Network``).
    """

    config: RunConfig
    results: list
    reference: str | None
    data: dict
    notes: list = field(default_factory=list)
    split: object = field(default=None, repr=False)  # the train/test data, for the figures

    def result(self, engine) -> EngineResult | None:
        return next((r for r in self.results if r.engine == engine), None)

    def max_loss_diff(self, result):
        """Largest ``|loss - reference loss|`` over the epochs, or NaN when not comparable."""
        ref = self.result(self.reference) if self.reference else None
        if ref is None or result.status != "ok" or ref.status != "ok" or not result.same_trajectory or \
                len(result.loss_curve) != len(ref.loss_curve):
            return float("nan")
        return float(np.max(np.abs(np.subtract(result.loss_curve, ref.loss_curve))))

    def rows(self):
        """One dict per engine with the head's :func:`csv_fields`; ``speed_vs_keras`` = Keras fit's
        seconds / this engine's seconds (> 1 is faster than ``model.fit``)."""
        keras = self.result("keras")
        keras_seconds = keras.seconds if keras is not None else float("nan")
        rows = []
        for r in self.results:
            row = {"engine": r.engine, **{key: getattr(r, key) for key in metric_keys(self.config.output)}}
            row.update({"seconds": r.seconds, "ms_per_epoch": r.ms_per_epoch,
                        "speed_vs_keras": keras_seconds / r.seconds, "max_loss_diff": self.max_loss_diff(r),
                        "status": r.status, "error": r.error, "note": r.note})
            if self.config.early_stopping is not None:
                row.update({key: getattr(r, key) for key in STOPPING_FIELDS})
            rows.append(row)
        return rows

    def to_dict(self):
        return {
            "config": self.config.to_dict(),
            "data": self.data,
            "reference": self.reference,
            "notes": self.notes,
            "summary": [{k: finite_or_none(v) for k, v in row.items()} for row in self.rows()],
            "results": [r.to_dict() for r in self.results],
            "environment": environment(),
        }

    def save(self, out_dir):
        """Write ``results.json`` and ``results.csv`` into ``out_dir``; return their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = out / "results.json", out / "results.csv"
        json_path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        with open(csv_path, "w", newline="") as f:
            fields = csv_fields(self.config.output, self.config.early_stopping is not None)
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for row in self.rows():
                writer.writerow({k: "" if finite_or_none(v) is None else v for k, v in row.items()})
        return [json_path, csv_path]


def resolve_engines(engines, config, n_train):
    """The engines to run and notes on those left out.

    With ``engines=None`` every engine whose library is installed and which supports the
    configuration runs, and the others are listed in the notes. Engines asked for by name must
    exist, be installed and support the configuration, or ``ValueError`` says why.
    """
    notes = []
    if engines is None:
        chosen = []
        for name in DEFAULT_ENGINES:
            reason = unsupported_reason(name, config, n_train)
            if not installed(name):
                extra = ENGINES[name].extra
                notes.append(f"{name} skipped: {ENGINES[name].module} is not installed"
                             + (f" (pip install 'twinnet[{extra}]')" if extra else ""))
            elif reason:
                notes.append(f"{name} skipped: {reason}")
            else:
                chosen.append(name)
        return chosen, notes
    engines = list(dict.fromkeys([engines] if isinstance(engines, str) else engines))
    if not engines:
        raise ValueError("engines must name at least one engine; expected some of: "
                         + ", ".join(ENGINES) + ".")
    for name in engines:
        validation.choice("engine", name, list(ENGINES), ordered=True)  # the order they run in
        if not installed(name):
            engine = ENGINES[name]
            raise ValueError(f"engine {name!r} needs {engine.module}, which is not installed: "
                             f"pip install 'twinnet[{engine.extra}]'" if engine.extra else
                             f"engine {name!r} needs {engine.module}, which is not installed.")
        reason = unsupported_reason(name, config, n_train)
        if reason:
            raise ValueError(f"engine {name!r} cannot run this configuration: {reason}.")
    return engines, notes


def _control_notes(config, split):
    """What the regularization and training control of ``config`` mean for the table, one note each."""
    notes = []
    if config.l2:
        notes.append(f"l2={config.l2:g}: every loss (curves, train and test) includes the penalty l2 * sum(W**2), "
                     "as Keras reports it; the accuracy, RMSE and R² do not")
    if config.lr_schedule is not None:
        notes.append(f"learning rate of update k: {config.schedule()!r}(k), the value Keras's fit uses")
    if split.X_val is not None:
        how = "stratified by class, " if head(config.output).classifier else ""
        notes.append(f"early stopping: patience {config.early_stopping} on val_loss of {split.X_val.shape[0]} "
                     f"validation examples (validation_fraction {config.validation_fraction:g} of the training part, "
                     f"{how}the same for every engine); each engine trains on the other {split.X_train.shape[0]} "
                     "and keeps its best epoch's weights; the test part is untouched")
    return notes


def compare(config=RunConfig(), engines=None, *, engine_progress=None):  # noqa: B008  (frozen: a safe default)
    """Train every engine on ``config`` from one set of initial weights.

    Parameters
    ----------
    config : RunConfig
        The defaults are the notebook's experiment.
    engines : str or list of str, optional
        Names from ``twinnet.lab.ENGINES`` (one name: that engine alone); default: every installed
        engine that supports ``config``.
    engine_progress : callable, optional
        ``engine_progress(engine, epochs_done)``, called as each engine's training advances.

    Returns
    -------
    Comparison
    """
    config.validate()
    split = load_split(config)
    config = config.with_layers(split.X_train.shape[1], output=split.output, width=split.width)
    names, notes = resolve_engines(engines, config, split.X_train.shape[0])
    if split.note:  # how the head was inferred from the data, said once
        notes.insert(0, split.note)
    initial = initial_parameters(config)
    results = []
    for name in names:
        progress = (lambda done, name=name: engine_progress(name, done)) if engine_progress else \
            (lambda done: None)
        results.append(run_engine(name, config, split, initial, progress))
    largest = float(np.max(np.abs(split.X_train), initial=0.0))
    if largest > LARGE_FEATURE:
        notes.append(f"the training features have values up to {largest:.3g} in magnitude"
                     + ("" if config.standardize else ", not standardized")
                     + ": at this scale training diverges or stalls at any usual learning rate; "
                     "standardize the features (compare does by default; --no-standardize turns it off)")
    notes += _control_notes(config, split)
    reference = next((n for n in ("functional", "numpy") if n in names), None)
    data = {"source": config.data, "n_features": int(split.X_train.shape[1]),
            "n_train": int(split.X_train.shape[0]), "n_test": int(split.X_test.shape[0]),
            "output": config.output}
    if split.X_val is not None:
        data["n_val"] = int(split.X_val.shape[0])
    if split.classes is not None:
        data["classes"] = [c.item() if isinstance(c, np.generic) else c for c in split.classes]
    if split.target_scale is not None:  # the regression targets' units: standard deviations
        data["target_mean"], data["target_sd"] = (np.atleast_1d(v).tolist() for v in split.target_scale)
    return Comparison(config, results, reference, data, notes, split)
