"""What the numbered notebooks call besides the model: results folders and their config.json,
training rows reused across notebooks, the model shown in the views, and the measurements behind
HRDA's analysis figures (scale attention per class, memory of a training pass).

Every notebook writes only to `results/<notebook-stem>/` (`results_dir`), records its parameters
with versions and the git commit (`write_run_config`), and gets its training runs from
`train_rows`, which reuses a finished run of the same experiment from an earlier notebook's
results (read only) before it trains one into its own `runs/` folder.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hrda_lib.classes import CLASSES, NUM_CLASSES
from hrda_lib.conversion import atomic_write_bytes
from hrda_lib.crops import Box, crop, paste, sliding_windows
from hrda_lib.experiment import ExperimentConfig
from hrda_lib.paths import REPO_ROOT, golden_root, results_root


def device() -> torch.device:
    """Where the notebooks' models run: the GPU if there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# -- results folders ---------------------------------------------------------------------------


def results_dir(notebook_stem: str) -> Path:
    """`results/<notebook_stem>/` (under $HRDA_RESULTS if set), created if missing."""
    path = results_root() / notebook_stem
    path.mkdir(parents=True, exist_ok=True)
    return path


def git_commit() -> str:
    """HEAD of the checkout, with `-dirty` if tracked files differ from it ("unknown" outside
    a git checkout)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def versions() -> dict[str, str]:
    """Python, platform, the main packages and the device the notebook ran on."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("hrda", "torch", "timm", "numpy", "pandas", "matplotlib", "papermill"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    found["torch_threads"] = str(torch.get_num_threads())
    return found


def write_run_config(out_dir: Path, params: dict, **extra) -> Path:
    """Write `out_dir/config.json`: the notebook's parameters, versions, git commit, time.

    `extra` adds entries (e.g. the experiments a notebook ran). Written last by each notebook,
    so its presence means the notebook finished (the runner's up-to-date check reads it).
    """
    record = {
        "notebook": Path(out_dir).name,
        "parameters": params,
        "versions": versions(),
        "git_commit": git_commit(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }
    path = Path(out_dir) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(record, indent=2, default=str).encode())
    return path


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    """Write a (tidy) table as CSV atomically; returns the path."""
    atomic_write_bytes(Path(path), table.to_csv(index=False).encode())
    return Path(path)


def write_text(text: str, path: Path) -> Path:
    """Write a text file (Markdown tables) atomically; returns the path."""
    atomic_write_bytes(Path(path), text.encode())
    return Path(path)


def save_figures(figures: dict, out_dir: Path) -> list[Path]:
    """Save every figure of a notebook as `<out_dir>/<name>.png` through `viz.save_figure`."""
    from hrda_lib.viz import save_figure

    return [save_figure(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()]


def run_script(script: str, *args: str | Path) -> str:
    """Run `data_scripts/<script>` with this Python; its output (raises with it on failure)."""
    command = [sys.executable, str(REPO_ROOT / "data_scripts" / script), *map(str, args)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# -- training rows -------------------------------------------------------------------------------


@dataclass
class Run:
    """One finished training run of an experiment row."""

    key: str  # row key (hrda, daformer_lr, fixedatt, ...)
    seed: int
    config: ExperimentConfig  # the experiment as trained (seed and iterations applied)
    work_dir: Path  # its folder: latest.pth, metrics.csv, config.json
    metrics: pd.DataFrame  # hrda_lib.train's per-iteration log (val_miou at eval iterations)
    reused: bool  # True if it came from an earlier notebook's (or an earlier run's) folder

    @property
    def checkpoint(self) -> Path:
        return self.work_dir / "latest.pth"

    @property
    def final_miou(self) -> float:
        """Target-val mIoU (%) at the last evaluated iteration (the end of training)."""
        return float(self.metrics["val_miou"].dropna().iloc[-1])


def _config_json(cfg: ExperimentConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=str))


def finished_run_dir(cfg: ExperimentConfig, search_dirs: Sequence[Path]) -> Path | None:
    """The first `<dir>/<name>_seed<seed>/` holding a finished run of exactly `cfg`, or None."""
    for folder in search_dirs:
        work_dir = Path(folder) / f"{cfg.name}_seed{cfg.seed}"
        config, metrics = work_dir / "config.json", work_dir / "metrics.csv"
        if not ((work_dir / "latest.pth").is_file() and config.is_file() and metrics.is_file()):
            continue
        log = pd.read_csv(metrics)
        if (
            json.loads(config.read_text()) == _config_json(cfg)
            and log["iteration"].max() >= cfg.iters
        ):
            return work_dir
    return None


def train_rows(
    profile: str,
    keys: Sequence[str],
    seeds: Sequence[int],
    runs_dir: Path,
    reuse_from: Sequence[str] = (),
    iters: int | None = None,
) -> list[Run]:
    """Train every row x seed of a profile, or reuse a finished run of the same experiment.

    Args:
        profile: a profile of `hrda_lib.reproduce` (which presets, which data).
        keys: row keys (`hrda_lib.reproduce.row_config`).
        runs_dir: this notebook's `runs/` folder; a run goes to `<name>_seed<k>/` in it.
        reuse_from: stems of other notebooks whose `runs/` folders are searched first (read only).
        iters: schedule length of every run; 0 or None: the profile's (or the presets' own).
    """
    from hrda_lib.reproduce import get_profile, row_config
    from hrda_lib.train import train, with_iters

    iters = iters or get_profile(profile).iters  # 0 / None: the profile's schedule length
    search = [results_root() / stem / "runs" for stem in reuse_from] + [Path(runs_dir)]
    runs = []
    for key in keys:
        for seed in seeds:
            cfg = replace(row_config(profile, key), seed=seed)
            cfg = with_iters(cfg, iters) if iters else cfg
            found = finished_run_dir(cfg, search)
            if found is not None:
                metrics = pd.read_csv(found / "metrics.csv")
                print(f"[runs] {cfg.name} seed {seed}: finished run reused from {found}")
                runs.append(Run(key, seed, cfg, found, metrics, reused=True))
                continue
            result = train(
                cfg, Path(runs_dir) / f"{cfg.name}_seed{seed}", resume=True, progress=False
            )
            run = Run(key, seed, cfg, result.work_dir, result.metrics, reused=False)
            print(
                f"[runs] {cfg.name} seed {seed}: trained {cfg.iters} iterations in "
                f"{result.wall_time_s:.0f} s, val mIoU {run.final_miou:.2f}"
            )
            runs.append(run)
    return runs


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


def training_curves(runs: Sequence[Run]) -> pd.DataFrame:
    """Tidy per-iteration log of all runs: key, seed, iteration, quantity, value."""
    frames = []
    for r in runs:
        log = r.metrics.drop(columns=["lr"], errors="ignore").melt(
            id_vars="iteration", var_name="quantity", value_name="value"
        )
        frames.append(log.dropna().assign(key=r.key, seed=r.seed))
    return pd.concat(frames, ignore_index=True)


# -- models ----------------------------------------------------------------------------------------


def model_for_views(profile: str, seed: int = 0) -> tuple[torch.nn.Module, str]:
    """The HRDA model the view notebooks show, and a sentence saying what it is.

    A finished run of the profile's HRDA row from `results/06_full_training/runs/` (or
    `03_scale_attention/runs/`); else the golden official-format checkpoint (an initialised,
    NOT trained MiT-b0 HRDA, so its predictions are arbitrary); else an untrained model.
    """
    from hrda_lib.checkpoints import load_official_checkpoint
    from hrda_lib.model import build_segmentor
    from hrda_lib.reproduce import get_profile, row_config
    from hrda_lib.train import load_trained_model, with_iters

    prof = get_profile(profile)
    cfg = replace(row_config(prof, "hrda"), seed=seed)
    cfg = with_iters(cfg, prof.iters) if prof.iters else cfg
    stems = ("06_full_training", "03_scale_attention")
    found = finished_run_dir(cfg, [results_root() / stem / "runs" for stem in stems])
    if found is not None:
        note = f"trained: {cfg.name} seed {seed} ({found})"
        return load_trained_model(found / "latest.pth"), note
    golden = golden_root() / "hrda_mitb0" / "checkpoint.pth"
    if golden.is_file():
        return load_official_checkpoint(golden), (
            f"the golden official-format checkpoint {golden} (MiT-b0 with a seeded perturbed "
            "initialisation, not trained: its predictions are arbitrary; run 06 for a trained one)"
        )
    return build_segmentor(cfg.model).eval(), "an UNTRAINED model (no run and no golden checkpoint)"


def with_context_scale(model: torch.nn.Module, context_scale: float) -> torch.nn.Module:
    """The same weights seen at another context scale 1/s_c (a new module; `model` unchanged)."""
    from hrda_lib.model import build_segmentor

    if context_scale == model.cfg.context_scale:
        return model
    clone = build_segmentor(replace(model.cfg, context_scale=context_scale))
    clone.load_state_dict(model.state_dict())
    return clone.eval()


# -- measurements ----------------------------------------------------------------------------------


@torch.no_grad()
def branch_predictions(
    model: torch.nn.Module, image: torch.Tensor, window: tuple[int, int], stride: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Context-only, detail-only and fused logits and the scale attention of an HRDA model over
    a whole image, with the test-time sliding window (averaged where windows overlap).

    Args:
        image: (1, 3, H, W) normalized.
    Returns:
        `lr`, `hr`, `fused`: (1, K, H, W) logits; `attention`: (1, K|1, H, W) in [0, 1].
    """
    image = image.to(next(model.parameters()).device)
    height, width = image.shape[2:]
    sums: dict[str, torch.Tensor] = {}
    count = image.new_zeros((1, 1, height, width))
    for box in sliding_windows(height, width, window, stride):
        out = model.forward_slide(crop(image, box))
        size = (box[1] - box[0], box[3] - box[2])
        attention = out.attention
        if not torch.is_tensor(attention):  # fixed attention: a constant map
            attention = out.lr_logits.new_full((1, 1, *out.lr_logits.shape[2:]), attention)
        parts = {
            "lr": out.lr_logits,
            "hr": out.hr_logits,
            "fused": out.fused,
            "attention": attention,
        }
        for name, part in parts.items():
            full = F.interpolate(part, size=size, mode="bilinear", align_corners=False)
            sums[name] = sums.get(name, 0) + paste((height, width), full, box)
        count[..., box[0] : box[1], box[2] : box[3]] += 1
    return {name: (total / count).cpu() for name, total in sums.items()}


def training_memory_mb(cfg: ExperimentConfig) -> tuple[float, str]:
    """Memory of one student training pass (forward + backward) on a batch of the run's crops.

    On CUDA the allocator's peak; on CPU (no per-call peak exists) the tensors the forward saves
    for backward, parameters excluded: the activation memory that the paper's crop-size
    comparisons trade off. Returns (megabytes, what was measured).
    """
    from hrda_lib.model import build_segmentor, segmentation_loss

    dev = device()
    model = build_segmentor(cfg.model).to(dev).train()
    size = cfg.data.source_pipeline.crop_size
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(cfg.batch_size, 3, *size, generator=generator).to(dev)
    label = torch.randint(0, NUM_CLASSES, (cfg.batch_size, *size), generator=generator).to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        segmentation_loss(model.forward_train(image, generator), label, cfg.model)[
            "total"
        ].backward()
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


# -- data ------------------------------------------------------------------------------------------


def datasheet_table(sheet: dict) -> pd.DataFrame:
    """The per-class measurements of `hrda_lib.datasheet.measure` as a tidy table:
    class, train_id, domain, quantity, value."""
    columns = {
        ("source", "pixel_share"): sheet["frequencies"]["source"][0],
        ("target", "pixel_share"): sheet["frequencies"]["target"][0],
        ("source", "image_share"): sheet["frequencies"]["source"][1],
        ("target", "image_share"): sheet["frequencies"]["target"][1],
        ("source", "oracle_iou_x2"): sheet["oracle_x2"]["source"],
        ("target", "oracle_iou_x2"): sheet["oracle_x2"]["target"],
        ("target", "oracle_iou_x4"): sheet["oracle_x4_target"],
        ("target", "colour_iou_source_fit"): sheet["colour_iou"]["source_on_target"],
    }
    rows = [
        (CLASSES[k], k, domain, quantity, float(values[k]))
        for (domain, quantity), values in columns.items()
        for k in range(NUM_CLASSES)
    ]
    return pd.DataFrame(rows, columns=["class", "train_id", "domain", "quantity", "value"])


def rcs_distribution(source_root: Path, config, temperatures: Sequence[float]) -> pd.DataFrame:
    """Rare class sampling probability of each class at each temperature T, as a tidy table
    (class, train_id, domain, quantity `rcs_probability_T<T>`, value; 0 for undrawable classes).

    Args:
        source_root: a converted source (GTA layout) with its statistics JSON files.
        config: the `RCSConfig` whose temperature is varied.
    """
    from hrda_lib.layout import find_pairs, gta_layout
    from hrda_lib.rcs import build_rare_class_sampler

    labels = [label for _, label in find_pairs(gta_layout(Path(source_root)), check_sizes=False)]
    rows = []
    for temperature in temperatures:
        sampler = build_rare_class_sampler(
            source_root, labels, replace(config, class_temp=temperature)
        )
        probs = dict(zip(sampler.classes, sampler.probs, strict=True))
        rows += [
            (CLASSES[k], k, "source", f"rcs_probability_T{temperature:g}", float(probs.get(k, 0.0)))
            for k in range(NUM_CLASSES)
        ]
    return pd.DataFrame(rows, columns=["class", "train_id", "domain", "quantity", "value"])


def real_data_status(root: Path | None = None, required: bool = False) -> pd.DataFrame:
    """Layout check of the real datasets under `data/`: dataset, split, status, images, detail.

    Raises `DatasetLayoutError` (with what to fix) if `required` and GTA or Cityscapes is not ok.
    """
    from hrda_lib import layout
    from hrda_lib.paths import data_root

    root = Path(root) if root is not None else data_root()
    checks = {
        ("GTA", "train"): layout.gta_layout(root / "gta"),
        ("Synthia", "train"): layout.synthia_layout(root / "synthia"),
        ("Cityscapes", "train"): layout.cityscapes_layout(root / "cityscapes", "train"),
        ("Cityscapes", "val"): layout.cityscapes_layout(root / "cityscapes", "val"),
    }
    rows, errors = [], []
    for (dataset, split), spec in checks.items():
        try:
            pairs = layout.find_pairs(spec, check_sizes=False)
            rows.append((dataset, split, "ok", len(pairs), str(spec.img_dir)))
        except layout.DatasetLayoutError as error:
            status = "missing" if not spec.img_dir.exists() else "layout error"
            rows.append((dataset, split, status, 0, str(error).splitlines()[0]))
            if dataset != "Synthia":
                errors.append(error)
    if required and errors:
        raise layout.DatasetLayoutError("\n\n".join(map(str, errors)))
    return pd.DataFrame(rows, columns=["dataset", "split", "status", "images", "detail"])


def upstream_table(stem: str, name: str = "metrics.csv", required: bool = False):
    """A table an earlier notebook wrote (`results/<stem>/<name>`); None if it has not run, or
    FileNotFoundError naming the notebook to run if `required`."""
    path = results_root() / stem / name
    if path.is_file():
        return pd.read_csv(path)
    if required:
        raise FileNotFoundError(
            f"{path} is missing: run notebook {stem} first "
            f"(python -m hrda_lib.reproduce --profile <profile> --only {stem[:2]})"
        )
    return None


def resolution_oracle() -> pd.DataFrame:
    """class, oracle_iou_x2: 01's half-resolution oracle IoU of the target labels (NaN-free
    empty table if 01 has not run)."""
    table = upstream_table("01_data_preparation")
    if table is None:
        return pd.DataFrame(columns=["class", "oracle_iou_x2"])
    rows = table[(table["domain"] == "target") & (table["quantity"] == "oracle_iou_x2")]
    return rows[["class", "value"]].rename(columns={"value": "oracle_iou_x2"})


# -- views ----------------------------------------------------------------------------------------


def detail_box(context: int, detail: int, y: int = -1, x: int = -1, divisible: int = 8) -> Box:
    """A detail box in a square context crop; -1 centres it (offsets rounded to `divisible`)."""
    centre = (context - detail) // 2 // divisible * divisible
    y, x = (centre if y < 0 else y), (centre if x < 0 else x)
    return (y, y + detail, x, x + detail)


@torch.no_grad()
def multires_forward(model: torch.nn.Module, image: torch.Tensor, box: Box, context_scale: float):
    """`forward_multires` of one (3, H, W) context crop at another context scale (batch 1)."""
    return with_context_scale(model, context_scale).forward_multires(image[None], box)


def window_grids(cfg: ExperimentConfig, height: int, width: int) -> dict[str, list[Box]]:
    """The sliding-window grids of HRDA's inference on an H x W image, in image pixels: the outer
    context windows of the test, the overlapping detail windows inside the first context window
    (also the teacher's pseudo-labelling grid of a context crop), and the non-overlapping ones."""
    window, stride = cfg.test_window, cfg.test_stride
    y0, _, x0, _ = sliding_windows(height, width, window, stride)[0]
    context = (min(window[0], height), min(window[1], width))
    detail = cfg.model.detail_crop_size

    def shifted(boxes: list[Box]) -> list[Box]:
        return [(y1 + y0, y2 + y0, x1 + x0, x2 + x0) for y1, y2, x1, x2 in boxes]

    half = (detail[0] // 2, detail[1] // 2)
    return {
        "test: context windows": sliding_windows(height, width, window, stride),
        "detail windows, stride d/2 (inference, pseudo-labels)": shifted(
            sliding_windows(*context, detail, half)
        ),
        "detail windows, stride d (Table 7 'no overlap')": shifted(
            sliding_windows(*context, detail, detail)
        ),
    }


def branch_accuracy(out, label: torch.Tensor) -> pd.DataFrame:
    """Pixel accuracy inside the detail box of the context, detail and fused predictions of one
    `forward_multires` output (batch 1) against the (H, W) label, tidy: quantity, item, value."""
    y1, y2, x1, x2 = out.detail_box
    target = label[y1:y2, x1:x2]
    valid = target != 255
    rows = []
    for branch, logits, frame in (
        ("context (LR)", out.lr_logits, label.shape),
        ("detail (HR)", out.hr_logits, target.shape),
        ("fused", out.fused, label.shape),
    ):
        pred = F.interpolate(logits, size=frame, mode="bilinear", align_corners=False)[0].argmax(0)
        pred = pred if frame == target.shape else pred[y1:y2, x1:x2]
        rows.append(
            (branch, float((pred == target)[valid].float().mean()) if valid.any() else np.nan)
        )
    table = pd.DataFrame(rows, columns=["item", "value"])
    return table.assign(quantity="pixel_accuracy_in_detail_box")[["quantity", "item", "value"]]


# -- analysis of trained models ------------------------------------------------------------------


@dataclass
class AttentionStudy:
    """What `scale_attention_study` measures over a validation set."""

    samples: list[dict]  # per shown image: image (H, W, 3) uint8, label, lr, hr, fused (H, W)
    # ids and attention (H, W) of the predicted class
    per_class: pd.DataFrame  # class, train_id, pixels, mean_attention, IoU_lr, IoU_hr, IoU_fused


@torch.no_grad()
def scale_attention_study(
    model: torch.nn.Module,
    dataset,
    window: tuple[int, int],
    stride: tuple[int, int],
    n_shown: int = 3,
) -> AttentionStudy:
    """Context-only, detail-only and fused predictions of an HRDA model over a labelled set, the
    per-class IoU of each, and the mean attention to the detail branch per predicted class."""
    from hrda_lib.metrics import confusion_matrix, iou_per_class
    from hrda_lib.plots import to_rgb

    confusion = {
        b: torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64) for b in ("lr", "hr", "fused")
    }
    att_sum, att_count = torch.zeros(NUM_CLASSES, dtype=torch.float64), torch.zeros(NUM_CLASSES)
    samples = []
    for i in range(len(dataset)):
        sample = dataset[i]
        label = sample["gt_semantic_seg"]
        parts = branch_predictions(model, sample["img"][None], window, stride)
        full = {
            k: F.interpolate(v, size=label.shape, mode="bilinear", align_corners=False)
            for k, v in parts.items()
        }
        preds = {b: full[b][0].argmax(0) for b in confusion}
        for b in confusion:
            confusion[b] += confusion_matrix(preds[b], label)
        att = attention_of_class(full["attention"], preds["fused"])
        att_sum += torch.bincount(preds["fused"].reshape(-1), att.reshape(-1).double(), NUM_CLASSES)
        att_count += torch.bincount(preds["fused"].reshape(-1), minlength=NUM_CLASSES)
        if i < n_shown:
            samples.append(
                {
                    "image": to_rgb(sample["img"]),
                    "label": label.numpy(),
                    **{b: p.numpy() for b, p in preds.items()},
                    "attention": att.numpy(),
                }
            )
    with np.errstate(invalid="ignore"):
        mean = np.where(att_count > 0, (att_sum / att_count.clamp(min=1)).numpy(), np.nan)
    per_class = pd.DataFrame(
        {
            "class": CLASSES,
            "train_id": range(NUM_CLASSES),
            "pixels": att_count.long().numpy(),
            "mean_attention": mean,
        }
    )
    for b, cm in confusion.items():
        per_class[f"IoU_{b}"] = 100 * iou_per_class(cm)
    return AttentionStudy(samples, per_class)


def attention_of_class(attention: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """(H, W) attention of each pixel's predicted class from (1, K|1, H, W) and (H, W) ids."""
    if attention.shape[1] == 1:
        return attention[0, 0]
    return attention[0].gather(0, prediction[None].long())[0]


def evaluate_runs(runs: Sequence[Run]) -> pd.DataFrame:
    """Each run's student on its target val set, tidy: key, experiment, seed, class, metric, value
    (class "(all)" holds mIoU, aAcc and mAcc; per class IoU and Acc, in %)."""
    from hrda_lib.evaluate import evaluate, target_val_dataset
    from hrda_lib.train import load_trained_model

    frames = []
    for r in runs:
        model = load_trained_model(r.checkpoint).to(device())
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


@torch.no_grad()
def qualitative_rows(runs: Sequence[Run], indices: Sequence[int]) -> tuple[list, list[str]]:
    """Panels for `plots.image_grid`: per target val image its RGB, label and the prediction of
    every run (each on its own test pipeline, compared at the label's resolution)."""
    from hrda_lib.evaluate import predict_logits, target_val_dataset
    from hrda_lib.plots import to_rgb
    from hrda_lib.train import load_trained_model
    from hrda_lib.viz import colorize

    shown = target_val_dataset(runs[0].config)
    rows = [
        [to_rgb(shown[i]["img"]), colorize(shown[i]["gt_semantic_seg"].numpy())] for i in indices
    ]
    for r in runs:
        model = load_trained_model(r.checkpoint).to(device())
        dataset = target_val_dataset(r.config)
        for row, i in zip(rows, indices, strict=True):
            sample = dataset[i]
            logits = predict_logits(model, sample["img"][None].to(device()), r.config.test_window,
                                    r.config.test_stride, sample["gt_semantic_seg"].shape,
                                    r.config.max_batch)  # fmt: skip
            row.append(colorize(logits[0].argmax(0).cpu().numpy()))
    return rows, ["image", "ground truth", *(r.key for r in runs)]


def memory_table(runs: Sequence[Run]) -> pd.DataFrame:
    """`training_memory_mb` once per row key: key, memory_mb, memory_measure."""
    rows, seen = [], set()
    for r in runs:
        if r.key not in seen:
            seen.add(r.key)
            rows.append((r.key, *training_memory_mb(r.config)))
    return pd.DataFrame(rows, columns=["key", "memory_mb", "memory_measure"])


# -- official checkpoints -------------------------------------------------------------------------


def golden_parity() -> pd.DataFrame:
    """`hrda_lib.golden.parity_table` on the golden fixtures, with the 1e-4 tolerance and a pass
    flag per tensor; an empty table (and a message) if the fixtures are absent."""
    from hrda_lib.golden import parity_table

    columns = ["tensor", "shape", "max_abs_diff", "ref_max_abs", "tolerance", "ok"]
    if not (golden_root() / "hrda_mitb0" / "io.pt").is_file():
        print(f"no golden fixtures at {golden_root()} (set HRDA_GOLDEN): parity not checked")
        return pd.DataFrame(columns=columns)
    table = parity_table(golden_root()).assign(tolerance=1e-4)
    return table.assign(ok=table["max_abs_diff"] <= table["tolerance"])[columns]


PUBLISHED_CHECKPOINT_MIOU = 73.79  # released HRDA GTA->Cityscapes checkpoint, Cityscapes val


def evaluate_official(
    checkpoint_path: str, cityscapes_root: str = "", max_images: int = 0, max_batch: int = 4
) -> pd.DataFrame:
    """Evaluate a released HRDA / DAFormer / MIC checkpoint on Cityscapes val, tidy: class,
    metric, value, measured_on; with the published 73.79 as the last row. Without a checkpoint
    or Cityscapes val, a `status` row says why nothing was evaluated.

    HRDA checkpoints use the paper's protocol (2048x1024, slide 1024 / 512), single-scale
    DAFormer ones DAFormer's (1024x512, whole image).
    """
    from torch.utils.data import Subset

    from hrda_lib.checkpoints import load_official_checkpoint
    from hrda_lib.datasets import cityscapes
    from hrda_lib.evaluate import evaluate
    from hrda_lib.layout import DatasetLayoutError
    from hrda_lib.paths import data_root
    from hrda_lib.presets import get_preset

    published = pd.DataFrame([("(all)", "published mIoU", PUBLISHED_CHECKPOINT_MIOU,
                               "released HRDA GTA→CS checkpoint, Cityscapes val, 500 images "
                               "(paper_numbers.md)")], columns=["class", "metric", "value",
                                                                "measured_on"])  # fmt: skip
    root = Path(cityscapes_root) if cityscapes_root else data_root() / "cityscapes"
    reason = "" if checkpoint_path else "no checkpoint_path given"
    if checkpoint_path and not Path(checkpoint_path).is_file():
        reason = f"checkpoint {checkpoint_path} not found"
    if not reason:
        model = load_official_checkpoint(checkpoint_path)
        multi = model.cfg.multi_resolution
        preset = get_preset("gta_to_cityscapes_hrda" if multi else "gta_to_cityscapes_daformer")
        try:
            dataset = cityscapes(root, "val", preset.data.test_pipeline, train=False)
        except DatasetLayoutError as error:
            reason = f"Cityscapes val not usable: {str(error).splitlines()[0]}"
    if reason:
        print(f"official checkpoint not evaluated: {reason}")
        status = pd.DataFrame([("(all)", "status", np.nan, f"skipped: {reason}")],
                              columns=published.columns)  # fmt: skip
        return pd.concat([status, published], ignore_index=True)
    if max_images:
        dataset = Subset(dataset, range(min(max_images, len(dataset))))
    if torch.cuda.is_available():
        model.cuda()
    window = preset.test_window if multi else preset.data.test_pipeline.scale[::-1]
    stride = preset.test_stride if multi else window
    result = evaluate(model, dataset, window, stride, max_batch, progress=True)
    where = f"ours: {Path(checkpoint_path).name} on Cityscapes val ({len(dataset)} images)"
    rows = [("(all)", k, v, where) for k, v in result.summary.items()]
    rows += [(c["class"], "IoU", c["IoU"], where) for _, c in result.per_class.iterrows()]
    return pd.concat([pd.DataFrame(rows, columns=published.columns), published], ignore_index=True)
