"""Resumable UDA training of HRDA from a preset: the loop around `step.train_step`, with
validation, atomic checkpoints that resume exactly, logging and the command line.

    python -m hrda_lib.train synthetic_hrda --work-dir work_dirs/synthetic_hrda
    python -m hrda_lib.train --list
    torchrun --nproc-per-node 2 -m hrda_lib.train synthetic_hrda   # several processes

Under torchrun (`hrda_lib.distributed`) every process trains its share of the batch and rank 0
alone writes the log, the checkpoints and the validation; a run resumes with any number of
processes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Subset
from tqdm.auto import tqdm

from hrda_lib import allocator, distributed, shade
from hrda_lib.cli import UsageError, positive_int, run
from hrda_lib.config import ExperimentConfig, apply_overrides, with_iters
from hrda_lib.data_setup import (
    build_train_loader,
    build_val_dataset,
    check_training_data,
    style_images,
)
from hrda_lib.evaluate import evaluate
from hrda_lib.files import write_json, write_text
from hrda_lib.guards import DivergedError, DivergenceMonitor, work_dir_lock
from hrda_lib.presets import get_preset, list_presets
from hrda_lib.resume import (
    TrainingInterrupted,
    deferred_interrupt,
    global_rng_state,
    load_checkpoint,
    save_checkpoint,
)
from hrda_lib.step import build_state, style_prototypes_of, train_step, uda_method


@dataclass
class TrainResult:
    work_dir: Path
    checkpoint: Path
    metrics: pd.DataFrame
    wall_time_s: float


# -- the loop --------------------------------------------------------------------------------------


def _channels_last(x):
    return (
        x.contiguous(memory_format=torch.channels_last) if torch.is_tensor(x) and x.ndim == 4 else x
    )


def _flush(pending: list[dict], shard: distributed.Shard = distributed.ONE_PROCESS) -> list[dict]:
    """Convert the pending rows' loss tensors to floats (one host sync); in a distributed run,
    their means over the processes (one all-reduce), the losses of the global batch."""
    if shard.distributed and pending:
        keys = [(i, k) for i, row in enumerate(pending) for k in row if torch.is_tensor(row[k])]
        values = torch.stack([pending[i][k].float() for i, k in keys])
        values = shard.total(values) / shard.world
        for (i, k), value in zip(keys, values, strict=True):
            pending[i][k] = value
    return [{k: float(v) if torch.is_tensor(v) else v for k, v in row.items()} for row in pending]


def _tensorboard_writer(work_dir: Path):
    """A TensorBoard writer into `work_dir/tb` if tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(work_dir / "tb"))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    cfg: ExperimentConfig,
    work_dir: str | Path,
    iters: int | None = None,
    stop_at: int | None = None,
    resume: bool = False,
    progress: bool = True,
    progress_slot: int | None = None,
) -> TrainResult:
    """Train (or resume) an experiment into `work_dir`: `latest.pth`, `metrics.csv`, config.

    One run at a time writes to a work folder (`.lock`). The data is checked before the first
    iteration (every file decodes, label ids are train ids). A run that diverges (a non-finite
    or exploding loss, exploding weights) stops with `DivergedError`; its `latest.pth` is the
    last checkpoint from before the divergence.

    Args:
        cfg: the experiment.
        work_dir: output folder; a finished run there is returned as is when `resume`.
        iters: schedule length override (`config.with_iters`).
        stop_at: end cleanly with a checkpoint after this iteration (cluster time limits).
        resume: continue from `work_dir/latest.pth` if present.
        progress: show progress bars (data check, iterations) with the loss and throughput.
        progress_slot: the terminal line of the iteration bar when several runs train at once
            (`runs.train_all`): one line per run, shown only on a terminal, no data-check bar.
    """
    if iters is not None and iters < 1:
        raise UsageError(f"iters must be a positive number of iterations, not {iters}")
    cv2.setNumThreads(0)  # OpenCV threads in the training process would contend with workers
    cfg = with_iters(cfg, iters) if iters is not None else cfg
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if device_type == "cpu":
        allocator.keep_freed_memory()
    shard, device, created = distributed.launch(device_type)
    try:
        _check_distributed(cfg, shard)
        with work_dir_lock(work_dir) if shard.main else contextlib.nullcontext():
            return _train(
                cfg,
                work_dir,
                stop_at,
                resume,
                progress and shard.main,
                shard,
                device or torch.device(device_type),
                progress_slot,
            )
    finally:
        if created:
            torch.distributed.destroy_process_group()


def _check_distributed(cfg: ExperimentConfig, shard: distributed.Shard) -> None:
    """One line for what a distributed run cannot do (before any work)."""
    if not shard.distributed:
        return
    if cfg.batch_size % shard.world:
        raise UsageError(
            f"batch_size {cfg.batch_size} is the batch of all {shard.world} processes together "
            f"and must be a multiple of {shard.world}: run fewer processes, or --set "
            f"batch_size={shard.world * -(-cfg.batch_size // shard.world)} (and scale "
            "optimizer.lr with it: the results are then not those of the paper's batch)"
        )
    if cfg.uda.shade is not None:
        raise UsageError("SHADE (domain generalization) trains in one process: drop torchrun")
    if cfg.uda.mic is not None and cfg.uda.mic.mode in ("separate", "separateaug"):
        raise UsageError(
            f"MIC mode {cfg.uda.mic.mode!r} trains on the first image of the batch, which a "
            "distributed run does not have in one process: use separatetrgaug or one process"
        )


def _train(
    cfg: ExperimentConfig,
    work_dir: Path,
    stop_at: int | None,
    resume: bool,
    progress: bool,
    shard: distributed.Shard,
    device: torch.device,
    progress_slot: int | None = None,
) -> TrainResult:
    checkpoint = work_dir / "latest.pth"
    metrics_path = work_dir / "metrics.csv"
    start_time = time.perf_counter()
    _seed_everything(cfg.seed)
    state = build_state(cfg, device)
    if shard.distributed:
        for module in (state.model, state.teacher):
            if module is not None:
                distributed.sync_batchnorm(module)
        if shard.rank > 0:  # dropout and drop-path: a stream of its own per process
            torch.manual_seed(cfg.seed + shard.rank)
    rows: list[dict] = []
    if resume and checkpoint.is_file():
        if not load_checkpoint(state, checkpoint, cfg, shard):  # refused if another experiment
            torch.manual_seed(cfg.seed + shard.rank + state.iteration)
        if metrics_path.is_file():
            log = pd.read_csv(metrics_path)
            rows = log[log["iteration"] <= state.iteration].to_dict("records")
    elif checkpoint.exists():
        raise FileExistsError(
            f"{checkpoint} exists: pass resume=True (--resume) or another work dir"
        )
    if shard.main:
        write_json(work_dir / "config.json", asdict(cfg))
    if state.iteration >= cfg.iters:
        return TrainResult(work_dir, checkpoint, pd.DataFrame(rows), 0.0)

    if shard.main:  # the others wait: a synthetic benchmark is generated once
        check_training_data(cfg, progress and progress_slot is None)
    shard.barrier()
    loader = build_train_loader(cfg, start=state.iteration * cfg.batch_size, shard=shard)
    val_dataset = build_val_dataset(cfg) if shard.main else None
    if val_dataset is not None and cfg.eval_max_images is not None:
        val_dataset = Subset(val_dataset, range(min(cfg.eval_max_images, len(val_dataset))))
    end = min(cfg.iters, stop_at) if stop_at is not None else cfg.iters
    bar = None
    if progress:
        beside = {} if progress_slot is None else {"position": progress_slot, "disable": None}
        bar = tqdm(
            total=end,
            initial=state.iteration,
            desc=f"{cfg.name} seed {cfg.seed}",
            dynamic_ncols=True,
            **beside,  # several runs at once: a line each, on a terminal only
        )
    batches = iter(loader)
    writer = _tensorboard_writer(work_dir) if shard.main else None
    monitor = DivergenceMonitor(state.model)
    saved_at = state.iteration if checkpoint.is_file() else None

    def diverged(iteration: int, problem: str) -> DivergedError:
        kept = f"{checkpoint} (iteration {saved_at})" if saved_at else "no checkpoint was written"
        return DivergedError(
            f"training diverged at iteration {iteration}: {problem}; the last checkpoint from "
            f"before it is kept: {kept}. Lower the learning rate or check the data"
        )

    pending: list[dict] = []  # rows whose losses are still device tensors (no sync yet)
    tic = time.perf_counter()
    with deferred_interrupt(enabled=not shard.distributed) as stop:
        while state.iteration < end:
            if cfg.uda.shade is not None and shade.needs_refresh(
                state.iteration, cfg.uda.shade.refresh_interval
            ):
                state.style_prototypes = style_prototypes_of(state, cfg, style_images(cfg))
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in next(batches).items()}
            if cfg.channels_last:
                batch = {k: _channels_last(v) for k, v in batch.items()}
            logs = train_step(state, batch, cfg, shard)
            now = time.perf_counter()
            pending.append(
                {
                    "iteration": state.iteration,
                    **logs,
                    "seconds_per_iter": now - tic,
                    "lr": state.optimizer.param_groups[0]["lr"],
                }
            )
            tic = now
            evaluate_now = state.iteration % cfg.eval_interval == 0 or state.iteration == cfg.iters
            stopping = stop.requested  # read once: a later Ctrl-C is the next iteration's
            checkpoint_now = (
                state.iteration % cfg.checkpoint_interval == 0
                or state.iteration in (end, cfg.iters)
                or stopping  # Ctrl-C: this iteration is the checkpoint's
            )
            if evaluate_now or checkpoint_now or state.iteration % cfg.log_interval == 0:
                flushed = _flush(pending, shard)  # host sync
                pending = []
                for row in flushed:
                    if problem := monitor.loss_problem(row):
                        raise diverged(row["iteration"], problem)
                rows += flushed
                if writer is not None:
                    for row in flushed:
                        for key, value in row.items():
                            if key != "iteration":
                                writer.add_scalar(key, value, row["iteration"])
                if bar is not None:
                    bar.update(state.iteration - bar.n)
                    bar.set_postfix(
                        loss=f"{rows[-1]['loss_source_total']:.3f}",
                        s_it=f"{rows[-1]['seconds_per_iter']:.2f}",
                    )
            if evaluate_now:
                if shard.main:
                    result = evaluate(
                        state.model, val_dataset, cfg.test_window, cfg.test_stride, cfg.max_batch
                    )
                    rows[-1] |= {
                        "val_miou": result.summary["mIoU"],
                        "val_aacc": result.summary["aAcc"],
                    }
                    state.model.train()
                shard.barrier()
                tic = time.perf_counter()
            if checkpoint_now:
                if problem := monitor.weight_problem(state.model):
                    raise diverged(state.iteration, problem)
                process_rngs = (
                    shard.gather_objects(global_rng_state()) if shard.distributed else None
                )
                if shard.main:
                    save_checkpoint(state, cfg, checkpoint, process_rngs)
                    write_text(metrics_path, pd.DataFrame(rows).to_csv(index=False))
                saved_at = state.iteration
            if stopping:
                if bar is not None:
                    bar.close()
                raise TrainingInterrupted(
                    f"interrupted at iteration {state.iteration} of {cfg.iters}: {checkpoint} "
                    "holds it; continue with --resume (train(..., resume=True))"
                )
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    return TrainResult(work_dir, checkpoint, pd.DataFrame(rows), time.perf_counter() - start_time)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train HRDA (UDA) from a preset.")
    parser.add_argument("preset", nargs="?", help="preset name (see --list)")
    parser.add_argument("--list", action="store_true", help="print the presets, one per line")
    parser.add_argument("--iters", type=positive_int, help="schedule length")
    parser.add_argument("--work-dir", help="output folder (default work_dirs/<preset>)")
    parser.add_argument(
        "--stop-at", type=positive_int, help="stop with a checkpoint after iteration N"
    )
    parser.add_argument("--resume", action="store_true", help="continue from work-dir/latest.pth")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="override config fields, e.g. model.attention=fixed seed=1",
    )
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(list_presets()))
        return
    if not args.preset:
        parser.error("a preset name is required (see --list)")
    cfg = apply_overrides(get_preset(args.preset), args.set)
    uda_method(cfg)  # an unknown method fails here, before any work
    work_dir = Path(args.work_dir or f"work_dirs/{cfg.name}")
    if args.resume and not (work_dir / "latest.pth").is_file():
        raise UsageError(
            f"--resume: {work_dir / 'latest.pth'} does not exist: start without --resume, or "
            "name the run's folder with --work-dir"
        )
    try:
        result = train(cfg, work_dir, args.iters, args.stop_at, args.resume)
    except DivergedError as error:
        sys.exit(f"error: {error}")
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun: rank 0 reports
        return
    last = result.metrics.dropna(subset=["val_miou"]) if "val_miou" in result.metrics else None
    summary = (
        f"; val mIoU {last['val_miou'].iloc[-1]:.2f}" if last is not None and len(last) else ""
    )
    print(f"done: {result.checkpoint} ({result.wall_time_s:.0f} s){summary}; wrote {work_dir}")


if __name__ == "__main__":
    run(main)
