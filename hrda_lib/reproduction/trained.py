"""The trained models committed for instant exploration: HRDA and DAFormer on LR data of the
`synthetic` profile, seed 0, as fp16 model files (`hrda_lib.model_file`) in the committed run
folders that the notebooks reuse, so that 02, 03 and `predict` show a trained model on a fresh
clone without training.

    python -m hrda_lib.reproduction.trained      # about 10 minutes on 2 cores

Each run is retrained from scratch (seed 0, one thread per run, two at a time) into
`work_dirs/trained/`, its validation log compared with the committed `metrics.csv`, and its
student written as `model.pth` beside that log with `manifest.json`: the command, the file's
SHA-256 and size, the target-val mIoU of the fp32 student and of the fp16 file, and both
validation logs. CPU training is not bit-reproducible across sessions (thread scheduling changes
the order of float sums), so the retrained log is not the committed one digit for digit: the
manifest states the largest difference (0.3 points when these files were made), and the model
file is the retrained student, whose own mIoU the manifest gives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from hrda_lib.checkpoints import load_model
from hrda_lib.cli import run as run_cli
from hrda_lib.evaluate import evaluate, target_val_dataset
from hrda_lib.files import write_json
from hrda_lib.model_file import save_model_file
from hrda_lib.paths import REPO_ROOT
from hrda_lib.reproduction.catalogue import get_profile, row_config
from hrda_lib.reproduction.runs import train_all

PROFILE = "synthetic"
SEED = 0
# (notebook whose committed runs/ holds the run, row key)
TRAINED: tuple[tuple[str, str], ...] = (
    ("03_scale_attention", "hrda"),
    ("06_full_training", "daformer_lr"),
)
COMMAND = "python -m hrda_lib.reproduction.trained"


def _val_log(metrics: Path) -> list[float]:
    return pd.read_csv(metrics)["val_miou"].dropna().round(2).tolist()


def _miou(model, cfg) -> float:
    result = evaluate(model, target_val_dataset(cfg), cfg.test_window, cfg.test_stride)
    return round(float(result.summary["mIoU"]), 2)


def export(results: Path, work: Path) -> list[dict]:
    """Retrain every run of `TRAINED` into `work` (finished ones are kept) and write its model
    file and manifest into its committed folder under `results`; one manifest per run."""
    profile = get_profile(PROFILE)
    jobs = []
    for stem, key in TRAINED:
        cfg = row_config(profile, key, SEED)
        committed = results / stem / "runs" / f"{cfg.name}_seed{SEED}"
        recorded = json.loads((committed / "config.json").read_text())
        if recorded != json.loads(json.dumps(asdict(cfg), default=str)):
            raise SystemExit(
                f"{committed / 'config.json'} is not the {PROFILE} profile's {key} row of this "
                "code: re-run the notebook first"
            )
        jobs.append((cfg, work / f"{cfg.name}_seed{SEED}", committed))
    train_all([(cfg, folder) for cfg, folder, _ in jobs], jobs=2)
    manifests = []
    for cfg, folder, committed in jobs:
        student = load_model(folder / "latest.pth")
        path = save_model_file(committed / "model.pth", student, cfg, command=COMMAND)
        data = path.read_bytes()
        retrained, logged = _val_log(folder / "metrics.csv"), _val_log(committed / "metrics.csv")
        manifest = {
            "experiment": cfg.name,
            "seed": SEED,
            "command": COMMAND,
            "file": path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "val_miou_fp32": _miou(student, cfg),
            "val_miou_fp16_file": _miou(load_model(path), cfg),
            "val_log_retrained": retrained,
            "val_log_committed": logged,
            "val_log_max_difference": round(
                max(abs(a - b) for a, b in zip(retrained, logged, strict=True)), 2
            ),
        }
        write_json(committed / "manifest.json", manifest)
        print(json.dumps(manifest))
        manifests.append(manifest)
    return manifests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "work_dirs" / "trained")
    args = parser.parse_args(argv)
    export(args.results, args.work)


if __name__ == "__main__":
    run_cli(main)
