"""Test-server submissions: predictions on the unlabelled test splits of Cityscapes, ACDC and
Dark Zurich, written and zipped in the form each benchmark server takes.

The paper reports Cityscapes→ACDC and Cityscapes→Dark Zurich on the target's TEST split, whose
labels only the benchmark servers hold (HRDA README: `tools/test.py ... --test-set
--format-only --eval-option imgfile_prefix=labelTrainIds to_label_id=False`). Predictions are
made exactly as in evaluation (slide inference at the test scale, logits resized bilinearly to
the original image size, argmax); what differs per server is the file format:

* Cityscapes (cityscapes-dataset.com, cityscapesscripts `evalPixelLevelSemanticLabeling`):
  8-bit PNGs of Cityscapes LABEL ids (train ids mapped back with `TRAIN_ID_TO_CITYSCAPES_ID`),
  one per image, named like the image (`<city>_<seq>_<frame>_leftImg8bit.png`, as mmseg's
  `CityscapesDataset.format_results(to_label_id=True)` names them). The server matches a
  prediction to its image by the `<city>_<seq>_<frame>` in the file name, so the zip is flat.
* ACDC (acdc.vision.ee.ethz.ch): 8-bit PNGs of TRAIN ids 0..18, named like the image
  (`<name>_rgb_anon.png`), flat in the zip. Source: the HRDA README's command above, which
  writes exactly these files (mmseg names them `<image stem>.png`); the exact folder the ACDC
  server wants inside the zip is not documented in the HRDA code, so this is the least certain
  of the three formats: if the server refuses the flat zip, put the files into the layout its
  submission page names.
* Dark Zurich (CodaLab competition of GCMA/UIoU): the server only accepts a zip with the three
  folders `labelTrainIds/`, `labelTrainIds_invalid/` and `confidence/` (stated by the README of
  BIT-DA/SePiCo, whose submissions filled the last two with copies of the labels). Here
  `labelTrainIds`: 8-bit train ids 0..18, the only folder the IoU is computed from;
  `labelTrainIds_invalid`: the same map with no pixel marked invalid (255), so that UIoU equals
  IoU; `confidence`: 16-bit PNGs of the softmax probability of the predicted class scaled to
  0..65535 (the UIoU tools' encoding as far as we know; it enters only the uncertainty metric).
  File names as the images', flat inside each folder.

Every PNG is written atomically, the file count is checked against the number of test images
(per folder), and the zip is written under a temporary name and renamed.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hrda_lib.conversion import TRAIN_ID_TO_CITYSCAPES_ID, png_bytes
from hrda_lib.datasets import SegmentationDataset, read_dataset
from hrda_lib.errors import UnknownNameError, UsageError
from hrda_lib.files import atomic_write_bytes
from hrda_lib.inference import predict_logits
from hrda_lib.layout import image_size
from hrda_lib.paths import data_root as default_data_root
from hrda_lib.transforms import PipelineConfig


@dataclass(frozen=True)
class SubmissionFormat:
    """What one benchmark server takes."""

    split: str  # the unlabelled split the server scores
    label_ids: bool  # Cityscapes label ids (7..33) instead of train ids (0..18)
    folders: tuple[str, ...]  # folders inside the zip, one PNG per image in each ("" = root)
    server: str  # where to upload the zip


SUBMISSION_FORMATS: dict[str, SubmissionFormat] = {
    "cityscapes": SubmissionFormat("test", True, ("",), "the Cityscapes benchmark server"),
    "acdc": SubmissionFormat("test", False, ("",), "the ACDC benchmark server"),
    "dark_zurich": SubmissionFormat(
        "test",
        False,
        ("labelTrainIds", "labelTrainIds_invalid", "confidence"),
        "the Dark Zurich CodaLab competition (https://codalab.lisn.upsaclay.fr/competitions/3783)",
    ),
}


class SubmissionCountError(UsageError):
    """The submission folder does not hold one prediction per test image."""


def submission_format(dataset: str) -> SubmissionFormat:
    """The server format of `dataset` (one line naming the supported ones if there is none)."""
    if dataset not in SUBMISSION_FORMATS:
        raise UnknownNameError(
            f"no test-server format for {dataset!r}; supported: {', '.join(SUBMISSION_FORMATS)}"
        )
    return SUBMISSION_FORMATS[dataset]


# -- pure functions ---------------------------------------------------------------------------


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map (H, W) train ids 0..18 to Cityscapes label ids (uint8); any other value becomes 0
    (`unlabeled`), which the server ignores."""
    table = np.zeros(256, dtype=np.uint8)
    for train_id, label_id in TRAIN_ID_TO_CITYSCAPES_ID.items():
        table[train_id] = label_id
    return table[train_ids.astype(np.uint8)]


def confidence_map(logits: torch.Tensor) -> np.ndarray:
    """(K, H, W) logits -> (H, W) uint16: softmax probability of the argmax class * 65535."""
    probability = logits.float().softmax(0).amax(0)  # (H, W) in [1/K, 1]
    return (probability * 65535).round().to(torch.int32).cpu().numpy().astype(np.uint16)


def prediction_files(fmt: SubmissionFormat, name: str, logits: torch.Tensor) -> dict[str, bytes]:
    """The PNG files of one image: {path inside the submission folder: PNG bytes}.

    Args:
        fmt: the server's format.
        name: the file name (`<image stem>.png`).
        logits: (K, H, W) at the original image size.
    """
    train_ids = logits.argmax(0).to(torch.uint8).cpu().numpy()  # (H, W)
    if fmt.label_ids:
        return {name: png_bytes(train_ids_to_label_ids(train_ids))}
    files = {}
    for folder in fmt.folders:
        content = confidence_map(logits) if folder == "confidence" else train_ids
        files[f"{folder}/{name}" if folder else name] = png_bytes(content)
    return files


def prediction_name(image_path: str | Path) -> str:
    """The prediction's file name: the image's stem with `.png` (mmseg's `format_results`)."""
    return Path(image_path).stem + ".png"


# -- IO ---------------------------------------------------------------------------------------


def read_test_split(
    dataset: str, data_root: str | Path | None, pipeline: PipelineConfig
) -> SegmentationDataset:
    """The unlabelled test split of `dataset` read from `data_root` (the folder holding the
    datasets, or the dataset's own folder; default `HRDA_DATA` or `data/`) with `pipeline`."""
    fmt = submission_format(dataset)
    root = Path(data_root) if data_root else default_data_root()
    if (root / dataset).is_dir():
        root = root / dataset
    return read_dataset(dataset, root, fmt.split, pipeline, train=False, labels=False)


def check_count(folder: Path, fmt: SubmissionFormat, expected: int) -> None:
    """Raise `SubmissionCountError` unless every folder of `fmt` holds `expected` PNGs."""
    for sub in fmt.folders:
        written = len([p for p in (folder / sub).glob("*.png") if not p.name.startswith(".")])
        if written != expected:
            raise SubmissionCountError(
                f"{folder / sub}: {written} prediction files written for {expected} test images; "
                "the server rejects an incomplete submission (look for duplicate image names or "
                "a failed write, then run again)"
            )


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Zip the files under `folder` (deflated, paths relative to it, sorted) into `zip_path`,
    via a hidden temporary name and a rename."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(folder).as_posix())
        os.replace(tmp, zip_path)
    finally:
        tmp.unlink(missing_ok=True)
    return zip_path


@torch.no_grad()
def write_submission(
    model: torch.nn.Module,
    dataset: str,
    images: SegmentationDataset,
    window: tuple[int, int],
    stride: tuple[int, int],
    out: Path,
    max_batch: int | None = None,
    progress: bool = False,
) -> Path:
    """Predict every test image and write `<out>/submission_<dataset>/` and its zip
    `<out>/submission_<dataset>.zip` in the server's format.

    Args:
        model: the segmentor (put in eval mode here).
        dataset: `cityscapes`, `acdc` or `dark_zurich`.
        images: the test split (`read_test_split`): samples with `img` (3, h, w) at test scale.
        window, stride: the outer sliding window at test resolution.

    Returns:
        The zip's path.

    Raises:
        SubmissionCountError: the folder does not hold one PNG per test image.
    """
    fmt = submission_format(dataset)
    folder = Path(out) / f"submission_{dataset}"
    for sub in fmt.folders:
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for stale in (folder / sub).glob("*.png"):  # a previous run's files would be zipped too
            stale.unlink()
    model.eval()
    device = next(model.parameters()).device
    for i in tqdm(range(len(images)), desc=f"submission {dataset}", disable=not progress):
        sample = images[i]
        width, height = image_size(sample["img_path"])
        image = sample["img"][None].to(device)  # (1, 3, h, w) at test scale
        logits = predict_logits(model, image, window, stride, (height, width), max_batch)[0]
        for path, content in prediction_files(
            fmt, prediction_name(sample["img_path"]), logits
        ).items():
            atomic_write_bytes(folder / path, content)
    check_count(folder, fmt, len(images))
    return zip_folder(folder, Path(out) / f"submission_{dataset}.zip")
