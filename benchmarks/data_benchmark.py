"""Data loading throughput: images per second through a DataLoader, per number of workers.

Measures the training pipelines (decode, resize, crop, flip, normalize; RCS for the UDA pairs)
on the synthetic benchmark at its `quick` size (256x512, 256x256 crops) and at the paper's size
(a few synthetic scenes drawn at 1024x2048; GTA pipeline upscaling to 1280x2560 with 1024x1024
crops, Cityscapes pipeline with 1024x1024 crops and margins). A UDA sample counts as two images.
Writes `results/benchmarks/data.csv` (dataset, resolution, num_workers, images_per_s). Run it
on an otherwise idle machine: other processes on the same cores distort the scaling.

Usage: python benchmarks/data_benchmark.py [--workers 0 1 2] [--batches 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import torch
from torch.utils.data import DataLoader

from hrda_lib import datasets, synthetic
from hrda_lib.conversion import convert_cityscapes, convert_gta
from hrda_lib.experiments import gta_to_cityscapes_hrda, synthetic_data
from hrda_lib.files import atomic_write_bytes
from hrda_lib.paths import results_root


def images_per_second(dataset, num_workers: int, batches: int, images_per_sample: int) -> float:
    """Throughput of a DataLoader (batch 2, endless sampler), after one warm-up batch."""
    loader = DataLoader(
        dataset,
        batch_size=2,
        sampler=datasets.InfiniteSampler(len(dataset), seed=0),
        num_workers=num_workers,
        worker_init_fn=datasets.worker_init_fn,
        persistent_workers=False,
    )
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    del iterator
    return batches * 2 * images_per_sample / elapsed


def build(root: Path, source_pipeline, target_pipeline, rcs) -> dict[str, tuple]:
    """The three measured datasets: (dataset, images per sample)."""
    source = datasets.read_dataset("gta", root / "gta", "train", source_pipeline)
    target = datasets.read_dataset(
        "cityscapes", root / "cityscapes", "train", target_pipeline, labels=False
    )
    return {
        "synthetic_source_gta_pipeline": (source, 1),
        "synthetic_target_cityscapes_pipeline": (target, 1),
        "synthetic_uda_pair_rcs": (datasets.UDADataset(source, target, rcs=rcs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--out", type=Path, default=results_root() / "benchmarks" / "data.csv")
    parser.add_argument("--root", type=Path, default=None, help="quick set (default data/...)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)  # decode and transform single-threaded; the workers parallelize

    quick = synthetic.quick()
    quick_data = synthetic_data("quick")
    quick_root = args.root or synthetic.synthetic_root("quick")
    quick_root = synthetic.ensure_synthetic(quick_root, "quick", nproc=2)
    setups = [
        (
            f"{quick.height}x{quick.width}",
            build(
                quick_root,
                quick_data.source_pipeline,
                quick_data.target_pipeline,
                quick_data.rcs,
            ),
        )
    ]
    paper_data = gta_to_cityscapes_hrda().data  # the paper's pipelines, RCS 3000 px at 1024x2048
    paper = synthetic.SyntheticConfig(
        height=1024, width=2048, n_source=6, n_target_train=6, n_target_val=0
    )
    with tempfile.TemporaryDirectory() as tmp:
        paper_root = synthetic.generate(Path(tmp), paper, seed=0, nproc=2)
        convert_gta(paper_root / "gta", nproc=2)
        convert_cityscapes(paper_root / "cityscapes", nproc=2)
        setups.append(
            (
                "1024x2048",
                build(
                    paper_root,
                    paper_data.source_pipeline,
                    paper_data.target_pipeline,
                    paper_data.rcs,
                ),
            )
        )
        rows = ["dataset,resolution,num_workers,images_per_s"]
        for resolution, named in setups:
            for name, (dataset, per_sample) in named.items():
                batches = args.batches if resolution != "1024x2048" else max(args.batches // 4, 3)
                for workers in args.workers:
                    rate = images_per_second(dataset, workers, batches, per_sample)
                    rows.append(f"{name},{resolution},{workers},{rate:.2f}")
                    print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, ("\n".join(rows) + "\n").encode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
