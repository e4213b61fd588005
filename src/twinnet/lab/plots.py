"""Figures of a comparison: loss curves with their differences, decision boundaries.

matplotlib is imported when a figure is drawn, with the Agg backend (files only, no window).
"""

from __future__ import annotations

import numpy as np

from twinnet._pyplot import pyplot

__all__ = ["ENGINE_STYLE", "describe_config", "plot_decision_boundaries", "plot_loss_curves", "pyplot"]

#: engine -> (colour, line style, line width): the reference is drawn wide and pale, the others
#: narrower and dashed on top of it, so that curves that coincide stay visible.
ENGINE_STYLE = {
    "functional": ("#9e9e9e", "-", 5.0),
    "numpy": ("#1f77b4", "-", 2.0),
    "keras": ("#d62728", "--", 1.6),
    "tf-loop": ("#ff7f0e", ":", 2.0),
    "sklearn": ("#2ca02c", "-.", 1.4),
    "torch": ("#9467bd", (0, (5, 3, 1, 3, 1, 3)), 1.4),
}

#: Differences of exactly zero cannot be drawn on a log scale: they are drawn at this floor.
DIFF_FLOOR = 1e-18




def describe_config(config):
    """A one-line description: data, layers, optimizer, learning rate, batch, epochs, dtype, seed."""
    batch = "full batch" if config.batch_size is None else f"batch {config.batch_size}"
    return (f"{config.data}, layers {'-'.join(map(str, config.layers))}, "
            f"{config.hidden_activation}, {config.optimizer} lr {config.learning_rate:g}, {batch}, "
            f"{config.epochs} epochs, {config.dtype}, seed {config.seed}")


def plot_loss_curves(comparison, path):
    """Two panels: every engine's training loss per epoch, and its distance to the reference.

    The lower panel shows the running maximum of ``|loss - reference loss|`` on a log scale, for
    the engines that share the reference's start and batch order; exact zeros are drawn at
    :data:`DIFF_FLOOR`.
    """
    plt = pyplot()
    config = comparison.config
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    epochs = np.arange(1, config.epochs + 1)
    ref = comparison.result(comparison.reference) if comparison.reference else None
    drawn_diff = False
    for r in comparison.results:
        colour, style, width = ENGINE_STYLE.get(r.engine, ("black", "-", 1.0))
        if not r.loss_curve:
            continue
        curve = np.asarray(r.loss_curve, dtype=float)
        label = r.engine + ("" if r.status == "ok" else f" ({r.status})") + ("" if r.same_trajectory else " *")
        top.plot(epochs[:len(curve)], curve, color=colour, linestyle=style, linewidth=width, label=label)
        if ref is not None and r is not ref:
            diff = comparison.max_loss_diff(r)
            if np.isfinite(diff):
                # the running maximum: rounding-level gaps flicker between 0 and 1 ulp from one
                # epoch to the next; their envelope shows how the discrepancy grows with training
                gap = np.maximum.accumulate(np.abs(curve - np.asarray(ref.loss_curve, dtype=float)))
                bottom.step(epochs, np.maximum(gap, DIFF_FLOOR), where="post", color=colour,
                            linestyle=style, linewidth=min(width, 2.0), label=f"{r.engine} (max {diff:.1e})")
                drawn_diff = True
    top.set_ylabel("training loss (log-loss)")
    top.set_title("Training loss per epoch, all engines from the same initial weights", fontsize=12)
    top.grid(alpha=0.3)
    legend_title = "* own start or batch order" if any(not r.same_trajectory for r in comparison.results) else None
    if top.lines:  # every engine may have stopped before its first epoch
        top.legend(title=legend_title, fontsize=9, title_fontsize=8)
    bottom.set_yscale("log")
    bottom.set_xlabel("epoch")
    bottom.set_ylabel(f"max |loss - {comparison.reference} loss|\nso far" if ref else "loss difference")
    bottom.grid(alpha=0.3, which="both")
    if drawn_diff:
        bottom.axhline(np.finfo(config.dtype).eps, color="black", linewidth=0.8, linestyle=":",
                       label=f"{config.dtype} machine epsilon")
        bottom.set_title(f"Largest distance so far to the reference's loss ({comparison.reference}); "
                         f"exact agreement drawn at {DIFF_FLOOR:.0e}", fontsize=11)
        bottom.legend(fontsize=9, ncol=3, loc="lower right")
    else:
        bottom.text(0.5, 0.5, "no engine shares the reference's trajectory", ha="center",
                    va="center", transform=bottom.transAxes)
    fig.suptitle(describe_config(config), fontsize=10, y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_decision_boundaries(comparison, split, path, *, resolution=200):
    """One panel per engine: predicted probability over the plane, the 0.5 boundary, the data.

    Only for data sets with two features; the axes are the (standardized) features.
    """
    from twinnet import Network

    plt = pyplot()
    config = comparison.config
    if split.X_train.shape[1] != 2:
        raise ValueError(f"decision boundaries need 2 features; got {split.X_train.shape[1]}.")
    results = [r for r in comparison.results if r.status == "ok" and r.parameters is not None]
    if not results:
        return None
    X_all = np.vstack([split.X_train, split.X_test])
    lo, hi = X_all.min(axis=0), X_all.max(axis=0)
    pad = 0.1 * (hi - lo)
    g0, g1 = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
    grid = np.column_stack([g0.ravel(), g1.ravel()]).astype(config.dtype)
    cols = min(3, len(results))
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols + 1.2, 4.2 * rows + 1.0), squeeze=False,
                             layout="constrained")
    for ax, r in zip(axes.flat, results):
        net = Network.from_parameters(r.parameters, hidden_activation=config.hidden_activation,
                                      dtype=config.dtype)
        proba = net.predict_proba(grid).reshape(g0.shape)
        # a pale background, so that the points, coloured by their true class, stand out
        filled = ax.contourf(g0, g1, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.45)
        ax.contour(g0, g1, proba, levels=[0.5], colors="black", linewidths=1.6)
        for X, y, marker, size, name in ((split.X_train, split.y_train, "o", 16, "train"),
                                         (split.X_test, split.y_test, "^", 36, "test")):
            for label, colour in ((0, "#08519c"), (1, "#a50f15")):
                sel = y == label
                ax.scatter(X[sel, 0], X[sel, 1], s=size, marker=marker, c=colour, edgecolors="white",
                           linewidths=0.6, label=f"{name}, class {label}")
        ax.set_title(f"{r.engine}: test accuracy {r.test_accuracy:.3f}", fontsize=11)
        ax.set_xlabel("feature 1" + (" (standardized)" if config.standardize else ""))
        ax.set_ylabel("feature 2" + (" (standardized)" if config.standardize else ""))
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=9)
    fig.colorbar(filled, ax=axes, shrink=0.85, label="predicted probability of class 1 (black line: 0.5)")
    fig.suptitle("Decision boundaries: " + describe_config(config), fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
