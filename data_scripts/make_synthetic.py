"""Generate the synthetic street-scene benchmark (source in GTA's layout, target in Cityscapes').

Usage:
    python data_scripts/make_synthetic.py --root data/synthetic_quick_s0 --seed 0 --variant quick
    python data_scripts/gta.py data/synthetic_quick_s0/gta --nproc 2
    python data_scripts/cityscapes.py data/synthetic_quick_s0/cityscapes --nproc 2

`--convert` runs the two conversions right away. The datasheet (class frequencies, resolution
oracle, domain-gap and context measures, sample figure) goes to `--datasheet-dir` (default:
`<root>/datasheet`, beside the data).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from hrda_lib.cli import run
from hrda_lib.conversion import convert_cityscapes, convert_gta
from hrda_lib.synthetic import VARIANTS, generate, synthetic_root
from hrda_lib.synthetic.datasheet import write_datasheet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--root", type=Path, default=None, help="default: data/synthetic_<variant>_s<seed>"
    )
    parser.add_argument("--nproc", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--convert", action="store_true", help="also write *_labelTrainIds.png and stats"
    )
    parser.add_argument("--datasheet-dir", type=Path, help="default: <root>/datasheet")
    parser.add_argument("--no-datasheet", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.root or synthetic_root(args.variant, args.seed)
    start = time.perf_counter()
    generate(root, VARIANTS[args.variant](), seed=args.seed, nproc=args.nproc)
    seconds = time.perf_counter() - start
    print(f"generated {args.variant} (seed {args.seed}) in {seconds:.1f} s: {root}")
    if args.convert:
        convert_gta(root / "gta", nproc=args.nproc)
        convert_cityscapes(root / "cityscapes", nproc=args.nproc)
    if not args.no_datasheet:
        datasheet_dir = args.datasheet_dir or root / "datasheet"
        write_datasheet(root, datasheet_dir)
        print(f"datasheet: {datasheet_dir / 'datasheet.md'}")


if __name__ == "__main__":
    run(main)
