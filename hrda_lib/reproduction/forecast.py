"""GPU cost forecast of a profile's rows (`make forecast`): FLOPs of a training iteration and
of a test image, training memory, and GPU hours on a 24 GB card and on an H100.

1. FLOPs: torch's `FlopCounterMode` on the meta device at the row's geometry, encoder and batch.
   An iteration is the passes of `step.train_step`: student forward + backward on the source crop
   (SHADE: batch doubled after MiT stage 1), the frozen ImageNet encoder on the LR branch's input
   (fd_weight > 0), the teacher's slide forward on the target crop, the mixed and MIC passes;
   AdvSeg / MinEnt a student pass on the target (+ AdvSeg's discriminator); source-only the
   source pass. SHADE's prototype refresh (stage 1 over all GTA images per `refresh_interval`) is
   amortized. A convolution's backward counts 2x its forward (torch's formula counts depthwise
   weight gradients `groups` times: 10x MiT-b5's real backward). Element-wise work is not
   counted (0.1 % of a real smoke step). Test: `slide_inference` on one 2048x1024 image.
2. Memory (fp32): bytes the largest pass saves for backward (saved-tensors hooks on meta), the
   student's weights, gradients and optimizer state, the teacher, ImageNet copy and discriminator;
   not the CUDA context, allocator cache or transient buffers (in the published 22.5 GB).
3. Hours: the paper's 32 h for HRDA's 40k iterations on a Titan RTX (fp32) calibrate an achieved
   FLOP/s from HRDA's training FLOPs (the 32 h read as training time); every row's training and
   evaluations (one every `eval_interval` and a final one, 500 val images each) divide by it.
   An H100 (bf16 autocast, `precision="auto"`) is `H100_SPEEDUPS["h100"]` times faster (assumed).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from hrda_lib import alignment
from hrda_lib.cli import run
from hrda_lib.config import ExperimentConfig, ModelConfig
from hrda_lib.crops import crop
from hrda_lib.files import write_text
from hrda_lib.inference import slide_inference
from hrda_lib.model import build_segmentor, resize, segmentation_loss
from hrda_lib.paths import REPO_ROOT
from hrda_lib.reproduction import catalogue

META = torch.device("meta")
HRDA_HOURS, HRDA_ITERS, PUBLISHED_HRDA_GB = 32.0, 40000, 22.5  # paper: HRDA, Titan RTX, fp32
CARD_GB, VAL_IMAGES, GTA_IMAGES = 24.0, 500, 24966  # card; Cityscapes val; SHADE's style set
# NVIDIA spec sheets: Titan RTX fp32 and H100 SXM dense bf16 FLOP/s (as in
# benchmarks/speed_benchmark.py), memory bandwidths in bytes/s.
TITAN_FP32, H100_BF16, TITAN_BANDWIDTH, H100_BANDWIDTH = 16.3e12, 989e12, 672e9, 3350e9
H100_SPEEDUPS = {  # ASSUMPTION, H100 (bf16 autocast) over Titan RTX (fp32): at 25 % of the
    # Titan's fp32 peak (calibrated) HRDA is largely memory-bound and an H100's matmuls nearly
    # free: the bandwidth ratio x bf16's halved bytes. Bounds: memory-bound in fp32 bytes (slow)
    # and compute-bound (fast: the peak ratio).
    "h100": 2 * H100_BANDWIDTH / TITAN_BANDWIDTH,
    "h100_slow": H100_BANDWIDTH / TITAN_BANDWIDTH,
    "h100_fast": H100_BF16 / TITAN_FP32,
}


def conv_backward_flop(grad_out_shape, x_shape, w_shape, *args, out_shape, **kwargs) -> int:
    """`convolution_backward` FLOPs: input and weight gradient, each as many as the forward."""
    transposed, (grad_input, grad_weight, _) = args[4], args[7]  # bias, stride, padding, ...
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (grad_input + grad_weight)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of `fn()` (matmuls and convolutions, 2 per multiply-add), backward included."""
    mapping = {torch.ops.aten.convolution_backward: conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return counter.get_total_flops()


@lru_cache(maxsize=2)
def meta_model(cfg: ModelConfig) -> torch.nn.Module:
    """The segmentor of `cfg` on the meta device (shapes only; built once per config)."""
    with META:
        return build_segmentor(cfg)


def _crop_hw(cfg: ExperimentConfig) -> tuple[int, int]:
    return tuple(cfg.data.sync_crop_size or cfg.data.source_pipeline.crop_size)


def _student_pass(model, cfg: ExperimentConfig, discriminator=None) -> tuple[int, int]:
    """(FLOPs, bytes saved for backward) of one student forward + loss + backward on a batch of
    crops (SHADE: the batch doubled after stage 1); with a frozen `discriminator`, AdvSeg's
    target pass and then the discriminator's own step on two outputs of that size."""
    n, (height, width) = cfg.batch_size, _crop_hw(cfg)
    image = torch.empty(n, 3, height, width, device=META)
    label = torch.zeros(n, height, width, dtype=torch.long, device=META)
    style = None
    if cfg.uda.shade is not None:  # SHADE's re-styling is element-wise: a copy stands in
        style, label = (lambda features: torch.cat([features, features])), torch.cat([label] * 2)
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    saved: dict[int, tuple[torch.Tensor, int]] = {}  # keeps storages alive: ids stay unique

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if (storage := tensor.untyped_storage())._cdata not in params:
            saved[storage._cdata] = (tensor, storage.nbytes())
        return tensor

    def run() -> None:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model.forward_train(image, torch.Generator().manual_seed(0), style)
            if discriminator is None:
                loss = segmentation_loss(out, label, cfg.model)["total"]
            else:
                probabilities = alignment.discriminator_input(out.fused, (height, width))
                loss = alignment.gan_loss(discriminator(probabilities), alignment.SOURCE_DOMAIN)
        loss.backward()
        if discriminator is not None:  # source and target outputs: one shape, one count each
            output = probabilities.detach()
            discriminator.requires_grad_(True)
            sum(alignment.gan_loss(discriminator(output), d) for d in (0.0, 1.0)).backward()

    flops = count_flops(run)
    model.zero_grad(set_to_none=True)
    return flops, sum(nbytes for _, nbytes in saved.values())


def training_cost(cfg: ExperimentConfig) -> tuple[dict[str, int], int]:
    """({part: FLOPs}) of one training iteration, and the bytes its largest pass saves (fp32)."""
    model = meta_model(cfg.model).train()
    target = torch.empty(cfg.batch_size, 3, *_crop_hw(cfg), device=META)
    context_scale = cfg.model.context_scale if cfg.model.multi_resolution else 1.0
    source_flops, activations = _student_pass(model, cfg)
    parts = {"source": source_flops}
    with torch.no_grad():
        if cfg.uda.fd_weight > 0:  # the frozen ImageNet encoder, the student's architecture
            inputs = [resize(target, context_scale)]
            if cfg.uda.fd_on_detail and cfg.model.multi_resolution:
                height, width = cfg.model.detail_crop_size
                inputs.append(crop(target, (0, height, 0, width)))  # a detail crop's size
            parts["feature_distance"] = count_flops(lambda: [model.encoder(x) for x in inputs])
        if cfg.uda.method == "dacs":
            parts["pseudo_labels"] = count_flops(lambda: model.encode_decode(target))
        if cfg.uda.shade is not None:  # stage 1 over every GTA image, once per interval
            long, short = cfg.data.source_pipeline.scale
            image = torch.empty(1, 3, round(short * context_scale), round(long * context_scale))
            stage1 = count_flops(lambda: model.encoder.first_stage(image.to(META)))
            refreshes = math.ceil(cfg.iters / cfg.uda.shade.refresh_interval)
            parts["style_refresh"] = round(stage1 * GTA_IMAGES * refreshes / cfg.iters)
    if cfg.uda.method == "dacs":  # the mixed and MIC passes: the source pass's geometry
        parts |= {"mixed": source_flops} | ({"mic": source_flops} if cfg.uda.mic else {})
    elif cfg.uda.method == "minent":
        parts["target"] = source_flops  # the entropy loss is element-wise
    elif cfg.uda.method == "advseg":
        with META:  # frozen for the target pass, as `step._advseg_pass` does
            disc = alignment.build_discriminator(cfg.model.num_classes, cfg.uda.adversarial)
        parts["target"], target_bytes = _student_pass(model, cfg, disc.requires_grad_(False))
        activations = max(activations, target_bytes)
    return parts, activations


def inference_flops(cfg: ExperimentConfig) -> int:
    """FLOPs of slide inference on one 2048x1024 test image at the test pipeline's scale."""
    width, height = cfg.data.test_pipeline.scale
    model, image = meta_model(cfg.model).eval(), torch.empty(1, 3, height, width, device=META)
    return count_flops(lambda: slide_inference(model, image, cfg.test_window, cfg.test_stride))


def static_bytes(cfg: ExperimentConfig) -> int:
    """fp32 bytes of weights, gradients, optimizer state, teacher, ImageNet copy, discriminator."""
    model, method = meta_model(cfg.model), cfg.uda.method
    student = sum(p.numel() for p in model.parameters())
    states = 2 if cfg.optimizer.optimizer == "adamw" else int(cfg.optimizer.momentum > 0)
    total = student * (2 + states + (method == "dacs"))  # + the EMA teacher
    total += sum(p.numel() for p in model.encoder.parameters()) if cfg.uda.fd_weight > 0 else 0
    if method == "advseg":
        disc = alignment.FCDiscriminator(cfg.model.num_classes, cfg.uda.adversarial.base_channels)
        total += 4 * sum(p.numel() for p in disc.parameters())
    return 4 * total


def row_seeds(profile: str = "paper") -> dict[str, int]:
    """How many seeds the profile's notebooks train each row with (a run is trained once)."""
    groups = [group for groups in catalogue.notebook_rows(profile).values() for group in groups]
    keys = {key for keys, _ in groups for key in keys}
    return {key: len({s for keys, seeds in groups if key in keys for s in seeds}) for key in keys}


def studies(profile: str = "paper") -> dict[str, tuple[str, ...]]:
    """The profile's rows by study (the totals of `forecast_tables`)."""
    prof = catalogue.get_profile(profile)
    return {
        "Table 1: main comparison": prof.main,
        "Tables 3-5, Figure 4: crop sizes": prof.crop_sizes,
        "Tables 6, 7, S1, Figure S1: components": prof.components,
        "Table 2: UDA methods": catalogue.rows_of(prof.uda_methods),
        "Domain generalization": prof.domain_generalization,
    }


TABLES = {  # the tables and figures of the paper each row appears in
    **catalogue.MAIN_TABLES,
    **catalogue.CROP_SIZE_TABLES,
    **catalogue.COMPONENT_TABLES,
    "Table 2: UDA methods": catalogue.rows_of(catalogue.UDA_METHOD_PAIRS_PAPER),
    "Domain generalization": catalogue.DG_ROWS,
}
NOTES = {"advseg": "+ discriminator", "shade": "SHADE: batch x2 after stage 1; refresh amortized"}


def forecast_rows(profile: str = "paper", keys: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One line per row of `profile` (every row of its studies, or `keys`): FLOPs by part,
    memory, seeds and GPU hours per run on both cards (`add_hours`)."""
    seeds, lines = row_seeds(profile), []
    for key in keys or catalogue.rows_of(studies(profile)):
        cfg = catalogue.row_config(profile, key)
        (parts, activations), static = training_cost(cfg), static_bytes(cfg)
        lines.append(
            {
                "key": key,
                "label": catalogue.row_label(profile, key),
                "tables": "; ".join(t for t, rows in TABLES.items() if key in rows),
                "encoder": cfg.model.encoder,
                "batch": cfg.batch_size,
                "crop": "x".join(map(str, _crop_hw(cfg))),
                "iters": cfg.iters,
                "train_gflops_per_iter": sum(parts.values()) / 1e9,
                **{f"gflops_{part}": flops / 1e9 for part, flops in parts.items()},
                "test_gflops_per_image": inference_flops(cfg) / 1e9,
                "evals_per_run": math.ceil(cfg.iters / cfg.eval_interval) + 1,  # + the final
                "activation_gb": activations / 1e9,
                "peak_gb_fp32": (static + activations) / 1e9,
                "peak_gb_bf16": (static + activations / 2) / 1e9,  # assumed: bf16 halves them
                "seeds": seeds.get(key, 1),
                "note": NOTES.get("shade" if cfg.uda.shade else cfg.uda.method, ""),
            }
        )
    table = pd.DataFrame(lines)
    return add_hours(table.fillna({c: 0.0 for c in table if c.startswith("gflops_")}))


@lru_cache(maxsize=1)
def achieved_flops() -> float:
    """FLOP/s a Titan RTX achieved in fp32: the paper's HRDA training FLOPs over its 32 h."""
    parts, _ = training_cost(catalogue.row_config("paper", "hrda"))
    return sum(parts.values()) * HRDA_ITERS / (HRDA_HOURS * 3600)


def add_hours(table: pd.DataFrame) -> pd.DataFrame:
    """GPU hours per run (training + evaluations) at `achieved_flops` and on an H100."""
    achieved = achieved_flops()
    train_s = table["train_gflops_per_iter"] * 1e9 * table["iters"] / achieved
    eval_s = table["test_gflops_per_image"] * 1e9 * VAL_IMAGES * table["evals_per_run"] / achieved
    hours, speedup = (train_s + eval_s) / 3600, H100_SPEEDUPS
    basis = (
        f"24 GB card (Titan RTX class, fp32): {achieved / 1e12:.2f} TFLOP/s achieved, from "
        f"HRDA's {HRDA_HOURS:.0f} h / {HRDA_ITERS} iterations; H100 (bf16 autocast): "
        f"x{speedup['h100']:.1f} assumed (bandwidth ratio x2 for bf16 bytes), bounds "
        f"x{speedup['h100_slow']:.1f}-x{speedup['h100_fast']:.1f}; bf16 halves activations"
    )
    return table.assign(
        fits_24gb=table["peak_gb_fp32"] <= CARD_GB,
        hours_eval_24gb=eval_s / 3600,
        hours_24gb_per_run=hours,
        hours_h100_per_run=hours / speedup["h100"],
        basis=basis,
    )


def forecast_tables(rows: pd.DataFrame, profile: str = "paper") -> pd.DataFrame:
    """GPU hours per study and for the whole profile (a row shared by studies counted once
    there), each run times the seeds the profile trains; rows missing from `rows` count 0."""
    by_key, lines, groups = rows.set_index("key"), [], studies(profile)
    for name, keys in {**groups, "Whole profile": catalogue.rows_of(groups)}.items():
        part = by_key.loc[[key for key in dict.fromkeys(keys) if key in by_key.index]]
        hours = float((part["hours_24gb_per_run"] * part["seeds"]).sum())
        line = {"table": name, "rows": len(part), "runs": int(part["seeds"].sum())}
        line |= {"hours_24gb": hours, **{f"hours_{k}": hours / v for k, v in H100_SPEEDUPS.items()}}
        lines.append(line | {"rows_over_24gb_fp32": int((~part["fits_24gb"]).sum())})
    return pd.DataFrame(lines)


def write_forecast(out: Path, rows: pd.DataFrame, tables: pd.DataFrame) -> tuple[Path, ...]:
    """Write `forecast.csv` (one line per row) and `forecast_tables.csv` into `out`."""
    Path(out).mkdir(parents=True, exist_ok=True)
    frames = {"forecast.csv": rows.round(4), "forecast_tables.csv": tables.round(2)}
    return tuple(write_text(Path(out) / name, f.to_csv(index=False)) for name, f in frames.items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="GPU cost forecast of a profile's rows.")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "rehearsal")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = forecast_rows(args.profile)
    tables = forecast_tables(rows, args.profile)
    print(tables.round(1).to_string(index=False))
    if "hrda" in rows["key"].values:
        peak = rows.set_index("key").at["hrda", "peak_gb_fp32"]
        print(f"HRDA: {peak:.1f} GB fp32 estimated, {PUBLISHED_HRDA_GB} GB published (paper)")
    print("wrote", *write_forecast(args.out, rows, tables))


if __name__ == "__main__":
    run(main)
