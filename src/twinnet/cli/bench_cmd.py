"""``twinnet bench``: time every engine and the roofline on the named workloads."""

from __future__ import annotations

import argparse

from twinnet.cli._args import add_verbose, apply_verbose, name_list, positive_int

DESCRIPTION = """\
Train the same network with every engine, on the same data, from the same initial weights, by
full-batch gradient descent, and time each one after a warm-up: fastest of several runs, each from
the end of its first epoch to the end of its last (scikit-learn's fit cannot be observed between
epochs and is timed whole). Beside them, the roofline: the same epochs' matrix products alone, done
by each installed library (NumPy's BLAS, TensorFlow's tf.linalg.matmul in a tf.function, PyTorch's
torch.mm), each product in that library's fastest layout on this machine, run and timed as the
engines are; the fastest library sets the roofline: no engine can be faster. NumPy's search also
times each product in the layout Network uses, to say how far its layouts are from this machine's
fastest. Also reports the peak memory that Network.fit allocates against the bytes of data,
activations and gradients.

Each engine and each roofline library runs in a fresh Python process of its own, all with the same
threads (--threads: BLAS, OpenMP, TensorFlow's intra- and inter-op pools, PyTorch), and they take
turns, one run each per round, never two at once. A process that fails, ends or hangs (--timeout)
is reported as failed; the others go on.

Workloads:
  seed     1600 x 100, layers 100,20,5,1, float64, 250 epochs (the notebook's)
  large    20000 x 784, layers 784,512,256,1, float32, 5 epochs
  large10  20000 x 784, layers 784,512,256,10 (softmax, ten classes), float32, 5 epochs
  digits10 1437 x 64, layers 64,64,32,10 (softmax), float64, Adam, 30 epochs (the digits data set's
           training part; its small products show the cost of threads: try --batch-size 16 .. 256)

Columns: ms per epoch of the fastest run; GFLOP/s, the epoch's matrix-product FLOPs over that time;
x numpy, the engine's time over twinnet.Network's (numpy). keras is Keras's model.fit, with its
per-epoch overhead; tf-loop, the same Keras model in a compiled tf.function loop, without it.
Timing on a shared or busy machine is noisy: compare ratios within one run. Writes the figures,
with the CPU, its vector extensions, the BLAS and the threads each process reports, as JSON to
--json (default: a new ./twinnet-runs/bench-<timestamp>.json), checked before timing starts; an
existing file is overwritten only with --force.

--busy runs it all beside one competing process per CPU this process may use, each a pure
Python spin loop, started before the first workload and stopped after the last (on an error or
Ctrl-C too): what the engines give on a machine busy with other work.

--profile adds where Network.fit's epoch goes, in this process after the others: its matrix
products, hidden activations, their derivatives, the output head, and the rest (the backward
pass's elementwise products, the optimizer's step, Python), each timed around the engine's
kernels."""


def _epochs(text):
    try:
        value = positive_int(text)
    except argparse.ArgumentTypeError:  # the same rule for 0, -3 and "ten"
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2 (the first epoch is not timed), got {text}")
    return value


def _seconds(text, *, positive=False):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (0 < value if positive else 0 <= value) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds {'>' if positive else '>='} 0, "
                                         f"got {text}")
    return value


def _threads(text):
    return text if text == "auto" else positive_int(text)


def _libraries(text):
    from twinnet.bench import ROOFLINES

    try:
        return name_list(list(ROOFLINES))(text)
    except argparse.ArgumentTypeError as exc:  # name_list speaks of engines
        raise argparse.ArgumentTypeError(str(exc).replace("unknown engine", "unknown library")) from None


def register(sub):
    from twinnet.bench import ENGINE_ORDER, ROOFLINES, WORKLOADS

    p = sub.add_parser("bench", help="time every engine and the roofline",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", action="append", choices=list(WORKLOADS), default=None,
                   help="workload to run; repeat for several (default: all)")
    p.add_argument("--epochs", type=_epochs, default=None,
                   help="override the workloads' epochs (>= 2)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="train the engines on mini-batches of this size (default: the workload's, full batch; "
                   "the roofline stays the full batch's products)")
    p.add_argument("--engines", type=name_list(ENGINE_ORDER), default=list(ENGINE_ORDER), metavar="E1,E2,...",
                   help=f"engines to time (default: {','.join(ENGINE_ORDER)}; those not installed "
                   "are skipped)")
    p.add_argument("--rooflines", type=_libraries, default=list(ROOFLINES), metavar="L1,L2,...",
                   help=f"libraries timed at the products alone (default: {','.join(ROOFLINES)}; those "
                   "not installed are skipped)")
    p.add_argument("--repeats", type=positive_int, default=10,
                   help="timed runs per engine, at most (default: 10)")
    p.add_argument("--budget", type=_seconds, default=3.0, metavar="SECONDS",
                   help="an engine stops repeating once its runs took this long (default: 3)")
    p.add_argument("--threads", type=_threads, default=None,
                   help="threads of every process's libraries (default: the CPUs this process may use); "
                   "auto: each library's own choice (Network's: one per CPU no other process is using)")
    p.add_argument("--timeout", type=lambda text: _seconds(text, positive=True), default=300.0, metavar="SECONDS",
                   help="a process that takes longer to warm up or do one run is stopped and reported "
                   "as failed (default: 300; to start, at least 120)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="where to write the figures (default: a new ./twinnet-runs/bench-<timestamp>.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="do not measure Network.fit's peak memory")
    p.add_argument("--busy", action="store_true",
                   help="run beside one competing busy process per CPU, started and stopped by the bench")
    p.add_argument("--profile", action="store_true",
                   help="also time the stages of Network.fit's epoch (products, activations, head, the rest)")
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

    from twinnet.bench.busy import busy

    apply_verbose(args)

    def announce(message):  # one status line, rewritten in place; only on a terminal
        print(f"\r  {message} ...".ljust(60), end="", file=sys.stderr, flush=True)

    tty = sys.stderr.isatty()
    say = announce if tty else lambda message: None
    threads = bench.resolve_threads(args.threads)
    competing = bench.resolve_threads(None) if args.busy else 0
    print(format_machine(bench.machine(), threads, competing), flush=True)
    results = []
    with busy(competing):
        _run_workloads(args, bench, threads, say, tty, results)
    info = bench.machine(results)
    print("\n" + format_processes(info, results))
    path.write_text(json.dumps({"machine": info, "busy_processes": competing, "workloads": results}, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


def _run_workloads(args, bench, threads, say, tty, results):
    import sys
    from dataclasses import replace

    for name in args.workload or list(bench.WORKLOADS):
        workload = bench.WORKLOADS[name]
        if args.epochs is not None:
            workload = replace(workload, config=replace(workload.config, epochs=args.epochs))
        if args.batch_size is not None:
            workload = replace(workload, config=replace(workload.config, batch_size=args.batch_size))
        result = bench.run_workload(workload, engines=args.engines, rooflines=args.rooflines,
                                    repeats=args.repeats, budget=args.budget, memory=args.memory,
                                    profile=args.profile, threads=threads, timeout=args.timeout,
                                    announce=say)
        if tty:
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
        print("\n" + format_result(result), flush=True)
        results.append(result)


def _bytes(n):
    return f"{n / 2**20:.1f} MiB"


def _row(name, row, loss=None):
    from twinnet.lab.results import format_number

    if row["status"] != "ok":  # skipped, diverged or failed
        return f"  {name:<12} {'-':>10} {'-':>8} {'-':>8} {'-':>11} {row['runs']:>5}"
    return (f"  {name:<12} {row['ms_per_epoch']:>10.3f} {row['gflops']:>8.1f} "
            f"{format_number(row['vs_numpy'], '.2f'):>8} {format_number(loss, '.6f'):>11} {row['runs']:>5}")


def format_result(result):
    """The table of one workload's result, as printed."""
    from twinnet.bench import products

    w = result["workload"]
    batches = f"batches of {w['batch_size']}" if w["batch_size"] else "full-batch"
    lines = [(f"{w['name']}: {w['n_train']} x {w['layers'][0]}, layers {','.join(map(str, w['layers']))}, "
             f"{w['dtype']}, {w['epochs']} epochs, {batches} {w['optimizer']} lr {w['learning_rate']}; "
             f"{result['flops_per_epoch'] / 1e6:.1f} MFLOP per epoch"),
             f"  {'engine':<12} {'ms/epoch':>10} {'GFLOP/s':>8} {'x numpy':>8} {'final loss':>11} {'runs':>5}"]
    notes = []
    for row in result["engines"]:
        lines.append(_row(row["engine"], row, row["final_loss"]))
        if row["status"] != "ok":
            notes.append(f"{row['engine']}: {row['skipped'] or row['error']}")
    roof = result["roofline"]
    if roof:
        lines.append(_row("roofline", roof) + f"  {roof['call']}, the fastest")
    else:
        lines.append(f"  {'roofline':<12} {'-':>10}  no library did the products")
    for row in result["rooflines"]:
        lines.append(_row("  " + row["call"], row))
        if row["status"] != "ok":
            notes.append(f"{row['call']} ({row['library']}): {row['skipped'] or row['error']}")
    lines.append(f"  roofline: the epoch's {len(products(w['layers'], w['n_train']))} matrix products alone, "
                 "each in its library's fastest "
                 "layout; the fastest library sets it")
    alone = ", ".join(f"{row['call']} {row['products_ms']:.3f} ms" for row in result["rooflines"] if row["products"])
    if alone:
        lines.append(f"  products timed one by one: {alone}")
    for row in result["rooflines"]:
        if row["network_vs_fastest"] is not None:
            own = [p["network"] for p in row["products"] if p["network"]]
            lines.append(f"  Network's layouts: {1e3 * sum(n['seconds'] for n in own):.3f} ms against "
                         f"{1e3 * sum(n['fastest_seconds'] for n in own):.3f} ms in {row['call']}'s fastest "
                         f"({row['network_vs_fastest']:.3f}x), the {len(own)} products it forms timed in turn")
    if result["numpy_vs_roofline"] is not None:
        lines.append(f"  numpy / roofline: {result['numpy_vs_roofline']:.2f}x")
    memory = result["memory"]
    if memory:
        lines.append(f"  Network.fit peak extra memory {_bytes(memory['peak_bytes'])}; data + activations "
                     f"+ gradients {_bytes(memory['needed_bytes'])} ({memory['ratio']:.2f}x)")
    elif result.get("memory_error"):
        notes.append(f"memory: {result['memory_error']}")
    for target in result["targets"]:
        lines.append(f"  target: {target['target']}: {target['value']:.3f} -> "
                     f"{'met' if target['met'] else 'NOT met'}")
    lines += [f"  note: {note}" for note in notes]
    if result.get("profile"):
        lines.append(format_profile(result["profile"]))
    return "\n".join(lines)


def format_profile(profile):
    """Where Network.fit's epoch goes, a stage a line (see :func:`twinnet.bench.profile`)."""
    lines = [f"  profile of Network.fit: {profile['ms_per_epoch']:.3f} ms per epoch",
             f"    {'stage':<24} {'ms/epoch':>10} {'share':>6} {'calls':>6}"]
    for stage in profile["stages"]:
        calls = "" if stage["calls_per_epoch"] is None else f"{stage['calls_per_epoch']:g}"
        line = f"    {stage['stage']:<24} {stage['ms_per_epoch']:>10.3f} {stage['share']:>6.1%} {calls:>6}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def format_machine(info, threads, busy=0):
    """The CPU and its vector extensions; NumPy's BLAS and how the processes are run; a note when the BLAS
    runs older kernels than the CPU has (:func:`twinnet.bench.host.kernel_note`)."""
    blas = info["numpy_blas"]
    blas = (f"NumPy {info['versions'].get('numpy')} on {blas['internal_api']} {blas['version']}"
            + (f" ({blas['architecture']} kernels)" if blas.get("architecture") else "")) if blas else \
        f"NumPy {info['versions'].get('numpy')} (no BLAS found by threadpoolctl)"
    cpu = info["cpu"] + (f" ({info['cpu_id']})" if info.get("cpu_id") else "")
    extensions = " ".join(info["vector_extensions"]) or "none found"
    note = f"\n  note: {info['kernel_note']}" if info.get("kernel_note") else ""
    competing = f"; beside {busy} busy process{'es' if busy != 1 else ''} (--busy)" if busy else ""
    threads = ("each library's own threads (--threads auto)" if threads == "auto" else
               f"{threads} thread{'s' if threads != 1 else ''} each")
    return (f"machine: {cpu}, {info['usable_cpus']} of {info['cpus']} CPUs usable; {extensions}\n"
            f"  {blas}; each engine and roofline library in a process of its own, one at a time, "
            f"{threads}{competing}{note}")


def format_processes(info, results):
    """What the processes reported: their libraries' threads and kernels, and the versions."""
    seen = {}
    for result in results:
        for row in [*result["engines"], *result["rooflines"]]:
            process = row.get("process") or {}
            for lib in process.get("thread_pools", []):
                seen.setdefault(f"{lib['package']}'s {lib['internal_api']} {lib['architecture'] or ''}".strip(),
                                set()).add(lib["num_threads"])
            tf = process.get("tensorflow")
            if tf:
                seen.setdefault("TensorFlow intra-/inter-op", set()).add(
                    f"{tf['intra_op_threads']}/{tf['inter_op_threads']}")
            torch = process.get("torch")
            if torch:
                seen.setdefault(f"torch ({torch['cpu_capability']} kernels)", set()).add(torch["threads"])
    pools = "; ".join(f"{name} {','.join(map(str, sorted(counts, key=str)))}" for name, counts in seen.items())
    variables = ", ".join(f"{k}={v}" for k, v in info["library_variables"].items()) or "none set"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return (f"threads the processes report: {pools or 'none'}\n"
            f"  library variables of this shell: {variables}\n  {versions}")
