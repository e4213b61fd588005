"""``twinnet compare``: train every engine from one set of initial weights and print one table."""

from __future__ import annotations

import argparse

from twinnet.cli._args import (
    add_controls,
    add_output,
    add_verbose,
    apply_verbose,
    head_layer_list,
    name_list,
    positive_float,
    positive_int,
    seed,
)
from twinnet.nn.heads import head

DESCRIPTION = """\
Train the same network with several engines, from the same initial weights, on the same data
and batches, and compare them: final loss, accuracy, time, and how far each loss curve strays from
the NumPy reference. With no options it reproduces the notebook's experiment: the built-in data
set split 80/20, layers 100,20,5,1, learning rate 0.1, 250 full-batch epochs, seed 0.

Every output head: the data set's own by default (binary: one sigmoid unit; K classes: a softmax
of K units, e.g. --data digits10 --layers 64,32,10; real targets: linear units, e.g. --data
diabetes), or --output. The table shows accuracy for classifiers, RMSE and R^2 for regression.

Engines: functional (the notebook's L_layer_model, binary only), numpy (twinnet.Network), keras
(model.fit), tf-loop (a compiled tf.function step), sklearn (MLPClassifier, or MLPRegressor for
regression), torch. By default every installed engine that supports the configuration runs.
Features, and regression targets, are standardized with the training part's statistics unless
--no-standardize is given.

Regularization and training control: --l2, --dropout, --batch-norm, --lr-schedule, --early-stopping, e.g.
  --l2 0.001 --lr-schedule "exponential:decay_steps=50,decay_rate=0.5" --early-stopping 5
numpy, keras, tf-loop and torch train them all (with --dropout each library draws its own masks,
marked * in the table: not one trajectory); sklearn trains --l2 only (as its alpha), functional
none. Early stopping watches val_loss on --validation-fraction of the training part, the same
examples for every engine, and keeps each engine's best epoch; the table then says where each
stopped.

Writes results.json, results.csv and loss_curves.png into --out (default: a new folder
./twinnet-runs/<timestamp>), and as the data allow: decision_boundary.png (2 features),
confusion_matrix.png (more than 2 classes), predicted_vs_true.png (regression). The folder is
made, and checked, before training starts; a folder holding an earlier run's results or figures is
refused without --force (which replaces them all), and one that another compare is writing into is
refused."""

#: What a run writes into --out, figures aside (:func:`_outputs`).
RESULTS = ("results.json", "results.csv")
#: The lock file by which a run holds a named --out while it runs.
LOCK = ".twinnet-compare.lock"


def _outputs():
    """Every file a run may write into --out: an earlier run's are replaced only with --force."""
    from twinnet.lab.plots import COMPARE_FIGURES

    return (*RESULTS, "loss_curves.png", *(name for name, _, _ in COMPARE_FIGURES))


def register(sub):
    from twinnet.data import DATASETS, DEFAULT_DATASET
    from twinnet.lab.config import DEFAULT_HIDDEN, KERAS_INITS, RunConfig
    from twinnet.lab.runners import ENGINES
    from twinnet.validation import ACTIVATIONS, DTYPES, INITIALIZERS, OPTIMIZERS

    defaults = RunConfig()
    p = sub.add_parser("compare", help="train every engine from the same weights and compare them",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATASET, metavar="NAME|PATH",
                   help=f"built-in data set ({', '.join(DATASETS)}) or a .pickle/.npz/.csv file "
                   f"(default: {DEFAULT_DATASET})")
    p.add_argument("--layers", type=head_layer_list, default=None, metavar="N0,N1,...,K",
                   help="layer widths, input first, output last: 1 for a sigmoid, K for K classes or "
                   f"K targets (default: n_features,{','.join(map(str, DEFAULT_HIDDEN))},K)")
    add_output(p)
    p.add_argument("--epochs", type=positive_int, default=defaults.epochs,
                   help=f"training epochs (default: {defaults.epochs})")
    p.add_argument("--learning-rate", type=positive_float, default=defaults.learning_rate,
                   help=f"learning rate (default: {defaults.learning_rate})")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="mini-batch size (default: full batch, as the notebook)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=defaults.optimizer,
                   help=f"(default: {defaults.optimizer}; momentum = SGD with momentum 0.9)")
    p.add_argument("--hidden-activation", choices=sorted(ACTIVATIONS),
                   default=defaults.hidden_activation, help=f"(default: {defaults.hidden_activation})")
    p.add_argument("--init", choices=sorted(INITIALIZERS), default=defaults.init,
                   help=f"initial weights (default: {defaults.init}, the notebook's randn * 0.1)")
    p.add_argument("--dtype", choices=list(DTYPES), default=defaults.dtype,
                   help=f"(default: {defaults.dtype})")
    add_controls(p)
    p.add_argument("--seed", type=seed, default=defaults.seed,
                   help=f"seed of the split, the initial weights and the batch order (default: {defaults.seed})")
    p.add_argument("--engines", type=name_list(ENGINES), default=None, metavar="E1,E2,...",
                   help="engines to run (default: all installed that support the configuration)")
    p.add_argument("--keras-init", choices=list(KERAS_INITS), default=defaults.keras_init,
                   help="same: Keras starts from the shared weights (default); notebook: the "
                   "notebook's keras_model with Keras's own random initialization, so the table "
                   "compares accuracy, not trajectories")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="keep the features as they are (default: standardize on the training part)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: a new ./twinnet-runs/<timestamp>)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the results of an earlier run in --out")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="do not show progress bars")
    add_verbose(p)
    p.set_defaults(func=run)


def run(args):
    import contextlib

    from rich.console import Console

    from twinnet.cli._output import output_folder
    from twinnet.lab import RunConfig, compare

    config = RunConfig(
        data=args.data, layers=tuple(args.layers) if args.layers else None, output=args.output, epochs=args.epochs,
        learning_rate=args.learning_rate, batch_size=args.batch_size, optimizer=args.optimizer,
        hidden_activation=args.hidden_activation, init=args.init, dtype=args.dtype, seed=args.seed,
        standardize=args.standardize, keras_init=args.keras_init, l2=args.l2, dropout=args.dropout,
        batch_norm=args.batch_norm,
        lr_schedule=args.lr_schedule, early_stopping=args.early_stopping,
        validation_fraction=args.validation_fraction,
    )
    config.validate()
    apply_verbose(args)
    stdout, stderr = Console(), Console(stderr=True)
    if not stdout.is_terminal:  # piped or redirected: long notes are not wrapped
        stdout = Console(width=100)
    outputs = _outputs()
    with output_folder("--out", args.out, force=args.force, holds=outputs, lock=LOCK) as out:
        with _EngineBars(stderr, config.epochs) if args.progress else contextlib.nullcontext() as bars:
            comparison = compare(config, args.engines, engine_progress=bars)
        stdout.print(_table(comparison))
        plain = {"markup": False, "highlight": False, "soft_wrap": True}  # notes hold [brackets]
        for note in comparison.notes + _row_notes(comparison):
            stdout.print(f"  note: {note}", **plain)
        for name in outputs:  # with --force: no figure of an earlier run is left beside this run's results
            (out / name).unlink(missing_ok=True)
        written = comparison.save(out)
        written += _figures(comparison, out, stdout)
        stdout.print(f"wrote {', '.join(str(p) for p in written)}", **plain)
    return 0


class _EngineBars:
    """A rich progress display on stderr, one bar per engine: ``compare``'s ``engine_progress``."""

    def __init__(self, console, epochs):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.epochs = epochs
        self.tasks = {}
        self.bars = Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("epochs"), TimeElapsedColumn(), console=console, transient=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tasks:  # stopping a display never started still writes an empty line
            self.bars.stop()

    def __call__(self, engine, done):
        if not self.tasks:  # started by the first engine: an error before leaves stderr one line
            self.bars.start()
        if engine not in self.tasks:
            self.tasks[engine] = self.bars.add_task(engine, total=self.epochs)
        self.bars.update(self.tasks[engine], completed=done)


_CLASSIFIER_COLUMNS = (("train\nloss", "train_loss", ".6f"), ("train\nacc", "train_accuracy", ".4f"),
                      ("test\nacc", "test_accuracy", ".4f"))
_REGRESSION_COLUMNS = (("train\nMSE", "train_loss", ".6f"), ("train\nRMSE", "train_rmse", ".4f"),
                       ("test\nRMSE", "test_rmse", ".4f"), ("test\nR²", "test_r2", ".4f"))
#: The table's metric columns per head's training metric (its row's ``metric_name``): (header, row key, format).
METRIC_COLUMNS = {"accuracy": _CLASSIFIER_COLUMNS, "rmse": _REGRESSION_COLUMNS}


def _units(comparison):
    """What the regression columns measure, for the caption; None for classifiers."""
    if head(comparison.config.output).classifier:
        return None
    if "target_sd" in comparison.data:
        return ("loss (MSE) and RMSE in (squared) standard deviations of the target, standardized on the "
                "training part")
    return "loss (MSE) and RMSE in the target's own units (not standardized)"


def _table(comparison):
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from twinnet.lab.plots import describe_config
    from twinnet.lab.results import format_number as fmt

    ref = comparison.reference
    caption = ("time: wall time of the training call (keras and tf-loop: including TensorFlow's graph "
               "tracing); speed: Keras model.fit's time / the engine's (higher is faster)")
    if ref:
        caption += f"; max |Δloss|: largest |loss - {ref} loss| over the epochs"
    if _units(comparison):
        caption += f"; {_units(comparison)}"
    stopping = comparison.config.early_stopping is not None
    if stopping:
        caption += "; stopped: the epoch after which early stopping ended the run (- ran all), best: the epoch kept"
    held_out = f" ({comparison.data['n_val']} more held out for early stopping)" if "n_val" in comparison.data else ""
    table = Table(title=f"twinnet compare: {escape(describe_config(comparison.config))}\n"
                  f"{comparison.data['n_train']} train / {comparison.data['n_test']} test examples{held_out}",
                  caption=caption, title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    metrics = METRIC_COLUMNS[head(comparison.config.output).metric_name]
    # two-line headers keep the table within 80 columns
    for header in ("engine", *(h for h, _, _ in metrics), "time\n(s)", "ms per\nepoch", "speed vs\nkeras fit",
                   "max\n|Δloss|", *(("stopped", "best") if stopping else ())):
        table.add_column(header, justify="left" if header == "engine" else "right", no_wrap=True)
    for row in comparison.rows():
        mark = "" if comparison.result(row["engine"]).same_trajectory else " *"
        speed = fmt(row["speed_vs_keras"], ".1f")
        speed += "" if speed == "-" else "x"
        times = (fmt(row["seconds"], ".3f"), fmt(row["ms_per_epoch"], ".2f"), speed)
        stops = (_epoch(row["stopped_epoch"]), _epoch(row["best_epoch"])) if stopping else ()
        if row["status"] != "ok":  # a diverged run's metrics are no result: not shown
            table.add_row(row["engine"] + mark, row["status"], *["-"] * (len(metrics) - 1), *times, "-",
                          *["-"] * len(stops))
            continue
        table.add_row(row["engine"] + mark, *(fmt(row[key], spec) for _, key, spec in metrics), *times,
                      "reference" if row["engine"] == ref else fmt(row["max_loss_diff"], ".1e"), *stops)
    return table


def _epoch(value):
    return "-" if value is None else str(value)


def _row_notes(comparison):
    notes = [f"{r.engine}: {r.error}" for r in comparison.results if r.error]
    said = {}  # one line for the engines that share a note (Keras's float32 l2 says the same of three)
    for r in comparison.results:
        if r.note:
            said.setdefault(r.note, []).append(r.engine + ("" if r.same_trajectory else " *"))
    notes += [f"{', '.join(engines)}: {note}" for note, engines in said.items()]
    fit, loop = comparison.result("keras"), comparison.result("tf-loop")
    if fit and loop and fit.status == loop.status == "ok":
        # "faster than keras" must not read as TensorFlow's arithmetic being slow
        notes.append(f"keras (model.fit) takes {fit.ms_per_epoch - loop.ms_per_epoch:.2f} ms more per epoch "
                     "than tf-loop (the same model and batches in a compiled tf.function loop): model.fit's "
                     "per-epoch overhead (both times include a one-off graph tracing)")
    return notes


def _figures(comparison, out, console):
    import importlib.util

    from twinnet.lab import plots

    if importlib.util.find_spec("matplotlib") is None:
        console.print("  note: figures skipped, matplotlib is not installed: pip install 'twinnet[plot]'",
                      markup=False, highlight=False, soft_wrap=True)
        return []
    written = [plots.plot_loss_curves(comparison, out / "loss_curves.png")]
    for name, applies, plot in plots.COMPARE_FIGURES:
        if applies(comparison):
            path = plot(comparison, comparison.split, out / name)
            written += [path] if path else []
    return written
