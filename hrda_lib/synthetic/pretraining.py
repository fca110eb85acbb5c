"""The ImageNet stand-in: an object classification set drawn in a third, neutral style.

HRDA (like DAFormer) starts every encoder from ImageNet-pretrained weights, and its feature
distance keeps the thing classes near those ImageNet features during self-training. No ImageNet
can be downloaded here, so this module draws a classification set the same way ImageNet is
built, object-centric crops with one label each, from images that are neither source nor
target: street scenes of `scene.py` rendered in the `NEUTRAL` style of `render.py` (a third
palette and look), plus a distractor class of random shapes in random colours.

A sample is a `crop x crop` RGB patch and a class id in 0..19:

* a thing (pole, light, sign, person, rider, vehicles, two-wheelers): the bounding box of one
  instance, enlarged by `context` and squared, resized to the crop (ImageNet's framing: the
  object centred and filling much of the patch, whatever its size in the scene);
* a stuff class (road, sidewalk, building, wall, fence, vegetation, terrain, sky): a square
  window of 32-96 px around one of its pixels where it is the majority label;
* 19, distractor: random polygons, ellipses and lines on a random gradient.

Classes are drawn uniformly (a balanced set); scene `i` draws from `default_rng([seed, 2, i])`,
so the set is deterministic for a seed and independent of the benchmark's seeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from tqdm.auto import tqdm

from hrda_lib.classes import CLASSES, NUM_CLASSES, THING_CLASSES
from hrda_lib.synthetic.benchmark import GENERATOR_VERSION
from hrda_lib.synthetic.render import NEUTRAL, render
from hrda_lib.synthetic.scene import draw_scene

PRETRAINING_VERSION = 1  # bumped whenever the drawn set changes (the weights become stale)
DISTRACTOR = NUM_CLASSES  # class id of the random-shape distractors
NUM_PRETRAINING_CLASSES = NUM_CLASSES + 1
CLASS_NAMES: tuple[str, ...] = (*CLASSES, "distractor")
NEUTRAL_DOMAIN = 2  # the domain code in the per-scene seed (source 0, target 1)
POLE = 5
OBJECT_CLASSES = (POLE, *THING_CLASSES)  # cropped by instance; the others are stuff


@dataclass(frozen=True)
class PretrainingSetConfig:
    """Size of the neutral classification set."""

    n_scenes: int = 3000  # neutral street scenes drawn
    per_scene: int = 10  # samples cut from each scene (one class each, drawn uniformly)
    distractor_share: float = 0.05  # fraction of extra samples that are random shapes
    crop: int = 64  # px, side of a sample
    height: int = 256  # px, scene size (the quick benchmark's)
    width: int = 512
    context: float = 1.6  # an instance's box is enlarged by this before cropping

    @property
    def num_classes(self) -> int:
        return NUM_PRETRAINING_CLASSES

    def manifest(self) -> dict:
        """What the set depends on: its sizes, its own version and the scenes' generator."""
        return {
            **asdict(self),
            "version": PRETRAINING_VERSION,
            "scene_generator": GENERATOR_VERSION,
        }


def _instance_crop(
    image: np.ndarray, mask: np.ndarray, context: float, rng: np.random.Generator
) -> tuple[int, int, int]:
    """(y_centre, x_centre, side) of a square box around the pixels of `mask`, enlarged by
    `context` (at least 24 px), with a small random shift."""
    ys, xs = np.nonzero(mask)
    y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(int(max(y2 - y1, x2 - x1) * context), 24)
    shift = rng.uniform(-0.1, 0.1, 2) * side
    return int((y1 + y2) / 2 + shift[0]), int((x1 + x2) / 2 + shift[1]), side


def _stuff_crop(
    label: np.ndarray, cls: int, rng: np.random.Generator, tries: int = 8
) -> tuple[int, int, int] | None:
    """A window of 32-96 px around a pixel of `cls` in which `cls` is the majority label."""
    ys, xs = np.nonzero(label == cls)
    for _ in range(tries):
        i = rng.integers(len(ys))
        side = int(rng.integers(32, 97))
        y, x = int(ys[i]), int(xs[i])
        window = _cut(label[..., None], y, x, side, fill=255)[..., 0]
        if (window == cls).mean() > 0.5:
            return y, x, side
    return None


def _cut(image: np.ndarray, y: int, x: int, side: int, fill: int = 0) -> np.ndarray:
    """The `side` x `side` window centred at (y, x), padded with `fill` outside the image."""
    pad = side
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
    if padded.ndim == 2:
        padded = padded[..., None]
    top, left = y - side // 2 + pad, x - side // 2 + pad
    return padded[top : top + side, left : left + side]


def scene_samples(
    config: PretrainingSetConfig, seed: int, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """The samples of neutral scene `index`: (n, crop, crop, 3) uint8 and (n,) int64 labels."""
    rng = np.random.default_rng([seed, NEUTRAL_DOMAIN, index])
    label, instance, material = draw_scene(config.height, config.width, rng, target=False)
    image = render(label, instance, material, rng, NEUTRAL)
    present = [k for k in np.unique(label) if k < NUM_CLASSES]
    crops, classes = [], []
    for cls in rng.choice(present, size=config.per_scene, replace=True):
        if cls in OBJECT_CLASSES:
            ids = np.unique(instance[label == cls])
            mask = (instance == rng.choice(ids)) & (label == cls)
            box = _instance_crop(image, mask, config.context, rng)
        else:
            box = _stuff_crop(label, int(cls), rng)
            if box is None:
                continue
        patch = _cut(image, *box)
        crops.append(cv2.resize(patch, (config.crop, config.crop), interpolation=cv2.INTER_AREA))
        classes.append(int(cls))
    empty = np.zeros((0, config.crop, config.crop, 3), dtype=np.uint8)
    return (np.stack(crops) if crops else empty), np.array(classes, dtype=np.int64)


def distractor(config: PretrainingSetConfig, seed: int, index: int) -> np.ndarray:
    """A (crop, crop, 3) uint8 patch of random shapes in random colours on a random gradient."""
    rng = np.random.default_rng([seed, NEUTRAL_DOMAIN + 1, index])
    size = config.crop
    ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    image = rng.uniform(0, 255, 3) * (1 - ramp) + rng.uniform(0, 255, 3) * ramp
    image = np.broadcast_to(image, (size, size, 3)).astype(np.uint8).copy()
    for _ in range(rng.integers(2, 7)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0:
            points = rng.integers(0, size, (int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(image, [points], colour)
        elif kind == 1:
            centre = tuple(int(c) for c in rng.integers(0, size, 2))
            axes = tuple(int(a) for a in rng.integers(2, size // 2, 2))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        else:
            a, b = (tuple(int(c) for c in rng.integers(0, size, 2)) for _ in range(2))
            cv2.line(image, a, b, colour, int(rng.integers(1, 5)))
    return image


def build_set(
    config: PretrainingSetConfig, seed: int = 0, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The whole set: (N, crop, crop, 3) uint8 images and (N,) int64 labels in 0..19."""
    images, labels = [], []
    for index in tqdm(range(config.n_scenes), desc="neutral scenes", disable=not progress):
        crops, classes = scene_samples(config, seed, index)
        images.append(crops)
        labels.append(classes)
    n_distractors = max(int(config.distractor_share * sum(len(c) for c in labels)), 1)
    images.append(np.stack([distractor(config, seed, i) for i in range(n_distractors)]))
    labels.append(np.full(n_distractors, DISTRACTOR, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)
