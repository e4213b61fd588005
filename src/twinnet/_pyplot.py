"""matplotlib's pyplot, imported when a figure is first drawn: one place for the lab and the learner check."""


def pyplot():
    """matplotlib's pyplot with the Agg backend (files only, no window), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
