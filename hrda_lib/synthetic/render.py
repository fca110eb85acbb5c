"""Rendering of the synthetic benchmark's scenes: class colours, instance offsets, materials and
the look of each domain.

* source (GTA's role): crisp, distinct class colours, fine per-pixel noise;
* target (Cityscapes' role): the palette blended 30 % toward a permuted palette, road and
  sidewalk in the SAME colour (only layout separates them), blotchy texture, a brightness
  gradient, a colour cast, sensor noise and blur;
* neutral (ImageNet's role, `hrda_lib.synthetic.pretraining`): a third palette, blended toward
  another permutation, with a random colour cast per image and mild texture: neither domain.
"""

from __future__ import annotations

import cv2
import numpy as np

from hrda_lib.classes import NUM_CLASSES
from hrda_lib.errors import UsageError
from hrda_lib.synthetic.scene import BARK, DARK, HOOD, LIGHT_MATERIAL, SKY, TERRAIN, VEGETATION

SOURCE, TARGET, NEUTRAL = "source", "target", "neutral"  # the rendering styles

# Source rendering colour of each train id (RGB): distinct, roughly realistic.
SOURCE_COLORS = np.array(
    [
        (92, 88, 96),
        (168, 152, 138),
        (146, 108, 92),
        (180, 172, 146),
        (128, 100, 66),
        (108, 118, 128),
        (52, 50, 44),
        (206, 192, 48),
        (66, 124, 44),
        (146, 160, 78),
        (136, 180, 232),
        (178, 58, 74),
        (214, 104, 36),
        (40, 62, 150),
        (196, 196, 188),
        (206, 66, 44),
        (56, 156, 160),
        (118, 40, 128),
        (32, 128, 94),
    ],
    dtype=np.float32,
)
# Per-instance colour spread of each class (std of a per-channel offset).
INSTANCE_JITTER = np.array(
    [6, 8, 20, 12, 12, 10, 6, 12, 14, 10, 6, 28, 24, 30, 18, 20, 16, 20, 16], dtype=np.float32
)
VOID_COLOR = np.array((118, 112, 104), dtype=np.float32)
HOOD_COLOR = np.array((34, 36, 42), dtype=np.float32)
# The target palette moves toward the colour of another class (a fixed derangement).
PALETTE_PERMUTATION = np.roll(np.arange(NUM_CLASSES), 6)
# The neutral (pretraining) palette moves toward yet another derangement.
NEUTRAL_PERMUTATION = np.roll(np.arange(NUM_CLASSES), 11)


def target_colors(palette_shift: float) -> np.ndarray:
    """(K, 3) target colours: the source palette blended toward a permuted palette.

    Road and sidewalk get the same colour, so only layout distinguishes them in the target.
    """
    colors = (1 - palette_shift) * SOURCE_COLORS + palette_shift * SOURCE_COLORS[
        PALETTE_PERMUTATION
    ]
    colors[1] = colors[0]
    return colors


def neutral_colors(palette_shift: float) -> np.ndarray:
    """(K, 3) colours of the neutral style: the source palette blended toward a third
    permutation (road and sidewalk stay distinct)."""
    return (1 - palette_shift) * SOURCE_COLORS + palette_shift * SOURCE_COLORS[NEUTRAL_PERMUTATION]


def render(
    label: np.ndarray,
    instance: np.ndarray,
    material: np.ndarray,
    rng: np.random.Generator,
    style: str,
    palette_shift: float = 0.3,
) -> np.ndarray:
    """Colour a drawn scene: class colour + instance offset + material + domain texture.

    Args:
        label: (H, W) uint8 train ids, 255 void.
        instance: (H, W) int32 instance ids (one colour offset each).
        material: (H, W) uint8 0 base, 1 dark (windows, tyres), 2 light (markings, lamps),
            3 bark, 4 ego hood.
        rng: randomness of this image.
        style: `SOURCE`, `TARGET` or `NEUTRAL` (see the module docstring).
        palette_shift: how far the target and neutral palettes move from the source's.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    height, width = label.shape
    if style not in (SOURCE, TARGET, NEUTRAL):
        raise UsageError(f"style must be {SOURCE!r}, {TARGET!r} or {NEUTRAL!r}, not {style!r}")
    colors = {
        SOURCE: SOURCE_COLORS,
        TARGET: target_colors(palette_shift),
        NEUTRAL: neutral_colors(palette_shift),
    }[style]
    table = np.concatenate([colors, np.tile(VOID_COLOR, (256 - NUM_CLASSES, 1))])
    jitter_scale = np.concatenate([INSTANCE_JITTER, np.full(256 - NUM_CLASSES, 10.0)])
    n_instances = int(instance.max()) + 1
    offsets = rng.normal(0.0, 1.0, (n_instances, 3)).astype(np.float32)
    image = table[label] + offsets[instance] * jitter_scale[label][..., None]

    image[material == DARK] *= 0.45
    light = material == LIGHT_MATERIAL
    image[light] = 0.25 * image[light] + 0.75 * np.float32(236)
    image[material == BARK] = (88, 64, 46)
    image[material == HOOD] = HOOD_COLOR

    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = label == SKY
    image[sky] += (40 * rows * np.ones((1, width, 1), dtype=np.float32))[sky]  # lighter at horizon
    foliage = (label == VEGETATION) | (label == TERRAIN)
    luminance = rng.normal(0.0, 1.0, (height, width)).astype(np.float32)
    if style == TARGET:
        image = _target_style(image, foliage, luminance, rng)
    elif style == NEUTRAL:
        image = _neutral_style(image, foliage, luminance, rng)
    else:
        image += (6.0 + 16.0 * foliage)[..., None] * luminance[..., None]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """(H, W) low-frequency noise in about [-1, 1]: a coarse random grid, bicubic upsampled."""
    coarse = rng.normal(0.0, 1.0, (max(height // cell, 2), max(width // cell, 2)))
    return cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def _target_style(
    image: np.ndarray, foliage: np.ndarray, luminance: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The target look: blotchy texture, brightness gradient, colour cast, noise, blur."""
    height, width = image.shape[:2]
    scale = width / 512
    blotches = _smooth_noise(rng, height, width, max(int(24 * scale), 2))
    image = image * (1 + 0.07 * blotches[..., None])
    image += (14.0 * foliage)[..., None] * cv2.GaussianBlur(luminance, (0, 0), 1.0)[..., None]
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) * 0.5 + 0.5
    image = image * (0.78 + 0.34 * ramp)[..., None]  # brightness gradient 0.78 .. 1.12
    image = image * rng.normal(1.0, 0.05, 3).astype(np.float32)  # colour cast
    image += rng.normal(0.0, 4.0, image.shape).astype(np.float32)  # sensor noise
    return cv2.GaussianBlur(image, (0, 0), max(0.8 * scale, 0.3))


def _neutral_style(
    image: np.ndarray, foliage: np.ndarray, luminance: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The neutral look: a random brightness and colour cast per image, grain, a light blur."""
    scale = image.shape[1] / 512
    image += (10.0 * foliage)[..., None] * luminance[..., None]
    image = image * rng.uniform(0.7, 1.2) * rng.normal(1.0, 0.1, 3).astype(np.float32)
    image += rng.normal(0.0, 3.0, image.shape).astype(np.float32)
    return cv2.GaussianBlur(image, (0, 0), max(0.5 * scale, 0.3))
