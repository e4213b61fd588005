"""matplotlib's pyplot, imported when a figure is first drawn: one place for the lab and the learner check."""


def pyplot():
    """matplotlib's pyplot, imported on first use, with the Agg backend (files only, no window).

    A backend chosen before is kept: pyplot imported already, or ``MPLBACKEND`` set (as a Jupyter
    kernel sets its inline backend). Switching it would stop a notebook's own figures from showing
    after twinnet drew one; every figure twinnet draws is saved to a file and closed, so none shows.
    """
    import os
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
