"""Convert GTA5 labels to train ids and write the class statistics that RCS reads.

Usage: python data_scripts/gta.py data/gta --nproc 8

Writes `labels/<n>_labelTrainIds.png` next to every `labels/<n>.png` and
`sample_class_stats.json`, `sample_class_stats_dict.json`, `samples_with_class.json` into the
dataset root (or --out-dir). Safe to interrupt and re-run: finished files are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hrda_lib.cli import run
from hrda_lib.conversion import convert_gta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert GTA5 labels to Cityscapes train ids.")
    parser.add_argument("gta_path", type=Path, help="GTA root holding images/ and labels/")
    parser.add_argument("--nproc", type=int, default=4, help="worker processes")
    parser.add_argument("-o", "--out-dir", type=Path, default=None, help="stats folder")
    args = parser.parse_args(argv)
    entries = convert_gta(args.gta_path, nproc=args.nproc, out_dir=args.out_dir)
    print(f"converted {len(entries)} GTA labels; statistics in {args.out_dir or args.gta_path}")


if __name__ == "__main__":
    run(main)
