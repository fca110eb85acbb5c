"""The speed benchmarks run on CPU at smoke size and give finite numbers (not timed tests)."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace

import torch

from hrda_lib.paths import REPO_ROOT
from hrda_lib.presets import get_preset


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speed_benchmark_measures_finite_numbers() -> None:
    bench = _load("speed_benchmark")
    device = torch.device("cpu")
    cfg = get_preset("smoke_mic_hrda")
    configs = bench.variants(cfg, device, compile_=False)
    assert configs["baseline_fp32_eager"].precision == "fp32"
    assert configs["activation_checkpointing"].activation_checkpointing
    step = bench.time_train_step(configs["activation_checkpointing"], device, iters=1, warmup=1)
    assert step["seconds_per_iter"] > 0 and step["tflops_per_iter"] > 0
    inference = bench.time_inference(configs["autocast_channels_last"], device, iters=1, warmup=0)
    assert inference["seconds_per_image"] > 0 and inference["tflops_per_image"] > 0
    phases = bench.profile_phases(replace(cfg, iters=4), device, steps=1)
    assert {p["phase"] for p in phases} >= {"source_pass", "pseudo_labels", "mic_pass"}
    assert math.isclose(sum(p["share"] for p in phases), 1.0)


def test_model_benchmark_times_one_forward() -> None:
    bench = _load("model_benchmark")
    cfg = get_preset("smoke_hrda").model
    result = bench.time_train_forward(cfg, batch=1, context=64, device=torch.device("cpu"),
                                      iters=1, warmup=0)  # fmt: skip
    assert result["seconds_per_iter"] > 0 and math.isfinite(result["peak_memory_mb"])
