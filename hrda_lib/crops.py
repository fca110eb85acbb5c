"""Crop geometry of HRDA: detail-crop sampling, box scaling, sliding-window grids, crop and paste.

Implements the box arithmetic of HRDA (Hoyer et al., ECCV 2022, sections 3.2-3.4) and the
pseudo-label margin mask of its training recipe. All functions are pure. A box is a tuple
`(y1, y2, x1, x2)` of integer pixel coordinates, end-exclusive, in the frame named by the caller.
Randomness comes from an explicit generator so that a notebook or a test can replay it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]  # (y1, y2, x1, x2), end-exclusive


def sample_detail_box(
    height: int,
    width: int,
    crop_size: tuple[int, int],
    divisible: int = 8,
    generator: torch.Generator | None = None,
) -> Box:
    """Draw the detail (HR) crop box inside a context crop, as HRDA's training forward does.

    Offsets are uniform over `{0, d, ..., ((margin + 1) // d - 1) * d}` per axis, y first, with
    `margin = size - crop`: when the margin is a multiple of `d` the flush bottom/right position is
    never drawn (1024 -> 512 with d=8 gives offsets 0..504). A crop equal to the image is the
    whole image, and no random number is drawn.

    Args:
        height, width: context size in full-resolution pixels.
        crop_size: detail crop (h, w) in full-resolution pixels.
        divisible: offsets are multiples of this (8 keeps the box on the LR logit grid).
        generator: source of randomness; the global torch generator if None.

    Returns:
        The box (y1, y2, x1, x2) in full-resolution pixels of the context.
    """
    crop_h, crop_w = crop_size
    if (height, width) == (crop_h, crop_w):
        return (0, height, 0, width)
    offsets = []
    for size, crop in ((height, crop_h), (width, crop_w)):
        n_positions = (max(size - crop, 0) + 1) // divisible
        if n_positions <= 0:
            raise ValueError(
                f"detail crop {crop_size} does not fit a {divisible}-divisible offset in a "
                f"{height}x{width} context"
            )
        offsets.append(int(torch.randint(n_positions, (1,), generator=generator)) * divisible)
    y1, x1 = offsets
    return (y1, y1 + crop_h, x1, x1 + crop_w)


def scale_box(box: Box, scale: float) -> Box:
    """Divide a box's coordinates by `scale`, truncating to int (the official `scale_box`).

    Example: a full-resolution box / 4 gives the box in stride-4 logit coordinates.
    """
    return tuple(int(c / scale) for c in box)  # type: ignore[return-value]


def crop(x: torch.Tensor, box: Box) -> torch.Tensor:
    """Cut `box` out of the last two dimensions of `x` (any leading dims: (..., H, W))."""
    y1, y2, x1, x2 = box
    return x[..., y1:y2, x1:x2]


def paste(canvas_hw: tuple[int, int], patch: torch.Tensor, box: Box) -> torch.Tensor:
    """Insert `patch` (..., h, w) at `box` into a zero canvas (..., H, W) of size `canvas_hw`."""
    y1, y2, x1, x2 = box
    if patch.shape[-2:] != (y2 - y1, x2 - x1):
        raise ValueError(f"patch {tuple(patch.shape[-2:])} does not fit box {box}")
    height, width = canvas_hw
    return F.pad(patch, (x1, width - x2, y1, height - y2))


def average_windows(
    canvas_hw: tuple[int, int], boxes: Sequence[Box], patches: Sequence[torch.Tensor]
) -> torch.Tensor:
    """The average of window patches pasted into a frame, where they overlap.

    Args:
        canvas_hw: (H, W) of the frame.
        boxes: one box per patch, in frame coordinates; together they must cover the frame.
        patches: (B, C, h_i, w_i) each, the size of its box.

    Returns:
        (B, C, H, W): the mean of the patches covering each position.
    """
    first = patches[0]
    canvas = first.new_zeros((first.shape[0], first.shape[1], *canvas_hw))
    count = first.new_zeros((1, 1, *canvas_hw))
    for (y1, y2, x1, x2), patch in zip(boxes, patches, strict=True):
        canvas += paste(canvas_hw, patch, (y1, y2, x1, x2))
        count[..., y1:y2, x1:x2] += 1
    return canvas / count


def box_mask(
    canvas_hw: tuple[int, int], box: Box, device: torch.device | None = None
) -> torch.Tensor:
    """A (1, 1, H, W) float mask that is 1 inside `box` and 0 outside."""
    mask = torch.zeros((1, 1, *canvas_hw), device=device)
    y1, y2, x1, x2 = box
    mask[..., y1:y2, x1:x2] = 1.0
    return mask


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of a sliding window along one axis, the last one flush with the border.

    `n = max(length - window + stride - 1, 0) // stride + 1` positions at `i * stride`, each
    shifted back so that no window passes the border (the official slide grid).
    """
    n = max(length - window + stride - 1, 0) // stride + 1
    return [max(min(i * stride, length - window), 0) for i in range(n)]


def sliding_windows(
    height: int, width: int, window: tuple[int, int], stride: tuple[int, int]
) -> list[Box]:
    """All windows of a sliding grid over an H x W frame, row-major (y outer, x inner).

    A window larger than the frame is clipped to it.
    """
    boxes = []
    for y1 in window_starts(height, window[0], stride[0]):
        for x1 in window_starts(width, window[1], stride[1]):
            boxes.append((y1, min(y1 + window[0], height), x1, min(x1 + window[1], width)))
    return boxes


def pseudo_label_margin_mask(height: int, width: int, margins: Sequence[int]) -> np.ndarray:
    """The valid-pseudo-label mask of an original target image (HRDA's "plcrop v2").

    Args:
        height, width: size of the original image (1024 x 2048 for Cityscapes).
        margins: (top, bottom, left, right) rows/columns to exclude; a margin of 0 excludes none.

    Returns:
        (H, W) uint8 mask, 1 where pseudo-labels count. The data pipeline crops and flips it
        together with the image.
    """
    top, bottom, left, right = margins
    mask = np.ones((height, width), dtype=np.uint8)
    mask[:top, :] = 0
    mask[height - bottom :, :] = 0
    mask[:, :left] = 0
    mask[:, width - right :] = 0
    return mask
