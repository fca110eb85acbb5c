"""Datasets and loaders of an experiment: the synthetic benchmark (generated on first use) or real
data in the official layouts.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hrda_lib import datasets
from hrda_lib.experiment import DataConfig, ExperimentConfig, data_paths


def ensure_synthetic(cfg: DataConfig, nproc: int = 2) -> None:
    """Generate and convert the synthetic benchmark of `cfg` if it is not there yet (local, no
    download: under a minute for `quick`); a folder from another generator version is refused."""
    from hrda_lib.synthetic import ensure_synthetic as ensure

    ensure(data_paths(cfg)["source"].parent, cfg.synthetic_variant, cfg.synthetic_seed, nproc)


def _source(
    cfg: DataConfig, root: Path, train: bool = True, check_sizes: bool = True
) -> datasets.SegmentationDataset:
    pipeline = cfg.source_pipeline
    if cfg.source in ("gta", "synthetic"):
        return datasets.gta(root, pipeline, train=train, check_sizes=check_sizes)
    if cfg.source == "synthia":
        return datasets.synthia(root, pipeline, train=train, check_sizes=check_sizes)
    if cfg.source == "cityscapes":
        return datasets.cityscapes(root, "train", pipeline, train=train, check_sizes=check_sizes)
    raise ValueError(f"unknown source dataset {cfg.source!r}")


def _target(cfg: DataConfig, root: Path, split: str, train: bool) -> datasets.SegmentationDataset:
    pipeline = cfg.target_pipeline if train else cfg.test_pipeline
    labels = not train
    if cfg.target in ("cityscapes", "synthetic"):
        return datasets.cityscapes(root, split, pipeline, train=train, labels=labels)
    if cfg.target == "acdc":
        return datasets.acdc(root, split, pipeline, train=train, labels=labels)
    if cfg.target == "dark_zurich":
        return datasets.dark_zurich(root, split, pipeline, train=train)
    if cfg.target == "bdd100k" and not train:  # domain generalization: evaluation only
        return datasets.bdd100k(root, pipeline, split)
    if cfg.target == "mapillary" and not train:
        return datasets.mapillary(root, pipeline, "validation" if split == "val" else split)
    raise ValueError(f"unknown target dataset {cfg.target!r}")


def build_train_dataset(cfg: ExperimentConfig) -> Dataset:
    """Source + target pairs (UDA) or source samples only (source-only / DG training)."""
    if "synthetic" in (cfg.data.source, cfg.data.target):
        ensure_synthetic(cfg.data)
    paths = data_paths(cfg.data)
    source = _source(cfg.data, paths["source"])
    if not cfg.uda.uses_target or cfg.data.target is None:
        return datasets.SourceOnlyDataset(source, cfg.data.rcs, cfg.seed)
    target = _target(cfg.data, paths["target"], "train", train=True)
    return datasets.UDADataset(source, target, cfg.data.rcs, cfg.seed)


class _SkipSampler(Sampler[int]):
    """An endless sampler with its first `start` indices skipped (to resume mid-stream)."""

    def __init__(self, base: Sampler[int], start: int) -> None:
        self.base, self.start = base, start

    def __iter__(self):
        return itertools.islice(iter(self.base), self.start, None)


def build_train_loader(cfg: ExperimentConfig, start: int = 0) -> DataLoader:
    """An endless loader whose sample `i` depends only on (seed, i): resuming at `start` gives
    the batches an uninterrupted run would have seen."""
    dataset = build_train_dataset(cfg)
    sampler = _SkipSampler(datasets.InfiniteSampler(len(dataset), cfg.seed), start)
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.data.num_workers,
        worker_init_fn=datasets.worker_init_fn,
        persistent_workers=cfg.data.num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
        # Its own generator: creating the iterator must not consume the global torch RNG, or a
        # resumed run would draw different dropout / drop-path masks than an uninterrupted one.
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def style_images(cfg: ExperimentConfig) -> Iterator[torch.Tensor]:
    """SHADE's style source: the first `cfg.uda.shade.style_images` source training images (all
    if None), each (1, 3, H, W) normalized at the source pipeline's scale, without crop or flip,
    decoded by `cfg.data.num_workers` loader workers (the whole of GTA is 25k images)."""
    if "synthetic" in (cfg.data.source, cfg.data.target):
        ensure_synthetic(cfg.data)
    # The training loader has checked the layout; every refresh reads the images only.
    source = _source(cfg.data, data_paths(cfg.data)["source"], train=False, check_sizes=False)
    count = len(source)
    if cfg.uda.shade is not None and cfg.uda.shade.style_images is not None:
        count = min(count, cfg.uda.shade.style_images)
    images = datasets.SegmentationDataset(
        [(path, None) for path in source.img_paths[:count]], source.pipeline, train=False
    )
    loader = DataLoader(images, batch_size=None, num_workers=cfg.data.num_workers)
    for sample in loader:
        yield sample["img"][None]


def build_val_dataset(cfg: ExperimentConfig) -> datasets.SegmentationDataset:
    """The labelled target validation set (source val for source-only DG runs without target)."""
    if "synthetic" in (cfg.data.source, cfg.data.target):
        ensure_synthetic(cfg.data)
    paths = data_paths(cfg.data)
    if cfg.data.target is None:
        return datasets.cityscapes(paths["source"].parent / "cityscapes", "val",
                                   cfg.data.test_pipeline, train=False)  # fmt: skip
    return _target(cfg.data, paths["target"], "val", train=False)
