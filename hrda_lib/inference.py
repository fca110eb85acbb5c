"""Test-time inference of HRDA: the outer sliding window over a full image (reference spec 2.5).

The outer grid cuts context windows (1024 with stride 512 for Cityscapes) that go through the
segmentor in one batch; inside each window the segmentor runs its own overlapping detail windows.
Window logits are averaged at full resolution where windows overlap. `max_batch` bounds how many
images go through the encoder at once so that a long image never runs out of memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hrda_lib.crops import average_windows, crop, sliding_windows


@torch.no_grad()
def slide_inference(
    model: torch.nn.Module,
    image: torch.Tensor,
    window: tuple[int, int] | int,
    stride: tuple[int, int] | int,
    max_batch: int | None = None,
    attention_override: float | None = None,
) -> torch.Tensor:
    """Full-resolution logits from batched sliding context windows.

    Args:
        model: an `HRDASegmentor` or `Segmentor` (its `encode_decode` gives window logits).
        image: (B, 3, H, W) normalized image at test resolution.
        window: context window (h, w) in pixels (an int for a square).
        stride: window stride (h, w).
        max_batch: bound on images per encoder call (windows, and detail windows inside them);
            None sends every window of a level in one batch, as the official code does.
        attention_override: HRDA analysis modes (0 = context only, 1 = detail only).

    Returns:
        (B, K, H, W) logits, the average of overlapping windows.
    """
    window = (window, window) if isinstance(window, int) else tuple(window)
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    batch, _, height, width = image.shape
    boxes = sliding_windows(height, width, window, stride)
    kwargs = {"max_batch": max_batch}
    if attention_override is not None:
        kwargs["attention_override"] = attention_override
    windows = torch.cat([crop(image, box) for box in boxes])  # (n_windows * B, 3, h, w)
    group = len(boxes) if max_batch is None else max(1, max_batch // batch)
    logits = torch.cat(
        [
            model.encode_decode(windows[i * batch : (i + group) * batch], **kwargs)
            for i in range(0, len(boxes), group)
        ]
    )
    return average_windows((height, width), boxes, logits.split(batch))


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    image: torch.Tensor,
    window: tuple[int, int] | int,
    stride: tuple[int, int] | int,
    size: tuple[int, int] | None = None,
    max_batch: int | None = None,
) -> torch.Tensor:
    """Slide-inference logits of (B, 3, h, w), resized bilinearly to `size` (the label's or
    the original image's (H, W); None keeps the test resolution)."""
    logits = slide_inference(model, image, window, stride, max_batch)
    if size is not None and tuple(logits.shape[2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits


def attention_of_predicted_class(
    attention: torch.Tensor | float, prediction: torch.Tensor
) -> torch.Tensor:
    """The scale attention of each pixel's predicted class: how much the fused prediction of
    that class leans on the detail branch.

    Args:
        attention: (B, K|1, H, W) attention at the prediction's resolution (a single channel
            is every class's), or a constant (fixed attention).
        prediction: (B, H, W) predicted class ids.

    Returns:
        (B, H, W) attention in [0, 1].
    """
    if not torch.is_tensor(attention):
        return torch.full(prediction.shape, float(attention))
    if attention.shape[1] == 1:
        return attention[:, 0]
    return attention.gather(1, prediction[:, None].long().to(attention.device))[:, 0]


@torch.no_grad()
def slide_branches(
    model: torch.nn.Module,
    image: torch.Tensor,
    window: tuple[int, int] | int,
    stride: tuple[int, int] | int,
    max_batch: int | None = None,
) -> dict[str, torch.Tensor]:
    """Context-only, detail-only and fused logits and the scale attention of an HRDA model over
    a whole image, with the test-time sliding window (averaged where windows overlap).

    Args:
        image: (B, 3, H, W) normalized at test resolution.

    Returns:
        `context`, `detail`, `fused`: (B, K, H, W) logits; `attention`: (B, K|1, H, W) in
        [0, 1] (a constant map for fixed attention).
    """
    window = (window, window) if isinstance(window, int) else tuple(window)
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    height, width = image.shape[2:]
    boxes = sliding_windows(height, width, window, stride)
    parts: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("context", "detail", "fused", "attention")
    }
    for box in boxes:
        out = model.forward_slide(crop(image, box), max_batch=max_batch)
        attention = out.attention
        if not torch.is_tensor(attention):  # fixed attention: a constant map
            shape = (image.shape[0], 1, *out.context_logits.shape[2:])
            attention = out.context_logits.new_full(shape, attention)
        size = (box[1] - box[0], box[3] - box[2])
        for name, part in (
            ("context", out.context_logits),
            ("detail", out.detail_logits),
            ("fused", out.fused),
            ("attention", attention),
        ):
            parts[name].append(F.interpolate(part, size=size, mode="bilinear", align_corners=False))
    return {name: average_windows((height, width), boxes, p) for name, p in parts.items()}
