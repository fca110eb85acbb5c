"""A synthetic street-scene benchmark with HRDA's three difficulties, drawn on the CPU.

HRDA (Hoyer et al., ECCV 2022) targets (1) a domain gap between synthetic source and real
target images, (2) fine detail that low resolution loses and (3) context that small
high-resolution crops lack. This module draws street scenes through a pinhole camera (road,
sidewalks, facades, walls, fences, trees, terrain, sky, vehicles, people and riders, poles with
traffic lights and signs) whose label maps hold all 19 Cityscapes classes, and renders them in
two domains:

* source, written in GTA5's layout and label ids (`gta/images/00001.png`, palette label PNGs
  `gta/labels/00001.png` holding Cityscapes label ids), crisp, distinct class colours, lane
  markings;
* target, written in Cityscapes' layout (`cityscapes/leftImg8bit/<split>/<city>/...`,
  `..._gtFine_labelIds.png`): the palette blended 30 % toward a permuted palette, smooth
  texture, a brightness gradient, a colour cast, noise, blur, an ego-vehicle hood (void), and
  road and sidewalk in the SAME colour and texture, so that only layout separates them.

Thin and small objects (poles 2-3 px wide at 256x512, distant people, signs, lights, bicycle
frames) lose their shape at half resolution. Class frequencies are skewed like GTA's, with the
rare classes (rider, motorcycle, bicycle, train) large enough to be learnable. Everything is
deterministic for a seed: image i of a split draws from `default_rng([seed, domain, split, i])`.
The datasheet (measurements of these properties) is written by `hrda_lib.datasheet`.
"""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hrda_lib.classes import NUM_CLASSES, PALETTE
from hrda_lib.conversion import TRAIN_ID_TO_CITYSCAPES_ID, atomic_write_bytes, png_bytes
from hrda_lib.rcs import RCSConfig
from hrda_lib.synthetic_scene import (
    BARK,
    DARK,
    HOOD,
    LIGHT_MATERIAL,
    SKY,
    TERRAIN,
    VEGETATION,
    draw_scene,
)
from hrda_lib.transforms import PipelineConfig, scaled_margins

# Bumped whenever the drawn scenes change, so that a stale generated set is not reused.
GENERATOR_VERSION = 2
SOURCE, TARGET = 0, 1  # domain codes in the per-image seed
SPLIT_CODES = {"train": 0, "val": 1}
TARGET_CITIES = {"train": ("synthville", "synthburg", "synthdorf"), "val": ("synthstadt",)}
CS_ID_UNLABELED, CS_ID_EGO_VEHICLE = 0, 1  # Cityscapes void ids used for the 255 pixels

# Source rendering colour of each train id (RGB): distinct, roughly realistic.
SOURCE_COLORS = np.array(
    [
        (92, 88, 96), (168, 152, 138), (146, 108, 92), (180, 172, 146), (128, 100, 66),
        (108, 118, 128), (52, 50, 44), (206, 192, 48), (66, 124, 44), (146, 160, 78),
        (136, 180, 232), (178, 58, 74), (214, 104, 36), (40, 62, 150), (196, 196, 188),
        (206, 66, 44), (56, 156, 160), (118, 40, 128), (32, 128, 94),
    ],
    dtype=np.float32,
)  # fmt: skip
# Per-instance colour spread of each class (std of a per-channel offset).
INSTANCE_JITTER = np.array(
    [6, 8, 20, 12, 12, 10, 6, 12, 14, 10, 6, 28, 24, 30, 18, 20, 16, 20, 16], dtype=np.float32
)
VOID_COLOR = np.array((118, 112, 104), dtype=np.float32)
HOOD_COLOR = np.array((34, 36, 42), dtype=np.float32)
# The target palette moves toward the colour of another class (a fixed derangement).
PALETTE_PERMUTATION = np.roll(np.arange(NUM_CLASSES), 6)


@dataclass(frozen=True)
class SyntheticConfig:
    """Size of a synthetic benchmark variant."""

    height: int  # full-resolution image height, px
    width: int  # full-resolution image width, px
    n_source: int  # source (GTA-layout) images
    n_target_train: int  # target (Cityscapes-layout) training images, labels unused by UDA
    n_target_val: int  # target validation images
    palette_shift: float = 0.3  # how far the target palette moves toward the permuted palette


def tiny() -> SyntheticConfig:
    """64x128 images, 8 source / 6 target-train / 4 target-val: for tests (about a second)."""
    return SyntheticConfig(height=64, width=128, n_source=8, n_target_train=6, n_target_val=4)


def quick() -> SyntheticConfig:
    """256x512 images, 200 / 100 / 30: the CPU-scale benchmark (about a minute)."""
    return SyntheticConfig(height=256, width=512, n_source=200, n_target_train=100, n_target_val=30)


VARIANTS = {"tiny": tiny, "quick": quick}


def source_pipeline(config: SyntheticConfig) -> PipelineConfig:
    """Source (GTA layout) training pipeline: native size, square H x H crops, cat_max_ratio.

    The crop is the context crop of the CPU budget (256 x 256 of 256 x 512 for `quick`).
    """
    return PipelineConfig(
        scale=(config.width, config.height),
        crop_size=(config.height, config.height),
        cat_max_ratio=0.75,
    )


def target_pipeline(
    config: SyntheticConfig, margins: tuple[int, int, int, int] | None = None
) -> PipelineConfig:
    """Target (Cityscapes layout) training pipeline: native size, H x H crops, optional margins.

    `paper_margins(config)` gives HRDA's (30, 240, 30, 30) scaled to the synthetic size.
    """
    return PipelineConfig(
        scale=(config.width, config.height),
        crop_size=(config.height, config.height),
        margins=margins,
    )


def test_pipeline(config: SyntheticConfig) -> PipelineConfig:
    """Evaluation pipeline: native size, normalize, no flip."""
    return PipelineConfig(scale=(config.width, config.height))


def paper_margins(config: SyntheticConfig) -> tuple[int, int, int, int]:
    """HRDA's pseudo-label margins (30, 240, 30, 30) of 1024 x 2048, scaled to this size."""
    return scaled_margins((30, 240, 30, 30), (1024, 2048), (config.height, config.width))


def rcs_config(config: SyntheticConfig) -> RCSConfig:
    """HRDA's RCS with `min_pixels` 3000 scaled by the pixel count relative to 1024 x 2048."""
    ratio = config.height * config.width / (1024 * 2048)
    return RCSConfig(min_pixels=max(round(3000 * ratio), 1))


def target_colors(palette_shift: float) -> np.ndarray:
    """(K, 3) target colours: the source palette blended toward a permuted palette.

    Road and sidewalk get the same colour, so only layout distinguishes them in the target.
    """
    colors = (1 - palette_shift) * SOURCE_COLORS + palette_shift * SOURCE_COLORS[
        PALETTE_PERMUTATION
    ]
    colors[1] = colors[0]
    return colors


def render(
    label: np.ndarray,
    instance: np.ndarray,
    material: np.ndarray,
    rng: np.random.Generator,
    target: bool,
    palette_shift: float = 0.3,
) -> np.ndarray:
    """Colour a drawn scene: class colour + instance offset + material + domain texture.

    Args:
        label: (H, W) uint8 train ids, 255 void.
        instance: (H, W) int32 instance ids (one colour offset each).
        material: (H, W) uint8 0 base, 1 dark (windows, tyres), 2 light (markings, lamps),
            3 bark, 4 ego hood.
        rng: randomness of this image.
        target: render the target domain instead of the source.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    height, width = label.shape
    colors = target_colors(palette_shift) if target else SOURCE_COLORS
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
    if target:
        image = _target_style(image, foliage, luminance, rng)
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


def make_sample(
    config: SyntheticConfig, seed: int, domain: int, split: str, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image `index` of a domain's split, in memory.

    Returns:
        (H, W, 3) uint8 RGB image and (H, W) uint8 Cityscapes label ids (what is written).
    """
    rng = np.random.default_rng([seed, domain, SPLIT_CODES[split], index])
    label, instance, material = draw_scene(config.height, config.width, rng, domain == TARGET)
    image = render(label, instance, material, rng, domain == TARGET, config.palette_shift)
    label_ids = cityscapes_label_ids(label)
    label_ids[material == HOOD] = CS_ID_EGO_VEHICLE
    return image, label_ids


def cityscapes_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """(H, W) train ids -> Cityscapes label ids; void (255) becomes 'unlabeled' (0)."""
    table = np.full(256, CS_ID_UNLABELED, dtype=np.uint8)
    for train_id, label_id in TRAIN_ID_TO_CITYSCAPES_ID.items():
        table[train_id] = label_id
    return table[train_ids]


def label_id_palette() -> list[int]:
    """A 256-colour palette (flat RGB list) for label-id PNGs: each id in its class colour."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for train_id, label_id in TRAIN_ID_TO_CITYSCAPES_ID.items():
        palette[label_id] = PALETTE[train_id]
    return palette.ravel().tolist()


def _write_png_rgb(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    atomic_write_bytes(path, encoded.tobytes())


def sample_paths(root: Path, config: SyntheticConfig, domain: int, split: str, index: int):
    """(image path, raw label path) of one sample in the GTA or Cityscapes layout."""
    if domain == SOURCE:
        name = f"{index + 1:05d}.png"
        return root / "gta" / "images" / name, root / "gta" / "labels" / name
    cities = TARGET_CITIES[split]
    city = cities[index % len(cities)]
    stem = f"{city}_000000_{index:06d}"
    image = root / "cityscapes" / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
    label = root / "cityscapes" / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
    return image, label


def _write_sample(job: tuple) -> None:
    root, config, seed, domain, split, index = job
    img_path, label_path = sample_paths(root, config, domain, split, index)
    if img_path.is_file() and label_path.is_file():
        return
    image, label_ids = make_sample(config, seed, domain, split, index)
    img_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    palette = label_id_palette() if domain == SOURCE else None  # GTA labels are palette PNGs
    atomic_write_bytes(label_path, png_bytes(label_ids, palette))
    _write_png_rgb(img_path, image)


def marker_content(config: SyntheticConfig, seed: int) -> dict:
    """What `synthetic.json` records: the config, the seed and the generator version."""
    return {"config": asdict(config), "seed": seed, "generator_version": GENERATOR_VERSION}


def generate(root: Path, config: SyntheticConfig, seed: int = 0, nproc: int = 1) -> Path:
    """Write a synthetic benchmark under `root` (`gta/` and `cityscapes/`); returns `root`.

    Files already present are kept (a re-run completes an interrupted generation); a marker
    `synthetic.json` with the config, seed and generator version is written last.

    Raises:
        FileExistsError: `root` holds a set of another config, seed or generator version.
    """
    root = Path(root)
    jobs = [(root, config, seed, SOURCE, "train", i) for i in range(config.n_source)]
    jobs += [(root, config, seed, TARGET, "train", i) for i in range(config.n_target_train)]
    jobs += [(root, config, seed, TARGET, "val", i) for i in range(config.n_target_val)]
    root.mkdir(parents=True, exist_ok=True)
    marker, wanted = root / "synthetic.json", marker_content(config, seed)
    if marker.is_file() and json.loads(marker.read_text()) != wanted:
        raise FileExistsError(
            f"{root} holds a synthetic set of another config, seed or generator version "
            f"({marker.read_text()}, wanted {json.dumps(wanted)}): delete the folder to "
            "regenerate it, or choose another root"
        )
    if nproc <= 1:
        for job in tqdm(jobs, desc="synthetic scenes", disable=len(jobs) < 50):
            _write_sample(job)
    else:
        with multiprocessing.get_context("fork").Pool(nproc) as pool:
            list(tqdm(pool.imap_unordered(_write_sample, jobs, chunksize=4), total=len(jobs)))
    atomic_write_bytes(marker, json.dumps(wanted).encode())
    return root


def ensure_synthetic(root: Path, variant: str = "quick", seed: int = 0, nproc: int = 1) -> Path:
    """Generate (if needed) and convert a synthetic variant: ready for the dataset readers.

    Returns `root`; `root/gta` and `root/cityscapes` then hold `*_labelTrainIds.png` and the
    class statistics, exactly as `data_scripts/gta.py` and `data_scripts/cityscapes.py` make.
    """
    from hrda_lib.conversion import convert_cityscapes, convert_gta

    root = Path(root)
    marker = root / "synthetic.json"
    wanted = marker_content(VARIANTS[variant](), seed)
    converted = (root / "gta" / "samples_with_class.json").is_file() and (
        root / "cityscapes" / "samples_with_class.json"
    ).is_file()
    if marker.is_file() and json.loads(marker.read_text()) == wanted and converted:
        return root
    generate(root, VARIANTS[variant](), seed=seed, nproc=nproc)
    convert_gta(root / "gta", nproc=nproc)
    convert_cityscapes(root / "cityscapes", nproc=nproc)
    return root


def synthetic_root(variant: str = "quick", seed: int = 0) -> Path:
    """The default location of a synthetic variant: `<data_root>/synthetic_<variant>_s<seed>`."""
    from hrda_lib.paths import data_root

    return data_root() / f"synthetic_{variant}_s{seed}"
