"""Convert Mapillary Vistas v1.2 labels to the 19 Cityscapes train ids (DG evaluation).

Usage: python data_scripts/mapillary.py data/mapillary --nproc 8

Reads `<split>/labels/*.png` (or `<split>/v1.2/labels/*.png`) for the splits `training` and
`validation` that exist, writes `*_labelTrainIds.png` next to them and the three statistics
JSON files into the dataset root (or --out-dir). Safe to interrupt and re-run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hrda_lib.cli import run
from hrda_lib.conversion import convert_mapillary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert Mapillary labels to train ids.")
    parser.add_argument("mapillary_path", type=Path, help="Mapillary root with validation/")
    parser.add_argument("--nproc", type=int, default=4, help="worker processes")
    parser.add_argument("-o", "--out-dir", type=Path, default=None, help="stats folder")
    parser.add_argument("--splits", nargs="*", default=(), help="default: all found")
    args = parser.parse_args(argv)
    entries = convert_mapillary(
        args.mapillary_path, nproc=args.nproc, out_dir=args.out_dir, splits=args.splits
    )
    print(f"converted {len(entries)} Mapillary labels")


if __name__ == "__main__":
    run(main)
