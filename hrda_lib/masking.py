"""Masked Image Consistency (MIC, Hoyer et al., CVPR 2023) on top of HRDA: inputs and masks.

Implements reference spec 4. MIC trains the student on a masked copy of the target images
against the teacher's pseudo-labels of the un-masked images, so that it learns to use context:

* block masking: a round(H/b) x round(W/b) grid of U(0, 1) values per image, a block is KEPT
  where the value is > the mask ratio (0.7, so ~70 % masked), nearest-upsampled to H x W and
  multiplied into the NORMALIZED image (masked pixels become 0, the ImageNet mean colour);
* the inputs per mask mode: `separatetrgaug` (GTA/Synthia -> Cityscapes) uses the target batch
  with the DACS pseudo-labels and their un-mixed weights, `separate` (-> ACDC / Dark Zurich)
  one source and one target image, the `src` modes the source batch with its labels;
* modes containing `aug` strongly augment the batch first (new gates, per-image colour factors,
  ONE blur sigma for the batch: `augment.sample_strong_aug_params(..., batch_level=True)`).

Deviation: randomness comes from an explicit torch.Generator (official: torch's global RNG for
the mask, python `random` for the gates).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from hrda_lib import augment
from hrda_lib.errors import UnknownNameError

MicMode = Literal[
    "separate", "separateaug", "separatesrc", "separatesrcaug", "separatetrg", "separatetrgaug"
]
MIC_MODES: tuple[str, ...] = (
    "separate",
    "separateaug",
    "separatesrc",
    "separatesrcaug",
    "separatetrg",
    "separatetrgaug",
)


def block_mask(
    batch_size: int,
    height: int,
    width: int,
    block_size: int = 64,
    ratio: float = 0.7,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """MIC's random block mask, 1 = keep, 0 = masked.

    Args:
        batch_size, height, width: B, H, W of the images to mask.
        block_size: b, block edge in pixels (64 for HRDA's 1024 crops, 32 at half resolution).
        ratio: mask ratio r; a block is kept where its U(0, 1) value is > r.
        generator: source of randomness (on `device`).

    Returns:
        (B, 1, H, W) float32 mask.
    """
    grid = (batch_size, 1, round(height / block_size), round(width / block_size))
    values = torch.rand(grid, generator=generator, device=device)
    keep = (values > ratio).float()  # (B, 1, h, w)
    return F.interpolate(keep, size=(height, width), mode="nearest")


def apply_mask(img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) normalized images times the (B, 1, H, W) mask (masked pixels -> 0)."""
    return img * mask


def mic_uses_augmentation(mode: MicMode) -> bool:
    """Whether the mode strongly augments the MIC batch before masking (`*aug` modes)."""
    return mode.endswith("aug")


def mic_inputs(
    mode: MicMode,
    source_img: torch.Tensor,
    source_gt: torch.Tensor,
    target_img: torch.Tensor,
    pseudo_label: torch.Tensor,
    pseudo_weight: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Images, labels and loss weights that MIC masks and trains on (before augmentation).

    Args:
        mode: MIC mask mode (see `MIC_MODES`).
        source_img: (B, 3, H, W) normalized source images.
        source_gt: (B, H, W) source labels.
        target_img: (B, 3, H, W) normalized target images (un-augmented, un-mixed).
        pseudo_label: (B, H, W) teacher pseudo-labels of the target images.
        pseudo_weight: (B, H, W) their UN-MIXED weights (quality x margin mask).

    Returns:
        img (N, 3, H, W), label (N, H, W) and weight (N, H, W) or None (= all ones);
        N = 2 for `separate*` (source 0 and target 0), B otherwise.
    """
    if mode in ("separate", "separateaug"):
        img = torch.stack([source_img[0], target_img[0]])
        label = torch.stack([source_gt[0].long(), pseudo_label[0].long()])
        weight = torch.stack([torch.ones_like(pseudo_weight[0]), pseudo_weight[0]])
        return img, label, weight
    if mode in ("separatesrc", "separatesrcaug"):
        return source_img, source_gt.long(), None
    if mode in ("separatetrg", "separatetrgaug"):
        return target_img, pseudo_label.long(), pseudo_weight
    raise UnknownNameError(f"unknown MIC mode {mode!r}; expected one of {MIC_MODES}")


def masked_batch(
    mode: MicMode,
    img: torch.Tensor,
    generator: torch.Generator | None = None,
    block_size: int = 64,
    ratio: float = 0.7,
    color_jitter_probability: float = 0.2,
    color_jitter_strength: float = 0.2,
    batch_size: int | None = None,
    rows: slice | None = None,
) -> tuple[torch.Tensor, torch.Tensor, augment.StrongAugParams | None]:
    """Augment (for `*aug` modes, batch-level) and block-mask the MIC images.

    Args:
        mode: MIC mask mode.
        img: (N, 3, H, W) normalized images from `mic_inputs`.
        generator: source of the augmentation draws and of the mask (CPU generator).
        batch_size, rows: draw for `batch_size` images and keep the draws of `rows`, the
            images of `img` (a process's share of a distributed batch); default: N, all.

    Returns:
        masked (N, 3, H, W) images, the (N, 1, H, W) mask, and the augmentation parameters
        (None when the mode does not augment).
    """
    n, rows = batch_size or img.shape[0], rows or slice(None)
    params = None
    if mic_uses_augmentation(mode):
        params = augment.sample_strong_aug_params(
            n,
            generator,
            color_jitter_probability=color_jitter_probability,
            color_jitter_strength=color_jitter_strength,
            batch_level=True,
        )
        params = augment.select_images(params, rows)
        img = augment.strong_augment(img, params)
    mask = block_mask(n, img.shape[2], img.shape[3], block_size, ratio, generator)[rows]
    return apply_mask(img, mask.to(img)), mask, params
