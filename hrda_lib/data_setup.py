"""Datasets and loaders of an experiment: the synthetic benchmark (generated on first use) or real
data in the official layouts, looked up in the dataset table of `hrda_lib.datasets`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hrda_lib import datasets
from hrda_lib.classes import NUM_CLASSES
from hrda_lib.config import DataConfig, ExperimentConfig
from hrda_lib.distributed import ONE_PROCESS, Shard, ShardSampler
from hrda_lib.errors import UsageError
from hrda_lib.files import write_json
from hrda_lib.layout import check_contents
from hrda_lib.paths import data_root
from hrda_lib.synthetic import ensure_synthetic, synthetic_root

SYNTHETIC = "synthetic"  # source: the GTA-layout half; target: the Cityscapes-layout half


def data_paths(cfg: DataConfig) -> dict[str, Path]:
    """Roots of the source and target datasets of `cfg` (a dataset's folder is its name).

    On the synthetic benchmark the source is its `gta/` folder (its `cityscapes/` folder for the
    supervised oracle, source "cityscapes") and the target its `cityscapes/` folder; a real
    target named beside a synthetic source is read from the data root.
    """
    if SYNTHETIC in (cfg.source, cfg.target):
        base = (
            Path(cfg.root)
            if cfg.root
            else synthetic_root(cfg.synthetic_variant, cfg.synthetic_seed)
        )
        source = "cityscapes" if cfg.source == "cityscapes" else "gta"
        paths = {"source": base / source, "target": base / "cityscapes"}
        if cfg.target not in (None, SYNTHETIC):  # a synthetic model on a real val set
            paths["target"] = (Path(cfg.root) if cfg.root else data_root()) / cfg.target
        return paths
    root = Path(cfg.root) if cfg.root else data_root()
    for name in (cfg.source, cfg.target):
        if name is not None:
            datasets.dataset_spec(name)  # one line naming the valid datasets if unknown
    paths = {"source": root / cfg.source}
    if cfg.target:
        paths["target"] = root / cfg.target
    return paths


def _table_name(name: str, role: str) -> str:
    """The dataset table's name of a config's source or target ("synthetic" is GTA / CS)."""
    if name == SYNTHETIC:
        return "gta" if role == "source" else "cityscapes"
    return name


def prepare_synthetic(cfg: DataConfig, nproc: int = 2) -> None:
    """Generate and convert the synthetic benchmark of `cfg` if it is not there yet (local, no
    download: under a minute for `quick`); a folder from another generator version is refused."""
    if SYNTHETIC in (cfg.source, cfg.target):
        base = data_paths(cfg)["source"].parent
        ensure_synthetic(base, cfg.synthetic_variant, cfg.synthetic_seed, nproc)


def _source(cfg: DataConfig, train: bool = True, check_sizes: bool = True):
    name = _table_name(cfg.source, "source")
    spec = datasets.dataset_spec(name)
    if not spec.labelled_train:
        raise UsageError(f"dataset {cfg.source!r} has no training labels: it cannot be a source")
    return datasets.read_dataset(
        name,
        data_paths(cfg)["source"],
        spec.train_split,
        cfg.source_pipeline,
        train=train,
        check_sizes=check_sizes,
    )


def _target(cfg: DataConfig, train: bool) -> datasets.SegmentationDataset:
    name = _table_name(cfg.target, "target")
    spec = datasets.dataset_spec(name)
    root = data_paths(cfg)["target"]
    if train:
        if spec.train_split is None:
            raise UsageError(
                f"dataset {cfg.target!r} is for evaluation only: it cannot be a target"
            )
        return datasets.read_dataset(
            name, root, spec.train_split, cfg.target_pipeline, labels=False
        )
    return datasets.read_dataset(name, root, spec.val_split, cfg.test_pipeline, train=False)


def build_train_dataset(cfg: ExperimentConfig) -> Dataset:
    """Source + target pairs (UDA) or source samples only (source-only / DG training)."""
    prepare_synthetic(cfg.data)
    source = _source(cfg.data)
    sync = cfg.data.sync_crop_size
    if not cfg.uda.uses_target or cfg.data.target is None:
        return datasets.SourceOnlyDataset(source, cfg.data.rcs, cfg.seed, sync)
    target = _target(cfg.data, train=True)
    return datasets.UDADataset(source, target, cfg.data.rcs, cfg.seed, sync)


def _checked_marker(name: str, pairs: list) -> Path:
    """Where a finished content check of these exact files is recorded (by path, size, time)."""
    digest = hashlib.sha256(name.encode())
    for pair in pairs:
        for path in pair:
            if path is not None:
                stat = path.stat()
                digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return data_root() / ".checked" / f"{digest.hexdigest()[:24]}.json"


def check_dataset(dataset: datasets.SegmentationDataset, name: str, progress: bool = True) -> None:
    """Decode every file of a training dataset once and check its label ids (a
    `DatasetLayoutError` names a bad file); remembered per exact file set, so a second run with
    the same files does not repeat it."""
    pairs = list(zip(dataset.img_paths, dataset.label_paths, strict=True))
    marker = _checked_marker(name, pairs)
    if marker.is_file():
        return
    check_contents(name, pairs, NUM_CLASSES, datasets.read_image, datasets.read_label, progress)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_json(marker, {"dataset": name, "files": len(pairs), "checked": "ok"})
    except OSError:
        pass  # a read-only data root: the check simply runs again next time


def check_training_data(cfg: ExperimentConfig, progress: bool = True) -> None:
    """Check the source (images and labels) and the target training images of `cfg`."""
    prepare_synthetic(cfg.data)
    check_dataset(_source(cfg.data), f"{cfg.data.source} (source)", progress)
    if cfg.uda.uses_target and cfg.data.target is not None:
        check_dataset(_target(cfg.data, train=True), f"{cfg.data.target} (target)", progress)


class _SkipSampler(Sampler[int]):
    """An endless sampler with its first `start` indices skipped (to resume mid-stream)."""

    def __init__(self, base: Sampler[int], start: int) -> None:
        self.base, self.start = base, start

    def __iter__(self):
        return itertools.islice(iter(self.base), self.start, None)


def build_train_loader(
    cfg: ExperimentConfig, start: int = 0, shard: Shard = ONE_PROCESS
) -> DataLoader:
    """An endless loader whose sample `i` depends only on (seed, i): resuming at `start` gives
    the batches an uninterrupted run would have seen. In a distributed run each process loads
    its `batch_size / N` samples of every global batch (`distributed.ShardSampler`)."""
    dataset = build_train_dataset(cfg)
    sampler = _SkipSampler(datasets.InfiniteSampler(len(dataset), cfg.seed), start)
    if shard.distributed:
        sampler = ShardSampler(sampler, cfg.batch_size, shard)
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size // shard.world,
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
    prepare_synthetic(cfg.data)
    # The training loader has checked the layout; every refresh reads the images only.
    source = _source(cfg.data, train=False, check_sizes=False)
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
    """The labelled target validation set (the synthetic target's for source-only DG runs
    without a target)."""
    prepare_synthetic(cfg.data)
    if cfg.data.target is None:
        root = data_paths(cfg.data)["source"].parent / "cityscapes"
        return datasets.read_dataset("cityscapes", root, "val", cfg.data.test_pipeline, train=False)
    return _target(cfg.data, train=False)
