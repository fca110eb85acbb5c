"""Pixel-wise segmentation loss and accuracy with the semantics of the official HRDA code.

HRDA (Hoyer et al., ECCV 2022) trains every prediction (fused, detail, mixed, masked) with a
pixel-wise cross entropy that takes an optional per-pixel weight (the pseudo-label quality
weight of the target domain). The official code inherits mmsegmentation 0.16's loss, whose
averaging is easy to get wrong (reference spec 2.4 and section 8 item 13): the per-pixel losses
are computed with `reduction='none'` (ignored pixels give 0), multiplied by the weight, and then
averaged over ALL B*H*W pixels, ignored ones included. Ignored, margin and low-weight pixels
therefore dilute the loss instead of being dropped from the denominator. The accuracy logged by
the official code (`acc_seg`) likewise divides by all pixels, ignored ones included.

The fused/detail combination of HRDA is built on `cross_entropy` in the model module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hrda_lib.classes import IGNORE_INDEX


def _check_shapes(logits: torch.Tensor, label: torch.Tensor) -> None:
    if logits.ndim != 4 or label.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"expected logits (B, K, H, W) and label (B, H, W), got {tuple(logits.shape)} "
            f"and {tuple(label.shape)}"
        )


def cross_entropy(
    logits: torch.Tensor,
    label: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Weighted pixel-wise cross entropy, averaged over all pixels (mmseg 0.16 semantics).

    Args:
        logits: (B, K, H, W) class scores at the label's resolution.
        label: (B, H, W) integer class ids; `ignore_index` pixels contribute 0.
        weight: optional (B, H, W) per-pixel weight, multiplied into the per-pixel loss.
        ignore_index: label value that contributes no loss (but still counts in the mean).

    Returns:
        Scalar tensor: sum over pixels of weight * CE, divided by B * H * W.
    """
    _check_shapes(logits, label)
    loss = F.cross_entropy(logits, label.long(), reduction="none", ignore_index=ignore_index)
    if weight is not None:
        if weight.shape != label.shape:
            raise ValueError(f"weight {tuple(weight.shape)} must match label {tuple(label.shape)}")
        loss = loss * weight.float()
    return loss.mean()  # denominator B*H*W, ignored pixels included


def pixel_accuracy(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Percentage of pixels whose argmax equals the label, as the official `acc_seg` logs it.

    The denominator is B * H * W, ignored pixels included (an ignored pixel is never correct
    since the argmax is a class id < K), like mmseg 0.16's `accuracy`.

    Args:
        logits: (B, K, H, W) class scores.
        label: (B, H, W) integer class ids.

    Returns:
        Scalar tensor in [0, 100].
    """
    _check_shapes(logits, label)
    correct = logits.argmax(dim=1) == label.long()  # (B, H, W)
    return correct.float().sum() * (100.0 / label.numel())
