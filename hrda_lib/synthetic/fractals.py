"""A formula-driven alternative to the ImageNet stand-in: FractalDB-style categories.

FractalDB (Kataoka et al., "Pre-training without Natural Images", ACCV 2020) pretrains
classifiers on images of fractals: each category is an iterated function system (IFS) of 2-8
random 2-D affine maps, kept when its attractor fills enough of the image (filling rate >= 0.2
there), and the instances of a category render the same system with each parameter jittered,
in another colour, pose and scale. Written here from the paper's description at the neutral
set's size (64 px samples, about 27,600 of them), so that `hrda_lib.pretrain --set fractal`
trains the same encoder with the same recipe and budget on it, and the two can be compared
downstream (docs/data.md, "The ImageNet stand-in").

Rendering is the chaos game, vectorized: `points` random walkers apply `steps` randomly chosen
maps (probability by the maps' |determinant|, as FractalDB) and the walkers' last positions are
drawn. Category `c` draws from `default_rng([seed, 3, c])`, instance `i` of it from
`default_rng([seed, 3, c, i])`: the set is deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

FRACTAL_VERSION = 1  # bumped whenever the drawn set changes (weights made from it become stale)
FRACTAL_DOMAIN = 3  # the domain code in the per-category seed (source 0, target 1, neutral 2)


@dataclass(frozen=True)
class FractalSetConfig:
    """Size and drawing of the fractal classification set."""

    n_categories: int = 100  # IFS categories (FractalDB-1k has 1000)
    per_category: int = 276  # instances per category (100 x 276: the neutral set's size)
    crop: int = 64  # px, side of a sample
    min_maps: int = 2  # affine maps per system, drawn in [min_maps, max_maps]
    max_maps: int = 8
    min_filling: float = 0.2  # share of the image the attractor must cover (FractalDB: 0.2)
    jitter: float = 0.1  # instances scale each map parameter by U[1 - jitter, 1 + jitter]
    points: int = 3000  # chaos-game walkers per image
    steps: int = 12  # maps applied to each walker

    @property
    def num_classes(self) -> int:
        return self.n_categories

    def manifest(self) -> dict:
        """What the set depends on: its sizes and drawing, and its own version."""
        return {**asdict(self), "kind": "fractal", "version": FRACTAL_VERSION}


def attractor(maps: np.ndarray, points: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """(points, 2) positions of the chaos game on the system `maps` (n, 2, 3): x <- A x + b."""
    det = np.abs(np.linalg.det(maps[:, :, :2]))
    p = det / det.sum() if det.sum() > 0 else np.full(len(maps), 1 / len(maps))
    xy = rng.uniform(-1, 1, (points, 2))
    for choice in rng.choice(len(maps), size=(steps, points), p=p):
        m = maps[choice]  # (points, 2, 3)
        xy = np.einsum("pij,pj->pi", m[:, :, :2], xy) + m[:, :, 2]
    return xy


def render(xy: np.ndarray, size: int, colour: np.ndarray, fill: float) -> np.ndarray:
    """(size, size, 3) uint8: the points scaled into a centred square of side `fill * size`
    (aspect kept) in `colour` on black; a blank image if they diverged."""
    image = np.zeros((size, size, 3), dtype=np.uint8)
    if not np.isfinite(xy).all():
        return image
    low, high = xy.min(0), xy.max(0)
    extent = max(float((high - low).max()), 1e-9)
    cells = (xy - (low + high) / 2) / extent * (fill * (size - 1)) + (size - 1) / 2
    ij = np.clip(np.round(cells).astype(int), 0, size - 1)
    image[ij[:, 1], ij[:, 0]] = colour
    return image


def filling_rate(xy: np.ndarray, size: int) -> float:
    """Share of a size x size image the rendered attractor covers."""
    return float((render(xy, size, np.full(3, 255), 1.0)[..., 0] > 0).mean())


def category(config: FractalSetConfig, seed: int, index: int) -> np.ndarray:
    """The (n, 2, 3) affine maps of category `index`: systems with entries U[-1, 1] are drawn
    until one converges and fills at least `min_filling` of the image."""
    rng = np.random.default_rng([seed, FRACTAL_DOMAIN, index])
    while True:
        n = int(rng.integers(config.min_maps, config.max_maps + 1))
        maps = rng.uniform(-1, 1, (n, 2, 3))
        xy = attractor(maps, config.points, config.steps, rng)
        if np.isfinite(xy).all() and np.abs(xy).max() < 1e6:
            if filling_rate(xy, config.crop) >= config.min_filling:
                return maps


def instance(config: FractalSetConfig, maps: np.ndarray, seed: int, cat: int, i: int):
    """One (crop, crop, 3) uint8 sample of a category: jittered maps, a random bright colour,
    a random flip and 90-degree rotation, the attractor filling 60-100 % of the side."""
    rng = np.random.default_rng([seed, FRACTAL_DOMAIN, cat, i])
    jittered = maps * rng.uniform(1 - config.jitter, 1 + config.jitter, maps.shape)
    xy = attractor(jittered, config.points, config.steps, rng)
    colour = rng.integers(64, 256, 3).astype(np.uint8)
    image = render(xy, config.crop, colour, float(rng.uniform(0.6, 1.0)))
    image = np.rot90(image, int(rng.integers(4)))
    return np.ascontiguousarray(image[:, ::-1] if rng.random() < 0.5 else image)


def build_fractal_set(
    config: FractalSetConfig, seed: int = 0, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The whole set: (N, crop, crop, 3) uint8 images and (N,) int64 category labels."""
    images, labels = [], []
    for cat in tqdm(range(config.n_categories), desc="fractal categories", disable=not progress):
        maps = category(config, seed, cat)
        images.extend(instance(config, maps, seed, cat, i) for i in range(config.per_category))
        labels.extend([cat] * config.per_category)
    return np.stack(images), np.asarray(labels, dtype=np.int64)
