"""Figures of a comparison: loss curves with their differences, decision boundaries, a confusion
matrix for more than two classes, predicted against true values for regression.

matplotlib is imported when a figure is drawn, with the Agg backend (files only, no window).
"""

from __future__ import annotations

import textwrap

import numpy as np

from twinnet.plotting import pyplot
from twinnet.nn.heads import HEADS, head

__all__ = ["COMPARE_FIGURES", "ENGINE_STYLE", "LOSS_NAMES", "describe_config", "plot_confusion_matrix",
           "plot_decision_boundaries", "plot_loss_curves", "plot_predicted_vs_true", "pyplot"]

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

#: Each head's loss, as the figures name it.
LOSS_NAMES = {name: row.loss_name for name, row in HEADS.items()}

#: Colours of the classes, in the order of their labels (matplotlib's tab10, then tab20's pale ones).
CLASS_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94")


def describe_config(config):
    """A one-line description: data, layers and head, optimizer, learning rate (and schedule), batch, epochs,
    L2, dropout, batch normalization, early stopping (those set), dtype, seed."""
    batch = "full batch" if config.batch_size is None else f"batch {config.batch_size}"
    schedule = f" {config.lr_schedule}" if config.lr_schedule is not None else ""
    controls = [f"l2 {config.l2:g}" if config.l2 else "", f"dropout {config.dropout:g}" if config.dropout else "",
                "batch norm" if config.batch_norm else "",
                f"early stopping {config.early_stopping}" if config.early_stopping is not None else ""]
    return (f"{config.data}, layers {'-'.join(map(str, config.layers))} {config.output or 'sigmoid'}, "
            f"{config.hidden_activation}, {config.optimizer} lr {config.learning_rate:g}{schedule}, {batch}, "
            f"{config.epochs} epochs, " + "".join(f"{c}, " for c in controls if c)
            + f"{config.dtype}, seed {config.seed}")


def _class_names(comparison, k):
    """The data's class labels as the figures show them (their positions 0 .. k-1 when unknown)."""
    classes = comparison.data.get("classes") or list(range(k))
    return [str(c) for c in classes]


def _shown_result(comparison):
    """The result a one-engine figure shows: numpy's (Network), else the first that finished ok."""
    ok = [r for r in comparison.results if r.status == "ok" and r.parameters is not None]
    return next((r for r in ok if r.engine == "numpy"), ok[0] if ok else None)


def _agreement(comparison, shown, predictions, X):
    """A line saying how the other engines' predictions on ``X`` compare with ``predictions``:
    classifiers, which predict the same class everywhere and in how many examples the others do
    not; regression, the largest difference of each."""
    from twinnet.lab.run import network

    same, other = [], []
    others = [r for r in comparison.results if r is not shown and r.status == "ok" and r.parameters is not None]
    if not head(comparison.config.output).classifier:
        gaps = [f"{r.engine} {np.max(np.abs(network(r.parameters, comparison.config).predict(X) - predictions)):.1e}"
                for r in others]
        return f"the other engines' test predictions differ from {shown.engine}'s by at most: {', '.join(gaps)}" \
            if gaps else ""
    for r in others:
        theirs = network(r.parameters, comparison.config).predict(X)
        differ = int(np.count_nonzero(np.any((theirs != predictions).reshape(len(X), -1), axis=1)))
        (same if differ == 0 else other).append(r.engine if differ == 0 else f"{r.engine} in {differ}")
    parts = ([f"identical test predictions from {', '.join(same)}"] if same else []) + \
        ([f"other predictions from {', '.join(other)} test example(s)"] if other else [])
    return "; ".join(parts)


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
                bottom.step(epochs[:gap.size], np.maximum(gap, DIFF_FLOOR), where="post", color=colour,
                            linestyle=style, linewidth=min(width, 2.0), label=f"{r.engine} (max {diff:.1e})")
                drawn_diff = True
    stops = {}
    for r in comparison.results:
        if r.stopped_epoch is not None:
            stops.setdefault(r.stopped_epoch, []).append(r.engine)
    for epoch, engines in sorted(stops.items()):  # one line for the engines that stopped together
        top.axvline(epoch, color="grey", linestyle=":", linewidth=1)
        top.annotate(f"early stop: {', '.join(engines)}", (epoch, 1), xycoords=("data", "axes fraction"),
                     xytext=(-3, -3), textcoords="offset points", rotation=90, ha="right", va="top", fontsize=8,
                     color="grey")
    penalty = " + L2 penalty" if config.l2 else ""
    top.set_ylabel(f"training loss ({head(config.output).loss_name}{penalty})")
    top.set_title("Training loss per epoch, all engines from the same initial weights", fontsize=12)
    top.grid(alpha=0.3)
    legend_title = "* own start, batch order or dropout masks" if any(
        not r.same_trajectory for r in comparison.results) else None
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


def _grid(split, dtype, resolution):
    X_all = np.vstack([split.X_train, split.X_test])
    lo, hi = X_all.min(axis=0), X_all.max(axis=0)
    pad = 0.1 * (hi - lo)
    g0, g1 = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
    return g0, g1, np.column_stack([g0.ravel(), g1.ravel()]).astype(dtype)


def _binary_panel(ax, net, g0, g1, grid):
    proba = net.predict_proba(grid).reshape(g0.shape)
    # a pale background, so that the points, coloured by their true class, stand out
    filled = ax.contourf(g0, g1, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.45)
    ax.contour(g0, g1, proba, levels=[0.5], colors="black", linewidths=1.6)
    return filled


def _softmax_panel(ax, net, g0, g1, grid, colours):
    from matplotlib.colors import ListedColormap

    proba = net.predict_proba(grid)
    k = proba.shape[1]
    predicted = np.argmax(proba, axis=1).reshape(g0.shape)
    # each region in its predicted class's colour, paler where the network is less sure
    ax.contourf(g0, g1, predicted, levels=np.arange(k + 1) - 0.5, cmap=ListedColormap(colours[:k]), alpha=0.45)
    top = proba.max(axis=1).reshape(g0.shape)
    for below in (0.75, 0.5):  # two veils: paler below 0.75, palest below 0.5
        ax.contourf(g0, g1, top, levels=[0, below], colors="white", alpha=0.35)
    # the boundary of class c: where its probability equals the largest other one (smooth lines,
    # where the predicted labels would draw the pixels' steps)
    for c in range(k):
        margin = proba[:, c] - np.max(np.delete(proba, c, axis=1), axis=1)
        ax.contour(g0, g1, margin.reshape(g0.shape), levels=[0.0], colors="black", linewidths=1.2)


def plot_decision_boundaries(comparison, split, path, *, resolution=200):
    """One panel per engine: the classes each engine predicts over the plane, and the data.

    Only for data sets with two features and a classifier's head; the axes are the (standardized)
    features. A sigmoid's panel shades the predicted probability of class 1 and draws its 0.5
    line; a softmax's colours each point of the plane by its predicted class, paler where its
    probability is below 0.75 and palest below 0.5, and draws the lines between classes.
    """
    plt = pyplot()
    config = comparison.config
    if split.X_train.shape[1] != 2:
        raise ValueError(f"decision boundaries need 2 features; got {split.X_train.shape[1]}.")
    if not head(config.output).classifier:
        raise ValueError("decision boundaries need a classifier's head (sigmoid or softmax); "
                         f"got output={config.output!r}.")
    from twinnet.lab.run import network

    results = [r for r in comparison.results if r.status == "ok" and r.parameters is not None]
    if not results:
        return None
    g0, g1, grid = _grid(split, config.dtype, resolution)
    k = _classes(config)
    names = _class_names(comparison, k)
    colours = CLASS_COLOURS if k > 2 else ("#08519c", "#a50f15")
    cols = min(3, len(results))
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols + 1.2, 4.2 * rows + 1.0), squeeze=False,
                             layout="constrained")
    filled = None
    for ax, r in zip(axes.flat, results):
        net = network(r.parameters, config)
        if not head(config.output).binary:
            _softmax_panel(ax, net, g0, g1, grid, colours)
        else:
            filled = _binary_panel(ax, net, g0, g1, grid)
        for X, y, marker, size, part in ((split.X_train, split.y_train, "o", 16, "train"),
                                         (split.X_test, split.y_test, "^", 36, "test")):
            for label in range(k):
                sel = y == label
                ax.scatter(X[sel, 0], X[sel, 1], s=size, marker=marker, c=colours[label % len(colours)],
                           edgecolors="white", linewidths=0.6, label=f"{part}, class {names[label]}")
        ax.set_title(f"{r.engine}: test accuracy {r.test_accuracy:.3f}", fontsize=11)
        ax.set_xlabel("feature 1" + (" (standardized)" if config.standardize else ""))
        ax.set_ylabel("feature 2" + (" (standardized)" if config.standardize else ""))
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if k > 2:  # one column per class, its train and test markers one above the other
        order = [i for label in range(k) for i in (label, k + label)]
        handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    fig.legend(handles, labels, loc="outside lower center", ncol=4 if k == 2 else min(k, 8), fontsize=9)
    if filled is not None:
        fig.colorbar(filled, ax=axes, shrink=0.85, label="predicted probability of class 1 (black line: 0.5)")
    what = "black lines: where the predicted class changes; paler: top probability below 0.75, palest below 0.5"
    fig.suptitle("Decision boundaries: " + describe_config(config)
                 + ("" if head(config.output).binary else f"\n{what}"), fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _classes(config):
    """The number of classes of a classifier's run: two for one unit, else one per unit."""
    return 2 if head(config.output).binary else config.layers[-1]


def plot_confusion_matrix(comparison, split, path):
    """The confusion matrix of one engine's test predictions (numpy's, when it ran), counts in each cell.

    For classifiers; the title says which other engines predict every test example the same.
    """
    plt = pyplot()
    from twinnet.lab.run import network

    shown = _shown_result(comparison)
    if shown is None:
        return None
    config = comparison.config
    predictions = network(shown.parameters, config).predict(split.X_test)
    k = _classes(config)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (np.asarray(split.y_test, dtype=np.int64), predictions), 1)
    names = _class_names(comparison, k)
    size = min(4.5 + 0.4 * k, 9.0)
    fig, ax = plt.subplots(figsize=(max(size + 1.2, 7.5), size), layout="constrained")
    image = ax.imshow(counts, cmap="Blues")
    threshold = counts.max() / 2
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=9 if k <= 12 else 7,
                color="white" if n > threshold else "black" if n else "#bbbbbb")
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, shrink=0.8, label="test examples")
    agreement = _agreement(comparison, shown, predictions, split.X_test)
    ax.set_title(f"Confusion matrix, test part ({len(split.y_test)} examples): {shown.engine}, "
                 f"test accuracy {shown.test_accuracy:.3f}" + (f"\n{agreement}" if agreement else ""),
                 fontsize=10)
    fig.suptitle(textwrap.fill(describe_config(config), 100), fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_predicted_vs_true(comparison, split, path):
    """One engine's predictions (numpy's, when it ran) against the true targets, train and test parts.

    For regression; points on the diagonal are exact. In standard deviations of the target when
    the targets were standardized.
    """
    plt = pyplot()
    from twinnet.lab.run import network

    shown = _shown_result(comparison)
    if shown is None:
        return None
    config = comparison.config
    net = network(shown.parameters, config)
    fig, ax = plt.subplots(figsize=(6.4, 6.0), layout="constrained")
    k = config.layers[-1]
    values = []
    for X, y, marker, size, alpha, part in ((split.X_train, split.y_train, "o", 12, 0.35, "train"),
                                            (split.X_test, split.y_test, "^", 30, 0.9, "test")):
        predicted = net.predict(X).reshape(len(X), -1)
        truth = np.asarray(y).reshape(len(X), -1)
        values += [predicted, truth]
        for t in range(k):
            # one target: the parts in two colours; several: a colour per target, a marker per part
            colour = ("#7f7f7f" if part == "train" else "#1f77b4") if k == 1 else CLASS_COLOURS[t % len(CLASS_COLOURS)]
            ax.scatter(truth[:, t], predicted[:, t], s=size, marker=marker, alpha=alpha, color=colour,
                       label=f"{part}" + (f", target {t + 1}" if k > 1 else ""))
    lo = min(float(v.min()) for v in values)
    hi = max(float(v.max()) for v in values)
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1.0, linestyle="--", label="predicted = true")
    units = " (standardized: standard deviations from the mean)" if "target_sd" in comparison.data else ""
    ax.set_xlabel("true value" + units)
    ax.set_ylabel("predicted value" + units)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    agreement = _agreement(comparison, shown, net.predict(split.X_test), split.X_test)
    ax.set_title(f"Predicted against true: {shown.engine}, test RMSE {shown.test_rmse:.3f}, "
                 f"R² {shown.test_r2:.3f}" + (f"\n{textwrap.fill(agreement, 70)}" if agreement else ""), fontsize=10)
    fig.suptitle(textwrap.fill(describe_config(config), 80), fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


#: The figures ``twinnet compare`` draws beside the loss curves: (file name, whether the
#: comparison calls for it, the function that draws it).
COMPARE_FIGURES = (
    ("decision_boundary.png", lambda c: c.data["n_features"] == 2 and head(c.config.output).classifier,
     plot_decision_boundaries),
    ("confusion_matrix.png", lambda c: head(c.config.output).classifier and c.config.layers[-1] > 2,
     plot_confusion_matrix),
    ("predicted_vs_true.png", lambda c: not head(c.config.output).classifier, plot_predicted_vs_true),
)
