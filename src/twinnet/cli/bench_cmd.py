"""``twinnet bench``: time every engine and the BLAS roofline on the named workloads."""

from __future__ import annotations

import argparse

from twinnet.cli._args import add_verbose, apply_verbose, name_list, positive_int

DESCRIPTION = """\
Train the same network with every engine, in one process, on the same data, from the same initial
weights, by full-batch gradient descent, and time each one after a warm-up: fastest of several
runs, each from the end of its first epoch to the end of its last (scikit-learn's fit cannot be
observed between epochs and is timed whole). Beside them, the roofline: the same epochs' matrix
products alone, each in the fastest layout and thread count of this machine's BLAS, run and timed
as the engines are: no engine can be faster. Also reports the peak memory that Network.fit
allocates against the bytes of data, activations and gradients.

Workloads:
  seed   1600 x 100, layers 100,20,5,1, float64, 250 epochs (the notebook's)
  large  20000 x 784, layers 784,512,256,1, float32, 5 epochs

Columns: ms per epoch of the fastest run; GFLOP/s, the epoch's matrix-product FLOPs over that time;
x numpy, the engine's time over twinnet.Network's (numpy). keras is Keras's model.fit, with its
per-epoch overhead; tf-loop, the same Keras model in a compiled tf.function loop, without it.
Timing on a shared or busy machine is noisy: compare ratios within one run. Writes the figures as
JSON to --json (default: a new ./twinnet-runs/bench-<timestamp>.json), checked before timing
starts; an existing file is overwritten only with --force."""


def _epochs(text):
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 2 (the first epoch is not timed), got {value}")
    return value


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text}")
    return value


def register(sub):
    from twinnet.bench import ENGINE_ORDER, WORKLOADS

    p = sub.add_parser("bench", help="time every engine and the BLAS roofline",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", action="append", choices=list(WORKLOADS), default=None,
                   help="workload to run; repeat for several (default: all)")
    p.add_argument("--epochs", type=_epochs, default=None,
                   help="override the workloads' epochs (>= 2)")
    p.add_argument("--engines", type=name_list(ENGINE_ORDER), default=list(ENGINE_ORDER), metavar="E1,E2,...",
                   help=f"engines to time (default: {','.join(ENGINE_ORDER)}; those not installed "
                   "are skipped)")
    p.add_argument("--repeats", type=positive_int, default=10,
                   help="timed runs per engine, at most (default: 10)")
    p.add_argument("--budget", type=_seconds, default=3.0, metavar="SECONDS",
                   help="an engine stops repeating once its runs took this long (default: 3)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="where to write the figures (default: a new ./twinnet-runs/bench-<timestamp>.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="do not measure Network.fit's peak memory")
    add_verbose(p)
    p.set_defaults(func=run)


def run(args):
    from twinnet import bench
    from twinnet.cli._output import output_file

    with output_file("--json", args.json, force=args.force, stem="bench", suffix=".json") as path:
        return _run(args, bench, path)


def _run(args, bench, path):
    import json
    import sys
    from dataclasses import replace

    apply_verbose(args)

    def announce(message):  # one status line, rewritten in place; only on a terminal
        print(f"\r  {message} ...".ljust(60), end="", file=sys.stderr, flush=True)

    tty = sys.stderr.isatty()
    results = []
    for name in args.workload or list(bench.WORKLOADS):
        workload = bench.WORKLOADS[name]
        if args.epochs is not None:
            workload = replace(workload, config=replace(workload.config, epochs=args.epochs))
        result = bench.run_workload(workload, engines=args.engines, repeats=args.repeats,
                                    budget=args.budget, memory=args.memory,
                                    announce=announce if tty else lambda message: None)
        if tty:
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
        print(format_result(result), flush=True)
        results.append(result)
    info = bench.machine()
    print(format_machine(info))
    path.write_text(json.dumps({"machine": info, "workloads": results}, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


def _bytes(n):
    return f"{n / 2**20:.1f} MiB"


def format_result(result):
    """The table of one workload's result, as printed."""
    from twinnet.lab.results import format_number

    w = result["workload"]
    roof = result["roofline"]
    lines = [(f"{w['name']}: {w['n_train']} x {w['layers'][0]}, layers {','.join(map(str, w['layers']))}, "
             f"{w['dtype']}, {w['epochs']} epochs, full-batch SGD lr {w['learning_rate']}; "
             f"{result['flops_per_epoch'] / 1e6:.1f} MFLOP per epoch"),
             f"  {'engine':<10} {'ms/epoch':>10} {'GFLOP/s':>8} {'x numpy':>8} {'final loss':>11} {'runs':>5}"]
    notes = []
    for row in result["engines"]:
        if row["status"] != "ok":  # skipped, or diverged
            lines.append(f"  {row['engine']:<10} {'-':>10} {'-':>8} {'-':>8} {'-':>11} {row['runs']:>5}")
            notes.append(f"{row['engine']}: {row['skipped'] or row['error']}")
            continue
        lines.append(f"  {row['engine']:<10} {row['ms_per_epoch']:>10.3f} {row['gflops']:>8.1f} "
                     f"{format_number(row['vs_numpy'], '.2f'):>8} {row['final_loss']:>11.6f} {row['runs']:>5}")
    numpy_ms = next((r["ms_per_epoch"] for r in result["engines"] if r["engine"] == "numpy"), None)
    vs = roof["ms_per_epoch"] / numpy_ms if numpy_ms else None
    lines.append(f"  {'roofline':<10} {roof['ms_per_epoch']:>10.3f} {roof['gflops']:>8.1f} "
                 f"{format_number(vs, '.2f'):>8} {'-':>11} {len(roof['ms_per_epoch_runs']):>5}")
    lines.append(f"  roofline: the {len(roof['products'])} matrix products of an epoch, each in its fastest "
                 f"layout ({roof['products_ms']:.3f} ms timed one by one; BLAS threads {roof['threads']})")
    if result["numpy_vs_roofline"] is not None:
        lines.append(f"  numpy / roofline: {result['numpy_vs_roofline']:.2f}x")
    memory = result["memory"]
    if memory:
        lines.append(f"  Network.fit peak extra memory {_bytes(memory['peak_bytes'])}; data + activations "
                     f"+ gradients {_bytes(memory['needed_bytes'])} ({memory['ratio']:.2f}x)")
    for target in result["targets"]:
        lines.append(f"  target: {target['target']}: {target['value']:.2f} -> "
                     f"{'met' if target['met'] else 'NOT met'}")
    lines += [f"  note: {note}" for note in notes]
    return "\n".join(lines)


def format_machine(info):
    """One paragraph describing the machine and libraries."""
    def describe(lib):
        details = [lib["architecture"], f"{lib['num_threads']} threads"]
        name = " ".join(str(part) for part in (lib["internal_api"], lib["version"]) if part)
        return f"{lib['package']}'s {name} ({', '.join(d for d in details if d)})"

    pools = "; ".join(describe(lib) for lib in info["thread_pools"])
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    env = ", ".join(f"{k}={v}" for k, v in info["thread_variables"].items()) or "none set"
    return (f"machine: {info['cpu']}, {info['usable_cpus']} of {info['cpus']} CPUs usable, {info['platform']}\n"
            f"  thread pools: {pools}\n  BLAS/OpenMP environment variables: {env}\n  {versions}")
