"""The main comparison of the paper on one benchmark: train presets one after another, evaluate
each student on the target val set, and write one table (mIoU and per-class IoU, wall time).

    python -m hrda_lib.compare --presets synthetic_source_only synthetic_daformer_lr \
        synthetic_daformer_hr synthetic_hrda synthetic_mic_hrda --out results/uda_comparison

Finished runs under `<out>/runs/<preset>_seed<k>` are reused (training resumes or returns at once).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from hrda_lib.evaluate import evaluate, target_val_dataset
from hrda_lib.presets import get_preset
from hrda_lib.train import load_trained_model, train

MAIN_COMPARISON = (
    "synthetic_source_only",
    "synthetic_daformer_lr",
    "synthetic_daformer_hr",
    "synthetic_hrda",
    "synthetic_mic_hrda",
)


def run_row(preset: str, seed: int, out: Path, iters: int | None = None) -> dict:
    """Train (or reuse) one preset/seed and evaluate its student; one tidy row per class."""
    cfg = replace(get_preset(preset), seed=seed)
    run_dir = out / "runs" / f"{preset}_seed{seed}"
    result = train(cfg, run_dir, iters=iters, resume=True)
    start = time.perf_counter()
    model = load_trained_model(result.checkpoint)
    evaluation = evaluate(model, target_val_dataset(cfg), cfg.test_window, cfg.test_stride)
    train_time = result.metrics["seconds_per_iter"].sum() if len(result.metrics) else float("nan")
    return {
        "preset": preset,
        "seed": seed,
        "iters": iters or cfg.iters,
        "mIoU": evaluation.summary["mIoU"],
        "train_time_s": round(float(train_time), 1),
        "eval_time_s": round(time.perf_counter() - start, 1),
        **{f"IoU_{row['class']}": row["IoU"] for _, row in evaluation.per_class.iterrows()},
    }


def markdown(table: pd.DataFrame) -> str:
    """Mean (and spread over seeds) of mIoU and train time per preset, as a Markdown table."""
    grouped = table.groupby("preset", sort=False)
    lines = ["| preset | seeds | mIoU | ± | train time (s) |", "|---|---|---|---|---|"]
    for preset, rows in grouped:
        spread = rows["mIoU"].std() if len(rows) > 1 else float("nan")
        lines.append(
            f"| {preset} | {len(rows)} | {rows['mIoU'].mean():.2f} | {spread:.2f} | "
            f"{rows['train_time_s'].mean():.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(MAIN_COMPARISON))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--iters", type=int, help="override every preset's schedule length")
    parser.add_argument("--out", default="results/uda_comparison")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset in args.presets:
        for seed in args.seeds:
            rows.append(run_row(preset, seed, out, args.iters))
            print(f"[compare] {preset} seed {seed}: mIoU {rows[-1]['mIoU']:.2f}", flush=True)
            table = pd.DataFrame(rows)
            tmp = out / "table.csv.tmp"
            table.to_csv(tmp, index=False)
            tmp.replace(out / "table.csv")
    command = "python -m hrda_lib.compare " + shlex.join(sys.argv[1:] if argv is None else argv)
    (out / "table.md").write_text(f"# UDA comparison\n\nMade by `{command}`.\n\n" + markdown(table))
    print((out / "table.md").read_text())


if __name__ == "__main__":
    main()
