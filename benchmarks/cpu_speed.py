"""CPU speed of the synthetic HRDA training step, one thread, change by change (issue 12).

Each change keeps the maths (parity tests stay green) and is measured against the code without
it in the same process, the steps interleaved (A, B, A, B, ...) so that a busy machine slows both
alike; the CSV gives the median seconds per iteration and the speed-up of each change.

    python benchmarks/cpu_speed.py                       # results/benchmarks/cpu_step.csv

Changes measured:
* `batched_encoder`: the LR context and the detail crop (training), and the context and every
  detail window (the teacher's pseudo-labels), go through the encoder as one batch when they
  have the same size, instead of one encoder call per branch (`HRDASegmentor._encode_both`).

"before" and "batched_encoder" use a 64-channel DAFormer decoder (the synthetic presets' width
before they chose 32); also reported, as what the presets chose (a change of the model, not of
the code): the step with the 32-channel decoder, batched.
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

from hrda_lib.files import write_text
from hrda_lib.model import HRDASegmentor
from hrda_lib.paths import results_root
from hrda_lib.presets import get_preset
from hrda_lib.step import build_state, train_step


def separate_encoder_calls(self, context_input, detail_input, style):
    """The encoder once per branch: the code before `batched_encoder`."""
    return self.encoder(context_input, style), self.encoder(detail_input, style)


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


def make_step(state, cfg, batch: dict, encode_both):
    """One `train_step` with HRDA's encoder pairing done by `encode_both`."""
    batched = HRDASegmentor._encode_both

    def step() -> None:
        HRDASegmentor._encode_both = encode_both
        try:
            train_step(state, batch, cfg)
        finally:
            HRDASegmentor._encode_both = batched

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
    rows = []
    for preset in args.presets:
        preset_cfg = get_preset(preset)
        cfg = replace(preset_cfg, model=replace(preset_cfg.model, decoder_channels=64))
        narrow = replace(cfg, model=replace(cfg.model, decoder_channels=32))
        states = {
            "before": (build_state(cfg, torch.device("cpu")), cfg),
            "batched_encoder": (build_state(cfg, torch.device("cpu")), cfg),
            "decoder_32_channels": (build_state(narrow, torch.device("cpu")), narrow),
        }
        batch = synthetic_batch(cfg)
        encoders = {"before": separate_encoder_calls}
        steps = {
            name: make_step(state, step_cfg, batch, encoders.get(name, HRDASegmentor._encode_both))
            for name, (state, step_cfg) in states.items()
        }
        seconds = interleaved(steps, args.rounds)
        for name, value in seconds.items():
            rows.append(
                {
                    "preset": preset,
                    "decoder_channels": states[name][1].model.decoder_channels,
                    "change": name,
                    "same_maths": name != "decoder_32_channels",
                    "seconds_per_iter": round(value, 4),
                    "speedup_vs_before": round(seconds["before"] / value, 3),
                    "device": f"{platform.machine()} CPU, 1 thread",
                }
            )
            print(f"{preset} {name}: {value:.3f} s/iter", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, pd.DataFrame(rows).to_csv(index=False))
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
