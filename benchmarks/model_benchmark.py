"""Forward+backward time and peak memory of one HRDA training forward (issue 2's benchmark).

Runs, in one process, the single-scale DAFormer baseline and HRDA on the same context crops, so
that the HRDA cost is reported as a ratio against the baseline measured alongside it.

    python benchmarks/model_benchmark.py --encoder mit_b0 --context 256 --detail 128 --batch 2
    python benchmarks/model_benchmark.py --encoder mit_b5 --context 1024 --detail 512 --device cuda

Writes (appends to) results/benchmarks/model.csv.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from hrda_lib.config import ModelConfig
from hrda_lib.model import build_segmentor, segmentation_loss
from hrda_lib.paths import results_root


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_train_forward(
    cfg: ModelConfig, batch: int, context: int, device: torch.device, iters: int, warmup: int
) -> dict:
    """Median seconds of forward+backward and peak memory (CUDA: allocator; CPU: max RSS)."""
    model = build_segmentor(cfg).to(device).train()
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, context, context, generator=gen).to(device)
    label = torch.randint(0, cfg.num_classes, (batch, context, context), generator=gen).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + iters):
        _sync(device)
        start = time.perf_counter()
        out = model.forward_train(image, gen)
        segmentation_loss(out, label, cfg)["total"].backward()
        model.zero_grad(set_to_none=True)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        # CPU: the process's resident high-water mark, cumulative over the runs of this process.
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds_per_iter": statistics.median(times), "peak_memory_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="mit_b0")
    parser.add_argument("--context", type=int, default=256, help="context crop (full-res px)")
    parser.add_argument("--detail", type=int, default=128, help="detail crop (full-res px)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(results_root() / "benchmarks" / "model.csv"))
    args = parser.parse_args()
    device = torch.device(args.device)
    hrda = ModelConfig(encoder=args.encoder, detail_crop_size=(args.detail, args.detail))
    rows = []
    # The baseline sees the context crop at the context scale, i.e. the LR input of HRDA.
    runs = {
        "daformer_lr": (
            replace(hrda, multi_resolution=False),
            round(args.context * hrda.context_scale),
        ),
        "hrda": (hrda, args.context),
    }
    for name, (cfg, size) in runs.items():
        result = time_train_forward(cfg, args.batch, size, device, args.iters, args.warmup)
        rows.append(
            {
                "model": name,
                "encoder": args.encoder,
                "device": device.type,
                "device_name": torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(),
                "batch": args.batch,
                "input": size,
                "detail": args.detail if name == "hrda" else None,
                **result,
            }
        )
        print(
            f"{name:12s} {result['seconds_per_iter']:.3f} s/iter  "
            f"peak {result['peak_memory_mb']:.0f} MB"
        )
    frame = pd.DataFrame(rows)
    frame["ratio_vs_daformer_lr"] = frame["seconds_per_iter"] / frame["seconds_per_iter"].iloc[0]
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():  # keep other devices' and shapes' rows; a re-measurement replaces its own
        previous = pd.read_csv(path)
        key = ["model", "encoder", "device", "device_name", "threads", "batch", "input"]
        same = (
            previous[key]
            .astype(str)
            .agg("|".join, axis=1)
            .isin(frame[key].astype(str).agg("|".join, axis=1))
        )
        frame = pd.concat([previous[~same], frame])
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
