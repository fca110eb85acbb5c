"""What a rehearsal measured: each notebook's papermill time and each run's CPU seconds per
iteration at the real geometry, read back from a rehearsal's results folder into tidy tables;
and, once `make gpu-check` has run on a GPU, the forecast beside what it measured.

    python -m hrda_lib.reproduce --profile rehearsal            # into rehearsal/results/
    python -m hrda_lib.reproduction.rehearsal                   # -> results/rehearsal/*.csv
    python -m hrda_lib.reproduction.rehearsal --gpu-check       # -> forecast_vs_gpu.csv

The rehearsal (`--profile rehearsal`, `hrda_lib.ablations.rehearsal`) is a crash test, not a
result: its mIoU after 2 iterations of randomly initialized networks means nothing, and is not
copied. What it shows is that every notebook ran, and what a CPU step of each row costs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from hrda_lib.cli import run
from hrda_lib.files import write_text
from hrda_lib.paths import REPO_ROOT


def notebook_times(results: Path) -> pd.DataFrame:
    """notebook, profile, seconds, error: from the papermill record of every executed copy."""
    rows = []
    for executed in sorted(Path(results).glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")):
        record = json.loads(executed.read_text())["metadata"].get("papermill", {})
        rows.append(
            {
                "notebook": executed.stem,
                "profile": record.get("parameters", {}).get("profile", ""),
                "seconds": round(record.get("duration") or 0.0, 1),
                "error": record.get("exception") or "",
                "finished": (executed.parent / "config.json").is_file(),
            }
        )
    return pd.DataFrame(rows, columns=["notebook", "profile", "seconds", "error", "finished"])


def run_times(results: Path) -> pd.DataFrame:
    """One line per run of every notebook's `runs/`: notebook, run, encoder, iterations, the
    median CPU seconds per iteration and their sum, and the validation mIoU it logged."""
    rows = []
    for metrics_path in sorted(Path(results).glob("[0-9][0-9]_*/runs/*/metrics.csv")):
        folder = metrics_path.parent
        config = json.loads((folder / "config.json").read_text())
        data = config["data"]  # a small-crop row cuts one common window (`sync_crop_size`)
        metrics = pd.read_csv(metrics_path)
        rows.append(
            {
                "notebook": folder.parents[1].name,
                "run": folder.name,
                "encoder": config["model"]["encoder"],
                "decoder_channels": config["model"]["decoder_channels"],
                "crop": "x".join(
                    map(str, data["sync_crop_size"] or data["source_pipeline"]["crop_size"])
                ),
                "iterations": int(metrics["iteration"].max()),
                "seconds_per_iter": round(float(metrics["seconds_per_iter"].median()), 1),
                "train_seconds": round(float(metrics["seconds_per_iter"].sum()), 1),
            }
        )
    return pd.DataFrame(rows)


def forecast_beside_gpu(forecast: pd.DataFrame, gpu_step: pd.DataFrame) -> pd.DataFrame | None:
    """HRDA's forecast (`forecast.csv`) beside the full-size step that `make gpu-check` measured
    (`gpu_train_step.csv`, its baseline variant): seconds per iteration and peak memory. None if
    the measurement is not of the paper's HRDA on a GPU (a CPU run of gpu_check is smoke size)."""
    measured = gpu_step[gpu_step["preset"] == "gta_to_cityscapes_hrda"]
    if measured.empty:
        return None
    step, row = measured.iloc[0], forecast.set_index("key").loc["hrda"]
    seconds = row["train_gflops_per_iter"] / 1000 / float(step["achieved_tflops"])
    return pd.DataFrame(
        [
            ("TFLOPs per iteration", row["train_gflops_per_iter"] / 1000, step["tflops_per_iter"]),
            (
                "s per iteration at the forecast's H100 speed",
                3600 * row["hours_h100_per_run"] / row["iters"],
                step["seconds_per_iter"],
            ),
            ("s per iteration at the measured TFLOP/s", seconds, step["seconds_per_iter"]),
            ("peak GB (bf16)", row["peak_gb_bf16"], step["peak_memory_gib"] * 2**30 / 1e9),
        ],
        columns=["quantity", "forecast", "measured"],
    ).assign(device=step.get("device", ""), variant=step["variant"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "rehearsal" / "results")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "rehearsal")
    parser.add_argument(
        "--gpu-check",
        action="store_true",
        help="set the forecast beside results/benchmarks/gpu_train_step.csv instead",
    )
    args = parser.parse_args(argv)
    if args.gpu_check:
        gpu_csv = REPO_ROOT / "results" / "benchmarks" / "gpu_train_step.csv"
        if not gpu_csv.is_file():
            raise SystemExit(f"{gpu_csv} is missing: run `make gpu-check` on a GPU first")
        table = forecast_beside_gpu(pd.read_csv(args.out / "forecast.csv"), pd.read_csv(gpu_csv))
        if table is None:
            raise SystemExit(f"{gpu_csv} holds no full-size GPU step (a CPU run is smoke size)")
        write_text(args.out / "forecast_vs_gpu.csv", table.to_csv(index=False))
        print(table.to_string(index=False))
        return
    notebooks = notebook_times(args.results)
    if notebooks.empty:
        raise SystemExit(
            f"{args.results} holds no executed notebook: run `make rehearsal` first "
            "(python -m hrda_lib.reproduce --profile rehearsal)"
        )
    runs = run_times(args.results)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "notebooks.csv", notebooks.to_csv(index=False))
    write_text(args.out / "runs.csv", runs.to_csv(index=False))
    print(notebooks.to_string(index=False))
    print(f"{len(runs)} runs, {runs['train_seconds'].sum() / 60:.1f} CPU-minutes of iterations")
    print(f"wrote {args.out / 'notebooks.csv'} and {args.out / 'runs.csv'}")


if __name__ == "__main__":
    run(main)
