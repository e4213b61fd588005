"""Figures of a sweep report, drawn from plain series (no training, no result rows).

Each function takes what :mod:`twinnet.lab.report` aggregated and writes one PNG. matplotlib is
imported when a figure is drawn, with the Agg backend (files only, no window). Engines keep the
colours of :data:`twinnet.lab.plots.ENGINE_STYLE`, the same as in ``twinnet compare``'s figures.
"""

from __future__ import annotations

import numpy as np

from twinnet.lab.plots import ENGINE_STYLE, pyplot

__all__ = ["plot_factor", "plot_gap", "plot_loss_overlays", "plot_time", "plot_time_ratio"]

DPI = 110


def _style(engine):
    colour, line, _ = ENGINE_STYLE.get(engine, ("black", "-", 1.0))
    return colour, line


def _plain_log_ticks(axis):
    # "2" and "0.5" rather than 2x10^0 and 5x10^-1 on a log axis; minor ticks labelled at 2 and 5
    # times a power of ten only, so that the labels do not overlap
    from matplotlib.ticker import FuncFormatter

    def minor(value, _):
        mantissa = round(value / 10 ** np.floor(np.log10(value))) if value > 0 else 0
        return f"{value:g}" if mantissa in (2, 5) else ""

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(FuncFormatter(minor))


def _size_ticks(ax, sizes):
    # one tick at each network size, labelled with its parameter count, and no other: a sweep's
    # sizes often lie within one decade, where a log axis has no power of ten to label. A size
    # closer to the previous label than a tenth of the axis's span goes unlabelled (no overlap).
    from matplotlib.ticker import NullLocator

    sizes = sorted({float(n) for n in sizes})
    room = np.log10(sizes[-1] / sizes[0]) / 10
    ticks = sizes[:1]
    for n in sizes[1:]:
        if np.log10(n / ticks[-1]) >= room:
            ticks.append(n)
    ax.set_xticks(ticks, [f"{n:.0f}" for n in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)


def plot_factor(series, *, xlabel, path, log_x=False, title=None, metric="test accuracy"):
    """A score against one hyperparameter, one line per engine with its spread over seeds.

    Parameters
    ----------
    series : dict
        engine -> (x, mean, std), three sequences of the same length: the factor's values, the
        mean over seeds of the score, and its standard deviation over seeds.
    metric : str
        The score's name: ``"test accuracy"``, ``"test RMSE"`` (said lower is better).
    """
    from matplotlib.ticker import NullLocator

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    engines = sorted(series)
    # engines that agree draw on top of each other: offset them a little along x to keep both visible
    offsets = np.linspace(-0.04, 0.04, len(engines)) if len(engines) > 1 else [0.0]
    for engine, offset in zip(engines, offsets):
        x, mean, std = (np.asarray(v, dtype=float) for v in series[engine])
        colour, line = _style(engine)
        shifted = x * (1 + offset) if log_x else x + offset * (np.ptp(x) or 1)
        ax.errorbar(shifted, mean, yerr=std, color=colour, linestyle=line, marker="o", capsize=4,
                    label=engine)
    if log_x:
        ax.set_xscale("log")
    # one tick at each value of the grid, and no other: a sweep has a few values per factor
    values = sorted({float(v) for x, _, _ in series.values() for v in x})
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.xaxis.set_minor_locator(NullLocator())
    if len(values) == 1:  # a single value: centre it rather than let the offsets set the range
        v = values[0]
        ax.set_xlim(*((v / 1.5, v * 1.5) if log_x else (v - 1, v + 1)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{metric} (mean ± sd over seeds)")
    lower = " (lower is better)" if "RMSE" in metric else ""
    ax.set_title(title or f"{metric} against {xlabel}{lower}")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_gap(parts, gaps, *, xlabel, metric, gap, path):
    """Overfitting against a regularizer: train and test score (left) and their gap per engine (right).

    The factor's values are drawn evenly spaced, labelled with their values: a regularizer's grid
    holds 0 beside values a hundred times apart, which neither a linear nor a log axis shows.

    Parameters
    ----------
    parts : dict
        ``"train"`` and ``"test"`` -> (x, mean, std): the score over every engine, by factor value.
    gaps : dict
        engine -> (x, mean, std): the train-test gap, by factor value.
    metric : str
        ``"accuracy"`` or ``"RMSE"``.
    gap : str
        What the gap is, for the axis: ``"train - test accuracy"``.
    """
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    values = sorted({float(v) for x, _, _ in (*parts.values(), *gaps.values()) for v in x})
    where = {v: i for i, v in enumerate(values)}
    for part, style in (("train", "-"), ("test", "--")):
        x, mean, std = (np.asarray(v, dtype=float) for v in parts[part])
        left.errorbar([where[v] for v in x], mean, yerr=std, color="black", linestyle=style, marker="o",
                      capsize=4, label=part)
    engines = sorted(gaps)
    offsets = np.linspace(-0.08, 0.08, len(engines)) if len(engines) > 1 else [0.0]
    for engine, offset in zip(engines, offsets):  # engines that agree would hide each other
        x, mean, std = (np.asarray(v, dtype=float) for v in gaps[engine])
        colour, line = _style(engine)
        right.errorbar([where[v] + offset for v in x], mean, yerr=std, color=colour, linestyle=line, marker="o",
                       capsize=4, label=engine)
    right.axhline(0.0, color="black", linewidth=0.8)
    for ax, ylabel, title in ((left, f"{metric} (mean ± sd over seeds)", f"train and test {metric}"),
                              (right, f"gap: {gap}", "the gap: overfitting")):
        ax.set_xticks(range(len(values)), [f"{v:g}" for v in values])
        ax.set_xlim(-0.5, len(values) - 0.5)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} against {xlabel}")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_time(series, path):
    """Milliseconds per epoch against parameter count, log-log, one line per engine.

    ``series``: engine -> (n_parameters, mean ms_per_epoch, sd), one point per network size.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for engine in sorted(series):
        n, ms, sd = (np.asarray(v, dtype=float) for v in series[engine])
        colour, line = _style(engine)
        ax.errorbar(n, ms, yerr=sd, color=colour, linestyle=line, marker="o", capsize=4, label=engine)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _size_ticks(ax, [size for sizes, *_ in series.values() for size in sizes])
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("ms per epoch")
    ax.set_title("training time per epoch against network size")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    _save(fig, path)


def plot_time_ratio(series, reference, path):
    """Each engine's ms per epoch over the reference engine's, by network size.

    ``series``: engine -> (n_parameters, mean ratio), one point per network size; a ratio below 1
    is faster than ``reference``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for engine in sorted(series):
        n, ratio = (np.asarray(v, dtype=float) for v in series[engine])
        colour, line = _style(engine)
        ax.plot(n, ratio, color=colour, linestyle=line, marker="o", label=f"{engine} / {reference}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _size_ticks(ax, [size for sizes, _ in series.values() for size in sizes])
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel(f"time per epoch relative to {reference}")
    ax.set_title(f"time ratio to {reference} (below 1: faster)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    _save(fig, path)


def plot_loss_overlays(panels, path, *, omitted=0):
    """Training loss curves of every engine, one panel per configuration.

    Parameters
    ----------
    panels : list of (title, dict) or (title, dict, loss name)
        The dict maps engine -> (mean curve, lowest curve, highest curve) over seeds, each a
        sequence of one loss per epoch; the loss name (``"cross-entropy"``) goes on the y axis.
    omitted : int
        Configurations left out of the figure, said in its title.
    """
    plt = pyplot()
    n = len(panels)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax, (title, curves, *loss) in zip(axes.flat, panels):
        for engine in sorted(curves):
            mean, low, high = (np.asarray(c, dtype=float) for c in curves[engine])
            epochs = np.arange(1, mean.size + 1)
            colour, line = _style(engine)
            ax.plot(epochs, mean, color=colour, linestyle=line, label=engine)
            ax.fill_between(epochs, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("training loss" + (f" ({loss[0]})" if loss else ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    suffix = f" ({omitted} more configurations in summary.csv)" if omitted else ""
    fig.suptitle("loss curves: mean over seeds, band from lowest to highest" + suffix, fontsize=11)
    _save(fig, path)
