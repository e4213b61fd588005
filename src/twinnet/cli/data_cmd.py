"""``twinnet data make|inspect``: write a notebook-format pickle, describe a data set."""

from __future__ import annotations


def register(sub):
    from twinnet.data import DATASETS, DEFAULT_DATASET

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
    make.set_defaults(func=run_make)
    inspect = actions.add_parser("inspect", help="show shape, dtype and class balance")
    inspect.add_argument("source", metavar="PATH|NAME",
                         help="a data file (.pickle, .pkl, .npz, .csv) or a built-in name: "
                         + ", ".join(DATASETS))
    inspect.set_defaults(func=run_inspect)


def run_make(args):
    from pathlib import Path

    from twinnet import data

    path = Path(args.path)
    if path.suffix.lower() not in (".pickle", ".pkl"):
        raise ValueError(f"PATH must end in .pickle or .pkl; got {str(path)!r}.")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a file name.")
    X, y = data.load(args.dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    data.save_pickle(path, X, y)
    print(f"wrote {path}: {X.shape[0]} examples x {X.shape[1]} features ({args.dataset})")
    return 0


def run_inspect(args):
    from twinnet import data

    X, y = data.load(args.source)
    info = data.describe(X, y)
    print(f"source      {args.source}")
    print(f"examples    {info['examples']}")
    print(f"features    {info['features']}")
    print(f"dtype       {info['dtype']}")
    print(f"classes     0: {info['class_0']}   1: {info['class_1']}   "
          f"(fraction of 1: {info['fraction_1']:.3f})")
    return 0
