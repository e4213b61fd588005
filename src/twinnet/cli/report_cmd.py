"""``twinnet report DIR``: rebuild a sweep's report from its stored results, without training."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser(
        "report", help="write report.html, summary.csv and figures for a sweep directory",
        description="Read the results of 'twinnet sweep --out DIR' and write into DIR: report.html "
        "(self-contained, figures embedded), summary.csv (one row per configuration, engine and "
        "epoch checkpoint, mean over seeds) and the figures as PNG files. Nothing is trained.")
    p.add_argument("directory", metavar="DIR", help="a directory written by twinnet sweep")
    p.set_defaults(func=run)


def run(args):
    from twinnet.lab.report import build_report

    paths, summary = build_report(args.directory)
    for line in summary:
        print(f"- {line}")
    print(f"wrote {paths[0]} and {len(paths) - 1} more file(s) in {args.directory}")
    return 0
