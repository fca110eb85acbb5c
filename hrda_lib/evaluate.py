"""Evaluation: per-class IoU and mIoU of a segmentor on a labelled dataset (reference spec 5).

Predictions are the argmax of slide inference at the test resolution, resized bilinearly (as
logits) to the label's size; the confusion matrix is accumulated over the whole set. Works on our
training checkpoints and on official ones.

    python -m hrda_lib.evaluate work_dirs/synthetic_hrda/latest.pth   # -> work_dirs/.../eval
    python -m hrda_lib.evaluate official.pth --preset gta_to_cityscapes_hrda --max-images 50
    python -m hrda_lib.evaluate work_dirs/gta_dg_hrda/latest.pth --dataset bdd100k --out results/bdd
    python -m hrda_lib.evaluate work_dirs/cs_acdc_hrda/latest.pth --format-only --dataset acdc

An official checkpoint needs `--preset`: its keys tell the architecture (encoder, head, decoder
width, attention); what they cannot tell (detail crop, context scale, ...) comes from its embedded
config, else from the preset, else from the paper's defaults. The command prints what it assumed
from where (and where the keys overrule the preset) and writes it into `summary.json`.

`--format-only` writes the predictions on the dataset's unlabelled test split for its benchmark
server instead (`hrda_lib.submission`): `<out>/submission_<dataset>.zip`.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from hrda_lib.checkpoints import checkpoint_config, load_model_and_assumptions
from hrda_lib.classes import NUM_CLASSES
from hrda_lib.cli import UsageError, positive_int, run
from hrda_lib.config import ExperimentConfig
from hrda_lib.data_setup import SYNTHETIC, build_val_dataset
from hrda_lib.datasets import DATASETS, dataset_spec, read_dataset
from hrda_lib.files import write_json, write_text
from hrda_lib.inference import predict_logits
from hrda_lib.metrics import confusion_matrix, summary
from hrda_lib.paths import data_root as default_data_root
from hrda_lib.paths import results_root
from hrda_lib.predict import TestSetting, predict_image, save_outputs
from hrda_lib.presets import get_preset
from hrda_lib.submission import SUBMISSION_FORMATS, read_test_split, write_submission
from hrda_lib.viz import to_rgb


@dataclass
class EvalResult:
    summary: dict  # aAcc, mIoU, mAcc (and mIoU16 / mIoU13 for Synthia), in percent
    per_class: pd.DataFrame  # class, IoU, Acc
    confusion: np.ndarray  # (K, K) int64, rows = ground truth


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset,
    window: tuple[int, int],
    stride: tuple[int, int],
    max_batch: int | None = None,
    synthia: bool = False,
    progress: bool = False,
) -> EvalResult:
    """Confusion matrix, per-class IoU and mIoU of `model` (eval mode) over `dataset`.

    Args:
        dataset: yields `img` (3, h, w) normalized and `gt_semantic_seg` (H, W) int64.
        window, stride: the outer sliding window at test resolution.
        synthia: also report the 16- and 13-class means.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    indices = range(len(dataset))
    if progress:
        indices = tqdm(indices, desc="evaluate")
    for i in indices:
        sample = dataset[i]
        label = sample["gt_semantic_seg"]
        image = sample["img"][None].to(device)
        pred = predict_logits(model, image, window, stride, label.shape, max_batch).argmax(1)[0]
        confusion += np.asarray(confusion_matrix(pred.cpu(), label, NUM_CLASSES))
    model.train(was_training)
    table = summary(confusion, synthia=synthia)
    per_class = pd.DataFrame(table.pop("per_class"))
    return EvalResult(table, per_class, confusion)


def target_val_dataset(cfg: ExperimentConfig):
    """The labelled target validation set of an experiment."""
    return build_val_dataset(cfg)


def evaluation_dataset(cfg: ExperimentConfig, dataset: str | None, data_root: str | None):
    """The labelled set to evaluate on: the experiment's target val set, or `dataset`'s val
    split read from `data_root` (the folder holding the datasets, or the dataset's own folder)
    with the experiment's test pipeline. A model trained on the synthetic benchmark needs
    `dataset` to be measured on real data."""
    if dataset is None:
        if data_root and SYNTHETIC in (cfg.data.source, cfg.data.target):
            raise UsageError(
                "--data-root: this checkpoint was trained on the synthetic benchmark, whose val "
                "set needs no data root; add --dataset NAME to measure it on a real dataset "
                f"({', '.join(DATASETS)})"
            )
        if data_root:
            cfg = replace(cfg, data=replace(cfg.data, root=data_root))
        return build_val_dataset(cfg)
    spec = dataset_spec(dataset)
    root = Path(data_root) if data_root else default_data_root()
    if (root / dataset).is_dir():
        root = root / dataset
    return read_dataset(dataset, root, spec.val_split, cfg.data.test_pipeline, train=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint on a labelled dataset.")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument(
        "--preset",
        help="experiment whose target val set and windows to use "
        "(default: the checkpoint's own config)",
    )
    parser.add_argument(
        "--dataset",
        choices=list(DATASETS),
        help="evaluate on this dataset's labelled val split instead of the experiment's target "
        "(domain generalization: bdd100k, mapillary), with the experiment's test pipeline",
    )
    parser.add_argument(
        "--data-root", help="folder holding --dataset (default: HRDA_DATA, or data/)"
    )
    parser.add_argument(
        "--format-only",
        action="store_true",
        help="write the predictions on --dataset's TEST split (no labels) for its benchmark "
        f"server and zip them ({', '.join(SUBMISSION_FORMATS)}); no evaluation",
    )
    parser.add_argument("--which", default="model", choices=["model", "teacher"])
    parser.add_argument("--max-images", type=positive_int)
    parser.add_argument("--max-batch", type=positive_int, help="images per encoder call (memory)")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for tables and images (default: $HRDA_RESULTS/eval/<run> if set, else "
        "eval/ beside the checkpoint)",
    )
    parser.add_argument(
        "--save-images",
        type=int,
        default=4,
        help="val images to save: prediction, overlay, attention",
    )
    args = parser.parse_args(argv)
    if args.format_only:
        check_format_only(args.dataset, args.max_images)
    preset = get_preset(args.preset) if args.preset else None
    model, inferred = load_model_and_assumptions(
        args.checkpoint,
        args.which,
        fallback=preset.model if preset else None,
        fallback_name=f"preset {args.preset}",
    )
    if inferred is not None and preset is None:
        raise UsageError(
            f"{args.checkpoint} is an official checkpoint: add --preset NAME to say which "
            "experiment's data and windows to use and what its keys cannot tell (e.g. "
            "--preset gta_to_cityscapes_hrda)"
        )
    cfg = preset or checkpoint_config(args.checkpoint)
    assumptions = {}
    if inferred is not None:  # an official file: say what was assumed, and what overruled
        assumptions = {"assumed": inferred.assumption_line()}
        if overruled := inferred.overrule_line():
            assumptions["overruled"] = overruled
        print("\n".join(assumptions.values()))
    if args.format_only:
        submit(model, cfg, args)
        return
    dataset = evaluation_dataset(cfg, args.dataset, args.data_root)
    if args.max_images:
        dataset = torch.utils.data.Subset(dataset, range(min(args.max_images, len(dataset))))
    out = args.out or default_out(args.checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    if torch.cuda.is_available():
        model.cuda()
    synthia = cfg.data.source in DATASETS and DATASETS[cfg.data.source].synthia_classes
    result = evaluate(
        model, dataset, cfg.test_window, cfg.test_stride, args.max_batch, synthia, progress=True
    )
    write_text(out / "per_class.csv", result.per_class.to_csv(index=False))
    write_text(out / "confusion.csv", "\n".join(",".join(map(str, r)) for r in result.confusion))
    write_json(out / "summary.json", {**result.summary, **assumptions})
    setting = TestSetting(None, cfg.test_window, cfg.test_stride)
    for i in range(min(args.save_images, len(dataset))):  # predictions, overlays, attention
        image = to_rgb(dataset[i]["img"])  # (h, w, 3) uint8 at test resolution
        pred, attention = predict_image(model, image, setting, max_batch=args.max_batch)
        save_outputs(image, pred, attention, out, f"val_{i:03d}")
    print(result.per_class.to_string(index=False))
    print(json.dumps(result.summary))
    print(f"wrote {out}")


def check_format_only(dataset: str | None, max_images: int | None) -> None:
    """Raise a `UsageError` unless `--format-only` has a dataset with a server format and no
    image limit (a server rejects a partial test set)."""
    if dataset not in SUBMISSION_FORMATS:
        given = f"got --dataset {dataset}" if dataset else "no --dataset given"
        raise UsageError(
            f"--format-only needs --dataset {' | '.join(SUBMISSION_FORMATS)} (the test split to "
            f"predict for its benchmark server); {given}"
        )
    if max_images:
        raise UsageError("--format-only predicts the whole test split: drop --max-images")


def submit(model: torch.nn.Module, cfg: ExperimentConfig, args: argparse.Namespace) -> None:
    """`--format-only`: predict the test split of `args.dataset` and write its zip."""
    images = read_test_split(args.dataset, args.data_root, cfg.data.test_pipeline)
    out = args.out or default_out(args.checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    if torch.cuda.is_available():
        model.cuda()
    path = write_submission(
        model,
        args.dataset,
        images,
        cfg.test_window,
        cfg.test_stride,
        out,
        args.max_batch,
        progress=True,
    )
    print(f"wrote {len(images)} predictions to {out / f'submission_{args.dataset}'}")
    print(f"wrote {path}: upload it to {SUBMISSION_FORMATS[args.dataset].server}")


def default_out(checkpoint: Path) -> Path:
    """$HRDA_RESULTS/eval/<run folder> if HRDA_RESULTS is set, else `eval/` beside the
    checkpoint (never the repository's committed results)."""
    if "HRDA_RESULTS" in os.environ:
        return results_root() / "eval" / Path(checkpoint).resolve().parent.name
    return Path(checkpoint).resolve().parent / "eval"


if __name__ == "__main__":
    run(main)
