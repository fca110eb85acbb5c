"""`make demo`: the main job, grown issue by issue into the papermill reproduction of the tables.

Today it checks the port against the official code's golden outputs (when `../shared/golden` or
$HRDA_GOLDEN is present) and measures one training forward of DAFormer vs HRDA on CPU, writing
`results/golden_parity.csv` and `results/benchmarks/model.csv`.
"""

from __future__ import annotations

import subprocess
import sys
import time

from hrda_lib.golden import parity_table
from hrda_lib.paths import REPO_ROOT, golden_root, results_root


def main() -> None:
    start = time.perf_counter()
    out_dir = results_root()
    out_dir.mkdir(parents=True, exist_ok=True)
    if (golden_root() / "hrda_mitb0" / "io.pt").is_file():
        print(f"[demo] parity with the official code's outputs in {golden_root()} ...")
        table = parity_table(golden_root())
        tmp = out_dir / "golden_parity.csv.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(out_dir / "golden_parity.csv")
        print(table.to_string(index=False))
        print(f"[demo] worst max abs diff {table['max_abs_diff'].max():.2e} (tolerance 1e-4)")
    else:
        print(f"[demo] no golden fixtures at {golden_root()}; skipping the parity check")
    print("[demo] one training forward+backward, DAFormer vs HRDA (MiT-b0, 256 context, CPU) ...")
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "model_benchmark.py"), "--iters", "3"],
        check=True,
    )
    print(f"[demo] done in {time.perf_counter() - start:.0f} s; results in {out_dir}")


if __name__ == "__main__":
    main()
