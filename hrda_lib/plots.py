"""Figures of the notebooks: HRDA's crops, predictions and scale attention, training curves,
per-class results, paper-style tables as bar charts (the tables themselves and the published
numbers are in `hrda_lib.reproduction.tables`).

Label maps use the Cityscapes palette (`hrda_lib.viz.colorize`); every figure is saved by the
notebooks through `hrda_lib.viz.save_figure`. Functions return the matplotlib figure (or a
widget) and never save or show by themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.patches import Patch, Rectangle

from hrda_lib.classes import CLASSES, NUM_CLASSES, PALETTE
from hrda_lib.crops import Box
from hrda_lib.inference import attention_of_predicted_class
from hrda_lib.viz import colorize, to_rgb


def class_legend(ax, classes: Sequence[int] | None = None, ncol: int = 1) -> None:
    """A legend of class colours (all classes, or `classes`) beside `ax`."""
    ids = range(NUM_CLASSES) if classes is None else classes
    handles = [Patch(color=np.array(PALETTE[k]) / 255, label=CLASSES[k]) for k in ids]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=7,
        ncol=ncol,
        frameon=False,
    )


def image_grid(
    rows: Sequence[Sequence[np.ndarray | None]], titles: Sequence[str], width: float = 3.0
) -> plt.Figure:
    """A grid of RGB panels (label maps colorized beforehand); `titles` label the columns."""
    n_rows, n_cols = len(rows), len(titles)
    first = next(p for row in rows for p in row if p is not None)
    aspect = first.shape[0] / first.shape[1]
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(width * n_cols, width * aspect * n_rows + 0.5), squeeze=False
    )
    for i, row in enumerate(rows):
        for j, panel in enumerate(row):
            axes[i, j].axis("off")
            if panel is not None:
                axes[i, j].imshow(panel, interpolation="nearest", vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(titles[j], fontsize=9)
    fig.tight_layout()
    return fig


def draw_box(ax, box: Box, color: str = "white", label: str | None = None, **kwargs) -> None:
    """Outline a (y1, y2, x1, x2) box on an image axis."""
    y1, y2, x1, x2 = box
    ax.add_patch(
        Rectangle(
            (x1 - 0.5, y1 - 0.5),
            x2 - x1,
            y2 - y1,
            fill=False,
            edgecolor=color,
            linewidth=kwargs.pop("linewidth", 1.5),
            label=label,
            **kwargs,
        )
    )


def class_bars(
    table: pd.DataFrame,
    value: str,
    hue: str | None = None,
    log: bool = False,
    title: str = "",
    ylabel: str | None = None,
) -> plt.Figure:
    """Grouped bars of `value` per class (column `class`), one colour per `hue` group."""
    groups = [(None, table)] if hue is None else list(table.groupby(hue, sort=False))
    fig, ax = plt.subplots(figsize=(11, 3.2))
    positions = np.arange(NUM_CLASSES)
    width = 0.8 / len(groups)
    for i, (name, group) in enumerate(groups):
        values = group.set_index("class").reindex(CLASSES)[value].to_numpy(dtype=float)
        ax.bar(positions + (i - (len(groups) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(positions, CLASSES, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel or value)
    if log:
        ax.set_yscale("log")
    if hue is not None:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# -- HRDA's crops and predictions ----------------------------------------------------------------


def multires_figure(
    image: torch.Tensor, label: torch.Tensor | None, out, context_scale: float, title: str = ""
) -> plt.Figure:
    """One training-style forward: the context crop with the detail box, the LR input, the
    detail crop, LR / HR / fused predictions and the attention of the predicted class.

    Args:
        image: (3, H, W) normalized context crop.
        label: (H, W) train ids or None.
        out: `MultiResOutput` of `forward_multires` on `image[None]` (batch 1).
    """
    rgb = to_rgb(image)
    y1, y2, x1, x2 = out.detail_box
    lr_size = (round(rgb.shape[0] * context_scale), round(rgb.shape[1] * context_scale))
    lr_input = to_rgb(
        torch.nn.functional.interpolate(
            image[None], size=lr_size, mode="bilinear", align_corners=False
        )[0]
    )
    attention = out.attention
    if torch.is_tensor(attention):
        attention = torch.nn.functional.interpolate(
            attention, size=out.fused.shape[2:], mode="bilinear", align_corners=False
        )
    attention = attention_of_predicted_class(attention, out.fused.argmax(1))[0].numpy()
    box_mask = np.zeros_like(attention)
    os = rgb.shape[0] // out.fused.shape[2]
    box_mask[y1 // os : y2 // os, x1 // os : x2 // os] = 1
    panels = [
        (rgb, "context crop + detail box"),
        (lr_input, f"LR input (×{context_scale:g})"),
        (rgb[y1:y2, x1:x2], "detail crop (full res.)"),
        (colorize(out.context_logits[0].argmax(0).numpy()), "context (LR) prediction"),
        (colorize(out.detail_logits[0].argmax(0).numpy()), "detail (HR) prediction"),
        (attention * box_mask, "attention a (pred. class, masked)"),
        (colorize(out.fused[0].argmax(0).numpy()), "fused prediction"),
        (colorize(label.numpy()) if label is not None else None, "ground truth"),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.4))
    for ax, (panel, name) in zip(axes.flat, panels, strict=True):
        ax.axis("off")
        ax.set_title(name, fontsize=9)
        if panel is None:
            continue
        if panel.ndim == 2:
            shown = ax.imshow(panel, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            fig.colorbar(shown, ax=ax, fraction=0.046)
        else:
            ax.imshow(panel, interpolation="nearest")
    for ax in (axes[0, 0], axes[1, 3]):
        draw_box(ax, out.detail_box)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def multires_explorer(
    render: Callable[..., plt.Figure],
    context: int,
    detail: int,
    scales: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    step: int = 8,
):
    """An ipywidgets view: sliders for the detail box (y, x) and the context scale call
    `render(y=, x=, context_scale=)` and show its figure. Returns the widget (None without
    ipywidgets).

    Nothing is rendered until a slider moves: under papermill, where no slider can move, the
    widget stays inert (no output capture that could stall the executor), and the notebook shows
    a static figure of the default values instead.
    """
    try:
        import ipywidgets as widgets
        from IPython.display import clear_output, display
    except ImportError:
        return None
    top = max(context - detail, 0)
    start = top // 2 // step * step
    controls = {
        "y": widgets.IntSlider(value=start, min=0, max=top, step=step, description="detail y"),
        "x": widgets.IntSlider(value=start, min=0, max=top, step=step, description="detail x"),
        "context_scale": widgets.SelectionSlider(
            options=list(scales), value=0.5, description="context scale"
        ),
    }
    out = widgets.Output()

    def update(_change) -> None:
        with out:
            clear_output(wait=True)
            fig = render(**{name: w.value for name, w in controls.items()})
            display(fig)
            plt.close(fig)

    for control in controls.values():
        control.observe(update, "value")
    note = widgets.Label("Move a slider to render; the static figure above shows the defaults.")
    return widgets.VBox([*controls.values(), note, out])


def window_grids_figure(image: np.ndarray, grids: Mapping[str, Sequence[Box]]) -> plt.Figure:
    """One panel per grid of sliding windows drawn on an (H, W, 3) image. Each window has its own
    colour and is inset by a few pixels more than the previous one, so that coinciding edges of
    overlapping windows stay visible."""
    fig, axes = plt.subplots(1, len(grids), figsize=(5.5 * len(grids), 3.2), squeeze=False)
    colors = plt.get_cmap("tab10")
    inset = max(image.shape[0] // 96, 1)
    for ax, (title, boxes) in zip(axes[0], grids.items(), strict=True):
        ax.imshow(image, interpolation="nearest")
        for i, (y1, y2, x1, x2) in enumerate(boxes):
            d = inset * (i % 4)
            draw_box(ax, (y1 + d, y2 - d, x1 + d, x2 - d), color=colors(i % 10), linewidth=1.6)
        ax.set_title(f"{title}: {len(boxes)} windows", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def branch_rows(samples: Sequence[Mapping[str, np.ndarray]]) -> plt.Figure:
    """Per image: RGB, ground truth, context / detail / fused predictions and the attention of
    the predicted class. Each sample maps image, label, lr, hr, fused (H, W ids) and attention."""
    titles = [
        "image",
        "ground truth",
        "context (LR) only",
        "detail (HR) only",
        "fused",
        "attention of pred. class",
    ]
    aspect = samples[0]["label"].shape[0] / samples[0]["label"].shape[1]
    fig, axes = plt.subplots(
        len(samples), 6, figsize=(18, 3 * aspect * len(samples) + 0.6), squeeze=False
    )
    for i, s in enumerate(samples):
        panels = [
            s["image"],
            colorize(s["label"]),
            colorize(s["context"]),
            colorize(s["detail"]),
            colorize(s["fused"]),
        ]
        for j, panel in enumerate(panels):
            axes[i, j].imshow(panel, interpolation="nearest")
        shown = axes[i, 5].imshow(s["attention"], cmap="viridis", vmin=0, vmax=1)
        for j in range(6):
            axes[i, j].axis("off")
            if i == 0:
                axes[i, j].set_title(titles[j], fontsize=9)
    fig.colorbar(shown, ax=axes[:, 5], fraction=0.03)
    return fig


def attention_vs_oracle(table: pd.DataFrame) -> plt.Figure:
    """Mean attention per class against the class's half-resolution oracle IoU (01's datasheet):
    classes that down-sampling destroys should lean on the detail branch."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(
        table["oracle_iou_x2"],
        table["mean_attention"],
        c=[np.array(PALETTE[k]) / 255 for k in table["train_id"]],
        edgecolor="k",
    )
    for _, row in table.iterrows():
        ax.annotate(
            row["class"],
            (row["oracle_iou_x2"], row["mean_attention"]),
            fontsize=7,
            xytext=(4, 2),
            textcoords="offset points",
        )
    ax.set_xlabel("IoU of labels down- and up-sampled ×2 (1 = resolution does not matter)")
    ax.set_ylabel("mean attention to the detail branch")
    fig.tight_layout()
    return fig


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
