"""How far a run got: its target-val mIoU at two thirds of its schedule and at its end, and the
same over the longer schedules of `python -m hrda_lib.compare --iters N --out results/schedule_N`
(a run counts as converged when its last third added less than 1 mIoU)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hrda_lib.config import config_to_plain
from hrda_lib.paths import results_root
from hrda_lib.reproduction.catalogue import get_profile, row_config
from hrda_lib.reproduction.runs import train_length


def convergence(work_dir: Path) -> dict | None:
    """A finished run's target-val mIoU at two thirds of its schedule and at its end, and what
    its last third added (None for a run still training). A run counts as converged when its
    last third added less than 1 mIoU."""
    saved = json.loads((Path(work_dir) / "config.json").read_text())
    return _convergence_of(_val_curve(work_dir), saved["iters"])


def _val_curve(work_dir: Path) -> pd.DataFrame:
    """A run's validations: the lines of its `metrics.csv` with a target-val mIoU."""
    return pd.read_csv(Path(work_dir) / "metrics.csv").dropna(subset=["val_miou"])


def _convergence_of(curve: pd.DataFrame, iters: int) -> dict | None:
    """`convergence` of a validation curve of a run scheduled for `iters` iterations."""
    if curve.empty or int(curve["iteration"].max()) < iters:
        return None
    iters = int(curve["iteration"].max())
    early = curve[curve["iteration"] <= round(iters * 2 / 3)]
    at_two_thirds = float(early["val_miou"].iloc[-1]) if len(early) else float("nan")
    final = float(curve["val_miou"].iloc[-1])
    gain = round(final - at_two_thirds, 2)
    return {
        "iters": iters,
        "miou_at_two_thirds": round(at_two_thirds, 2),
        "miou_final": round(final, 2),
        "last_third_gain": gain,
        "converged": gain < 1.0,
    }


def schedule_study(
    profile: str, keys: Sequence[str], results: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every finished run of `profile`'s rows `keys` under `results` at any schedule length: the
    notebooks' runs at the profile's length and the longer ones of `python -m hrda_lib.compare
    --iters N --out results/schedule_N`. A run belongs to a row when its saved config is the
    row's experiment with that seed and length (`with_iters`), exactly.

    Returns:
        One line per run (key, seed, iters, `convergence`'s columns, folder), and the validation
        curves of those runs, tidy (key, seed, iters, iteration, val_miou).
    """
    prof = get_profile(profile)
    lines, curves = [], []
    for work_dir in sorted((results or results_root()).glob("*/runs/*")):
        if not (work_dir / "config.json").is_file() or not (work_dir / "metrics.csv").is_file():
            continue
        saved = json.loads((work_dir / "config.json").read_text())
        for key in keys:
            cfg = train_length(row_config(prof, key, saved["seed"]), saved["iters"])
            if saved != config_to_plain(cfg):
                continue
            curve = _val_curve(work_dir)
            if (measured := _convergence_of(curve, cfg.iters)) is None:
                continue
            lines.append({"key": key, "seed": cfg.seed, **measured, "run": str(work_dir)})
            curves.append(
                curve[["iteration", "val_miou"]].assign(key=key, seed=cfg.seed, iters=cfg.iters)
            )
    columns = ["key", "seed", "iters"]
    measures = ["miou_at_two_thirds", "miou_final", "last_third_gain", "converged"]
    table = pd.DataFrame(lines, columns=[*columns, *measures, "run"])
    table = table.drop_duplicates(columns).sort_values(columns, ignore_index=True)
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    if len(curves):
        curves = curves.drop_duplicates([*columns, "iteration"])
        curves = curves[[*columns, "iteration", "val_miou"]]
    return table, curves
