"""Train rows of the paper's tables one after another and tabulate them: per-class IoU and mIoU
of each student on the target val set, mean and spread over seeds (a thin command line over
`hrda_lib.reproduction.runs`, the path the notebooks use too).

    python -m hrda_lib.compare --profile synthetic --rows source_only daformer_lr hrda \
        --seeds 0 1 2 --out work_dirs/compare

Finished runs under `<out>/runs/` and in any notebook's `runs/` folder are reused. The committed
results come from the notebooks (`python -m hrda_lib.reproduce`); use this for a quick
comparison of your own.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hrda_lib.cli import run
from hrda_lib.files import write_text
from hrda_lib.reproduction.catalogue import (
    MAIN_ROWS,
    PROFILES,
    get_profile,
    measured_on,
    row_labels,
)
from hrda_lib.reproduction.results import write_csv
from hrda_lib.reproduction.runner import prepare_data, use_workspace
from hrda_lib.reproduction.runs import evaluate_runs, per_class_wide, runs_table, train_rows
from hrda_lib.reproduction.tables import markdown_table, summarize_rows, tables_markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--profile", default="synthetic", choices=list(PROFILES))
    parser.add_argument("--rows", nargs="+", default=list(MAIN_ROWS), help="row keys")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--iters", type=int, help="override every row's schedule length")
    parser.add_argument("--out", type=Path, required=True, help="folder for runs and tables")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    profile = get_profile(args.profile)
    use_workspace(profile)  # a rehearsal reads its mock data, never data/
    prepare_data(profile)
    args.out.mkdir(parents=True, exist_ok=True)  # also when every run is reused from elsewhere
    runs = train_rows(args.profile, args.rows, args.seeds, args.out / "runs", iters=args.iters)
    evaluation = evaluate_runs(runs)
    iters = runs[0].config.iters
    wide = per_class_wide(evaluation, args.profile, iters)
    write_csv(wide, args.out / "table.csv")
    write_csv(runs_table(runs), args.out / "runs.csv")
    labels = row_labels(args.profile, args.rows)
    where = measured_on(args.profile, args.seeds, iters)
    summary = summarize_rows(runs_table(runs), {"comparison": args.rows}, labels, where, 1)
    write_text(args.out / "table.md", tables_markdown(summary))
    print(markdown_table(wide[["row", "seed", "miou"]]))
    print(
        f"[compare] {len(runs)} runs in {time.perf_counter() - start:.0f} s; tables in {args.out}"
    )


if __name__ == "__main__":
    run(main)
