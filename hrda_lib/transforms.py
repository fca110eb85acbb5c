"""The data pipelines of HRDA: keep-ratio resize, random crop, flip, normalization.

Ports mmseg 0.16's `Resize(keep_ratio=True)`, `RandomCrop(cat_max_ratio)`, `RandomFlip`,
`Normalize`, `Pad` and `PhotoMetricDistortion` as HRDA configures them (reference spec sections
3.6 and 3.10, Apache-2.0), and the pseudo-label margin mask of HRDA's target loader ("plcrop
v2", spec 3.4): the mask is built on the ORIGINAL image size and goes through the same resize,
crop and flip as the image.

Every random choice comes from the numpy `Generator` the caller passes in, drawn in mmseg's
order (crop offset y, x per attempt, then the flip), so a sample can be replayed exactly.
Arrays are (H, W, 3) uint8 RGB images and (H, W) uint8 label-like maps until `normalize`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hrda_lib import augment
from hrda_lib.classes import IGNORE_INDEX
from hrda_lib.crops import Box, pseudo_label_margin_mask

# ImageNet statistics on the 0-255 RGB scale (img_norm_cfg of all HRDA configs).
IMG_MEAN = np.array(augment.IMG_MEAN, dtype=np.float32)  # RGB, 0..255 (one definition)
IMG_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


@dataclass(frozen=True)
class PipelineConfig:
    """One dataset's pipeline; the crop fields are ignored by the test pipeline."""

    scale: tuple[int, int]  # (long, short) edge bound of the keep-ratio resize, mmseg img_scale
    crop_size: tuple[int, int] | None = None  # (h, w) random crop; None = no crop
    cat_max_ratio: float = 1.0  # largest class share of a crop; 1.0 = no constraint (0.75 source)
    flip_prob: float = 0.5  # probability of a horizontal flip
    margins: tuple[int, int, int, int] | None = None  # (top, bottom, left, right) px of the
    # ORIGINAL image excluded from pseudo-labels (HRDA: (30, 240, 30, 30) on 1024x2048); None = off
    photometric: bool = False  # mmseg PhotoMetricDistortion after the flip (the `CAug` sources
    # of the AdvSeg / MinEnt baselines and of domain generalization)


# --- geometry ----------------------------------------------------------------------------------


def rescale_size(height: int, width: int, scale: tuple[int, int]) -> tuple[int, int]:
    """(new_h, new_w) of mmcv's keep-ratio `imrescale`: fit the long/short bounds of `scale`.

    factor = min(max(scale) / max(h, w), min(scale) / min(h, w)); new = round(dim * factor),
    rounding halves up like mmcv (`int(x + 0.5)`). GTA 1052x1914 at (2560, 1440) -> 1407x2560.
    """
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (cv2) of an (H, W, 3) image to size (h, w); a no-op at the same size."""
    if image.shape[:2] == tuple(size):
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) label or mask to size (h, w)."""
    if label.shape[:2] == tuple(size):
        return label
    return cv2.resize(label, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def random_crop_box(
    height: int, width: int, crop_size: tuple[int, int], rng: np.random.Generator
) -> Box:
    """mmseg's crop box: offsets uniform in [0, max(size - crop, 0)], y drawn before x.

    Returns (y1, y2, x1, x2); a crop larger than the image is clipped to it by `crop_array`.
    """
    offset_y = int(rng.integers(0, max(height - crop_size[0], 0) + 1))
    offset_x = int(rng.integers(0, max(width - crop_size[1], 0) + 1))
    return (offset_y, offset_y + crop_size[0], offset_x, offset_x + crop_size[1])


def crop_array(x: np.ndarray, box: Box) -> np.ndarray:
    """Cut `box` (y1, y2, x1, x2) out of the first two axes of `x`."""
    y1, y2, x1, x2 = box
    return x[y1:y2, x1:x2]


def crop_is_balanced(label_crop: np.ndarray, cat_max_ratio: float) -> bool:
    """mmseg's cat_max_ratio test: >= 2 valid classes and the largest below the ratio."""
    labels, counts = np.unique(label_crop, return_counts=True)
    counts = counts[labels != IGNORE_INDEX]
    return len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio


def crop_box_with_cat_max_ratio(
    label: np.ndarray,
    crop_size: tuple[int, int],
    cat_max_ratio: float,
    rng: np.random.Generator,
    max_redraws: int = 10,
) -> Box:
    """A random crop box; with cat_max_ratio < 1, re-drawn up to 10 times until balanced.

    Exactly mmseg's loop: the first box and up to `max_redraws` re-draws are each tested; if
    all fail, one more box is drawn and used untested.
    """
    height, width = label.shape[:2]
    box = random_crop_box(height, width, crop_size, rng)
    if cat_max_ratio < 1.0:
        for _ in range(max_redraws):
            if crop_is_balanced(crop_array(label, box), cat_max_ratio):
                break
            box = random_crop_box(height, width, crop_size, rng)
    return box


def pad_to(x: np.ndarray, size: tuple[int, int], value: float) -> np.ndarray:
    """Pad the first two axes of `x` at the bottom/right to at least `size` with `value`."""
    pad_h, pad_w = max(size[0] - x.shape[0], 0), max(size[1] - x.shape[1], 0)
    if pad_h == 0 and pad_w == 0:
        return x
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (x.ndim - 2)
    return np.pad(x, widths, constant_values=value)


def normalize(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 `(x - mean) / std`."""
    return ((image.astype(np.float32) - IMG_MEAN) / IMG_STD).transpose(2, 0, 1).copy()


# --- photometric distortion (the `CAug` datasets) ----------------------------------------------


@dataclass(frozen=True)
class PhotometricParams:
    """One draw of mmseg's PhotoMetricDistortion; None = that operation is skipped."""

    brightness: float | None  # added on the 0-255 scale, U(-32, 32)
    contrast_first: bool  # contrast before the HSV operations (else after them)
    contrast: float | None  # multiplier, U(0.5, 1.5)
    saturation: float | None  # multiplier of the HSV saturation, U(0.5, 1.5)
    hue: int | None  # shift of OpenCV's hue (0-179 for uint8), integer in [-18, 18)


def sample_photometric_params(
    rng: np.random.Generator,
    brightness_delta: int = 32,
    contrast_range: tuple[float, float] = (0.5, 1.5),
    saturation_range: tuple[float, float] = (0.5, 1.5),
    hue_delta: int = 18,
) -> PhotometricParams:
    """Draw mmseg's parameters: each operation with probability 0.5 (reference spec 3.6:
    brightness +-32, contrast / saturation 0.5-1.5, hue +-18, contrast first or last).

    mmseg draws with numpy's legacy `randint(2)` gates and `randint(-18, 18)` (high exclusive,
    kept here); the draws come from `rng` instead of the global numpy state, in a fixed order
    (the distribution is the same, the sequence is not).
    """

    def gate() -> bool:
        return bool(rng.integers(2))

    brightness = float(rng.uniform(-brightness_delta, brightness_delta)) if gate() else None
    contrast_first = bool(rng.integers(2))
    contrast = float(rng.uniform(*contrast_range)) if gate() else None
    saturation = float(rng.uniform(*saturation_range)) if gate() else None
    hue = int(rng.integers(-hue_delta, hue_delta)) if gate() else None
    return PhotometricParams(brightness, contrast_first, contrast, saturation, hue)


def _convert(x: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """mmseg's `convert`: x * alpha + beta in float32, clipped to [0, 255], truncated to uint8."""
    return np.clip(x.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(image: np.ndarray, params: PhotometricParams) -> np.ndarray:
    """mmseg 0.16's PhotoMetricDistortion on an (H, W, 3) uint8 RGB image, with `params`.

    Brightness, then contrast (if first), saturation and hue in OpenCV's uint8 HSV (hue mod 180;
    each of the two converts to HSV and back on its own, as mmseg), then contrast (if last).
    mmseg works on BGR; converting RGB with RGB2HSV gives the same result channel for channel.
    """
    image = np.ascontiguousarray(image)
    if params.brightness is not None:
        image = _convert(image, beta=params.brightness)
    if params.contrast_first and params.contrast is not None:
        image = _convert(image, alpha=params.contrast)
    if params.saturation is not None:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 1] = _convert(hsv[..., 1], alpha=params.saturation)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if params.hue is not None:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(int) + params.hue) % 180
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if not params.contrast_first and params.contrast is not None:
        image = _convert(image, alpha=params.contrast)
    return image


# --- pipelines ---------------------------------------------------------------------------------


def resize_to_scale(
    image: np.ndarray, label: np.ndarray | None, config: PipelineConfig
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The deterministic first step of the training pipeline: keep-ratio resize.

    Args:
        image: (H, W, 3) uint8 RGB at original resolution.
        label: (H, W) uint8 train ids (255 ignore) or None for unlabelled target images.

    Returns:
        (h, w, 3) image, (h, w) label or None, and the (h, w) uint8 margin mask, which is built
        on the original size (spec 3.4) and resized like a label.
    """
    height, width = image.shape[:2]
    margins = config.margins or (0, 0, 0, 0)
    size = rescale_size(height, width, config.scale)
    valid_mask = resize_label(pseudo_label_margin_mask(height, width, margins), size)
    if label is not None:
        # A label of another size than its image (a few GTA pairs) is resized to the image.
        label = resize_label(label, size)
    return resize_image(image, size), label, valid_mask


def crop_flip_normalize(
    image: np.ndarray,
    label: np.ndarray | None,
    valid_mask: np.ndarray,
    config: PipelineConfig,
    rng: np.random.Generator,
) -> dict[str, np.ndarray | bool | Box]:
    """The random rest of the training pipeline on resized arrays: crop, flip, normalize, pad.

    Returns:
        `img` (3, h, w) float32, `gt_semantic_seg` (h, w) uint8 (if labelled),
        `valid_pseudo_mask` (h, w) uint8, `crop_box` in the resized frame and `flip`.
    """
    height, width = image.shape[:2]
    box: Box = (0, height, 0, width)
    if config.crop_size is not None:
        if label is not None:
            box = crop_box_with_cat_max_ratio(label, config.crop_size, config.cat_max_ratio, rng)
        else:
            box = random_crop_box(height, width, config.crop_size, rng)
        image, valid_mask = crop_array(image, box), crop_array(valid_mask, box)
        label = crop_array(label, box) if label is not None else None

    flip = bool(rng.random() < config.flip_prob)
    if flip:
        image, valid_mask = image[:, ::-1], valid_mask[:, ::-1]
        label = label[:, ::-1] if label is not None else None
    if config.photometric:
        image = photometric_distortion(image, sample_photometric_params(rng))

    out: dict[str, np.ndarray | bool | Box] = {"crop_box": box, "flip": flip}
    img = normalize(image)
    if config.crop_size is not None:
        # mmseg pads after Normalize: image 0, label 255; the margin mask pads as invalid (0).
        img = pad_to(img.transpose(1, 2, 0), config.crop_size, 0.0).transpose(2, 0, 1)
        valid_mask = pad_to(valid_mask, config.crop_size, 0)
        label = pad_to(label, config.crop_size, IGNORE_INDEX) if label is not None else None
    out["img"] = np.ascontiguousarray(img)
    out["valid_pseudo_mask"] = np.ascontiguousarray(valid_mask)
    if label is not None:
        out["gt_semantic_seg"] = np.ascontiguousarray(label)
    return out


def train_transform(
    image: np.ndarray,
    label: np.ndarray | None,
    config: PipelineConfig,
    rng: np.random.Generator,
) -> dict[str, np.ndarray | bool | Box]:
    """The training pipeline: resize, (cat_max_ratio) random crop, flip, normalize, pad.

    Args:
        image: (H, W, 3) uint8 RGB at original resolution.
        label: (H, W) uint8 train ids (255 ignore) or None for unlabelled target images.
        config: the dataset's pipeline.
        rng: source of every random choice.

    Returns:
        See `crop_flip_normalize`.
    """
    return crop_flip_normalize(*resize_to_scale(image, label, config), config, rng)


def test_transform(image: np.ndarray, config: PipelineConfig) -> np.ndarray:
    """The test pipeline: keep-ratio resize to `config.scale`, normalize, no flip.

    Args:
        image: (H, W, 3) uint8 RGB.

    Returns:
        (3, h, w) float32; predictions are resized back to (H, W) for evaluation.
    """
    size = rescale_size(image.shape[0], image.shape[1], config.scale)
    return normalize(resize_image(image, size))


def scaled_margins(
    margins: Sequence[int], reference_hw: tuple[int, int], image_hw: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Scale (top, bottom, left, right) margins defined on `reference_hw` to `image_hw`.

    Example: HRDA's (30, 240, 30, 30) on 1024x2048 -> (8, 60, 8, 8) on 256x512 (rounded).
    """
    fy, fx = image_hw[0] / reference_hw[0], image_hw[1] / reference_hw[1]
    top, bottom, left, right = margins
    return (round(top * fy), round(bottom * fy), round(left * fx), round(right * fx))
