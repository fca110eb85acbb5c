"""How to use a CPU's cores for training: one run with every thread, one run per core, or one
run split over the cores.

    python benchmarks/cpu_parallel.py            # results/benchmarks/cpu_parallel.csv

Times the synthetic HRDA training step (a) in one process with N threads, steps one after
another, (b) in N processes of one thread each, N independent runs stepping at once, and (c) as
one run on N single-threaded processes sharing its batch (`hrda_lib.distributed`, as torchrun
starts them, gloo), and reports the steps per second of each and the ratio to (a) (N = the cores
here). The runner's `jobs` (two runs at a time on the CPU profiles) rests on this measurement;
run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from hrda_lib import allocator, distributed
from hrda_lib.files import write_text
from hrda_lib.paths import results_root
from hrda_lib.presets import get_preset
from hrda_lib.step import build_state, train_step


def _steps(
    preset: str,
    threads: int,
    steps: int,
    warmup: int = 2,
    shard: distributed.Shard = distributed.ONE_PROCESS,
) -> float:
    """Seconds for `steps` training steps of `preset` with `threads` threads (after warm-up);
    with a distributed `shard`, this process's share of each step. glibc keeps freed memory,
    as in `train` on a CPU."""
    allocator.keep_freed_memory()
    torch.set_num_threads(threads)
    cfg = get_preset(preset)
    state = build_state(cfg, torch.device("cpu"))
    if shard.distributed:
        distributed.sync_batchnorm(state.model)
        distributed.sync_batchnorm(state.teacher)
    height, width = cfg.data.sync_crop_size or cfg.data.source_pipeline.crop_size
    gen = torch.Generator().manual_seed(0)
    b = cfg.batch_size
    batch = {
        "img": torch.randn(b, 3, height, width, generator=gen),
        "gt_semantic_seg": torch.randint(0, 19, (b, height, width), generator=gen),
        "target_img": torch.randn(b, 3, height, width, generator=gen),
        "target_valid_pseudo_mask": torch.ones(b, height, width, dtype=torch.uint8),
    }
    rows = shard.rows(b // shard.world)
    batch = {k: v[rows] for k, v in batch.items()}
    for _ in range(warmup):
        train_step(state, batch, cfg, shard)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(state, batch, cfg, shard)
    return time.perf_counter() - start


def _worker(preset: str, steps: int) -> None:
    """One single-threaded process of layout (b), or of (c) when torchrun's variables are set:
    build and warm up, say "ready", wait for "go" on stdin (so that all processes step at once),
    then print the seconds its steps took."""
    torch.set_num_threads(1)
    shard, _, created = distributed.launch("cpu")
    _steps(preset, 1, 1, warmup=1, shard=shard)
    print("ready", flush=True)
    sys.stdin.readline()
    print(_steps(preset, 1, steps, warmup=0, shard=shard), flush=True)
    if created:
        torch.distributed.destroy_process_group()


def _run_workers(preset: str, cores: int, steps: int, shared_run: bool) -> float:
    """The longest of `cores` single-threaded workers' seconds, all started at once."""
    command = [sys.executable, __file__, "--worker", "--preset", preset, "--steps", str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    envs = [env] * cores
    if shared_run:
        port = _free_port()
        envs = [
            env
            | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(cores)}
            | {"RANK": str(rank), "LOCAL_RANK": str(rank)}
            for rank in range(cores)
        ]
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=e)
        for e in envs
    ]
    for worker in workers:
        if worker.stdout.readline().strip() != "ready":
            raise RuntimeError("a benchmark worker failed before its first step")
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    return max(float(worker.communicate()[0].split()[-1]) for worker in workers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(preset: str, cores: int, steps: int) -> list[dict]:
    one = _steps(preset, cores, steps)
    rows = [
        {"layout": f"1 process x {cores} threads", "steps_per_s": steps / one},
        {
            "layout": f"{cores} processes x 1 thread",
            "steps_per_s": cores * steps / _run_workers(preset, cores, steps, shared_run=False),
        },
        {
            "layout": f"1 run on {cores} processes x 1 thread (torchrun)",
            "steps_per_s": steps / _run_workers(preset, cores, steps, shared_run=True),
        },
    ]
    base = rows[0]["steps_per_s"]
    device = f"{platform.machine()} CPU, {cores} cores"
    return [
        r | {"preset": preset, "speedup": r["steps_per_s"] / base, "device": device} for r in rows
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synthetic_hrda")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--out", type=Path, default=results_root() / "benchmarks" / "cpu_parallel.csv"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.preset, args.steps)
    table = pd.DataFrame(measure(args.preset, args.cores, args.steps))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, table.to_csv(index=False))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
