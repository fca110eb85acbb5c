"""Dataset folder layouts and the check that runs before any loading or conversion.

The layouts are those of the HRDA README (Hoyer et al., ECCV 2022, official repository), with
the official layouts of BDD100K and Mapillary Vistas for the domain-generalization evaluation.
Paths are relative to the data root (`hrda_lib.paths.data_root()`, `data/` by default):

    gta/images/00001.png                                 GTA5 images
    gta/labels/00001.png                                 GTA5 labels (palette PNG, Cityscapes ids)
    gta/labels/00001_labelTrainIds.png                   <- data_scripts/gta.py
    synthia/RGB/0000000.png                              SYNTHIA-RAND-CITYSCAPES images
    synthia/GT/LABELS/0000000.png                        16-bit labels, class id in the R channel
    synthia/GT/LABELS/0000000_labelTrainIds.png          <- data_scripts/synthia.py
    cityscapes/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    cityscapes/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    cityscapes/gtFine/.../*_gtFine_labelTrainIds.png     <- data_scripts/cityscapes.py
    acdc/rgb_anon/{train,val}/*_rgb_anon.png             flattened per split (HRDA README rsync)
    acdc/gt/{train,val}/*_gt_labelTrainIds.png
    dark_zurich/rgb_anon/train/night/<seq>/*_rgb_anon.png        target training images
    dark_zurich/rgb_anon/val/night/<seq>/*_rgb_anon.png
    dark_zurich/gt/val/night/<seq>/*_gt_labelTrainIds.png
    bdd100k/images/10k/val/*.jpg                         BDD100K semantic segmentation (10k)
    bdd100k/labels/sem_seg/masks/val/*.png               train ids, 255 = ignore
    mapillary/validation/images/*.jpg                    Mapillary Vistas v1.2
    mapillary/validation/labels/*.png                    (or validation/v1.2/labels) v1.2 ids
    mapillary/validation/labels/*_labelTrainIds.png      <- data_scripts/mapillary.py

Files are found recursively and sorted by their path relative to the image folder, and a label
is the image's relative path with the image suffix replaced by the label suffix (mmseg's
CustomDataset convention). Every problem raises one `DatasetLayoutError` that names the path,
what was expected there and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

# How many offending files a message lists before it says "and N more".
_MAX_LISTED = 3


class DatasetLayoutError(RuntimeError):
    """A dataset folder does not have the layout the loader or a conversion script expects."""


@dataclass(frozen=True)
class PairLayout:
    """Where one split of a dataset keeps its images and labels."""

    dataset: str  # human-readable name used in messages, e.g. "Cityscapes val"
    img_dir: Path  # folder searched recursively for images
    img_suffix: str  # image file name ending, e.g. "_leftImg8bit.png"
    ann_dir: Path | None  # label folder; None for unlabelled sets (Dark Zurich train)
    ann_suffix: str | None  # label file name ending, e.g. "_gtFine_labelTrainIds.png"
    obtain_hint: str  # how to obtain the data when a folder is missing or empty
    label_hint: str = ""  # how to create missing labels (a conversion command), if any


def layout_error(
    path: Path | str, problem: str, expected: str, fix: str, details: str = ""
) -> DatasetLayoutError:
    """Build the one message format of all layout problems: problem at path, expected, fix."""
    details = f"\n  {details}" if details else ""
    return DatasetLayoutError(f"{problem}: {path}{details}\n  expected: {expected}\n  fix: {fix}")


def list_files(folder: Path, suffix: str) -> list[Path]:
    """All files under `folder` (recursive) whose name ends with `suffix`, sorted.

    Hidden files (a leading dot, e.g. the temporary files of an interrupted conversion) are
    skipped.
    """
    files = [p for p in folder.rglob(f"*{suffix}") if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:_MAX_LISTED])
    more = len(paths) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def check_folder(folder: Path, dataset: str, expected: str, fix: str) -> None:
    """Raise a `DatasetLayoutError` if `folder` is not an existing directory."""
    if not folder.is_dir():
        problem = f"{dataset}: folder does not exist" if not folder.exists() else "not a folder"
        raise layout_error(folder, problem, expected, fix)


def label_path(layout: PairLayout, img_path: Path) -> Path:
    """The label file that belongs to `img_path` under `layout` (same relative path)."""
    assert layout.ann_dir is not None and layout.ann_suffix is not None
    relative = img_path.relative_to(layout.img_dir).as_posix()
    stem = relative[: -len(layout.img_suffix)]
    return layout.ann_dir / (stem + layout.ann_suffix)


def find_pairs(layout: PairLayout, check_sizes: bool = True) -> list[tuple[Path, Path | None]]:
    """Check a split's layout and return its (image, label) pairs, the label None if unlabelled.

    Args:
        layout: where the split's files live.
        check_sizes: compare the image and label sizes of every pair (reads PNG/JPEG headers
            only). GTA5 is known to contain a few pairs of different size: pass False to accept
            them (the loader then resizes such a label to its image, nearest neighbour).

    Raises:
        DatasetLayoutError: a folder is missing, the split is empty, an image has no label, or
            a label's size differs from its image's.
    """
    img_pattern = f"{layout.img_dir}/**/*{layout.img_suffix}"
    check_folder(layout.img_dir, f"{layout.dataset} images", img_pattern, layout.obtain_hint)
    images = list_files(layout.img_dir, layout.img_suffix)
    if not images:
        raise layout_error(
            layout.img_dir,
            f"{layout.dataset}: no images (empty split)",
            f"at least one file matching {img_pattern}",
            layout.obtain_hint,
        )
    if layout.ann_dir is None:
        return [(p, None) for p in images]

    ann_pattern = f"{layout.ann_dir}/**/*{layout.ann_suffix}"
    fix = layout.label_hint or layout.obtain_hint
    check_folder(layout.ann_dir, f"{layout.dataset} labels", ann_pattern, fix)
    pairs = [(img, label_path(layout, img)) for img in images]
    missing = [str(label) for _, label in pairs if not label.is_file()]
    if missing:
        raise layout_error(
            missing[0],
            f"{layout.dataset}: {len(missing)} of {len(pairs)} images have no label, the first",
            f"one '*{layout.ann_suffix}' per image, same relative path as the image, "
            f"under {layout.ann_dir}",
            fix,
            details=f"missing: {_listed(missing)}",
        )
    if check_sizes:
        check_pair_sizes(layout.dataset, pairs)
    return pairs  # type: ignore[return-value]


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header only."""
    with Image.open(path) as image:
        return image.size


def check_pair_sizes(dataset: str, pairs: list[tuple[Path, Path]]) -> None:
    """Raise a `DatasetLayoutError` naming the first label whose size differs from its image."""
    wrong = []
    for img, label in pairs:
        img_wh, label_wh = image_size(img), image_size(label)
        if img_wh != label_wh:
            wrong.append((img, label, img_wh, label_wh))
    if wrong:
        img, label, (iw, ih), (lw, lh) = wrong[0]
        raise layout_error(
            label,
            f"{dataset}: {len(wrong)} of {len(pairs)} labels differ in size from their image, "
            "the first",
            "every label exactly as large as its image",
            "re-extract or re-convert these pairs, or remove them; to keep them anyway pass "
            "check_sizes=False (the label is then resized to the image, nearest neighbour)",
            details=f"label {lw}x{lh} (WxH), image {img} {iw}x{ih}; all: "
            f"{_listed([str(w[1]) for w in wrong])}",
        )


def _convert_hint(script: str, root: Path, raw: str) -> str:
    return (
        f"create them from the raw labels ({raw}) with "
        f"`python data_scripts/{script} {root} --nproc 8`"
    )


def gta_layout(root: Path) -> PairLayout:
    """GTA5: `images/*.png` with `labels/*_labelTrainIds.png`."""
    return PairLayout(
        "GTA",
        root / "images",
        ".png",
        root / "labels",
        "_labelTrainIds.png",
        f"download GTA5 (images and labels) and extract to {root}/images and {root}/labels",
        _convert_hint("gta.py", root, "labels/00001.png"),
    )


def synthia_layout(root: Path) -> PairLayout:
    """SYNTHIA-RAND-CITYSCAPES: `RGB/*.png` with `GT/LABELS/*_labelTrainIds.png`."""
    return PairLayout(
        "Synthia",
        root / "RGB",
        ".png",
        root / "GT" / "LABELS",
        "_labelTrainIds.png",
        f"download SYNTHIA-RAND-CITYSCAPES and extract it so that {root}/RGB and "
        f"{root}/GT/LABELS exist",
        _convert_hint("synthia.py", root, "GT/LABELS/0000000.png"),
    )


def cityscapes_layout(root: Path, split: str, labels: bool = True) -> PairLayout:
    """Cityscapes: `leftImg8bit/<split>/<city>/*_leftImg8bit.png`, gtFine labels."""
    return PairLayout(
        f"Cityscapes {split}",
        root / "leftImg8bit" / split,
        "_leftImg8bit.png",
        root / "gtFine" / split if labels else None,
        "_gtFine_labelTrainIds.png" if labels else None,
        f"download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip and extract both "
        f"into {root}",
        _convert_hint("cityscapes.py", root, "gtFine/<split>/<city>/*_gtFine_labelIds.png"),
    )


def acdc_layout(root: Path, split: str, labels: bool = True) -> PairLayout:
    """ACDC, restructured to one flat folder per split as in the HRDA README."""
    restructure = (
        f"extract rgb_anon_trainvaltest.zip and gt_trainval.zip into {root}, then flatten per "
        f"split: `rsync -a {root}/rgb_anon/*/{split}/*/* {root}/rgb_anon/{split}/` and "
        f"`rsync -a {root}/gt/*/{split}/*/*_labelTrainIds.png {root}/gt/{split}/`"
    )
    return PairLayout(
        f"ACDC {split}",
        root / "rgb_anon" / split,
        "_rgb_anon.png",
        root / "gt" / split if labels else None,
        "_gt_labelTrainIds.png" if labels else None,
        restructure,
        restructure,
    )


def dark_zurich_layout(root: Path, split: str) -> PairLayout:
    """Dark Zurich: training on `rgb_anon/train/night` (no labels), val with `gt/val`, and the
    test images `rgb_anon/test/night` (labels withheld by the benchmark server)."""
    obtain = f"download Dark_Zurich_train_anon.zip and Dark_Zurich_val_anon.zip into {root}"
    if split in ("train", "test"):
        if split == "test":
            obtain = f"download Dark_Zurich_test_anon_withoutGt.zip and extract it into {root}"
        return PairLayout(
            f"Dark Zurich {split} (night)",
            root / "rgb_anon" / split / "night",
            "_rgb_anon.png",
            None,
            None,
            obtain,
        )
    return PairLayout(
        f"Dark Zurich {split}",
        root / "rgb_anon" / split,
        "_rgb_anon.png",
        root / "gt" / split,
        "_gt_labelTrainIds.png",
        obtain,
    )


def bdd100k_layout(root: Path, split: str = "val") -> PairLayout:
    """BDD100K semantic segmentation (10k images), masks already in train ids."""
    return PairLayout(
        f"BDD100K {split}",
        root / "images" / "10k" / split,
        ".jpg",
        root / "labels" / "sem_seg" / "masks" / split,
        ".png",
        f"download bdd100k_images_10k.zip and bdd100k_sem_seg_labels_trainval.zip and extract "
        f"both into {root}",
    )


def mapillary_label_dir(root: Path, split: str) -> Path:
    """Mapillary v1.2 labels: `<split>/v1.2/labels` when it exists, else `<split>/labels`."""
    versioned = root / split / "v1.2" / "labels"
    return versioned if versioned.is_dir() else root / split / "labels"


def mapillary_layout(root: Path, split: str = "validation") -> PairLayout:
    """Mapillary Vistas v1.2: `<split>/images/*.jpg` with converted train-id labels."""
    return PairLayout(
        f"Mapillary {split}",
        root / split / "images",
        ".jpg",
        mapillary_label_dir(root, split),
        "_labelTrainIds.png",
        f"download Mapillary Vistas (v1.2 labels) and extract it into {root}",
        _convert_hint("mapillary.py", root, "<split>/labels/*.png"),
    )


def check_contents(
    dataset: str,
    pairs: list[tuple[Path, Path | None]],
    num_classes: int,
    read_image,
    read_label,
    progress: bool = True,
) -> None:
    """Decode every image and label of a split once and check the label ids: only train ids
    0..num_classes-1 and 255 (ignore). A bad file raises one `DatasetLayoutError` naming it, so
    that a corrupt image is found before training, not hours into it.

    Args:
        read_image, read_label: the decoders the loader uses (they raise OSError on failure).
    """
    bad_ids: list[tuple[Path, list[int]]] = []
    for image, label in tqdm(pairs, desc=f"checking {dataset}", disable=not progress):
        for path, read in ((image, read_image), (label, read_label)):
            if path is None:
                continue
            try:
                content = read(path)
            except (OSError, ValueError) as error:
                raise layout_error(
                    path,
                    f"{dataset}: a file that cannot be decoded",
                    "a complete PNG or JPEG file",
                    "re-extract or re-download it, or remove the pair",
                    details=str(error),
                ) from None
            if path is label:
                ids = [int(v) for v in np.unique(content) if v >= num_classes and v != 255]
                if ids:
                    bad_ids.append((label, ids))
    if bad_ids:
        label, ids = bad_ids[0]
        raise layout_error(
            label,
            f"{dataset}: {len(bad_ids)} labels hold ids outside the {num_classes} train ids, "
            "the first",
            f"train ids 0..{num_classes - 1} and 255 (ignore) only",
            "convert the raw labels to train ids with the dataset's script in data_scripts/ "
            "(they map every other id to 255)",
            details=f"ids {ids[:8]}; all: {_listed([str(b[0]) for b in bad_ids])}",
        )
