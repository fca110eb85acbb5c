"""Training, reusing and evaluating the rows of a table: the one "train these rows and tabulate"
path that the notebooks and `python -m hrda_lib.compare` share.

A run of row `key` with seed `k` lives in `<runs folder>/<experiment name>_seed<k>/` (the
training checkpoint, `metrics.csv`, `config.json`). `train_rows` reuses a finished run of exactly
the same experiment from any notebook's folder (read only) before training one; `train_ahead`
trains the runs of several notebooks at once, so that two single-threaded runs keep two cores
busy across notebook boundaries.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from hrda_lib.checkpoints import load_model
from hrda_lib.classes import NUM_CLASSES
from hrda_lib.config import ExperimentConfig, config_to_plain, with_iters
from hrda_lib.data_setup import prepare_synthetic
from hrda_lib.evaluate import evaluate, target_val_dataset
from hrda_lib.model import build_segmentor, segmentation_loss
from hrda_lib.paths import REPO_ROOT, read_roots, results_root
from hrda_lib.reproduction.catalogue import get_profile, notebook_rows, row_config
from hrda_lib.reproduction.results import device
from hrda_lib.step import uda_method
from hrda_lib.train import train


@dataclass
class Run:
    """One finished training run of a table row."""

    key: str  # row key (hrda, daformer_lr, fixedatt, ...)
    seed: int
    config: ExperimentConfig  # the experiment as trained (seed and iterations applied)
    work_dir: Path  # its folder: latest.pth, metrics.csv, config.json
    metrics: pd.DataFrame  # hrda_lib.train's per-iteration log (val_miou at eval iterations)
    reused: bool  # True if it came from an earlier notebook's (or an earlier run's) folder

    @property
    def checkpoint(self) -> Path:
        return run_checkpoint(self.work_dir)

    @property
    def final_miou(self) -> float:
        """Target-val mIoU (%) at the last evaluated iteration (the end of training)."""
        return float(self.metrics["val_miou"].dropna().iloc[-1])


def run_checkpoint(work_dir: Path) -> Path:
    """A run's model: its training checkpoint `latest.pth`, or else the committed model file
    `model.pth` (`hrda_lib.reproduction.trained`)."""
    latest = Path(work_dir) / "latest.pth"
    return latest if latest.is_file() else Path(work_dir) / "model.pth"


def finished_run_dir(cfg: ExperimentConfig, search_dirs: Sequence[Path]) -> Path | None:
    """The first `<dir>/<name>_seed<seed>/` holding a finished run of exactly `cfg`, or None."""
    for folder in search_dirs:
        work_dir = Path(folder) / f"{cfg.name}_seed{cfg.seed}"
        config, metrics = work_dir / "config.json", work_dir / "metrics.csv"
        if not (run_checkpoint(work_dir).is_file() and config.is_file() and metrics.is_file()):
            continue
        log = pd.read_csv(metrics)
        if (
            json.loads(config.read_text()) == config_to_plain(cfg)
            and log["iteration"].max() >= cfg.iters
        ):
            return work_dir
    return None


def train_rows(
    profile: str,
    keys: Sequence[str],
    seeds: Sequence[int],
    runs_dir: Path,
    iters: int | None = None,
    jobs: int | None = None,
) -> list[Run]:
    """Train every row x seed of a profile, or reuse a finished run of the same experiment.

    Args:
        profile: a profile of `hrda_lib.reproduction.catalogue` (which rows, which data).
        keys: row keys.
        runs_dir: where new runs go, `<name>_seed<k>/` each; a finished run of the same
            experiment there or in any notebook's `runs/` folder is reused (read only).
        iters: schedule length of every run; 0 or None: the profile's (or the presets' own).
        jobs: runs trained at a time, each in its own process with one thread (None: the
            profile's `jobs`); on a CPU two single-threaded runs use two cores better than one
            run with two threads.
    """
    prof = get_profile(profile)
    search = [Path(runs_dir), *_all_runs_dirs()]
    todo: list[tuple[ExperimentConfig, Path]] = []
    found: dict[tuple[str, int], Path] = {}
    for key in keys:
        for seed in seeds:
            cfg = train_length(row_config(prof, key, seed), iters)
            if (folder := finished_run_dir(cfg, search)) is not None:
                print(f"[runs] {cfg.name} seed {seed}: finished run reused from {folder}")
                found[(key, seed)] = folder
            else:
                todo.append((cfg, Path(runs_dir) / f"{cfg.name}_seed{seed}"))
    train_all(todo, jobs or prof.jobs)
    runs = []
    for key in keys:
        for seed in seeds:
            cfg = train_length(row_config(prof, key, seed), iters)
            folder = found.get((key, seed), Path(runs_dir) / f"{cfg.name}_seed{seed}")
            metrics = pd.read_csv(folder / "metrics.csv")
            runs.append(Run(key, seed, cfg, folder, metrics, reused=(key, seed) in found))
    return runs


def _all_runs_dirs(results: Path | None = None) -> list[Path]:
    """Every notebook's `runs/` folder under `results` (default: the results root)."""
    return sorted((results or results_root()).glob("[0-9][0-9]_*/runs"))


def train_all(todo: Sequence[tuple[ExperimentConfig, Path]], jobs: int = 1) -> None:
    """Train each (config, work folder), `jobs` at a time in processes of one thread each on a
    CPU (the longest first, so that the last ones running together are short)."""
    if jobs > 1 and len(todo) > 1 and not torch.cuda.is_available():
        datasets = {json.dumps(asdict(cfg.data), default=str): cfg.data for cfg, _ in todo}
        for data in datasets.values():
            prepare_synthetic(data)  # once, before processes that would race to generate it
        context = multiprocessing.get_context("spawn")
        # One progress line per run on a terminal (tqdm's lock keeps the lines apart).
        with ProcessPoolExecutor(
            jobs, mp_context=context, initializer=tqdm.set_lock, initargs=(context.RLock(),)
        ) as pool:
            order = sorted(todo, key=lambda job: -_cost(job[0]))
            print(f"[runs] training {len(order)} runs, {jobs} at a time", flush=True)
            for message in pool.map(_train_one, order, [jobs] * len(order)):
                tqdm.write(message)
    else:
        for job in todo:
            print(_train_one(job), flush=True)


def train_ahead(
    profile: str, stems: Sequence[str], jobs: int | None = None, results: Path | None = None
) -> int:
    """Train every run that the notebooks `stems` of `profile` will train (`notebook_rows`),
    each once, into the `runs/` folder of the first notebook that asks for it under `results`
    (default: the results root), `jobs` at a time; the notebooks then find them finished.
    Returns the number of runs trained."""
    prof = get_profile(profile)
    rows = notebook_rows(prof)
    results = results or results_root()
    search = _all_runs_dirs(results)
    todo: dict[str, tuple[ExperimentConfig, Path]] = {}
    for stem in stems:
        for keys, seeds in rows.get(stem[:2], ()):
            for key in keys:
                for seed in seeds:
                    cfg = row_config(prof, key, seed)
                    identity = json.dumps(config_to_plain(cfg), sort_keys=True)
                    if identity in todo or finished_run_dir(cfg, search) is not None:
                        continue
                    todo[identity] = (cfg, results / stem / "runs" / f"{cfg.name}_seed{seed}")
    train_all(list(todo.values()), jobs or prof.jobs)
    return len(todo)


def _train_one(job: tuple[ExperimentConfig, Path], jobs: int = 1) -> str:
    """Train one run (in a worker process: one thread, and a progress line of its own on a
    terminal); a line saying how it went."""
    cfg, work_dir = job
    slot = None
    if multiprocessing.parent_process() is not None:
        torch.set_num_threads(1)
        slot = (multiprocessing.current_process()._identity[-1] - 1) % jobs  # the worker's line
    result = train(cfg, work_dir, resume=True, progress=slot is not None, progress_slot=slot)
    miou = result.metrics["val_miou"].dropna().iloc[-1]
    return (
        f"[runs] {cfg.name} seed {cfg.seed}: trained {cfg.iters} iterations in "
        f"{result.wall_time_s:.0f} s, val mIoU {miou:.2f}"
    )


def _cost(cfg: ExperimentConfig) -> float:
    """A rough relative cost of a run: iterations x pixels the encoder sees per iteration."""
    crop = (cfg.data.sync_crop_size or cfg.data.source_pipeline.crop_size)[0]
    passes = 1 if uda_method(cfg).target_pass is None else 4 if cfg.uda.mic else 3
    if cfg.model.multi_resolution:
        detail = cfg.model.detail_crop_size[0]
        pixels = (crop * cfg.model.context_scale) ** 2 + detail**2 * (1 + (crop / detail) ** 2)
    else:
        pixels = crop**2
    return cfg.iters * passes * pixels


def train_length(cfg: ExperimentConfig, iters: int | None) -> ExperimentConfig:
    """`cfg` with a schedule of `iters` iterations (0 or None: its own)."""
    return with_iters(cfg, iters) if iters else cfg


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One tidy row per run: key, experiment, seed, iterations, mIoU, median s/iteration."""
    return pd.DataFrame(
        [
            {
                "key": r.key,
                "experiment": r.config.name,
                "seed": r.seed,
                "iters": r.config.iters,
                "mIoU": r.final_miou,
                "seconds_per_iter": float(r.metrics["seconds_per_iter"].median()),
                "reused": r.reused,
            }
            for r in runs
        ]
    )


def training_curves(runs: Sequence[Run], window: int = 10) -> pd.DataFrame:
    """Tidy log of all runs: key, seed, iteration, quantity, value.

    Each quantity is averaged over windows of `window` iterations, each point placed at its
    window's last iteration (a 1500-iteration run gives 150 points, not 1500); the validation
    values, logged every few hundred iterations, stay as they are when `window` divides that
    interval. The full log is each run's `metrics.csv`.
    """
    frames = []
    for r in runs:
        log = r.metrics.drop(columns=["lr"], errors="ignore").melt(
            id_vars="iteration", var_name="quantity", value_name="value"
        )
        log = log.dropna().assign(iteration=lambda f: -(-f["iteration"] // window) * window)
        log = log.groupby(["iteration", "quantity"], as_index=False, sort=False)["value"].mean()
        frames.append(log.assign(key=r.key, seed=r.seed))
    return pd.concat(frames, ignore_index=True)


def evaluate_runs(runs: Sequence[Run]) -> pd.DataFrame:
    """Each run's student on its target val set, tidy: key, experiment, seed, class, metric, value
    (class "(all)" holds mIoU, aAcc and mAcc; per class IoU and Acc, in %)."""
    frames = []
    for r in runs:
        model = load_model(r.checkpoint).to(device())
        result = evaluate(
            model,
            target_val_dataset(r.config),
            r.config.test_window,
            r.config.test_stride,
            r.config.max_batch,
        )
        per_class = result.per_class.melt(id_vars="class", var_name="metric", value_name="value")
        overall = pd.DataFrame(
            [("(all)", k, v) for k, v in result.summary.items()],
            columns=["class", "metric", "value"],
        )
        frames.append(
            pd.concat([overall, per_class]).assign(key=r.key, experiment=r.config.name, seed=r.seed)
        )
    table = pd.concat(frames, ignore_index=True)
    return table[["key", "experiment", "seed", "class", "metric", "value"]]


def per_class_wide(evaluation: pd.DataFrame, profile: str, iters: int) -> pd.DataFrame:
    """`evaluate_runs` as one line per run and seed: row, seed, iters, profile, miou, then one
    column of IoU per Cityscapes class (the tidy CSV a reader needs no notebook for)."""
    overall = evaluation.query("`class` == '(all)' and metric == 'mIoU'")
    table = overall[["key", "seed"]].rename(columns={"key": "row"}).reset_index(drop=True)
    table.insert(2, "iters", iters)
    table.insert(3, "profile", profile)
    table["miou"] = overall["value"].round(2).to_numpy()
    iou = evaluation.query("metric == 'IoU'").pivot_table(
        index=["key", "seed"], columns="class", values="value", sort=False
    )
    for name in iou.columns:
        table[name] = [
            round(float(iou.loc[(k, s), name]), 2)
            for k, s in zip(table["row"], table["seed"], strict=True)
        ]
    return table


def training_memory_mb(cfg: ExperimentConfig) -> tuple[float, str]:
    """Memory of one student training pass (forward + backward) on a batch of the run's crops.

    On CUDA the allocator's peak; on CPU (no per-call peak exists) the tensors the forward saves
    for backward, parameters excluded: the activation memory that the paper's crop-size
    comparisons trade off. Returns (megabytes, what was measured).
    """
    dev = device()
    model = build_segmentor(cfg.model).to(dev).train()
    size = cfg.data.sync_crop_size or cfg.data.source_pipeline.crop_size
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(cfg.batch_size, 3, *size, generator=generator).to(dev)
    label = torch.randint(0, NUM_CLASSES, (cfg.batch_size, *size), generator=generator).to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        loss = segmentation_loss(model.forward_train(image, generator), label, cfg.model)
        loss["total"].backward()
        return (torch.cuda.max_memory_allocated(dev) - base) / 2**20, "CUDA peak allocated"
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model.forward_train(image, generator)
        loss = segmentation_loss(out, label, cfg.model)["total"]
    loss.backward()
    return sum(saved.values()) / 2**20, "activations saved for backward (CPU)"


def memory_table(runs: Sequence[Run]) -> pd.DataFrame:
    """`training_memory_mb` once per row key: key, memory_mb, memory_measure."""
    rows, seen = [], set()
    for r in runs:
        if r.key not in seen:
            seen.add(r.key)
            rows.append((r.key, *training_memory_mb(r.config)))
    return pd.DataFrame(rows, columns=["key", "memory_mb", "memory_measure"])


def model_for_views(profile: str, seed: int = 0) -> tuple[torch.nn.Module, str]:
    """The HRDA model the view notebooks show, and a sentence saying what it is: a finished run
    of the profile's HRDA row from `06_full_training/runs/` or `03_scale_attention/runs/`, else an
    UNTRAINED model (its predictions are arbitrary; run 03 or 06 for a trained one)."""
    cfg = row_config(get_profile(profile), "hrda", seed)
    stems = ("06_full_training", "03_scale_attention")
    found = finished_run_dir(cfg, [root / stem / "runs" for root in read_roots() for stem in stems])
    if found is not None:
        shown = found.relative_to(REPO_ROOT) if found.is_relative_to(REPO_ROOT) else found.name
        return load_model(run_checkpoint(found)), f"trained: {cfg.name} seed {seed} ({shown})"
    return build_segmentor(cfg.model).eval(), "an UNTRAINED model (no finished HRDA run yet)"
