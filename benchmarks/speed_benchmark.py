"""Speed and memory of the full HRDA training step and of slide inference (issue 6).

Runs, in one process and on the same inputs, the baseline (fp32, eager, no optimizations, a host
sync every iteration) and the optimized configurations, and writes
`results/benchmarks/train_step.csv` and `inference.csv`: device, shapes, seconds per iteration
(median after warm-up), peak memory, FLOPs counted by torch's FLOP counter, achieved TFLOP/s and
its fraction of the device's bf16 peak, and the speed-up against the baseline.

    python benchmarks/speed_benchmark.py                                  # CPU, synthetic sizes
    python benchmarks/speed_benchmark.py --preset gta_to_cityscapes_hrda --device cuda \
        --compile                                                         # the paper's sizes
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from hrda_lib.config import ExperimentConfig, MICConfig
from hrda_lib.inference import slide_inference
from hrda_lib.presets import get_preset
from hrda_lib.step import _autocast, build_state, train_step

# Dense bf16 tensor-core peak (FLOP/s) by device name; CPUs are reported without a peak.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def device_peak(device: torch.device) -> float:
    if device.type != "cuda":
        return float("nan")
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), float("nan"))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def synthetic_batch(cfg: ExperimentConfig, device: torch.device) -> dict[str, torch.Tensor]:
    """A random UDA batch of the preset's crop size (labels cover all classes)."""
    height, width = cfg.data.source_pipeline.crop_size
    gen = torch.Generator().manual_seed(0)
    shape = (cfg.batch_size, 3, height, width)
    batch = {
        "img": torch.randn(shape, generator=gen),
        "gt_semantic_seg": torch.randint(0, 19, (cfg.batch_size, height, width), generator=gen),
        "target_img": torch.randn(shape, generator=gen),
        "target_valid_pseudo_mask": torch.ones(cfg.batch_size, height, width, dtype=torch.uint8),
    }
    return {k: v.to(device) for k, v in batch.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn, device: torch.device, iters: int) -> dict:
    """Median seconds of `fn()` over `iters` calls, peak memory (CUDA) and FLOPs of one call."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(iters):
        _sync(device)
        tic = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - tic)
    with FlopCounterMode(display=False) as counter:
        fn()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "seconds": statistics.median(times),
        "peak_memory_gib": peak,
        "tflops": counter.get_total_flops() / 1e12,
    }


def time_train_step(cfg: ExperimentConfig, device: torch.device, iters: int, warmup: int) -> dict:
    """Median s/iter of `train_step`, peak memory, FLOPs of one step, first-step (compile) time."""
    state = build_state(cfg, device)
    batch = synthetic_batch(cfg, device)
    if cfg.channels_last:
        batch = {
            k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
            for k, v in batch.items()
        }

    def step() -> None:
        logs = train_step(state, batch, cfg)
        if cfg.log_interval == 1:  # the baseline syncs every iteration for its logs
            [float(v) for v in logs.values()]

    start = time.perf_counter()
    step()  # first step: compilation, allocator warm-up
    _sync(device)
    first_step_s = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        step()
    result = measure(step, device, iters)
    return {
        "seconds_per_iter": result["seconds"],
        "peak_memory_gib": result["peak_memory_gib"],
        "tflops_per_iter": result["tflops"],
        "first_step_s": first_step_s,
    }


@torch.no_grad()
def time_inference(cfg: ExperimentConfig, device: torch.device, iters: int, warmup: int) -> dict:
    """Median seconds of slide inference (to a host argmax) on one image of the test size."""
    model = build_state(cfg, device).model.eval()
    width, height = cfg.data.test_pipeline.scale
    image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    if cfg.channels_last:
        image = image.contiguous(memory_format=torch.channels_last)

    def run() -> None:
        with _autocast(device, cfg.precision):
            logits = slide_inference(model, image, cfg.test_window, cfg.test_stride, cfg.max_batch)
        logits.argmax(1).cpu()

    for _ in range(warmup):
        run()
    result = measure(run, device, iters)
    return {
        "seconds_per_image": result["seconds"],
        "peak_memory_gib": result["peak_memory_gib"],
        "tflops_per_image": result["tflops"],
    }


PHASES = (
    "source_pass",
    "source_backward",
    "pseudo_labels",
    "mixed_pass",
    "mixed_backward",
    "mic_pass",
    "mic_backward",
    "optimizer_step",
)


def profile_phases(cfg: ExperimentConfig, device: torch.device, steps: int = 2) -> list[dict]:
    """Where the time of a training step goes: wall time per phase of `train_step`."""
    state = build_state(cfg, device)
    batch = synthetic_batch(cfg, device)
    train_step(state, batch, cfg)  # warm-up
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            train_step(state, batch, cfg)
            _sync(device)
    totals = {e.key: e for e in prof.key_averages() if e.key in PHASES}
    attr = "device_time_total" if device.type == "cuda" else "cpu_time_total"
    rows = [
        {"phase": k, "ms_per_step": getattr(totals[k], attr) / 1e3 / steps}
        for k in PHASES
        if k in totals
    ]
    total = sum(r["ms_per_step"] for r in rows)
    return [r | {"share": r["ms_per_step"] / total} for r in rows]


def variants(cfg: ExperimentConfig, device: torch.device, compile_: bool) -> dict:
    """Baseline and optimized configurations of the same experiment."""
    baseline = replace(
        cfg,
        precision="fp32",
        channels_last=False,
        compile=False,
        activation_checkpointing=False,
        log_interval=1,
    )
    fast = replace(baseline, precision="auto", log_interval=50)
    out = {
        "baseline_fp32_eager": baseline,
        "autocast_nosync": fast,
        "autocast_channels_last": replace(fast, channels_last=True),
        "activation_checkpointing": replace(fast, activation_checkpointing=True),
    }
    if compile_:
        out["compiled"] = replace(fast, compile=True)
    return out


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    pd.DataFrame(rows).to_csv(tmp, index=False)
    tmp.replace(path)
    print(pd.DataFrame(rows).to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synthetic_hrda")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--out-dir", default="results/benchmarks")
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = get_preset(args.preset)
    peak = device_peak(device)
    train_rows, infer_rows = [], []
    for name, variant in variants(cfg, device, args.compile).items():
        precision = (
            "bf16"
            if variant.precision == "bf16"
            or (variant.precision == "auto" and device.type == "cuda")
            else "fp32"
        )
        common = {
            "variant": name,
            "preset": args.preset,
            "device": device_name(device),
            "precision": precision,
            "encoder": cfg.model.encoder,
            "batch": f"{cfg.batch_size}+{cfg.batch_size}",
            "crop": "x".join(map(str, cfg.data.source_pipeline.crop_size)),
        }
        step = time_train_step(variant, device, args.iters, args.warmup)
        step["achieved_tflops"] = step["tflops_per_iter"] / step["seconds_per_iter"]
        step["fraction_of_bf16_peak"] = step["achieved_tflops"] * 1e12 / peak
        train_rows.append(common | step)
        print(f"[train] {name}: {step['seconds_per_iter']:.3f} s/iter", flush=True)
        if name == "activation_checkpointing":
            continue  # inference is unaffected by checkpointing
        test_size = "x".join(map(str, cfg.data.test_pipeline.scale[::-1]))
        inf = time_inference(variant, device, args.iters, args.warmup)
        inf["achieved_tflops"] = inf["tflops_per_image"] / inf["seconds_per_image"]
        inf["fraction_of_bf16_peak"] = inf["achieved_tflops"] * 1e12 / peak
        infer_rows.append(common | {"test_image": test_size} | inf)
        print(f"[inference] {name}: {inf['seconds_per_image']:.3f} s/image", flush=True)
    for rows, key in ((train_rows, "seconds_per_iter"), (infer_rows, "seconds_per_image")):
        for row in rows:
            row["speedup_vs_baseline"] = rows[0][key] / row[key]
    write_csv(train_rows, Path(args.out_dir) / "train_step.csv")
    phases = profile_phases(replace(cfg, uda=replace(cfg.uda, mic=MICConfig())), device)
    write_csv(
        [{"preset": args.preset, "device": device_name(device)} | r for r in phases],
        Path(args.out_dir) / "train_step_phases.csv",
    )
    write_csv(infer_rows, Path(args.out_dir) / "inference.csv")


if __name__ == "__main__":
    main()
