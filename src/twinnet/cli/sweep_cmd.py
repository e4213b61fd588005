"""``twinnet sweep``: train a grid of configurations x seeds x engines in parallel, crash-safely."""

from __future__ import annotations

import argparse

from twinnet.cli._args import add_verbose, apply_verbose, head_layer_list, positive_float, positive_int

DESCRIPTION = """\
Train every combination of the grid's values, for every seed and engine, in parallel: local worker
processes (--jobs, the default), a Dask cluster (--scheduler tcp://HOST:PORT) or a throwaway local
Dask cluster (--dask-local N). The grid comes from --preset, --grid FILE (TOML, keys as the
options below with underscores: learning_rate = [0.01, 0.1], layers = [[100, 20, 1]], batch_size =
["full", 64]) and the options, which replace the file's values of their key. Each option repeats
or takes comma-separated values. Epoch values are checkpoints of one run: a run trained for 1000
epochs records its metrics at 100 and 250 on the way. Every head: each data set's own by default
(--data digits10 trains a 10-class softmax, --data diabetes a regression), or --output; the report
then uses the head's metric (accuracy; RMSE and R^2).

Regularization: --l2 0,0.001,0.01 --dropout 0,0.3 (TOML: l2 = [0, 0.001], dropout = [0, 0.3]) and
the report shows the train-test gap against them; --batch-norm false,true (TOML: batch_norm =
[false, true]); --early-stopping none,5 (TOML: early_stopping =
["none", 5]) and the report says where each run stopped; --lr-schedule SPEC, once per schedule
(TOML: lr_schedule = ["none", "exponential:decay_steps=100,decay_rate=0.5"]).

Each finished run is one line of OUT/results.jsonl, on disk before the next is counted; a killed
or interrupted sweep continues with --resume (no options: the same grid), on the same data (its
fingerprint is in OUT/manifest.json). One sweep at a time writes OUT (OUT/sweep.lock). Then:
twinnet report OUT."""


def _values(convert, what):
    def parse(text):
        try:
            return [convert(part.strip()) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    return parse


def _int(text):
    return int(text)


def _batch(text):
    return "full" if text == "full" else int(text)


def _flag(text):
    """``true`` or ``false`` (TOML's spellings), as a bool."""
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


def _patience(text):
    return "none" if text == "none" else int(text)


def _schedules(text):
    """One schedule spec per option (specs hold commas), or ``none``: a constant learning rate."""
    from twinnet.cli._args import schedule_spec

    return ["none" if text.strip().lower() == "none" else schedule_spec(text)]


#: grid key -> (option, type of each value, metavar)
GRID_OPTIONS = {
    "data": ("--data", _values(str, "data set names"), "NAME|PATH"),
    "output": ("--output", _values(str, "output heads such as softmax"), "HEAD,..."),
    "learning_rate": ("--learning-rate", _values(float, "numbers such as 0.01,0.1"), "LR,..."),
    "epochs": ("--epochs", _values(_int, "integers such as 100,250,1000"), "E,..."),
    "batch_size": ("--batch-size", _values(_batch, "integers or 'full'"), "B|full,..."),
    "optimizer": ("--optimizer", _values(str, "optimizer names"), "NAME,..."),
    "hidden_activation": ("--hidden-activation", _values(str, "activation names"), "NAME,..."),
    "init": ("--init", _values(str, "initializer names"), "NAME,..."),
    "dtype": ("--dtype", _values(str, "float32 or float64"), "DTYPE,..."),
    "l2": ("--l2", _values(float, "numbers >= 0 such as 0,0.001,0.01"), "L2,..."),
    "dropout": ("--dropout", _values(float, "rates in [0, 1) such as 0,0.2,0.5"), "RATE,..."),
    "batch_norm": ("--batch-norm", _values(_flag, "true or false, such as false,true"), "BOOL,..."),
    "lr_schedule": ("--lr-schedule", _schedules, "SPEC|none"),
    "early_stopping": ("--early-stopping", _values(_patience, "patiences such as none,5,20"), "PATIENCE|none,..."),
    "validation_fraction": ("--validation-fraction", _values(float, "numbers in (0, 1) such as 0.1"), "FRACTION,..."),
    "seeds": ("--seeds", _values(_int, "integers such as 0,1,2"), "S,..."),
    "engines": ("--engines", _values(str, "engine names such as numpy,keras"), "E,..."),
}


def register(sub):
    from twinnet.cli._args import schedule_help
    from twinnet.data import DATASETS
    from twinnet.lab.config import DEFAULT_HIDDEN, MONITOR
    from twinnet.lab.grid import GRID_KEYS, PRESETS
    from twinnet.lab.runners import ENGINES
    from twinnet.lab.sweep import SCHEDULER_TIMEOUT
    from twinnet.validation import ACTIVATIONS as HIDDEN_ACTIVATIONS
    from twinnet.validation import INITIALIZERS, OPTIMIZERS, OUTPUTS

    names = {"data": f"built-in ({', '.join(DATASETS)}) or a file", "optimizer": ", ".join(OPTIMIZERS),
             "hidden_activation": ", ".join(HIDDEN_ACTIVATIONS), "init": ", ".join(INITIALIZERS),
             "engines": ", ".join(ENGINES), "batch_size": "integers or full",
             "epochs": "checkpoints of one run per configuration",
             "output": f"output heads ({', '.join(OUTPUTS)})",
             "l2": "L2 penalties l2 * sum(W**2), as Keras's kernel_regularizer=L2(l2)",
             "dropout": "dropout rates after every hidden layer (each library draws its own masks)",
             "batch_norm": "with or without batch normalization of every hidden layer (Keras's defaults)",
             "lr_schedule": schedule_help("none").removesuffix(" (default: none)")
             + "; one spec per option, repeat it for several, none for a constant rate",
             "early_stopping": f"patiences of early stopping on {MONITOR}, keeping the best epoch's weights, "
             "or none; a run with it records only its last epoch",
             "validation_fraction": "the part of the training examples held out for early stopping"}

    p = sub.add_parser("sweep", help="train a hyperparameter grid in parallel (joblib, Dask)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS),
                        help="a ready grid; notebook: the notebook's network and neighbours, two "
                        "learning rates, 50/100/250 epochs, 3 seeds, numpy, keras and tf-loop (72 runs)")
    source.add_argument("--grid", metavar="FILE", help="a TOML file of grid values")
    p.add_argument("--layers", type=head_layer_list, action="append", metavar="N0,N1,...,K",
                   help="one network's widths, input first, output last (1 for a sigmoid, K for K classes "
                   f"or targets); repeat for several (default: n_features,{','.join(map(str, DEFAULT_HIDDEN))},K)")
    for key, (option, parse, metavar) in GRID_OPTIONS.items():
        none = {"output": "the data set's", "batch_size": "full"}.get(key, "none")
        default = ",".join(none if v is None else f"{v:g}" if isinstance(v, float) else str(v)
                           for v in GRID_KEYS[key][1])
        what = f"{names[key]} " if key in names else ""
        p.add_argument(option, dest=key, type=parse, action="append", metavar=metavar,
                       help=f"{what}(default: {default})")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=positive_int, default=None,
                       help="local worker processes (default: the number of CPUs)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a running Dask scheduler")
    where.add_argument("--dask-local", type=positive_int, metavar="N",
                       help="start a local Dask cluster of N worker processes for this sweep")
    p.add_argument("--scheduler-timeout", type=positive_float, default=SCHEDULER_TIMEOUT,
                   metavar="SECONDS", help="how long to wait for the scheduler to answer, then "
                   f"for its first worker (default: {SCHEDULER_TIMEOUT})")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="BLAS/TensorFlow threads per run (default: CPUs / parallel runs; with "
                   "--jobs 1, the runs keep this process's threads)")
    p.add_argument("--out", default="twinnet-runs/sweep", metavar="DIR",
                   help="results directory (default: twinnet-runs/sweep)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out, skipping its finished runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_verbose(p)
    p.set_defaults(func=run)


def _grid(args, manifest):
    """The checked grid from the preset or file, the options, or (resuming) the manifest."""
    from twinnet.lab.grid import PRESETS, check_grid, load_toml

    # each option repeats and takes comma lists: --seeds 0,1 --seeds 2 is seeds 0, 1, 2
    options = {key: [v for values in getattr(args, key) for v in values]
               for key in GRID_OPTIONS if getattr(args, key) is not None}
    if args.layers is not None:  # one network per --layers
        options["layers"] = args.layers
    if args.preset:
        base, source = dict(PRESETS[args.preset]), f"--preset {args.preset}"
    elif args.grid:
        base, source = dict(load_toml(args.grid)), f"--grid {args.grid}"
    elif manifest is not None and not options:
        return check_grid(manifest["grid"], source=f"the grid of {args.out}")
    elif not options:
        raise ValueError("empty grid: give --preset notebook, --grid FILE or grid options such as "
                         "--layers 100,20,5,1 --learning-rate 0.01,0.1.")
    else:
        base, source = {}, "the options"
    return check_grid({**base, **options}, source=source)


def run(args):
    import contextlib
    import os
    import sys
    import time

    from twinnet.lab.grid import grid_hash
    from twinnet.lab.store import ResultStore, read_manifest, read_results
    from twinnet.lab.sweep import data_fingerprints, executor, libraries, plan, run_sweep

    apply_verbose(args)
    manifest = read_manifest(args.out) if args.resume else None
    grid = _grid(args, manifest)
    runs, notes = plan(grid)
    digest = grid_hash(runs)
    data = data_fingerprints(grid["data"])
    serial = {k: [list(v) if isinstance(v, tuple) else v for v in values] for k, values in grid.items()}
    # the output is checked (and locked) before any worker starts
    if args.resume:
        store = ResultStore.resume(args.out, grid_hash=digest, data=data)
    else:
        store = ResultStore.create(args.out, grid=serial, grid_hash=digest, n_runs=len(runs),
                                   extra={"preset": args.preset, "notes": notes, "data": data})
    for note in notes:  # once the output is accepted: a refused sweep says one line
        print(f"note: {note}", file=sys.stderr)
    with store:  # the directory's lock, until the manifest has this session
        with contextlib.ExitStack() as stack:
            try:
                where = stack.enter_context(executor(
                    jobs=args.jobs or os.cpu_count() or 1, scheduler=args.scheduler,
                    dask_local=args.dask_local, threads=args.threads, libraries=libraries(runs),
                    timeout=args.scheduler_timeout))
            except BaseException:
                if not args.resume:  # a sweep that could not start leaves no directory behind
                    store.discard()
                raise
            print(f"sweep: {len(runs)} runs ({len(store.done)} already done) on {where.description} "
                  f"-> {args.out}", file=sys.stderr)
            started = time.time()
            try:
                outcome = run_sweep(runs, store, where, show_progress=not args.no_progress)
            except KeyboardInterrupt:
                # one line, instead of the traceback of whatever the interrupt stopped; the rows on
                # disk are what --resume finds (the interrupt may stop an append after its fsync)
                saved = len(read_results(args.out, warn=False))
                print(f"twinnet sweep: interrupted; {saved}/{len(runs)} runs saved in "
                      f"{args.out}, resume with --resume", file=sys.stderr)
                return 130
        store.record_session({"started": started, "seconds": round(outcome.seconds, 3),
                              "where": where.description, "slots": outcome.slots,
                              "threads": outcome.threads, "counts": outcome.counts})
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items())) or "nothing to do"
    print(f"sweep: {counts} in {outcome.seconds:.1f} s; {len(store.done)}/{len(runs)} runs in "
          f"{args.out}. Next: twinnet report {args.out}")
    return 0
