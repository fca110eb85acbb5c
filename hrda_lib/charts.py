"""Charts of the results: training curves, schedule lengths, per-class IoU, cost trade-offs,
paper-style tables as bars (ours and the published numbers in separate panels) and the parity
with the official code.

The numbers come from `hrda_lib.reproduction` (its tables hold the published figures); the
images, crops and scale attention are drawn by `hrda_lib.plots`. Functions return the matplotlib
figure and never save or show by themselves (the notebooks save through
`hrda_lib.viz.save_figure`).
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from hrda_lib.classes import CLASSES
from hrda_lib.presets import ROW_NAMES
from hrda_lib.viz import words

# -- training results ---------------------------------------------------------------------------


def curve_figure(x, y, xlabel: str, ylabel: str, title: str = "") -> plt.Figure:
    """One line: `y` against `x`."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(x, y)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def row_names(keys: Sequence[str], labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each row key's name: `labels` (else `presets.ROW_NAMES`); a name given to several keys
    is numbered, so that no two rows read alike."""
    names = {key: (labels or ROW_NAMES).get(key, key) for key in keys}
    repeated = {name for name, n in Counter(names.values()).items() if n > 1}
    seen: Counter = Counter()
    for key in keys:
        if (name := names[key]) in repeated:
            seen[name] += 1
            names[key] = f"{name} ({seen[name]})"
    return names


def distinct_colours(n: int) -> list[tuple[float, ...]]:
    """`n` colours to tell lines apart: tab10, or beyond 10 tab20's dark shades, then its light."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return [plt.get_cmap("tab20")(order[i % 20]) for i in range(n)]


def curves_figure(
    curves: pd.DataFrame, quantities: Sequence[str], labels: Mapping[str, str] | None = None
) -> plt.Figure:
    """One panel per quantity of a tidy log (key, seed, iteration, quantity, value): one colour
    per row, the same in every panel, one line style per seed, and one legend for the figure.
    Losses are smoothed with a running mean over 10 % of the run.

    Args:
        labels: row key -> name, e.g. the notebooks' `row_labels` (which tell rows of one name
            apart by their crops); None: `row_names`.
    """
    keys = list(dict.fromkeys(curves["key"]))
    names = row_names(keys, labels)
    colour = dict(zip(keys, distinct_colours(len(keys)), strict=True))
    seeds = sorted(set(curves["seed"]))
    style = {seed: ("-", "--", ":", "-.")[i % 4] for i, seed in enumerate(seeds)}
    ncols = len(quantities) if len(quantities) <= 3 else -(-len(quantities) // 2)
    nrows = -(-len(quantities) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.2 * nrows), squeeze=False)
    for ax, quantity in zip(axes.flat, quantities, strict=False):
        data = curves[curves["quantity"] == quantity]
        smoothed = quantity.startswith("loss")
        for (key, seed), run in data.groupby(["key", "seed"], sort=False):
            values = run["value"]
            if smoothed:
                values = values.rolling(max(len(values) // 10, 1), min_periods=1).mean()
            ax.plot(
                run["iteration"],
                values,
                color=colour[key],
                linestyle=style[seed],
                linewidth=1.2,
                marker="o" if len(run) < 10 else None,
                markersize=3,
            )
        ax.set_xlabel("iteration")
        ax.set_title(words(quantity) + (", running mean" if smoothed else ""), fontsize=10)
    for ax in axes.flat[len(quantities) :]:
        ax.axis("off")
    handles = [Line2D([], [], color=colour[key], label=names[key]) for key in keys]
    if len(seeds) > 1:
        handles += [Line2D([], [], color="0.3", ls=style[s], label=f"seed {s}") for s in seeds]
    fig.tight_layout()
    if len(quantities) < axes.size:  # in the empty panel
        axes.flat[-1].legend(handles=handles, loc="center left", fontsize=8, frameon=False)
    else:
        fig.legend(
            handles=handles, loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, frameon=False
        )
    return fig


def schedule_figure(curves: pd.DataFrame, labels: Mapping[str, str] | None = None) -> plt.Figure:
    """Target-val mIoU against iteration, one panel per row and one line per schedule length
    and seed (`schedule_study`'s curves: key, seed, iters, iteration, val_miou)."""
    keys = list(dict.fromkeys(curves["key"]))
    fig, axes = plt.subplots(
        1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False, sharey=True
    )
    for ax, key in zip(axes[0], keys, strict=True):
        for (iters, seed), run in curves[curves["key"] == key].groupby(["iters", "seed"]):
            label = f"{iters} iterations, seed {seed}"
            ax.plot(run["iteration"], run["val_miou"], marker="o", ms=3, label=label)
        ax.set_xlabel("iteration")
        ax.set_title((labels or {}).get(key, key), fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    axes[0, 0].set_ylabel("target val mIoU (%)")
    fig.tight_layout()
    return fig


def per_class_heatmap(table: pd.DataFrame, row: str = "method", value: str = "IoU") -> plt.Figure:
    """A (method x class) heatmap of the mean per-class IoU over seeds."""
    pivot = table.pivot_table(index=row, columns="class", values=value, aggfunc="mean", sort=False)
    pivot = pivot.reindex(columns=[c for c in CLASSES if c in pivot.columns])
    fig, ax = plt.subplots(figsize=(12, 0.5 * len(pivot) + 1.6))
    shown = ax.imshow(pivot.to_numpy(dtype=float), cmap="magma", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(pivot.shape[1]), pivot.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(pivot.shape[0]), pivot.index, fontsize=8)
    for (i, j), v in np.ndenumerate(pivot.to_numpy(dtype=float)):
        if np.isfinite(v):
            ax.text(
                j,
                i,
                f"{v:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v < 50 else "black",
            )
    fig.colorbar(shown, ax=ax, fraction=0.02, label=f"{value} (%)")
    fig.tight_layout()
    return fig


def tradeoff_figure(
    summary: pd.DataFrame, x: str, label: str = "label", title: str = ""
) -> plt.Figure:
    """mIoU (mean ± std over seeds) against a cost (`memory_mb`, `seconds_per_iter`) per row: the
    trade-off of the crop-size tables. One colour per method (a row label's part before " — ",
    named in the legend); each point is labelled with its crops (the part after it), placed
    where it overlaps no other label."""
    method, _, crops = (summary[label].str.partition(" — ")[i] for i in range(3))
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for i, (name, rows) in enumerate(summary.groupby(method.to_numpy(), sort=False)):
        ax.errorbar(
            rows[x], rows["mean"], yerr=rows["std"].fillna(0), fmt="o", color=f"C{i}", label=name
        )
    ax.margins(0.12)  # room for the labels inside the axes
    ax.set_xlabel(words(x))
    ax.set_ylabel("target val mIoU (%), mean ± std over seeds")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    std = summary["std"].fillna(0).to_numpy()
    label_points(ax, summary[x].to_numpy(), summary["mean"].to_numpy(), list(crops), std)
    return fig


def label_points(
    ax, x: np.ndarray, y: np.ndarray, texts: Sequence[str], yerr: np.ndarray | None = None
) -> None:
    """Write each text beside its point (x, y) at the first of a few offsets, farther out (with a
    leader line) if need be, where it stays inside the axes and covers no earlier text, no point
    and no error bar (± `yerr`). Call it once the layout is final: it measures display pixels."""
    renderer = ax.figure.canvas.get_renderer()
    yerr = np.zeros_like(y) if yerr is None else yerr
    low = ax.transData.transform(np.column_stack([x, y - yerr]))  # (N, 2) display pixels
    high = ax.transData.transform(np.column_stack([x, y + yerr]))
    pad = 4  # pixels: a marker's radius
    marks = [Bbox([lo - pad, hi + pad]) for lo, hi in zip(low, high, strict=True)]
    around = [(1, 1, "left", "bottom"), (1, -1, "left", "top"), (-1, 1, "right", "bottom")]
    around += [(-1, -1, "right", "top"), (0, 1.5, "center", "bottom"), (0, -1.5, "center", "top")]
    places = [(dx * d, dy * d, ha, va) for d in (4, 10, 18) for dx, dy, ha, va in around]
    frame = ax.bbox  # the axes in display pixels

    def write(text: str, xy: tuple[float, float], place: tuple, line: bool = False):
        dx, dy, ha, va = place
        return ax.annotate(
            text,
            xy,
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=7,
            arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.6} if line else None,
        )

    def measure(text: str, xy: tuple[float, float], place: tuple):
        probe = write(text, xy, place)
        box = probe.get_window_extent(renderer)
        probe.remove()
        return box

    def free(box) -> bool:
        inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
        return inside and not box.count_overlaps(marks + taken)

    taken = []
    for xy, text in zip(zip(x, y, strict=True), texts, strict=True):
        if not text:
            continue
        boxes = [(place, measure(text, xy, place)) for place in places]
        place, box = next(((p, b) for p, b in boxes if free(b)), boxes[0])  # else the nearest
        write(text, xy, place, line=abs(place[0]) + abs(place[1]) > 8)
        taken.append(box)


# -- tables ---------------------------------------------------------------------------------------


def ours_and_published_figure(table: pd.DataFrame) -> plt.Figure:
    """Two panels, never one axis: our mIoU (mean ± std over seeds) and the published mIoU of the
    same methods, each titled with the data it was measured on.

    Args:
        table: `reproduction.tables.published_beside` output (method, mean, std, and the
            columns "ours: ..." and "published: mIoU ..." whose headers name the data).
    """
    ours_col = next(c for c in table.columns if c.startswith("ours:"))
    theirs_col = next(c for c in table.columns if c.startswith("published: mIoU"))
    fig, (ours, theirs) = plt.subplots(1, 2, figsize=(12, 0.45 * len(table) + 1.6), sharey=True)
    y = np.arange(len(table))
    ours.barh(y, table["mean"], xerr=table["std"].fillna(0), color="tab:blue")
    ours.set_yticks(y, table["method"], fontsize=8)
    ours.invert_yaxis()
    ours.set_title(textwrap.fill(ours_col, 60), fontsize=8)
    ours.set_xlabel("mIoU (%)")
    values = table[theirs_col]
    theirs.barh(y, values.fillna(0), color="tab:gray")
    for i, v in enumerate(values):
        theirs.text(1, i, "not published" if np.isnan(v) else f"{v:.1f}", va="center", fontsize=8)
    theirs.set_title(textwrap.fill(theirs_col, 60), fontsize=8)
    theirs.set_xlabel("mIoU (%)")
    fig.tight_layout()
    return fig


def tables_figure(summary: pd.DataFrame, ncols: int = 2) -> plt.Figure:
    """One panel per paper table (`ncols` per row): mean mIoU ± std over seeds of each row."""
    groups = list(summary.groupby("table", sort=False))
    nrows = -(-len(groups) // ncols)
    height = max(len(rows) for _, rows in groups) * 0.35 + 1.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(13, height * nrows), squeeze=False)
    for ax, (table, rows) in zip(axes.flat, groups, strict=False):
        y = np.arange(len(rows))
        ax.barh(y, rows["mean"], xerr=rows["std"].fillna(0), color="tab:blue", alpha=0.85)
        ax.set_yticks(y, rows["label"], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(table, fontsize=9)
        ax.set_xlabel("mIoU (%), mean ± std over seeds", fontsize=8)
    for ax in axes.flat[len(groups) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def method_pairs_figure(summary: pd.DataFrame, pairs: Mapping[str, tuple[str, str]]) -> plt.Figure:
    """Grouped bars: each UDA method's mIoU without (LR data) and with HRDA, ± std over seeds."""
    stats = summary.drop_duplicates("key").set_index("key")
    methods = [m for m, (lr, hr) in pairs.items() if lr in stats.index and hr in stats.index]
    x = np.arange(len(methods))
    fig, ax = plt.subplots(figsize=(1.6 * len(methods) + 2, 3.2))
    for offset, index, label, color in (
        (-0.2, 0, "LR data", "tab:gray"),
        (0.2, 1, "HRDA", "tab:blue"),
    ):
        keys = [pairs[m][index] for m in methods]
        ax.bar(
            x + offset,
            stats.loc[keys, "mean"],
            0.4,
            yerr=stats.loc[keys, "std"].fillna(0),
            label=label,
            color=color,
        )
    ax.set_xticks(x, methods)
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"ours: {summary['measured_on'].iloc[0]}", fontsize=8, wrap=True)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parity_figure(parity: pd.DataFrame) -> plt.Figure:
    """Max abs difference to the official code per recorded tensor (log scale), with the 1e-4
    tolerance; an empty panel saying so when no fixtures were found."""
    fig, ax = plt.subplots(figsize=(7, 0.28 * max(len(parity), 4) + 1.2))
    if parity.empty:
        ax.text(0.5, 0.5, "no golden fixtures found", ha="center", va="center")
        ax.axis("off")
        return fig
    y = np.arange(len(parity))
    ax.barh(y, parity["max_abs_diff"].clip(lower=1e-12), color="tab:green")
    ax.axvline(1e-4, color="tab:red", linestyle="--", label="tolerance 1e-4")
    ax.set_xscale("log")
    ax.set_yticks(y, parity["tensor"], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("max |ours − official| (golden fixtures, MiT-b0)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
