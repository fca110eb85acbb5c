"""Dataset readers and the UDA / domain-generalization training datasets of HRDA.

Implements the data side of HRDA's training (reference spec sections 3.8, 3.10): readers for
GTA, Synthia, Cityscapes, ACDC, Dark Zurich, BDD100K and Mapillary in their official layouts
(see `hrda_lib.layout`), the `UDADataset` that pairs a source sample with a random target
sample (with optional rare class sampling), and the source-only dataset of the DG extension.

Randomness: sample `index` draws every random choice from `np.random.default_rng([seed,
index])`, so a sample is the same in any worker, process or order, and no worker seeding is
needed. Any index >= 0 is valid (it selects file `index % n_files`), so a sampler can hand out
fresh indices forever: `InfiniteSampler` does, and gives every draw a new crop and flip.
Images are decoded inside the DataLoader workers (`__getitem__` reads the files); call
`cv2.setNumThreads(0)` in the training process before starting workers, as mmseg does, so
that N workers do not each start an OpenCV thread pool.

Sample dict contract (what the trainer reads):
    img               (3, H, W) float32 normalized RGB
    gt_semantic_seg   (H, W) int64 train ids, 255 = ignore (absent for unlabelled sets)
    valid_pseudo_mask (H, W) uint8 margin mask, all ones without margins (training samples)
    img_path          str
    crop_box          (4,) int64 (y1, y2, x1, x2) in the resized image (training samples)
    flip              bool tensor (training samples)
A test sample holds `img` at the test scale and `gt_semantic_seg` at the ORIGINAL label size
(evaluation resizes the logits to it, as mmseg does).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from hrda_lib.errors import UnknownNameError, UsageError
from hrda_lib.layout import (
    PairLayout,
    acdc_layout,
    bdd100k_layout,
    cityscapes_layout,
    dark_zurich_layout,
    find_pairs,
    gta_layout,
    mapillary_layout,
    synthia_layout,
)
from hrda_lib.rcs import RareClassSampler, RCSConfig, build_rare_class_sampler, crop_has_rare_class
from hrda_lib.transforms import (
    PipelineConfig,
    crop_flip_normalize,
    resize_to_scale,
    test_transform,
)


def read_image(path: Path | str) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (decoded with OpenCV)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label(path: Path | str) -> np.ndarray:
    """A train-id label PNG as (H, W) uint8."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise OSError(f"cannot read label {path}")
    if label.ndim != 2:
        raise UsageError(f"{path}: expected a single-channel train-id PNG, got {label.shape}")
    return label


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample `index` of a dataset seeded with `seed`."""
    return np.random.default_rng([seed, index])


class SegmentationDataset(Dataset):
    """One split of one dataset with its pipeline: a list of (image, label) files.

    Args:
        pairs: (image, label or None) paths, e.g. from `hrda_lib.layout.find_pairs`.
        pipeline: resize/crop/flip settings of this dataset.
        train: training pipeline (random crop, flip, margin mask) or test pipeline.
        seed: base seed of the per-sample generators.
        load_labels: False drops the labels (a UDA target must not see them).
        root: the dataset root holding the conversion statistics (needed by RCS).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path | None]],
        pipeline: PipelineConfig,
        train: bool = True,
        seed: int = 0,
        load_labels: bool = True,
        root: Path | None = None,
    ) -> None:
        if not pairs:
            raise UsageError("a dataset needs at least one image")
        self.img_paths = [Path(img) for img, _ in pairs]
        labels = [label for _, label in pairs] if load_labels else [None] * len(pairs)
        self.label_paths = [Path(p) if p is not None else None for p in labels]
        self.pipeline, self.train, self.seed, self.root = pipeline, train, seed, root

    def __len__(self) -> int:
        return len(self.img_paths)

    @property
    def labelled(self) -> bool:
        return self.label_paths[0] is not None

    def load(self, file_index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Decode file `file_index`: (H, W, 3) uint8 RGB and (H, W) uint8 label or None."""
        label_path = self.label_paths[file_index]
        label = read_label(label_path) if label_path is not None else None
        return read_image(self.img_paths[file_index]), label

    def transform(
        self, image: np.ndarray, label: np.ndarray | None, rng: np.random.Generator
    ) -> dict[str, torch.Tensor]:
        """Run the training pipeline on decoded arrays and convert to the sample contract."""
        return self.crop(resize_to_scale(image, label, self.pipeline), rng)

    def crop(self, resized: tuple, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """The random part of the training pipeline on `resize_to_scale` output, as tensors."""
        out = crop_flip_normalize(*resized, self.pipeline, rng)
        sample = {
            "img": torch.from_numpy(out["img"]),
            "valid_pseudo_mask": torch.from_numpy(out["valid_pseudo_mask"]),
            "crop_box": torch.tensor(out["crop_box"], dtype=torch.int64),
            "flip": torch.tensor(out["flip"]),
        }
        if "gt_semantic_seg" in out:
            sample["gt_semantic_seg"] = torch.from_numpy(out["gt_semantic_seg"]).long()
        return sample

    def sample(self, file_index: int, rng: np.random.Generator) -> dict:
        """The sample of file `file_index` with the randomness of `rng`."""
        image, label = self.load(file_index)
        if self.train:
            sample = self.transform(image, label, rng)
        else:
            sample = {"img": torch.from_numpy(test_transform(image, self.pipeline))}
            if label is not None:
                sample["gt_semantic_seg"] = torch.from_numpy(label).long()
        sample["img_path"] = str(self.img_paths[file_index])
        return sample

    def __getitem__(self, index: int) -> dict:
        return self.sample(index % len(self), sample_rng(self.seed, index))


def rare_class_sample(
    source: SegmentationDataset, sampler: RareClassSampler, rng: np.random.Generator
) -> dict:
    """Draw a rare class and a file with it, re-cropping until the crop shows the class.

    The file is decoded and resized once (both deterministic); crop and flip run at most
    `1 + max_recrops` times on it (the official code re-runs the whole pipeline, with the same
    result for the same random draws).
    """
    rare_class, file_index = sampler.sample(rng)
    resized = resize_to_scale(*source.load(file_index), source.pipeline)
    sample = source.crop(resized, rng)
    for _ in range(sampler.config.max_recrops):
        if crop_has_rare_class(sample["gt_semantic_seg"].numpy(), rare_class, sampler.config):
            break
        sample = source.crop(resized, rng)
    sample["img_path"] = str(source.img_paths[file_index])
    sample["rare_class"] = torch.tensor(rare_class)
    return sample


def sync_crop(sample: dict, size: tuple[int, int], rng: np.random.Generator) -> dict:
    """Cut one common window of `size` at the same random offset from every spatial tensor of
    a (UDA) sample: source image and label, target image and margin mask (the official
    `sync_crop_size` of the small-crop rows, so that ClassMix pastes line up).

    The offset is uniform over all positions, y first, as mmseg's random crop draws it.
    """
    height, width = sample["img"].shape[-2:]
    crop_h, crop_w = min(size[0], height), min(size[1], width)
    y = int(rng.integers(height - crop_h + 1))
    x = int(rng.integers(width - crop_w + 1))
    out = dict(sample)
    for key, value in sample.items():
        if torch.is_tensor(value) and value.ndim >= 2 and value.shape[-2:] == (height, width):
            out[key] = value[..., y : y + crop_h, x : x + crop_w].contiguous()
    return out


def _rare_class_sampler(source: SegmentationDataset, rcs: RCSConfig | None):
    if rcs is None:
        return None
    if source.root is None or not source.labelled:
        raise ValueError("rare class sampling needs a labelled source with a `root`")
    return build_rare_class_sampler(source.root, source.label_paths, rcs)


class UDADataset(Dataset):
    """Source sample `index % |S|` (or a rare-class sample) with a uniformly random target.

    Returns the source sample's keys plus `target_img`, `target_valid_pseudo_mask` and
    `target_img_path`. The length is |S| * |T| as in the official UDADataset.
    """

    def __init__(
        self,
        source: SegmentationDataset,
        target: SegmentationDataset,
        rcs: RCSConfig | None = None,
        seed: int = 0,
        sync_crop_size: tuple[int, int] | None = None,
    ) -> None:
        if not (source.train and target.train):
            raise ValueError("UDADataset needs training pipelines for source and target")
        self.source, self.target, self.seed = source, target, seed
        self.rare_class_sampler = _rare_class_sampler(source, rcs)
        self.sync_crop_size = sync_crop_size

    def __len__(self) -> int:
        return len(self.source) * len(self.target)

    def __getitem__(self, index: int) -> dict:
        rng = sample_rng(self.seed, index)
        if self.rare_class_sampler is not None:
            sample = rare_class_sample(self.source, self.rare_class_sampler, rng)
        else:
            sample = self.source.sample(index % len(self.source), rng)
        target = self.target.sample(int(rng.integers(len(self.target))), rng)
        sample["target_img"] = target["img"]
        sample["target_valid_pseudo_mask"] = target["valid_pseudo_mask"]
        sample["target_img_path"] = target["img_path"]
        if self.sync_crop_size is not None:
            sample = sync_crop(sample, self.sync_crop_size, rng)
        return sample


class SourceOnlyDataset(Dataset):
    """Domain generalization: source samples only, with optional rare class sampling."""

    def __init__(
        self,
        source: SegmentationDataset,
        rcs: RCSConfig | None = None,
        seed: int = 0,
        sync_crop_size: tuple[int, int] | None = None,
    ) -> None:
        self.source, self.seed = source, seed
        self.rare_class_sampler = _rare_class_sampler(source, rcs)
        self.sync_crop_size = sync_crop_size

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        rng = sample_rng(self.seed, index)
        if self.rare_class_sampler is not None:
            sample = rare_class_sample(self.source, self.rare_class_sampler, rng)
        else:
            sample = self.source.sample(index % len(self.source), rng)
        if self.sync_crop_size is not None:
            sample = sync_crop(sample, self.sync_crop_size, rng)
        return sample


class InfiniteSampler(Sampler[int]):
    """Endless indices: epoch e yields `e * n + permutation_e(range(n))`.

    Every index is new, so every draw gets its own crop, flip and target pairing, while the
    file order is a fresh permutation per epoch. Seeded by `seed` (torch generator).
    """

    def __init__(self, length: int, seed: int = 0) -> None:
        self.length, self.seed = length, seed

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed)
        epoch = 0
        while True:
            for i in torch.randperm(self.length, generator=generator).tolist():
                yield epoch * self.length + i
            epoch += 1


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: seed the global `random` and numpy RNGs per worker.

    This library's samples never read them (see the module docstring); the seeding protects
    third-party augmentations. OpenCV's thread count must not be changed inside a forked worker
    (`cv2.setNumThreads` there can deadlock): set it in the parent before the loader starts.
    """
    seed = torch.initial_seed() % 2**32  # distinct per worker: base_seed + worker_id
    random.seed(seed)
    np.random.seed(seed)


# --- the dataset table (official layouts, see hrda_lib.layout) ---------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its layout per split and the splits a run trains and evaluates on.

    `layout(root, split, labels)` gives the pairs' layout (`labels=False`: the images only, as a
    UDA target reads them). A dataset without `train_split` is for evaluation only (domain
    generalization); one whose train split has no labels is a target only.
    """

    layout: Callable[[Path, str, bool], PairLayout]
    train_split: str | None  # split that a source or a target trains on
    val_split: str  # labelled split that evaluation reads
    labelled_train: bool  # the train split has labels (can be a source)
    synthia_classes: bool = False  # report Synthia's 16- and 13-class means too


DATASETS: dict[str, DatasetSpec] = {
    "gta": DatasetSpec(lambda root, split, labels: gta_layout(root), "train", "train", True),
    "synthia": DatasetSpec(
        lambda root, split, labels: synthia_layout(root), "train", "train", True, True
    ),
    "cityscapes": DatasetSpec(cityscapes_layout, "train", "val", True),
    "acdc": DatasetSpec(acdc_layout, "train", "val", True),
    "dark_zurich": DatasetSpec(
        lambda root, split, labels: dark_zurich_layout(root, split), "train", "val", False
    ),
    "bdd100k": DatasetSpec(
        lambda root, split, labels: bdd100k_layout(root, split), None, "val", False
    ),
    "mapillary": DatasetSpec(
        lambda root, split, labels: mapillary_layout(root, split), None, "validation", False
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The table entry of dataset `name` (one line naming the valid ones if unknown)."""
    if name not in DATASETS:
        raise UnknownNameError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def read_dataset(
    name: str,
    root: Path,
    split: str,
    pipeline: PipelineConfig,
    train: bool = True,
    labels: bool = True,
    seed: int = 0,
    check_sizes: bool = True,
) -> SegmentationDataset:
    """Check a split's layout and wrap its pairs (labels of an unlabelled layout are None).

    Args:
        name: a key of `DATASETS`.
        root: the dataset's folder in its official layout.
        split: a split folder ("train", "val", ...); GTA and Synthia have one split.
        train: training pipeline (crop, flip) instead of the test pipeline.
        labels: read the labels (`False` for a UDA target: neither checked nor read).
    """
    layout = dataset_spec(name).layout(Path(root), split, labels)
    pairs = find_pairs(layout, check_sizes=check_sizes)
    return SegmentationDataset(pairs, pipeline, train=train, seed=seed, root=Path(root))
