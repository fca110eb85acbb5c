"""The synthetic benchmark on disk: variants, one sample in memory, and the source and target sets
written in the official layouts so that the same conversion scripts and readers run on it.

* source, in GTA5's layout and label ids (`gta/images/00001.png`, palette label PNGs
  `gta/labels/00001.png` holding Cityscapes label ids);
* target, in Cityscapes' layout (`cityscapes/leftImg8bit/<split>/<city>/...`,
  `..._gtFine_labelIds.png`), with an ego-vehicle hood (void).

Everything is deterministic for a seed: image i of a split draws from
`default_rng([seed, domain, split, i])`. Scenes come from `scene.py`, their look from
`render.py`.
"""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hrda_lib.classes import PALETTE
from hrda_lib.conversion import (
    TRAIN_ID_TO_CITYSCAPES_ID,
    convert_cityscapes,
    convert_gta,
    png_bytes,
)
from hrda_lib.files import atomic_write_bytes
from hrda_lib.paths import data_root
from hrda_lib.synthetic.render import SOURCE as SOURCE_STYLE
from hrda_lib.synthetic.render import TARGET as TARGET_STYLE
from hrda_lib.synthetic.render import render
from hrda_lib.synthetic.scene import HOOD, draw_scene

# Bumped whenever the drawn scenes change, so that a stale generated set is not reused.
GENERATOR_VERSION = 4
SOURCE, TARGET = 0, 1  # domain codes in the per-image seed
SPLIT_CODES = {"train": 0, "val": 1}
TARGET_CITIES = {"train": ("synthville", "synthburg", "synthdorf"), "val": ("synthstadt",)}
CS_ID_UNLABELED, CS_ID_EGO_VEHICLE = 0, 1  # Cityscapes void ids used for the 255 pixels


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


def make_sample(
    config: SyntheticConfig, seed: int, domain: int, split: str, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image `index` of a domain's split, in memory.

    Returns:
        (H, W, 3) uint8 RGB image and (H, W) uint8 Cityscapes label ids (what is written).
    """
    rng = np.random.default_rng([seed, domain, SPLIT_CODES[split], index])
    label, instance, material = draw_scene(config.height, config.width, rng, domain == TARGET)
    style = TARGET_STYLE if domain == TARGET else SOURCE_STYLE
    image = render(label, instance, material, rng, style, config.palette_shift)
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


def write_sample(job: tuple) -> None:
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
            write_sample(job)
    else:
        with multiprocessing.get_context("fork").Pool(nproc) as pool:
            list(tqdm(pool.imap_unordered(write_sample, jobs, chunksize=4), total=len(jobs)))
    atomic_write_bytes(marker, json.dumps(wanted).encode())
    return root


def ensure_synthetic(root: Path, variant: str = "quick", seed: int = 0, nproc: int = 1) -> Path:
    """Generate (if needed) and convert a synthetic variant: ready for the dataset readers.

    Returns `root`; `root/gta` and `root/cityscapes` then hold `*_labelTrainIds.png` and the
    class statistics, exactly as `data_scripts/gta.py` and `data_scripts/cityscapes.py` make.
    """
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
    return data_root() / f"synthetic_{variant}_s{seed}"
