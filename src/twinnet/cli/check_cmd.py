"""``twinnet check``: grade a learner's own implementation of the exercise, function by function."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path


def register(sub):
    from twinnet.check import BUDGET_TIME_LIMITS, MAX_BUDGET, MAX_ITERATIONS, MAX_MEMORY, MAX_TIME_LIMIT
    from twinnet.check.report import SCORE_RULE
    from twinnet.cli._args import at_most, non_negative_int, positive_float, positive_int, seed

    parser = sub.add_parser(
        "check", help="check your own implementation of the exercise's functions",
        description="Run the exercise's functions defined in each PATH (a .py file or an .ipynb "
        "notebook, or a folder of them) on randomized cases beside twinnet's reference, say for each "
        "whether it is right and, if not, the likely mistake; train L_layer_model beside the "
        "reference (and the Keras twin, when TensorFlow is installed). Each file's code is "
        "executed in a sandboxed process of its own, which sees its own folder read-only and "
        "writes only in a temporary folder; its outputs are compared in twinnet's process. "
        "A function that is right on ordinary inputs but not at extreme ones (overflow, log(0)) "
        "is UNSAFE: a warning, or wrong with --strict. Score: " + SCORE_RULE[False] + " (wrong "
        "with --strict); the end-to-end training is reported beside it. Exit status 0 when every "
        "file passes (every function found right, the training following the reference), 1 "
        "otherwise, 2 for a usage error.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a learner's .py file or .ipynb notebook, or a folder searched for them")
    parser.add_argument("--time-limit", type=at_most(positive_float, MAX_TIME_LIMIT), default=10.0,
                        metavar="SECONDS", help="per top-level statement, per function and for the training, "
                        f"from when the learner's code starts (default: 10; at most {MAX_TIME_LIMIT}, a day)")
    parser.add_argument("--budget", type=at_most(positive_float, MAX_BUDGET), metavar="SECONDS",
                        help="for all of one file's time, restarts and their start-ups included "
                        f"(default: {BUDGET_TIME_LIMITS} x --time-limit; at most {MAX_BUDGET}, the default of "
                        "the longest --time-limit)")
    parser.add_argument("--memory", type=at_most(positive_int, MAX_MEMORY), default=1024, metavar="MB",
                        help=f"address space of each file's process (default: 1024; at most {MAX_MEMORY}, a "
                        "terabyte)")
    parser.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                        help="bwrap: each file in a bubblewrap sandbox (new user, PID, network and mount "
                        "namespaces); none: resource limits and a session of its own only, which a "
                        "hostile file can escape; auto: bwrap where it works (default)")
    parser.add_argument("--iterations", type=at_most(non_negative_int, MAX_ITERATIONS), default=100,
                        help=f"iterations of the end-to-end training, 0 for none (default: 100; at most "
                        f"{MAX_ITERATIONS})")
    parser.add_argument("--seed", type=seed, default=1,
                        help="np.random.seed before both trainings (default: 1)")
    parser.add_argument("--case-seed", type=seed, metavar="N",
                        help="draw the randomized cases from N, to check again on the same cases (default: a "
                        "new seed each run, so that no file can hard-code the expected outputs; it is printed "
                        "at the end)")
    parser.add_argument("--plot", metavar="DIR",
                        help="draw each file's loss curves into DIR, as <name>_loss_curves.png (see --report); "
                        "one already there is refused without --force")
    parser.add_argument("--csv", metavar="PATH",
                        help="write one row per file and function, top-level failure and training; a file "
                        "already there is refused without --force")
    parser.add_argument("--json", metavar="PATH",
                        help="write one record per file; a file already there is refused without --force")
    parser.add_argument("--strict", action="store_true",
                        help="count UNSAFE functions as wrong: in the score, the verdict and the exit status")
    parser.add_argument("--report", metavar="DIR",
                        help="write a class report into DIR: index.html (pass rate per function, the "
                        "most common mistakes and who made them, each file's table), feedback/<name>.txt "
                        "for each file, gradebook.csv (one row per file, with its score), and "
                        "gradescope/<name>/results.json and prairielearn/<name>/results.json for those "
                        "autograders; <name> is the file's stem, made unique. DIR must be new or empty, "
                        "or hold an earlier report (replaced only with --force); --plot DIR/plots "
                        "draws the loss curves beside it")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier report in --report DIR, the files named by --csv and --json, and "
                        "the loss curves in --plot DIR (without it, each of these is refused before any file is "
                        "run)")
    parser.add_argument("--jobs", type=positive_int, help="files checked at once (default: the number of cores)")
    parser.add_argument("--no-keras", dest="keras", action="store_false",
                        help="do not train the Keras twin beside the reference (by default it is, when "
                        "a file defines L_layer_model and TensorFlow is installed; importing "
                        "TensorFlow takes several seconds)")
    parser.set_defaults(func=run)


def run(args):
    import sys

    from twinnet.check import check, find_files
    from twinnet.check import sandbox as S
    from twinnet.check.classroom import PLOTS, prepare_folder, write_class_report
    from twinnet.check.report import PLOT, file_names, render, render_many, write_csv, write_json
    from twinnet.cli._output import output_file, output_folder

    files, mode = find_files(args.paths), S.resolve(args.sandbox)
    if args.report is not None and args.plot is not None:  # else the report would refuse them after the run
        report, plots = Path(args.report).resolve(), Path(args.plot).resolve()
        if plots.is_relative_to(report) and plots != report / PLOTS:
            raise ValueError(f"--plot {args.plot!r} is inside --report {args.report!r}; draw the loss curves "
                             f"into {str(Path(args.report) / PLOTS)!r}, beside the report, or outside it.")
    strict = args.strict
    files_out = (("--csv", args.csv, ".csv", write_csv),
                 ("--json", args.json, ".json", functools.partial(write_json, strict=strict)))
    with contextlib.ExitStack() as outputs:  # each output refused or made before any file is run, not after
        written = []
        for option, path, suffix, write in files_out:
            if path is not None:
                made = outputs.enter_context(output_file(option, path, force=args.force, stem="check", suffix=suffix))
                written.append((made, write))
        if args.plot is not None:
            outputs.enter_context(output_folder("--plot", args.plot, force=args.force,
                                                holds=[PLOT.format(name) for name in file_names(files)]))
        if args.report is not None:  # last: with --force it removes an earlier report, once nothing can refuse the run
            prepare_folder(args.report, force=args.force)
        if mode == "none" and len(files) > 1:
            print(S.none_warning(len(files), args.sandbox), file=sys.stderr)
        with _terminated_as_exit():
            reports = check(files, time_limit=args.time_limit, budget=args.budget, iterations=args.iterations,
                            seed=args.seed, case_seed=args.case_seed, plot_dir=args.plot, jobs=args.jobs,
                            keras=args.keras, sandbox=mode, memory=args.memory)
        print(render(reports[0], strict=strict) if len(reports) == 1 else render_many(reports, strict=strict))
        print(f"cases drawn with --case-seed {reports[0].case_seed}; give it to draw the same ones again")
        for path, write in written:
            write(reports, path)
            print(f"wrote {path}")
    if args.report is not None:
        write_class_report(reports, args.report, strict=strict)
        print(f"wrote the class report into {args.report} (open {Path(args.report) / 'index.html'})")
    return 0 if all(r.passes(strict) for r in reports) else 1


@contextlib.contextmanager
def _terminated_as_exit():
    """SIGTERM (a job's time limit, ``kill``) exits as Ctrl-C does: through ``check``'s clean-up, which
    ends the learners' processes, with exit status 143 (without it, those outside bubblewrap, in
    sessions of their own, would be left running)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signal handlers are the main thread's
        yield
        return

    def exit_143(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_143)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
