"""CPU speed of the synthetic HRDA training step, one thread, change by change (issue 12).

Each change keeps the maths (parity tests stay green) and is measured against the code without
it in the same process, the steps interleaved (A, B, A, B, ...) so that a busy machine slows both
alike; the CSV gives the median seconds per iteration and the speed-up against "before".

    python benchmarks/cpu_speed.py                       # results/benchmarks/cpu_step.csv

Changes measured, each on top of the ones above it:
* `batched_encoder`: the LR context and the detail crop (training), and the context and every
  detail window (the teacher's pseudo-labels), go through the encoder as one batch when they
  have the same size, instead of one encoder call per branch (`HRDASegmentor._encode_both`).
* `shifted_depthwise`: the DAFormer head's depthwise dilated convolutions as shifted
  multiply-adds, two images at a time, instead of oneDNN's kernel (`hrda_lib/depthwise.py`).
* `inplace_relu`: the head's ReLUs overwrite their BatchNorm's output (`heads.ConvBNReLU`).
* `kept_freed_memory`: glibc keeps freed memory for the next step (`hrda_lib/allocator.py`,
  which `train` applies on a CPU). It changes the whole process and cannot be undone, so it is
  measured last: "before" and the current code are run again after it (`before_kept_memory`).

All use a 64-channel DAFormer decoder (the synthetic presets' width before they chose 32); also
reported, as what the presets chose (a change of the model, not of the code): the step with the
32-channel decoder and every change (`decoder_32_channels`).
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
import torch.nn.functional as F

from hrda_lib import allocator, depthwise, heads
from hrda_lib.files import write_text
from hrda_lib.model import HRDASegmentor
from hrda_lib.paths import results_root
from hrda_lib.presets import get_preset
from hrda_lib.step import build_state, train_step

# change -> (encoder pairing, shifted depthwise, in-place ReLU); the code before each change
CODE = {
    "before": (False, False, False),
    "batched_encoder": (True, False, False),
    "shifted_depthwise": (True, True, False),
    "inplace_relu": (True, True, True),
}


def separate_encoder_calls(self, context_input, detail_input, style):
    """The encoder once per branch: the code before `batched_encoder`."""
    return self.encoder(context_input, style), self.encoder(detail_input, style)


def onednn_depthwise(conv, x) -> bool:
    """Never the shifted depthwise convolution: the code before `shifted_depthwise`."""
    return False


def out_of_place_relu(self, x: torch.Tensor) -> torch.Tensor:
    """`ConvBNReLU.forward` before `inplace_relu` (and, with `onednn_depthwise`, before
    `shifted_depthwise`)."""
    if depthwise.applies(self.conv, x):
        y = depthwise.depthwise_conv3x3(x, self.conv.weight, self.conv.dilation[0])
    else:
        y = self.conv(x)
    return F.relu(self.bn(y))


def synthetic_batch(cfg, seed: int = 0) -> dict[str, torch.Tensor]:
    height, width = cfg.data.sync_crop_size or cfg.data.source_pipeline.crop_size
    gen = torch.Generator().manual_seed(seed)
    b = cfg.batch_size
    return {
        "img": torch.randn(b, 3, height, width, generator=gen),
        "gt_semantic_seg": torch.randint(0, 19, (b, height, width), generator=gen),
        "target_img": torch.randn(b, 3, height, width, generator=gen),
        "target_valid_pseudo_mask": torch.ones(b, height, width, dtype=torch.uint8),
    }


def make_step(cfg, batch: dict, code: tuple[bool, bool, bool]):
    """One `train_step` of a fresh training state with the code before or after each change."""
    state = build_state(cfg, torch.device("cpu"))
    batched, shifted, inplace = code
    current = HRDASegmentor._encode_both, depthwise.applies, heads.ConvBNReLU.forward
    chosen = (
        current[0] if batched else separate_encoder_calls,
        current[1] if shifted else onednn_depthwise,
        current[2] if inplace else out_of_place_relu,
    )

    def step() -> None:
        HRDASegmentor._encode_both, depthwise.applies, heads.ConvBNReLU.forward = chosen
        try:
            train_step(state, batch, cfg)
        finally:
            HRDASegmentor._encode_both, depthwise.applies, heads.ConvBNReLU.forward = current

    return step


def interleaved(steps: dict[str, callable], rounds: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each step, the steps run in turn `rounds` times after `warmup`."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + rounds):
        for name, step in steps.items():
            tic = time.perf_counter()
            step()
            if i >= warmup:
                times[name].append(time.perf_counter() - tic)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["synthetic_hrda", "synthetic_mic_hrda"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=results_root() / "benchmarks" / "cpu_step.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    configs = {}
    for preset in args.presets:
        preset_cfg = get_preset(preset)
        cfg = replace(preset_cfg, model=replace(preset_cfg.model, decoder_channels=64))
        configs[preset] = (cfg, replace(cfg, model=replace(cfg.model, decoder_channels=32)))
    seconds = {}  # (preset, change) -> median s/iteration
    for preset, (cfg, _) in configs.items():
        batch = synthetic_batch(cfg)
        steps = {name: make_step(cfg, batch, code) for name, code in CODE.items()}
        seconds |= {(preset, k): v for k, v in interleaved(steps, args.rounds).items()}
    kept = allocator.keep_freed_memory()
    for preset, (cfg, narrow) in configs.items():
        batch = synthetic_batch(cfg)
        steps = {
            "before_kept_memory": make_step(cfg, batch, CODE["before"]),
            "kept_freed_memory": make_step(cfg, batch, CODE["inplace_relu"]),
            "decoder_32_channels": make_step(narrow, batch, CODE["inplace_relu"]),
        }
        seconds |= {(preset, k): v for k, v in interleaved(steps, args.rounds).items()}
    rows = []
    for (preset, change), value in seconds.items():
        rows.append(
            {
                "preset": preset,
                "decoder_channels": 32 if change == "decoder_32_channels" else 64,
                "change": change,
                "same_maths": change != "decoder_32_channels",
                "seconds_per_iter": round(value, 4),
                "speedup_vs_before": round(seconds[preset, "before"] / value, 3),
                "glibc_keeps_freed_memory": kept and change not in CODE,
                "device": f"{platform.machine()} CPU, 1 thread",
            }
        )
        print(f"{preset} {change}: {value:.3f} s/iter", flush=True)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, table.to_csv(index=False))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
