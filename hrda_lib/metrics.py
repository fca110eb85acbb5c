"""Semantic-segmentation metrics of the HRDA evaluation protocol (reference spec section 5).

Predictions are compared with the labels over a whole validation set: a confusion matrix is
accumulated over all images (dataset-level, not a mean of per-image scores) over the pixels whose
label is not the ignore index, and per-class IoU = I / (P + G - I) and accuracy = I / G are read
off it. mIoU is the NaN-mean over classes: a class that is neither predicted nor labelled has no
IoU and is skipped, a class predicted but never labelled has IoU 0 and counts. This reproduces
mmsegmentation 0.16's `eval_metrics` / `CustomDataset.evaluate` used by the official code
(numbers reported x100 and rounded to 2 decimals).

For Synthia -> Cityscapes the paper reports the 16-class mean (terrain, truck and train are
absent from Synthia) and older works a 13-class mean (additionally without wall, fence, pole).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hrda_lib.classes import CLASSES, IGNORE_INDEX, NUM_CLASSES, SYNTHIA13_DROPPED, SYNTHIA_ABSENT

ConfusionLike = torch.Tensor | np.ndarray


def confusion_matrix(
    pred: torch.Tensor,
    gt: torch.Tensor,
    num_classes: int = NUM_CLASSES,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Count (label, prediction) pairs over the pixels whose label is not ignored.

    Sum the results of several calls to accumulate over a validation set.

    Args:
        pred: (...) predicted class ids in [0, K), any integer dtype (e.g. (B, H, W)).
        gt: (...) label class ids in [0, K) or `ignore_index`, same shape (uint8 is fine).
        num_classes: K.
        ignore_index: label value whose pixels are dropped (the prediction there is ignored).

    Returns:
        (K, K) int64 tensor on the input device; entry [g, p] counts pixels labelled g and
        predicted p.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ in shape")
    # Cast BEFORE gt * K + pred: uint8 labels would overflow (255 * 19 wraps around).
    pred = pred.reshape(-1).long()
    gt = gt.reshape(-1).long()
    valid = gt != ignore_index
    pred, gt = pred[valid], gt[valid]
    if gt.numel() and (gt.min() < 0 or gt.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}) or {ignore_index}")
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"predictions must be in [0, {num_classes})")
    counts = torch.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _as_float64(confusion: ConfusionLike) -> np.ndarray:
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.detach().cpu().numpy()
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion matrix must be (K, K), got {confusion.shape}")
    return confusion


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with NaN where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def iou_per_class(confusion: ConfusionLike) -> np.ndarray:
    """(K,) IoU_c = I_c / (P_c + G_c - I_c) in [0, 1]; NaN for a class with empty union."""
    cm = _as_float64(confusion)
    intersection = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - intersection
    return _safe_ratio(intersection, union)


def accuracy_per_class(confusion: ConfusionLike) -> np.ndarray:
    """(K,) Acc_c = I_c / G_c in [0, 1]; NaN for a class absent from the labels."""
    cm = _as_float64(confusion)
    return _safe_ratio(np.diag(cm), cm.sum(axis=1))


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def miou(confusion: ConfusionLike) -> float:
    """Mean IoU over the classes that have one (NaN-mean), in [0, 1]."""
    return _nanmean(iou_per_class(confusion))


def macc(confusion: ConfusionLike) -> float:
    """Mean per-class accuracy (NaN-mean), in [0, 1]."""
    return _nanmean(accuracy_per_class(confusion))


def aacc(confusion: ConfusionLike) -> float:
    """Overall pixel accuracy over the non-ignored pixels, in [0, 1]."""
    cm = _as_float64(confusion)
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else float("nan")


def _miou_without(confusion: ConfusionLike, dropped: Sequence[int]) -> float:
    iou = iou_per_class(confusion)
    keep = np.ones(iou.shape[0], dtype=bool)
    keep[list(dropped)] = False
    return _nanmean(iou[keep])


def synthia_miou16(confusion: ConfusionLike) -> float:
    """Mean IoU over the 16 classes present in Synthia (without terrain, truck, train).

    When the three absent classes have IoU 0 (never predicted) and no class is NaN, this
    equals mIoU19 * 19 / 16, the way the official numbers relate.
    """
    return _miou_without(confusion, SYNTHIA_ABSENT)


def synthia_miou13(confusion: ConfusionLike) -> float:
    """Mean IoU over 13 classes: the 16 Synthia classes without wall, fence and pole."""
    return _miou_without(confusion, SYNTHIA_ABSENT + SYNTHIA13_DROPPED)


def _percent(value: float) -> float:
    return float(np.round(value * 100, 2))  # as mmseg: round(x * 100, 2); NaN stays NaN


def summary(
    confusion: ConfusionLike,
    class_names: Sequence[str] = CLASSES,
    synthia: bool = False,
) -> dict[str, object]:
    """The evaluation table, in percent rounded to 2 decimals.

    Args:
        confusion: (K, K) accumulated confusion matrix.
        class_names: K names, in class-id order.
        synthia: also report `mIoU16` and `mIoU13` (Synthia -> Cityscapes).

    Returns:
        A dict with `aAcc`, `mIoU`, `mAcc` (and `mIoU16`, `mIoU13`) as floats, and `per_class`,
        a list of `{"class": name, "IoU": x, "Acc": y}` rows (NaN kept) that
        `pandas.DataFrame(result["per_class"])` turns into the per-class table.
    """
    iou = iou_per_class(confusion)
    acc = accuracy_per_class(confusion)
    if len(class_names) != iou.shape[0]:
        raise ValueError(f"{len(class_names)} class names for {iou.shape[0]} classes")
    result: dict[str, object] = {
        "aAcc": _percent(aacc(confusion)),
        "mIoU": _percent(miou(confusion)),
        "mAcc": _percent(macc(confusion)),
    }
    if synthia:
        result["mIoU16"] = _percent(synthia_miou16(confusion))
        result["mIoU13"] = _percent(synthia_miou13(confusion))
    result["per_class"] = [
        {"class": name, "IoU": _percent(i), "Acc": _percent(a)}
        for name, i, a in zip(class_names, iou, acc, strict=True)
    ]
    return result
