"""Strong augmentation of the DACS/DAFormer recipe: colour jitter and Gaussian blur.

Implements reference spec 3.6 (and the batch variant of spec 4 step 3 used by MIC). The official
code calls kornia 0.5.8's `ColorJitter` and `GaussianBlur2d`; both are re-implemented here by
hand because their semantics differ from torchvision's ColorJitter and from the ColorJitter of
newer kornia releases (kept there as `ColorJiggle`). Ported from kornia 0.5.8
(`augmentation/random_generator`, `enhance/adjust.py`, `color/hsv.py`, `filters/gaussian.py`),
Apache-2.0. Semantics:

* factors per image: brightness b, contrast c, saturation s ~ U[1 - 0.2, 1 + 0.2], hue
  h ~ U[-0.2, 0.2]; the four ops run in a random order (one permutation per kornia call);
* brightness is additive `x + (b - 1)`, contrast a plain product `x * c` (no blending with the
  mean), both clamped to [0, 1]; saturation scales S of HSV (clamped to [0, 1]); hue shifts the
  HSV hue angle by `h * 2 pi` (mod 2 pi); HSV hue is in radians [0, 2 pi);
* colour jitter works on [0, 1] images (de-normalized, then re-normalized); it is applied when
  the batch's gate u_cj > 0.2 (probability 0.8);
* blur is applied to the normalized image when the batch's gate u_bl > 0.5, with
  sigma ~ U(0.15, 1.15), kernel size per axis ceil(0.1 L) if odd else ceil(0.1 L) - 1
  (1024 -> 103, 512 -> 51), a normalized Gaussian kernel and reflect padding.

DACS augments each mixed image in its own kornia call (own op order and sigma per image, the
gates shared); MIC augments its batch in one call (per-image factors, one op order, one sigma),
`sample_strong_aug_params(..., batch_level=True)`.
Deviations: one torch.Generator supplies every draw (gates, factors, order, sigma) instead of
python `random`, numpy and torch's global RNG; the blur is computed separably (identical up to
float rounding to kornia's 2-D convolution with the outer-product kernel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

IMG_MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)  # RGB, 0..255 scale
IMG_STD: tuple[float, float, float] = (58.395, 57.12, 57.375)  # RGB, 0..255 scale


def _per_image(factor: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """(B,) factor -> (B, 1, 1, 1) to broadcast over (B, C, H, W)."""
    return factor.to(image).reshape(-1, 1, 1, 1)


# ----------------------------------------------------------------------------- normalization


def denormalize(
    img: torch.Tensor,
    mean: tuple[float, float, float] = IMG_MEAN,
    std: tuple[float, float, float] = IMG_STD,
) -> torch.Tensor:
    """(B, 3, H, W) normalized image -> [0, 1] RGB: (x * std + mean) / 255."""
    m = torch.tensor(mean, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return (img * s + m) / 255.0


def normalize(
    img01: torch.Tensor,
    mean: tuple[float, float, float] = IMG_MEAN,
    std: tuple[float, float, float] = IMG_STD,
) -> torch.Tensor:
    """(B, 3, H, W) [0, 1] RGB -> normalized image: (x * 255 - mean) / std."""
    m = torch.tensor(mean, dtype=img01.dtype, device=img01.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=img01.dtype, device=img01.device).view(1, 3, 1, 1)
    return (img01 * 255.0 - m) / s


# ----------------------------------------------------------------------------- HSV (kornia 0.5.8)


def rgb_to_hsv(image: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> HSV with H in radians [0, 2 pi), S and V in [0, 1]."""
    max_rgb, argmax_rgb = image.max(dim=-3)
    min_rgb, _ = image.min(dim=-3)
    deltac = max_rgb - min_rgb
    v = max_rgb
    s = deltac / (max_rgb + eps)
    deltac = torch.where(deltac == 0, torch.ones_like(deltac), deltac)
    rc, gc, bc = torch.unbind(max_rgb.unsqueeze(-3) - image, dim=-3)
    h1 = bc - gc  # red is the max
    h2 = (rc - bc) + 2.0 * deltac  # green is the max
    h3 = (gc - rc) + 4.0 * deltac  # blue is the max
    h = torch.stack((h1, h2, h3), dim=-3) / deltac.unsqueeze(-3)
    h = torch.gather(h, dim=-3, index=argmax_rgb.unsqueeze(-3)).squeeze(-3)
    h = (h / 6.0) % 1.0
    h = 2.0 * math.pi * h
    return torch.stack((h, s, v), dim=-3)


def hsv_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) HSV (H in radians, any real value, taken mod 2 pi) -> RGB in [0, 1]."""
    h = image[..., 0, :, :] / (2 * math.pi)
    s = image[..., 1, :, :]
    v = image[..., 2, :, :]
    hi = torch.floor(h * 6) % 6
    f = ((h * 6) % 6) - hi
    p = v * (1.0 - s)
    q = v * (1.0 - f * s)
    t = v * (1.0 - (1.0 - f) * s)
    hi = hi.long()
    indices = torch.stack([hi, hi + 6, hi + 12], dim=-3)
    out = torch.stack((v, q, p, p, t, v, t, v, v, q, p, p, p, p, t, v, v, q), dim=-3)
    return torch.gather(out, -3, indices)


# ----------------------------------------------------------------------------- colour ops


def adjust_brightness(img01: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> clamp(x + shift, 0, 1); shift (B,) = b - 1 (additive, kornia 0.5.8)."""
    return torch.clamp(img01 + _per_image(shift, img01), 0.0, 1.0)


def adjust_contrast(img01: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> clamp(x * c, 0, 1), no blending with the mean; factor (B,)."""
    return torch.clamp(img01 * _per_image(factor, img01), 0.0, 1.0)


def adjust_saturation(img01: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> RGB with HSV saturation clamp(S * s, 0, 1); factor (B,)."""
    h, s, v = torch.chunk(rgb_to_hsv(img01), chunks=3, dim=-3)
    s = torch.clamp(s * _per_image(factor, img01), 0.0, 1.0)
    return hsv_to_rgb(torch.cat([h, s, v], dim=-3))


def adjust_hue(img01: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> RGB with the HSV hue shifted by `shift` (B,) radians, mod 2 pi."""
    h, s, v = torch.chunk(rgb_to_hsv(img01), chunks=3, dim=-3)
    h = torch.fmod(h + _per_image(shift, img01), 2 * math.pi)
    return hsv_to_rgb(torch.cat([h, s, v], dim=-3))


@dataclass(frozen=True)
class ColorJitterParams:
    """The drawn colour-jitter factors of a batch; replay them with `color_jitter`."""

    brightness: torch.Tensor  # (B,) b in [1 - s, 1 + s]; the op adds b - 1
    contrast: torch.Tensor  # (B,) c in [1 - s, 1 + s]
    saturation: torch.Tensor  # (B,) saturation factor in [1 - s, 1 + s]
    hue: torch.Tensor  # (B,) h in [-s, s] turns; the op shifts the hue by h * 2 pi radians
    order: torch.Tensor  # (B, 4) op order per image: 0 brightness, 1 contrast, 2 sat., 3 hue


def sample_color_jitter_params(
    batch_size: int,
    generator: torch.Generator | None = None,
    strength: float = 0.2,
    shared_order: bool = False,
) -> ColorJitterParams:
    """Draw kornia-0.5.8 ColorJitter(strength x 4) parameters for `batch_size` images.

    Args:
        batch_size: B.
        generator: source of randomness (CPU generator).
        strength: s of the recipe (0.2): the range of b, c, saturation and h.
        shared_order: one op order for the whole batch (one kornia call on a batch, as MIC
            does) instead of one per image (DACS calls kornia per image).
    """

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + torch.rand(batch_size, generator=generator) * (high - low)

    brightness = uniform(1 - strength, 1 + strength)
    contrast = uniform(1 - strength, 1 + strength)
    hue = uniform(-strength, strength)
    saturation = uniform(1 - strength, 1 + strength)
    n_orders = 1 if shared_order else batch_size
    order = torch.stack([torch.randperm(4, generator=generator) for _ in range(n_orders)])
    return ColorJitterParams(
        brightness=brightness,
        contrast=contrast,
        saturation=saturation,
        hue=hue,
        order=order.expand(batch_size, 4),
    )


def color_jitter(img01: torch.Tensor, params: ColorJitterParams) -> torch.Tensor:
    """Apply drawn colour-jitter parameters to (B, 3, H, W) images in [0, 1].

    Returns:
        (B, 3, H, W) jittered images in [0, 1].
    """
    ops: list[Callable[[torch.Tensor, slice], torch.Tensor]] = [
        lambda x, i: adjust_brightness(x, params.brightness[i] - 1),
        lambda x, i: adjust_contrast(x, params.contrast[i]),
        lambda x, i: adjust_saturation(x, params.saturation[i]),
        lambda x, i: adjust_hue(x, params.hue[i] * 2 * math.pi),
    ]
    out = []
    for b in range(img01.shape[0]):
        x, i = img01[b : b + 1], slice(b, b + 1)  # (1, 3, H, W)
        for op_index in params.order[b].tolist():
            x = ops[op_index](x, i)
        out.append(x)
    return torch.cat(out)


# ----------------------------------------------------------------------------- Gaussian blur


def blur_kernel_size(length: int) -> int:
    """Kernel size along an axis of `length` pixels: ceil(0.1 L), minus 1 if even."""
    k = math.ceil(0.1 * length)
    return k if k % 2 == 1 else k - 1


def gaussian_kernel1d(size: int, sigma: float) -> torch.Tensor:
    """(size,) normalized Gaussian (kornia's `gaussian`), float32; `size` must be odd."""
    if size % 2 != 1:
        raise ValueError(f"kernel size must be odd, got {size}")
    x = torch.arange(size, dtype=torch.float32) - size // 2
    gauss = torch.exp(-x.pow(2.0) / float(2 * sigma**2))
    return gauss / gauss.sum()


def gaussian_blur(img: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own sigma, kernel sizes from its H and W, reflect padding.

    Args:
        img: (B, C, H, W) images (normalized or not).
        sigma: (B,) standard deviations in pixels.

    Returns:
        (B, C, H, W) blurred images.
    """
    batch, channels, height, width = img.shape
    k_y, k_x = blur_kernel_size(height), blur_kernel_size(width)
    sigmas = sigma.reshape(-1).tolist()
    if len(sigmas) != batch:
        raise ValueError(f"need one sigma per image: {len(sigmas)} for {batch}")
    kernel_y = torch.stack([gaussian_kernel1d(k_y, s) for s in sigmas]).to(img)  # (B, k_y)
    kernel_x = torch.stack([gaussian_kernel1d(k_x, s) for s in sigmas]).to(img)  # (B, k_x)
    # One depth-wise filter per (image, channel): (B*C, 1, k, 1) and (B*C, 1, 1, k).
    kernel_y = kernel_y.repeat_interleave(channels, dim=0).view(batch * channels, 1, k_y, 1)
    kernel_x = kernel_x.repeat_interleave(channels, dim=0).view(batch * channels, 1, 1, k_x)
    padded = F.pad(img, (k_x // 2, k_x // 2, k_y // 2, k_y // 2), mode="reflect")
    padded = padded.reshape(1, batch * channels, *padded.shape[-2:])  # (1, B*C, H', W')
    out = F.conv2d(padded, kernel_x, groups=batch * channels)
    out = F.conv2d(out, kernel_y, groups=batch * channels)
    return out.view(batch, channels, height, width)


# ----------------------------------------------------------------------------- strong augmentation


@dataclass(frozen=True)
class StrongAugParams:
    """Everything drawn for one strong augmentation of a batch (replayable)."""

    apply_color_jitter: bool  # gate u_cj > color_jitter_probability, shared by the batch
    color_jitter: ColorJitterParams  # per-image factors (drawn even when the gate is off)
    apply_blur: bool  # gate u_bl > 0.5, shared by the batch
    blur_sigma: torch.Tensor  # (B,) sigma in pixels, all equal for a batch-level draw


def sample_strong_aug_params(
    batch_size: int,
    generator: torch.Generator | None = None,
    color_jitter_probability: float = 0.2,
    color_jitter_strength: float = 0.2,
    blur: bool = True,
    batch_level: bool = False,
) -> StrongAugParams:
    """Draw the gates, colour factors and blur sigmas of a strong augmentation.

    Args:
        batch_size: B.
        generator: source of randomness (CPU generator).
        color_jitter_probability: p; jitter when u_cj > p (so with probability 1 - p = 0.8).
        color_jitter_strength: s; range of the colour factors.
        blur: False disables the blur (gate forced off).
        batch_level: MIC's variant: one op order and one sigma for the whole batch; the DACS
            variant (False) draws both per image.
    """
    u_cj, u_bl = torch.rand(2, generator=generator).tolist()
    jitter = sample_color_jitter_params(
        batch_size, generator, color_jitter_strength, shared_order=batch_level
    )
    n_sigmas = 1 if batch_level else batch_size
    sigma = 0.15 + torch.rand(n_sigmas, generator=generator, dtype=torch.float64) * 1.0
    return StrongAugParams(
        apply_color_jitter=u_cj > color_jitter_probability,
        color_jitter=jitter,
        apply_blur=blur and u_bl > 0.5,
        blur_sigma=sigma.expand(batch_size),
    )


def select_images(params: StrongAugParams, rows: slice) -> StrongAugParams:
    """The parameters of the images `rows` of the batch they were drawn for (a process's share
    of the global batch of a distributed run)."""
    jitter = params.color_jitter
    jitter = replace(
        jitter,
        brightness=jitter.brightness[rows],
        contrast=jitter.contrast[rows],
        saturation=jitter.saturation[rows],
        hue=jitter.hue[rows],
        order=jitter.order[rows],
    )
    return replace(params, color_jitter=jitter, blur_sigma=params.blur_sigma[rows])


def strong_augment(
    img: torch.Tensor,
    params: StrongAugParams,
    mean: tuple[float, float, float] = IMG_MEAN,
    std: tuple[float, float, float] = IMG_STD,
) -> torch.Tensor:
    """Colour jitter (in [0, 1] space) then Gaussian blur (in normalized space), if gated on.

    Args:
        img: (B, 3, H, W) normalized images.
        params: from `sample_strong_aug_params`.
        mean, std: the normalization of `img`, on the 0..255 scale.

    Returns:
        (B, 3, H, W) augmented normalized images (a new tensor; `img` is not modified).
    """
    if params.apply_color_jitter:
        img = normalize(color_jitter(denormalize(img, mean, std), params.color_jitter), mean, std)
    if params.apply_blur:
        img = gaussian_blur(img, params.blur_sigma)
    return img
