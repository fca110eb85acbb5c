"""`make demo`: a newcomer's reproduction. Runs the `quick` profile's notebooks into a folder of
its own (never over the committed results), its runs trained ahead two at a time with one thread
each, and ends with each headline number beside the committed one and whether it reproduced
within the seed spread.

    python -m hrda_lib.reproduction.demo                     # into demo/ (under 30 min on 2 cores)
    python -m hrda_lib.reproduction.demo --out scratch/demo  # elsewhere

The committed reference is the `synthetic` profile's 3 seeds in `results/` (the quick profile's
rows are its seed-0 rows); a demo number reproduces when it lies within two standard deviations
of the committed seeds' mean. A second call reuses the finished notebooks of the first.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hrda_lib.cli import run as run_cli
from hrda_lib.errors import UsageError
from hrda_lib.files import write_text
from hrda_lib.paths import REPO_ROOT
from hrda_lib.reproduction.catalogue import ROW_NAMES, row_label
from hrda_lib.reproduction.runner import NotebookFailure, run
from hrda_lib.reproduction.tables import CLAIMS, markdown_table

COMMITTED = REPO_ROOT / "results"
MAIN_CSV = Path("07_figures_tables") / "main_comparison.csv"
CROP_CSV = Path("04_ablation_crop_sizes") / "metrics.csv"
REFERENCE = "synthetic"  # the profile of the committed seeds a demo is judged against


def _profile_of(results: Path, csv: Path) -> str | None:
    """The profile a notebook's results were made under (its `config.json`), None if unknown."""
    config = results / csv.parent / "config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("parameters", {}).get("profile")


def _per_seed(results: Path, profile: str | None = None) -> pd.DataFrame:
    """row, seed, mIoU of the main comparison (07, from 06) and the crop-size study (04) of a
    results folder, only those made under `profile` when given; empty if it has none."""
    frames = []
    for csv, columns in ((MAIN_CSV, {}), (CROP_CSV, {"key": "row", "mIoU": "miou"})):
        if not (results / csv).is_file():
            continue
        if profile is not None and _profile_of(results, csv) != profile:
            print(f"[demo] {results / csv} is not of profile {profile!r}: not compared against")
            continue
        frames.append(pd.read_csv(results / csv).rename(columns=columns)[["row", "seed", "miou"]])
    if not frames:
        return pd.DataFrame(columns=["row", "seed", "miou"])
    return pd.concat(frames).drop_duplicates(["row", "seed"])


def headline_table(demo: Path, committed: Path = COMMITTED) -> pd.DataFrame:
    """Each headline number of the demo (rows' mIoU and the claims' differences, seed 0) beside
    the committed seeds' mean ± std, and whether it reproduced (within 2 std)."""
    ours, theirs = _per_seed(demo), _per_seed(committed, REFERENCE)
    lines = []

    def add(name: str, value: float, reference: np.ndarray) -> None:
        mean = float(np.mean(reference)) if len(reference) else np.nan
        std = float(np.std(reference, ddof=1)) if len(reference) > 1 else np.nan
        reproduced = bool(abs(value - mean) <= 2 * std) if np.isfinite(std) else None
        verdict = {True: "yes", False: "NO", None: "–"}[reproduced]
        lines.append(
            {
                "headline": name,
                "demo (seed 0)": round(value, 2),
                "committed mean": round(mean, 2),
                "committed std": round(std, 2),
                "committed seeds": len(reference),
                "reproduced (within 2 std)": verdict,
            }
        )

    by_row = {row: part.set_index("seed")["miou"] for row, part in theirs.groupby("row")}
    demo_rows = ours.groupby("row")["miou"].first()
    for row, value in demo_rows.items():
        add(f"{ROW_NAMES.get(row, row)} (mIoU)", value, by_row.get(row, pd.Series()).to_numpy())
    for claim, row, base in CLAIMS:
        if row in demo_rows and base in demo_rows and row in by_row and base in by_row:
            seeds = by_row[row].index.intersection(by_row[base].index)
            reference = (by_row[row][seeds] - by_row[base][seeds]).to_numpy()
            add(f"{claim} (Δ mIoU)", demo_rows[row] - demo_rows[base], reference)
    return pd.DataFrame(lines)


def _left_out(demo: Path, committed: Path = COMMITTED) -> str:
    """A sentence naming the committed rows this demo did not train ('' if none)."""
    ours = set(_per_seed(demo)["row"])
    theirs = _per_seed(committed, REFERENCE)["row"].drop_duplicates()
    missing = [row_label(REFERENCE, row) for row in theirs if row not in ours]  # crops named
    if not missing:
        return ""
    return (
        f"\n\nNot trained here (the `{REFERENCE}` profile's, committed in `results/`): "
        + "; ".join(missing)
        + ".\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "demo", help="results folder")
    parser.add_argument("--profile", default="quick", help="the profile to run (quick)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if out == COMMITTED.resolve():
        raise UsageError(f"--out {out}: the demo never writes over the committed results")
    os.environ["HRDA_RESULTS"] = str(out)  # the notebooks' kernels inherit it
    os.environ["OMP_NUM_THREADS"] = "1"  # two single-threaded runs at a time use both cores
    start = time.perf_counter()
    try:
        run(args.profile, results=out)
    except NotebookFailure as failure:
        raise SystemExit(failure.report()) from None
    minutes = (time.perf_counter() - start) / 60
    table = headline_table(out)
    text = (
        f"# Demo: profile {args.profile}, {minutes:.1f} min\n\n"
        f"Each headline number of this run (seed 0) beside the committed `synthetic` profile's "
        "seeds in the repository's `results/` (mean ± std); it reproduces when it lies within "
        "2 std.\n\n" + markdown_table(table) + _left_out(out)
    )
    write_text(out / "summary.md", text)
    print(text)
    print(f"[demo] results in {out}; this summary in {out / 'summary.md'}")


if __name__ == "__main__":
    run_cli(main)
