"""Convert Cityscapes labels to train ids, write train-split statistics and split lists.

Usage: python data_scripts/cityscapes.py data/cityscapes --nproc 8

Reads `gtFine/<split>/<city>/*_gtFine_labelIds.png` (shipped in gtFine_trainvaltest.zip) and
writes `*_gtFine_labelTrainIds.png` next to them: the same result as the official script,
which rasterizes `*_polygons.json` with cityscapesscripts (not needed here). Statistics cover
`gtFine/train` only; `train.txt`, `val.txt` (and `test.txt`) list the image stems. Safe to
interrupt and re-run: finished files are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hrda_lib.cli import run
from hrda_lib.conversion import convert_cityscapes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert Cityscapes labels to train ids.")
    parser.add_argument("cityscapes_path", type=Path, help="root holding leftImg8bit/, gtFine/")
    parser.add_argument("--nproc", type=int, default=1, help="worker processes")
    parser.add_argument("-o", "--out-dir", type=Path, default=None, help="stats folder")
    args = parser.parse_args(argv)
    entries = convert_cityscapes(args.cityscapes_path, nproc=args.nproc, out_dir=args.out_dir)
    print(f"converted Cityscapes; statistics of {len(entries)} train labels")


if __name__ == "__main__":
    run(main)
