"""Charts of the results: training curves, schedule lengths, per-class IoU, cost trade-offs,
paper-style tables as bars (ours and the published numbers in separate panels) and the parity
with the official code.

The numbers come from `hrda_lib.reproduction` (its tables hold the published figures); the
images, crops and scale attention are drawn by `hrda_lib.plots`. Functions return the matplotlib
figure and never save or show by themselves (the notebooks save through
`hrda_lib.viz.save_figure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hrda_lib.classes import CLASSES

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


def curves_figure(curves: pd.DataFrame, quantities: Sequence[str]) -> plt.Figure:
    """One panel per quantity of a tidy log (key, seed, iteration, quantity, value), one line per
    run; losses are smoothed with a running mean over 10 % of the run."""
    fig, axes = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 3.4), squeeze=False)
    for ax, quantity in zip(axes[0], quantities, strict=True):
        data = curves[curves["quantity"] == quantity]
        for (key, seed), run in data.groupby(["key", "seed"], sort=False):
            values = run["value"]
            if quantity.startswith("loss"):
                values = values.rolling(max(len(values) // 10, 1), min_periods=1).mean()
            ax.plot(
                run["iteration"],
                values,
                label=f"{key} s{seed}",
                marker="o" if len(run) < 10 else None,
            )
        ax.set_xlabel("iteration")
        ax.set_title(quantity, fontsize=10)
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
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
            label = f"{iters} it, s{seed}"
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
    """mIoU against a cost (memory, time) per row: the trade-off of the crop-size tables."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(summary[x], summary["mean"], yerr=summary["std"].fillna(0), fmt="o")
    for _, row in summary.iterrows():
        ax.annotate(
            row[label], (row[x], row["mean"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    ax.set_xlabel(x)
    ax.set_ylabel("target-val mIoU (%)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


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
    ours.set_title(ours_col, fontsize=8, wrap=True)
    ours.set_xlabel("mIoU (%)")
    values = table[theirs_col]
    theirs.barh(y, values.fillna(0), color="tab:gray")
    for i, v in enumerate(values):
        theirs.text(1, i, "not published" if np.isnan(v) else f"{v:.1f}", va="center", fontsize=8)
    theirs.set_title(theirs_col, fontsize=8, wrap=True)
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
