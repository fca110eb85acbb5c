"""Figures of HRDA's inputs and outputs: images and labels, the context and detail crops,
the sliding-window grids, the branch predictions and the scale attention (the results' charts
are in `hrda_lib.charts`; the tables and published numbers in `hrda_lib.reproduction.tables`).

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
from matplotlib.transforms import blended_transform_factory

from hrda_lib.classes import CLASSES, NUM_CLASSES, PALETTE
from hrda_lib.crops import Box
from hrda_lib.inference import attention_of_predicted_class
from hrda_lib.viz import colorize, to_rgb, words


def class_patches(classes: Sequence[int] | None = None) -> list[Patch]:
    """Legend handles: one patch in the class's palette colour per class (all, or `classes`)."""
    ids = range(NUM_CLASSES) if classes is None else classes
    return [Patch(color=np.array(PALETTE[k]) / 255, label=CLASSES[k]) for k in ids]


def class_legend(ax, classes: Sequence[int] | None = None, ncol: int = 1) -> None:
    """A legend of class colours (all classes, or `classes`) beside `ax`."""
    ax.legend(
        handles=class_patches(classes),
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=7,
        ncol=ncol,
        frameon=False,
    )


def image_grid(
    rows: Sequence[Sequence[np.ndarray | None]],
    titles: Sequence[str],
    width: float = 3.0,
    row_titles: Sequence[str] | None = None,
) -> plt.Figure:
    """A grid of RGB panels (label maps colorized beforehand); `titles` label the columns and
    `row_titles` (if given) the rows, left of each."""
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
        if row_titles is not None:
            name = row_titles[i]
            axes[i, 0].text(
                -0.08, 0.5, name, transform=axes[i, 0].transAxes, ha="right", va="center"
            )
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
    """Grouped bars of `value` per class (column `class`), one colour per `hue` group.

    Groups are named in words (`viz.words`; a boolean hue as "<hue> class" / "other class"). A
    class with no value (NaN, or no line) is marked "n/a" in its slot, never drawn as a 0 bar;
    each class's bars are centred on its tick, over the groups that have a line for it.
    """
    groups = [(None, table)] if hue is None else list(table.groupby(hue, sort=False))
    values = np.stack(
        [g.set_index("class").reindex(CLASSES)[value].to_numpy(dtype=float) for _, g in groups]
    )  # (G, K)
    present = np.stack([np.isin(CLASSES, g["class"]) for _, g in groups])  # (G, K)
    present[:, ~present.any(0)] = True  # a class that no group has: "n/a" in every slot
    slot = present.cumsum(0) - 1  # each group's place among the groups that have the class
    count = present.sum(0)
    width = 0.8 / count.max()
    x = np.arange(NUM_CLASSES) + (slot - (count - 1) / 2) * width  # (G, K)
    fig, ax = plt.subplots(figsize=(11, 3.2))
    at_bottom = blended_transform_factory(ax.transData, ax.transAxes)  # x: data, y: axes
    for i in range(len(groups)):
        drawn = present[i] & np.isfinite(values[i])
        ax.bar(x[i, drawn], values[i, drawn], width, color=f"C{i}")
        for pos in x[i, present[i] & ~drawn]:
            ax.text(pos, 0.03, "n/a", transform=at_bottom, rotation=90, ha="center", fontsize=7)
    ax.set_xticks(np.arange(NUM_CLASSES), CLASSES, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel or words(value))
    if log:
        ax.set_yscale("log")
    if hue is not None:
        names = [_group_name(hue, name) for name, _ in groups]
        handles = [Patch(color=f"C{i}", label=n) for i, n in enumerate(names)]
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _group_name(hue: str | None, name: object) -> str:
    """A hue group in words; a boolean hue reads "<hue> class" / "other class"."""
    if isinstance(name, (bool, np.bool_)):
        return f"{hue} class" if name else "other class"
    return words(name)


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

    The figure of the initial values is drawn at once; each slider move replaces it. It is shown
    as a PNG in an `Image` widget rather than captured by an `Output` widget: a new figure is one
    state update that swaps the image (no empty area in between, no figures stacking up), and
    nothing depends on output capture, which has no frontend to route it under papermill.
    """
    try:
        import ipywidgets as widgets
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return None
    top = max(context - detail, 0)
    start = top // 2 // step * step
    box = dict(value=start, min=0, max=top, step=step)
    style = {"description_width": "8em"}  # "context scale" in full
    controls = {
        "y": widgets.IntSlider(description="detail y", style=style, **box),
        "x": widgets.IntSlider(description="detail x", style=style, **box),
        "context_scale": widgets.SelectionSlider(
            options=list(scales), value=0.5, description="context scale", style=style
        ),
    }
    figure = widgets.Image(format="png")

    def update(_change=None) -> None:
        fig = render(**{name: w.value for name, w in controls.items()})
        figure.value = print_figure(fig, "png", bbox_inches="tight")  # as Jupyter shows figures
        plt.close(fig)

    for control in controls.values():
        control.observe(update, "value")
    update()
    return widgets.VBox([*controls.values(), figure])


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
    the predicted class, and a legend of the class colours below. Each sample maps image, label,
    context, detail, fused (H, W ids) and attention."""
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
    fig.legend(
        handles=class_patches(),
        loc="upper center",
        bbox_to_anchor=(0.45, 0.1),
        ncol=10,
        fontsize=8,
        frameon=False,
    )
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
