"""``twinnet data make|inspect``: write a notebook-format pickle, describe a data set."""

from __future__ import annotations

from twinnet.nn.heads import head

#: ``inspect`` lists this many classes (or targets) at most; the rest are counted.
SHOWN = 20


def register(sub):
    from twinnet.data import DATASETS, DEFAULT_DATASET, DEFAULT_MAX_BYTES, MAX_BYTES_ENV
    from twinnet.validation import OUTPUTS

    parser = sub.add_parser("data", help="make or inspect a data set")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    make = actions.add_parser(
        "make", help="write a built-in data set as a notebook-format pickle",
        description="Write {'features': (m, n), 'labels': (m,)} to PATH, as the notebook's data.pickle "
        "(labels 0..K-1 for a classifier, real targets for a regression data set).",
    )
    make.add_argument("path", metavar="PATH", help="output file (.pickle, .pkl)")
    make.add_argument("--dataset", default=DEFAULT_DATASET, choices=list(DATASETS),
                      help=f"built-in data set (default: {DEFAULT_DATASET})")
    make.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    make.set_defaults(func=run_make)
    inspect = actions.add_parser("inspect", help="show shape, dtype and class balance or target range")
    inspect.add_argument("source", metavar="PATH|NAME",
                         help="a data file (.pickle, .pkl, .npz, .csv) or a built-in name: "
                         + ", ".join(DATASETS))
    inspect.add_argument("--max-bytes", type=int, default=None, metavar="BYTES",
                         help=f"refuse a file whose data would take more memory (default: "
                         f"${MAX_BYTES_ENV}, else {DEFAULT_MAX_BYTES} = 4 GiB)")
    inspect.add_argument("--output", choices=sorted(OUTPUTS), default=None,
                         help="the head the labels are for: sigmoid (two classes), softmax (K classes), "
                         "linear (regression) (default: a built-in's own; for a file, inferred from its "
                         "labels, and said so)")
    inspect.set_defaults(func=run_inspect)


def run_make(args):
    from pathlib import Path

    from twinnet import data

    path = Path(args.path)
    if path.suffix.lower() not in (".pickle", ".pkl"):
        raise ValueError(f"PATH must end in .pickle or .pkl; got {str(path)!r}.")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a file name.")
    if not args.force and (path.exists() or path.is_symlink()):
        raise ValueError(f"{path} exists; pass --force to overwrite it.")
    X, y, output, _classes, _note = data.load_dataset(args.dataset)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data.save_pickle(path, X, y, output=output, overwrite=args.force)
    except OSError as exc:
        if isinstance(exc, FileExistsError) and exc.filename == str(path):  # made since the check
            raise ValueError(f"{path} exists; pass --force to overwrite it.") from None
        raise ValueError(f"cannot write {path}: {exc.strerror}: {exc.filename}.") from None
    print(f"wrote {path}: {X.shape[0]} examples x {X.shape[1]} features ({args.dataset})")
    return 0


def run_inspect(args):
    from twinnet import data

    loaded = data.load_dataset(args.source, output=args.output, max_bytes=args.max_bytes)
    info = data.describe(loaded.X, loaded.y, output=loaded.output)
    print(f"source      {args.source}")
    print(f"examples    {info['examples']}")
    print(f"features    {info['features']}")
    print(f"dtype       {info['dtype']}")
    if not head(loaded.output).classifier:
        k = info["targets"]
        print(f"output      linear ({k} target{'s' if k > 1 else ''})")
        stats = [info[f"target_{key}"] for key in ("min", "max", "mean", "std")]
        rows = [stats] if k == 1 else list(zip(*stats))
        for j, (low, high, mean, std) in enumerate(rows[:SHOWN]):
            name = "target" if k == 1 else f"target {j}"
            print(f"{name:<11} min {low:.6g}   max {high:.6g}   mean {mean:.6g}   std {std:.6g}")
        if k > SHOWN:
            print(f"            ... and {k - SHOWN} more targets")
    else:
        K = info["classes"]
        print(f"output      {loaded.output} ({K} classes)")
        counts = "   ".join(f"{i}: {info[f'class_{i}']}" for i in range(min(K, SHOWN)))
        rest = f"   ... and {K - SHOWN} more classes" if K > SHOWN else ""
        balance = f"   (fraction of 1: {info['fraction_1']:.3f})" if K == 2 else ""
        print(f"classes     {counts}{rest}{balance}")
        labels = loaded.classes.tolist()  # the source's own values, numbered in sorted order
        if labels != list(range(K)):
            shown = "   ".join(f"{i}: {v}" for i, v in enumerate(labels[:SHOWN]))
            print(f"labels      {shown}{'   ...' if K > SHOWN else ''}   (class: its value in the data)")
    if loaded.note:
        print(f"note        {loaded.note}")
    return 0

