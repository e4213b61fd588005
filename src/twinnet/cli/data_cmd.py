"""``twinnet data make|inspect``: write a notebook-format pickle, describe a data set."""

from __future__ import annotations


def register(sub):
    from twinnet.data import DATASETS, DEFAULT_DATASET, DEFAULT_MAX_BYTES, MAX_BYTES_ENV

    parser = sub.add_parser("data", help="make or inspect a data set")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    make = actions.add_parser(
        "make", help="write a built-in data set as a notebook-format pickle",
        description="Write {'features': (m, n), 'labels': (m,)} to PATH, as the notebook's data.pickle.",
    )
    make.add_argument("path", metavar="PATH", help="output file (.pickle, .pkl)")
    make.add_argument("--dataset", default=DEFAULT_DATASET, choices=list(DATASETS),
                      help=f"built-in data set (default: {DEFAULT_DATASET})")
    make.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    make.set_defaults(func=run_make)
    inspect = actions.add_parser("inspect", help="show shape, dtype and class balance")
    inspect.add_argument("source", metavar="PATH|NAME",
                         help="a data file (.pickle, .pkl, .npz, .csv) or a built-in name: "
                         + ", ".join(DATASETS))
    inspect.add_argument("--max-bytes", type=int, default=None, metavar="BYTES",
                         help=f"refuse a file whose data would take more memory (default: "
                         f"${MAX_BYTES_ENV}, else {DEFAULT_MAX_BYTES} = 4 GiB)")
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
    X, y = data.load(args.dataset)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data.save_pickle(path, X, y, overwrite=args.force)
    except OSError as exc:
        if isinstance(exc, FileExistsError) and exc.filename == str(path):  # made since the check
            raise ValueError(f"{path} exists; pass --force to overwrite it.") from None
        raise ValueError(f"cannot write {path}: {exc.strerror}: {exc.filename}.") from None
    print(f"wrote {path}: {X.shape[0]} examples x {X.shape[1]} features ({args.dataset})")
    return 0


def run_inspect(args):
    from twinnet import data

    X, y = data.load(args.source, max_bytes=args.max_bytes)
    info = data.describe(X, y)
    print(f"source      {args.source}")
    print(f"examples    {info['examples']}")
    print(f"features    {info['features']}")
    print(f"dtype       {info['dtype']}")
    print(f"classes     0: {info['class_0']}   1: {info['class_1']}   "
          f"(fraction of 1: {info['fraction_1']:.3f})")
    return 0
