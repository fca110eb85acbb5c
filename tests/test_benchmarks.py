"""The speed benchmarks run on CPU at smoke size and give finite numbers (not timed tests)."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace

import pandas as pd
import pytest
import torch

from hrda_lib.cli import run
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
    result = bench.time_train_forward(
        cfg, batch=1, context=64, device=torch.device("cpu"), iters=1, warmup=0
    )
    assert result["seconds_per_iter"] > 0 and math.isfinite(result["peak_memory_mb"])


def test_model_benchmark_replaces_its_own_rows(tmp_path, monkeypatch) -> None:
    """A re-measurement replaces the rows of the same device and shape, keeps the others."""
    bench = _load("model_benchmark")
    out = tmp_path / "model.csv"
    other = {
        "model": "hrda",
        "encoder": "mit_b5",
        "device": "cuda",
        "device_name": "H200",
        "threads": 1,
        "batch": 2,
        "input": 1024,
        "detail": 512.0,
        "seconds_per_iter": 0.2,
        "peak_memory_mb": 9000.0,
        "ratio_vs_daformer_lr": 1.9,
    }
    pd.DataFrame([other]).to_csv(out, index=False)
    argv = [
        "model_benchmark",
        "--context",
        "64",
        "--detail",
        "32",
        "--batch",
        "1",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    monkeypatch.setattr("sys.argv", argv)
    bench.main()
    bench.main()
    frame = pd.read_csv(out)
    assert len(frame) == 3 and (frame["device_name"] == "H200").sum() == 1
    assert sorted(frame.loc[frame["device"] == "cpu", "model"]) == ["daformer_lr", "hrda"]


def test_optimizations_keep_the_training_semantics() -> None:
    """Activation checkpointing and channels-last give the same loss and gradients; bf16
    autocast stays within bf16 tolerance of fp32."""
    from hrda_lib.model import build_segmentor, segmentation_loss

    cfg = get_preset("smoke_hrda").model
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    label = torch.randint(0, 19, (2, 64, 64), generator=torch.Generator().manual_seed(1))
    box = (0, 32, 16, 48)

    def loss_and_grads(model, x, autocast=False):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = segmentation_loss(model.forward_multires(x, box), label, cfg)["total"]
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        model.zero_grad()
        return loss.detach(), grads

    torch.manual_seed(0)
    model = build_segmentor(cfg).eval()  # eval: no dropout / drop path draws to compare
    reference = loss_and_grads(model, image)
    model.encoder.mit.set_grad_checkpointing(True)
    checkpointed = loss_and_grads(model, image)
    model.encoder.mit.set_grad_checkpointing(False)
    model.to(memory_format=torch.channels_last)
    channels_last = loss_and_grads(model, image.contiguous(memory_format=torch.channels_last))
    for loss, grads in (checkpointed, channels_last):
        assert torch.allclose(loss, reference[0], atol=1e-5)
        assert torch.allclose(grads, reference[1], atol=1e-5)
    bf16_loss, _ = loss_and_grads(model, image, autocast=True)
    assert torch.isclose(bf16_loss.float(), reference[0], rtol=0.05)


def test_cpu_speed_benchmark_compares_each_change(tmp_path) -> None:
    bench = _load("cpu_speed")
    out = tmp_path / "cpu_step.csv"
    bench.main(["--presets", "smoke_hrda", "--rounds", "1", "--out", str(out)])
    table = pd.read_csv(out).set_index("change")
    assert set(table.index) == {
        "before",
        "batched_encoder",
        "shifted_depthwise",
        "inplace_relu",
        "before_kept_memory",
        "kept_freed_memory",
        "decoder_32_channels",
    }
    assert table.loc["before", "speedup_vs_before"] == 1.0
    assert (table["seconds_per_iter"] > 0).all()
    assert not table.loc["decoder_32_channels", "same_maths"]
    assert table.loc["batched_encoder", "same_maths"]
    assert table.loc["shifted_depthwise", "same_maths"]
    assert not table.loc["inplace_relu", "glibc_keeps_freed_memory"]


def test_batching_the_encoder_keeps_the_outputs() -> None:
    """The batched encoder pass of HRDA's two branches gives the outputs of one call each."""
    from hrda_lib.model import HRDASegmentor, build_segmentor

    model = build_segmentor(get_preset("smoke_hrda").model).eval()
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    batched = model.forward_multires(image, (0, 32, 16, 48))
    slide = model.forward_slide(image)
    bench = _load("cpu_speed")
    original = HRDASegmentor._encode_both
    HRDASegmentor._encode_both = bench.separate_encoder_calls
    try:
        separate = model.forward_multires(image, (0, 32, 16, 48))
        separate_slide = model.forward_slide(image)
    finally:
        HRDASegmentor._encode_both = original
    assert torch.allclose(batched.fused, separate.fused, atol=1e-5)
    assert torch.allclose(slide.fused, separate_slide.fused, atol=1e-5)


def test_gpu_check_runs_its_cpu_smoke_version(tmp_path, capsys) -> None:
    """`make gpu-check` without CUDA stops with one line; with --out-dir it runs at smoke size."""
    bench = _load("gpu_check")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            run(bench.main, [])
        assert "no CUDA device" in capsys.readouterr().err
    bench.main(["--out-dir", str(tmp_path), "--no-compile"])
    training = pd.read_csv(tmp_path / "gpu_smoke_training.csv")
    assert training["loss_finite"].all() and training["bf16_within_tolerance"].all()
    step = pd.read_csv(tmp_path / "gpu_train_step.csv").set_index("variant")
    assert step.loc["baseline_fp32_eager", "speedup_vs_baseline"] == 1.0
    assert (step["seconds_per_iter"] > 0).all() and step["device"].notna().all()
    inference = pd.read_csv(tmp_path / "gpu_inference.csv")
    assert (inference["seconds_per_image"] > 0).all()
    if not torch.cuda.is_available():
        assert not step["meets_time_goal"].any() and inference["note"].str.contains("CPU").all()


def test_cpu_parallel_benchmark_compares_threads_and_processes(tmp_path) -> None:
    bench = _load("cpu_parallel")
    out = tmp_path / "cpu_parallel.csv"
    bench.main(["--preset", "smoke_hrda", "--cores", "2", "--steps", "1", "--out", str(out)])
    table = pd.read_csv(out)
    assert list(table["layout"]) == [
        "1 process x 2 threads",
        "2 processes x 1 thread",
        "1 run on 2 processes x 1 thread (torchrun)",
    ]
    assert table.loc[0, "speedup"] == 1.0 and (table["steps_per_s"] > 0).all()
