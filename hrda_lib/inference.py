"""Test-time inference of HRDA: the outer sliding window over a full image (reference spec 2.5).

The outer grid cuts context windows (1024 with stride 512 for Cityscapes) that go through the
segmentor in one batch; inside each window the segmentor runs its own overlapping detail windows.
Window logits are averaged at full resolution where windows overlap. `max_batch` bounds how many
images go through the encoder at once so that a long image never runs out of memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hrda_lib.crops import crop, paste, sliding_windows


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
    canvas = logits.new_zeros((batch, logits.shape[1], height, width))
    count = logits.new_zeros((batch, 1, height, width))
    for i, (y1, y2, x1, x2) in enumerate(boxes):
        canvas += paste((height, width), logits[i * batch : (i + 1) * batch], (y1, y2, x1, x2))
        count[..., y1:y2, x1:x2] += 1
    return canvas / count


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module,
    image: torch.Tensor,
    window: tuple[int, int] | int | None,
    stride: tuple[int, int] | int | None,
    output_size: tuple[int, int] | None = None,
    max_batch: int | None = None,
) -> torch.Tensor:
    """Softmax probabilities (B, K, H', W') by slide inference (or whole-image if window None).

    `output_size` resizes the logits bilinearly before the softmax (to the original image size).
    """
    if window is None:
        logits = model.encode_decode(image, max_batch=max_batch)
    else:
        logits = slide_inference(model, image, window, stride, max_batch)
    if output_size is not None and tuple(output_size) != tuple(logits.shape[2:]):
        logits = F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)
    return logits.softmax(dim=1)


@torch.no_grad()
def attention_of_prediction(fused: torch.Tensor, attention: torch.Tensor | float, upscale: float):
    """Per-pixel scale attention of the predicted class: sum_k up(a)_k · softmax(fused)_k.

    Args:
        fused: (B, K, h, w) fused logits.
        attention: (B, K|1, h', w') attention at the context logit resolution, or a constant.
        upscale: h / h'.

    Returns:
        (B, 1, h, w) attention weight that the prediction gives to the detail branch.
    """
    if not torch.is_tensor(attention):
        return torch.full_like(fused[:, :1], float(attention))
    attention = F.interpolate(attention, scale_factor=upscale, mode="bilinear", align_corners=False)
    return (attention * fused.softmax(dim=1)).sum(dim=1, keepdim=True)
