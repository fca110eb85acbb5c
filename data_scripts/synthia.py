"""Convert SYNTHIA-RAND-CITYSCAPES labels to train ids and write the class statistics.

Usage: python data_scripts/synthia.py data/synthia --nproc 8

Reads `GT/LABELS/<n>.png` (16-bit; the class id is the last channel in OpenCV's BGR order),
writes `GT/LABELS/<n>_labelTrainIds.png` and the three statistics JSON files into the dataset
root (or --out-dir). Safe to interrupt and re-run: finished files are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hrda_lib.cli import run
from hrda_lib.conversion import convert_synthia


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert Synthia labels to Cityscapes train ids.")
    parser.add_argument("synthia_path", type=Path, help="Synthia root holding RGB/ and GT/LABELS/")
    parser.add_argument("--nproc", type=int, default=4, help="worker processes")
    parser.add_argument("-o", "--out-dir", type=Path, default=None, help="stats folder")
    args = parser.parse_args(argv)
    entries = convert_synthia(args.synthia_path, nproc=args.nproc, out_dir=args.out_dir)
    print(f"converted {len(entries)} Synthia labels")


if __name__ == "__main__":
    run(main)
