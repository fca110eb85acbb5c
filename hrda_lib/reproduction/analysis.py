"""Measurements behind HRDA's analysis figures: what each branch predicts, how much each class
leans on the detail branch, the views of crops and sliding-window grids, and the evaluation of
released (official) checkpoints beside the golden parity check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from hrda_lib.checkpoints import load_model, load_model_and_assumptions
from hrda_lib.classes import CLASSES, NUM_CLASSES
from hrda_lib.config import ExperimentConfig
from hrda_lib.crops import Box, sliding_windows
from hrda_lib.datasets import read_dataset
from hrda_lib.evaluate import evaluate, target_val_dataset
from hrda_lib.experiments import PAPER
from hrda_lib.golden import parity_table
from hrda_lib.inference import attention_of_predicted_class, predict_logits, slide_branches
from hrda_lib.layout import DatasetLayoutError
from hrda_lib.metrics import confusion_matrix, iou_per_class
from hrda_lib.model import blur_down_up, build_segmentor
from hrda_lib.paths import data_root, golden_root
from hrda_lib.presets import build_row
from hrda_lib.reproduction.results import device
from hrda_lib.reproduction.tables import PUBLISHED_CHECKPOINT, THIN_CLASSES
from hrda_lib.viz import colorize, to_rgb

BRANCHES = ("context", "detail", "fused")


# -- what each branch predicts -------------------------------------------------------------------


@dataclass
class AttentionStudy:
    """What `scale_attention_study` measures over a validation set."""

    samples: list[dict]  # per shown image: image (H, W, 3) uint8, label, context, detail, fused
    # (H, W) ids and attention (H, W) of the predicted class
    per_class: pd.DataFrame  # class, train_id, pixels, mean_attention, IoU_context, IoU_detail,
    # IoU_fused


@torch.no_grad()
def scale_attention_study(
    model: torch.nn.Module,
    dataset,
    window: tuple[int, int],
    stride: tuple[int, int],
    n_shown: int = 3,
) -> AttentionStudy:
    """Context-only, detail-only and fused predictions of an HRDA model over a labelled set, the
    per-class IoU of each, and the mean attention to the detail branch per predicted class."""
    confusion = {b: torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64) for b in BRANCHES}
    att_sum, att_count = torch.zeros(NUM_CLASSES, dtype=torch.float64), torch.zeros(NUM_CLASSES)
    samples = []
    for i in range(len(dataset)):
        sample = dataset[i]
        label = sample["gt_semantic_seg"]
        image = sample["img"][None].to(next(model.parameters()).device)
        parts = {k: v.cpu() for k, v in slide_branches(model, image, window, stride).items()}
        full = {
            k: F.interpolate(v, size=label.shape, mode="bilinear", align_corners=False)
            for k, v in parts.items()
        }
        preds = {b: full[b][0].argmax(0) for b in BRANCHES}
        for b in BRANCHES:
            confusion[b] += confusion_matrix(preds[b], label)
        att = attention_of_predicted_class(full["attention"], preds["fused"][None])[0]
        att_sum += torch.bincount(preds["fused"].reshape(-1), att.reshape(-1).double(), NUM_CLASSES)
        att_count += torch.bincount(preds["fused"].reshape(-1), minlength=NUM_CLASSES)
        if i < n_shown:
            samples.append(
                {
                    "image": to_rgb(sample["img"]),
                    "label": label.numpy(),
                    **{b: p.numpy() for b, p in preds.items()},
                    "attention": att.numpy(),
                }
            )
    with np.errstate(invalid="ignore"):
        mean = np.where(att_count > 0, (att_sum / att_count.clamp(min=1)).numpy(), np.nan)
    per_class = pd.DataFrame(
        {
            "class": CLASSES,
            "train_id": range(NUM_CLASSES),
            "pixels": att_count.long().numpy(),
            "mean_attention": mean,
        }
    )
    for b, cm in confusion.items():
        per_class[f"IoU_{b}"] = 100 * iou_per_class(cm)
    return AttentionStudy(samples, per_class)


@torch.no_grad()
def qualitative_rows(runs: Sequence, indices: Sequence[int]) -> tuple[list, list[str]]:
    """Panels for `plots.image_grid`: per target val image its RGB, label and the prediction of
    every run (each on its own test pipeline, compared at the label's resolution)."""
    shown = target_val_dataset(runs[0].config)
    rows = [
        [to_rgb(shown[i]["img"]), colorize(shown[i]["gt_semantic_seg"].numpy())] for i in indices
    ]
    for r in runs:
        model = load_model(r.checkpoint).to(device())
        dataset = target_val_dataset(r.config)
        for row, i in zip(rows, indices, strict=True):
            sample = dataset[i]
            logits = predict_logits(
                model,
                sample["img"][None].to(device()),
                r.config.test_window,
                r.config.test_stride,
                sample["gt_semantic_seg"].shape,
                r.config.max_batch,
            )
            row.append(colorize(logits[0].argmax(0).cpu().numpy()))
    return rows, ["image", "ground truth", *(r.key for r in runs)]


class _Blurred:
    """A labelled set whose images hold only low-resolution content at their full size."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        sample = dict(self.dataset[index])
        sample["img"] = blur_down_up(sample["img"][None])[0]
        return sample


@torch.no_grad()
def blurred_input_study(runs: Sequence) -> pd.DataFrame:
    """Does a model use the high-resolution content? Each run evaluated on its target val set
    twice: on the real images, and on the same images blurred to low-resolution content at full
    size (`up2(down2(image))`, the input of Table 6's blurred detail crop): mIoU and the thin
    classes' IoU.

    A model that draws on the content only high resolution holds loses when it is blurred; one
    that gains by seeing objects at twice the size, a finer feature grid over the same content,
    keeps its score.
    """
    lines = []
    for r in runs:
        model = load_model(r.checkpoint).to(device())
        cfg = r.config
        dataset = target_val_dataset(cfg)
        for test_images, images in (("real", dataset), ("blurred", _Blurred(dataset))):
            result = evaluate(model, images, cfg.test_window, cfg.test_stride, cfg.max_batch)
            iou = result.per_class.set_index("class")["IoU"]
            lines.append(
                {
                    "key": r.key,
                    "seed": r.seed,
                    "test images": test_images,
                    "mIoU": round(float(result.summary["mIoU"]), 2),
                    **{c: round(float(iou[c]), 2) for c in THIN_CLASSES},
                }
            )
    return pd.DataFrame(lines)


# -- views of the crops ----------------------------------------------------------------------------


def with_context_scale(model: torch.nn.Module, context_scale: float) -> torch.nn.Module:
    """The same weights seen at another context scale 1/s_c (a new module; `model` unchanged)."""
    if context_scale == model.cfg.context_scale:
        return model
    clone = build_segmentor(replace(model.cfg, context_scale=context_scale))
    clone.load_state_dict(model.state_dict())
    return clone.eval()


def detail_box(context: int, detail: int, y: int = -1, x: int = -1, divisible: int = 8) -> Box:
    """A detail box in a square context crop; -1 centres it (offsets rounded to `divisible`)."""
    centre = (context - detail) // 2 // divisible * divisible
    y, x = (centre if y < 0 else y), (centre if x < 0 else x)
    return (y, y + detail, x, x + detail)


@torch.no_grad()
def multires_forward(model: torch.nn.Module, image: torch.Tensor, box: Box, context_scale: float):
    """`forward_multires` of one (3, H, W) context crop at another context scale (batch 1)."""
    return with_context_scale(model, context_scale).forward_multires(image[None], box)


def window_grids(cfg: ExperimentConfig, height: int, width: int) -> dict[str, list[Box]]:
    """The sliding-window grids of HRDA's inference on an H x W image, in image pixels: the outer
    context windows of the test, the overlapping detail windows inside the first context window
    (also the teacher's pseudo-labelling grid of a context crop), and the non-overlapping ones."""
    window, stride = cfg.test_window, cfg.test_stride
    y0, _, x0, _ = sliding_windows(height, width, window, stride)[0]
    context = (min(window[0], height), min(window[1], width))
    detail = cfg.model.detail_crop_size

    def shifted(boxes: list[Box]) -> list[Box]:
        return [(y1 + y0, y2 + y0, x1 + x0, x2 + x0) for y1, y2, x1, x2 in boxes]

    half = (detail[0] // 2, detail[1] // 2)
    return {
        "test: context windows": sliding_windows(height, width, window, stride),
        "detail windows, stride d/2 (inference, pseudo-labels)": shifted(
            sliding_windows(*context, detail, half)
        ),
        "detail windows, stride d (Table 7 'no overlap')": shifted(
            sliding_windows(*context, detail, detail)
        ),
    }


def branch_accuracy(out, label: torch.Tensor) -> pd.DataFrame:
    """Pixel accuracy inside the detail box of the context, detail and fused predictions of one
    `forward_multires` output (batch 1) against the (H, W) label, tidy: quantity, item, value."""
    y1, y2, x1, x2 = out.detail_box
    target = label[y1:y2, x1:x2]
    valid = target != 255
    rows = []
    for branch, logits, frame in (
        ("context (LR)", out.context_logits, label.shape),
        ("detail (HR)", out.detail_logits, target.shape),
        ("fused", out.fused, label.shape),
    ):
        pred = F.interpolate(logits, size=frame, mode="bilinear", align_corners=False)[0].argmax(0)
        pred = pred if frame == target.shape else pred[y1:y2, x1:x2]
        accuracy = float((pred == target)[valid].float().mean()) if valid.any() else np.nan
        rows.append((branch, accuracy))
    table = pd.DataFrame(rows, columns=["item", "value"])
    return table.assign(quantity="pixel_accuracy_in_detail_box")[["quantity", "item", "value"]]


# -- official checkpoints ----------------------------------------------------------------------


def golden_parity() -> pd.DataFrame:
    """`hrda_lib.golden.parity_table` on the golden fixtures, with the 1e-4 tolerance and a pass
    flag per tensor."""
    table = parity_table(golden_root()).assign(tolerance=1e-4)
    columns = ["tensor", "shape", "max_abs_diff", "ref_max_abs", "tolerance", "ok"]
    return table.assign(ok=table["max_abs_diff"] <= table["tolerance"])[columns]


def evaluate_official(
    checkpoint_path: str, cityscapes_root: str = "", max_images: int = 0, max_batch: int = 4
) -> pd.DataFrame:
    """Evaluate a released HRDA / DAFormer / MIC checkpoint on Cityscapes val, tidy: class,
    metric, value, measured_on; with the published mIoU as the last row. Without a checkpoint
    or Cityscapes val, a `status` row says why nothing was evaluated.

    HRDA checkpoints use the paper's protocol (2048x1024, slide 1024 / 512), single-scale
    DAFormer ones DAFormer's (1024x512, whole image). The model is loaded as `python -m
    hrda_lib.evaluate --preset gta_to_cityscapes_hrda` loads it: what the keys and the embedded
    config cannot tell comes from that preset; `assumed` (and `overruled`) rows say what.
    """
    value, source = PUBLISHED_CHECKPOINT
    columns = ["class", "metric", "value", "measured_on"]
    published = pd.DataFrame([("(all)", "published mIoU", value, source)], columns=columns)
    root = Path(cityscapes_root) if cityscapes_root else data_root() / "cityscapes"
    reason = "" if checkpoint_path else "no checkpoint_path given"
    if checkpoint_path and not Path(checkpoint_path).is_file():
        reason = f"checkpoint {checkpoint_path} not found"
    if not reason:
        hrda = build_row(PAPER, "hrda")
        model, inferred = load_model_and_assumptions(
            checkpoint_path, fallback=hrda.model, fallback_name=f"preset {hrda.name}"
        )
        assumed = {}  # metric -> line; empty for our own checkpoints, which carry their config
        if inferred is not None:
            assumed = {"assumed": inferred.assumption_line(), "overruled": inferred.overrule_line()}
            print("\n".join(line for line in assumed.values() if line))
        multi = model.cfg.multi_resolution
        preset = hrda if multi else build_row(PAPER, "daformer_lr")
        try:
            dataset = read_dataset(
                "cityscapes", root, "val", preset.data.test_pipeline, train=False
            )
        except DatasetLayoutError as error:
            reason = f"Cityscapes val not usable: {str(error).splitlines()[0]}"
    if reason:
        print(f"official checkpoint not evaluated: {reason}")
        status = pd.DataFrame([("(all)", "status", np.nan, f"skipped: {reason}")], columns=columns)
        return pd.concat([status, published], ignore_index=True)
    if max_images:
        dataset = Subset(dataset, range(min(max_images, len(dataset))))
    model.to(device())
    window = preset.test_window if multi else preset.data.test_pipeline.scale[::-1]
    stride = preset.test_stride if multi else window
    result = evaluate(model, dataset, window, stride, max_batch, progress=True)
    where = f"ours: {Path(checkpoint_path).name} on Cityscapes val ({len(dataset)} images)"
    rows = [("(all)", k, v, where) for k, v in result.summary.items()]
    rows += [("(all)", k, np.nan, line) for k, line in assumed.items() if line]
    rows += [(c["class"], "IoU", c["IoU"], where) for _, c in result.per_class.iterrows()]
    return pd.concat([pd.DataFrame(rows, columns=columns), published], ignore_index=True)


# -- what a table says, in words computed from its numbers ------------------------------------


def attention_findings(per_class: pd.DataFrame, n: int = 4) -> str:
    """The classes whose pixels lean most on detail and most on context (mean attention of the
    predicted class, `scale_attention_study`), the thin classes' mean beside the others', and
    the classes without a value (never predicted); Markdown."""
    valid = per_class.dropna(subset=["mean_attention"]).sort_values(
        "mean_attention", ascending=False
    )

    def listed(rows: pd.DataFrame) -> str:
        return ", ".join(f"{r['class']} {r.mean_attention:.2f}" for _, r in rows.iterrows())

    thin = valid["class"].isin(THIN_CLASSES)
    names = ", ".join(valid["class"][thin])
    lines = [
        f"- most attention to detail: {listed(valid.head(n))}",
        f"- least (these follow the context): {listed(valid.tail(n)[::-1])}",
        f"- thin classes ({names}): mean {valid.mean_attention[thin].mean():.2f}; the other "
        f"classes: {valid.mean_attention[~thin].mean():.2f}",
    ]
    if "IoU_fused" in valid:
        hardly = valid[valid["IoU_fused"] < 5]
        if len(hardly):
            lines.append(
                f"- segmented hardly at all (fused IoU < 5): {listed(hardly)}; their value "
                "averages over the pixels wrongly predicted as the class, not over the class"
            )
    missing = per_class.loc[per_class["mean_attention"].isna(), "class"].tolist()
    if missing:
        lines.append(f"- no value (never predicted): {', '.join(missing)}")
    return "\n".join(lines)


def branch_findings(per_class: pd.DataFrame, margin: float = 1.0) -> str:
    """Where the fused prediction is at least as good as the better branch (within `margin` IoU
    points), and where one branch alone beats it by more, with the numbers; Markdown."""
    table = per_class.set_index("class")[["IoU_context", "IoU_detail", "IoU_fused"]].dropna()
    measured = table[table.max(axis=1) > 0]  # classes some branch segments at all
    best = measured[["IoU_context", "IoU_detail"]].max(axis=1)
    behind = measured[measured["IoU_fused"] < best - margin]
    lines = [
        f"- fused at least the better branch (within {margin:g} point) on "
        f"{len(measured) - len(behind)} of the {len(measured)} classes that some branch segments"
    ]
    for name, row in behind.iterrows():
        branch = "detail" if row.IoU_detail > row.IoU_context else "context"
        lines.append(
            f"- {name}: fused {row.IoU_fused:.1f} below {branch} alone "
            f"{max(row.IoU_detail, row.IoU_context):.1f} (context {row.IoU_context:.1f}, "
            f"detail {row.IoU_detail:.1f})"
        )
    zero = table.index[table.max(axis=1) == 0].tolist()
    if zero:
        lines.append(f"- 0 IoU in every branch: {', '.join(zero)}")
    return "\n".join(lines)
