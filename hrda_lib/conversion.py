"""Label conversion to the 19 Cityscapes train ids and the class statistics that RCS reads.

Ports the dataset conversion scripts of HRDA/DAFormer (`tools/convert_datasets/{gta, synthia,
cityscapes, mapillary}.py`, Apache-2.0; reference spec section 6): every raw label becomes a
`<name>_labelTrainIds.png` (uint8, 255 = ignore) next to it, and three JSON files in the dataset
root hold the per-file pixel count of every train id at the original label resolution:

* `sample_class_stats.json`: `[{"<trainId>": count, ..., "file": "<label path>"}, ...]`
* `sample_class_stats_dict.json`: `{"<label path>": {"<trainId>": count, ...}, ...}`
* `samples_with_class.json`: `{"<trainId>": [["<label path>", count], ...], ...}`

Cityscapes is converted from the `*_gtFine_labelIds.png` the archive ships (the official script
rasterizes the polygons with cityscapesscripts, which gives the same train ids). Every file is
written under a temporary name and renamed, so an interrupted run leaves no half-written file,
and a re-run skips the `*_labelTrainIds.png` that exist (reading them for the statistics).
"""

from __future__ import annotations

import io
import multiprocessing
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from hrda_lib.classes import IGNORE_INDEX, NUM_CLASSES
from hrda_lib.errors import UsageError
from hrda_lib.files import atomic_write_bytes, write_json
from hrda_lib.layout import check_folder, layout_error, list_files, mapillary_label_dir

TRAIN_ID_SUFFIX = "_labelTrainIds.png"

# Cityscapes label id -> train id (cityscapesscripts labels.py); GTA5 uses the same ids.
CITYSCAPES_ID_TO_TRAIN_ID: dict[int, int] = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
GTA_ID_TO_TRAIN_ID: dict[int, int] = dict(CITYSCAPES_ID_TO_TRAIN_ID)

# SYNTHIA-RAND-CITYSCAPES class id (R channel) -> train id; terrain, truck, train never occur.
SYNTHIA_ID_TO_TRAIN_ID: dict[int, int] = {
    3: 0,
    4: 1,
    2: 2,
    21: 3,
    5: 4,
    7: 5,
    15: 6,
    9: 7,
    6: 8,
    16: 9,
    1: 10,
    10: 11,
    17: 12,
    8: 13,
    18: 14,
    19: 15,
    20: 16,
    12: 17,
    11: 18,
}

# Mapillary Vistas v1.2 class id -> train id (several Vistas classes merge into one).
MAPILLARY_ID_TO_TRAIN_ID: dict[int, int] = {
    13: 0,
    24: 0,
    41: 0,
    2: 1,
    15: 1,
    17: 2,
    6: 3,
    3: 4,
    45: 5,
    47: 5,
    48: 6,
    50: 7,
    30: 8,
    29: 9,
    27: 10,
    19: 11,
    20: 12,
    21: 12,
    22: 12,
    55: 13,
    61: 14,
    54: 15,
    58: 16,
    57: 17,
    52: 18,
}

# Train id -> the Cityscapes label id that represents it (used to write Cityscapes-id labels).
TRAIN_ID_TO_CITYSCAPES_ID: dict[int, int] = {t: i for i, t in CITYSCAPES_ID_TO_TRAIN_ID.items()}

ClassStats = dict[int, int]  # train id -> pixel count (only ids with count > 0)


# ---------------------------------------------------------------------------------------------
# Pure functions


def lookup_table(id_to_train_id: Mapping[int, int], size: int = 1 << 16) -> np.ndarray:
    """A (size,) uint8 table mapping every raw id to its train id, 255 for unlisted ids."""
    table = np.full(size, IGNORE_INDEX, dtype=np.uint8)
    for raw_id, train_id in id_to_train_id.items():
        if 0 <= raw_id < size:
            table[raw_id] = train_id
    return table


def to_train_ids(label: np.ndarray, id_to_train_id: Mapping[int, int]) -> np.ndarray:
    """Map a raw (H, W) integer label map to train ids: (H, W) uint8, 255 = ignore."""
    if label.ndim != 2:
        raise ValueError(f"expected an (H, W) label map, got shape {label.shape}")
    if label.dtype.kind not in "ui":
        raise ValueError(f"expected integer label ids, got {label.dtype}")
    table = lookup_table(id_to_train_id, size=max(1 << 16, int(label.max(initial=0)) + 1))
    return table[np.clip(label, 0, None)]


def class_stats(train_ids: np.ndarray, num_classes: int = NUM_CLASSES) -> ClassStats:
    """Pixel count of every train id 0..K-1 present in an (H, W) train-id map, ascending ids."""
    counts = np.bincount(train_ids.ravel(), minlength=256)[:num_classes]
    return {c: int(n) for c, n in enumerate(counts) if n > 0}


def stats_entry(stats: ClassStats, file: str) -> dict:
    """One element of `sample_class_stats.json`: the counts (str keys) and the label `file`."""
    return {**{str(c): n for c, n in stats.items()}, "file": file}


def class_stats_files(entries: Sequence[Mapping]) -> dict[str, object]:
    """The contents of the three statistics files, keyed by file name, in the official formats.

    Args:
        entries: one `stats_entry` per label file (entries that are None are skipped, as the
            official `save_class_stats` does for Cityscapes val files).
    """
    sample_class_stats = [dict(e) for e in entries if e is not None]
    stats_dict: dict[str, dict[str, int]] = {}
    for entry in sample_class_stats:
        counts = {str(k): v for k, v in entry.items() if k != "file"}
        stats_dict[entry["file"]] = counts
    samples_with_class: dict[str, list[list]] = {}
    for file, counts in stats_dict.items():
        for c, n in counts.items():
            samples_with_class.setdefault(c, []).append([file, n])
    return {
        "sample_class_stats.json": sample_class_stats,
        "sample_class_stats_dict.json": stats_dict,
        "samples_with_class.json": samples_with_class,
    }


def train_id_path(raw_label: Path, raw_suffix: str = ".png") -> Path:
    """`labels/00001.png` -> `labels/00001_labelTrainIds.png` (suffix `raw_suffix` replaced)."""
    name = raw_label.name
    if not name.endswith(raw_suffix):
        raise UsageError(f"{raw_label} does not end with {raw_suffix}")
    return raw_label.with_name(name[: -len(raw_suffix)] + TRAIN_ID_SUFFIX)


# ---------------------------------------------------------------------------------------------
# File IO at the edges


def png_bytes(array: np.ndarray, palette: Sequence[int] | None = None) -> bytes:
    """Encode an (H, W) uint8 array as an 'L' PNG ('P' with `palette`), or (H, W, 3) RGB."""
    image = Image.fromarray(np.ascontiguousarray(array))
    if palette is not None:
        image.putpalette(list(palette))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: Path, array: np.ndarray, palette: Sequence[int] | None = None) -> None:
    """Atomically save an array as PNG (see `png_bytes`)."""
    atomic_write_bytes(path, png_bytes(array, palette))


def write_class_stats(out_dir: Path, entries: Sequence[Mapping]) -> None:
    """Write the three statistics JSON files of `class_stats_files` into `out_dir`."""
    for name, content in class_stats_files(entries).items():
        write_json(Path(out_dir) / name, content)  # indent 2, the official scripts' format


def read_index_png(path: Path) -> np.ndarray:
    """A palette or greyscale PNG as its (H, W) index array (GTA, Mapillary, Cityscapes ids)."""
    with Image.open(path) as image:
        if image.mode not in ("P", "L", "I;16", "I"):
            raise UsageError(
                f"{path}: expected an index/greyscale label PNG, got mode {image.mode}"
            )
        return np.asarray(image)


def read_synthia_label(path: Path) -> np.ndarray:
    """Synthia's class id: the last channel (R, in OpenCV's BGR order) of the 16-bit PNG."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise OSError(f"cannot read {path}")
    return label[:, :, -1] if label.ndim == 3 else label


def read_train_ids(path: Path) -> np.ndarray:
    """An (H, W) uint8 `*_labelTrainIds.png`."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise OSError(f"cannot read {path}")
    return label


def convert_label_file(
    raw_label: Path,
    read_label: Callable[[Path], np.ndarray],
    id_to_train_id: Mapping[int, int],
    raw_suffix: str = ".png",
    with_stats: bool = True,
) -> dict | None:
    """Convert one raw label to `*_labelTrainIds.png` and return its statistics entry.

    A finished output file is not rewritten: it is read back for the statistics instead.
    Returns None when `with_stats` is False.
    """
    out = train_id_path(Path(raw_label), raw_suffix)
    if out.is_file():
        train_ids = read_train_ids(out)
    else:
        train_ids = to_train_ids(read_label(Path(raw_label)), id_to_train_id)
        write_png(out, train_ids)
    return stats_entry(class_stats(train_ids), str(out)) if with_stats else None


def parallel_map(fn: Callable, items: Sequence, nproc: int, desc: str) -> list:
    """`[fn(x) for x in items]` over `nproc` processes, in order, with a tqdm progress bar."""
    if nproc <= 1:
        return [fn(x) for x in tqdm(items, desc=desc)]
    with multiprocessing.get_context("fork").Pool(nproc) as pool:
        chunk = max(1, len(items) // (nproc * 16))
        return list(tqdm(pool.imap(fn, items, chunksize=chunk), total=len(items), desc=desc))


def raw_label_files(folder: Path) -> list[Path]:
    """Raw label PNGs of GTA/Synthia: names ending in a digit + '.png' (as the official scan)."""
    return [p for p in list_files(folder, ".png") if p.stem[-1:].isdigit()]


def _require_files(files: Iterable[Path], folder: Path, dataset: str, expected: str, fix: str):
    files = list(files)
    if not files:
        raise layout_error(folder, f"{dataset}: no raw labels found", expected, fix)
    return files


# ---------------------------------------------------------------------------------------------
# Whole-dataset conversions (what the data_scripts call)


def convert_gta(root: Path, nproc: int = 4, out_dir: Path | None = None) -> list[dict]:
    """Convert `root/labels/*.png` (GTA5 palette PNGs) and write the statistics to `out_dir`."""
    root = Path(root)
    fix = f"extract the GTA5 label archive so that {root}/labels/00001.png exists"
    check_folder(root / "labels", "GTA labels", f"{root}/labels/00001.png ...", fix)
    files = _require_files(
        raw_label_files(root / "labels"), root / "labels", "GTA", "labels/<digits>.png", fix
    )
    labelled = {p.relative_to(root / "labels").with_suffix("") for p in files}
    unlabelled = (
        [
            str(p)
            for p in list_files(root / "images", ".png")
            if p.relative_to(root / "images").with_suffix("") not in labelled
        ]
        if (root / "images").is_dir()
        else []
    )
    if unlabelled:
        raise layout_error(
            unlabelled[0],
            f"GTA: {len(unlabelled)} images have no label in {root / 'labels'}, the first",
            "one labels/<n>.png per images/<n>.png",
            "extract the matching label archive parts, or remove these images",
            details=f"images without a label: {', '.join(unlabelled[:3])}",
        )
    convert = partial(
        convert_label_file, read_label=read_index_png, id_to_train_id=GTA_ID_TO_TRAIN_ID
    )
    entries = parallel_map(convert, files, nproc, "GTA labels")
    write_class_stats(Path(out_dir or root), entries)
    return entries


def convert_synthia(root: Path, nproc: int = 4, out_dir: Path | None = None) -> list[dict]:
    """Convert `root/GT/LABELS/*.png` (16-bit, id in R) and write the statistics."""
    root = Path(root)
    folder = root / "GT" / "LABELS"
    fix = f"extract SYNTHIA-RAND-CITYSCAPES so that {folder}/0000000.png exists"
    check_folder(folder, "Synthia labels", f"{folder}/0000000.png ...", fix)
    files = _require_files(raw_label_files(folder), folder, "Synthia", "<digits>.png", fix)
    convert = partial(
        convert_label_file, read_label=read_synthia_label, id_to_train_id=SYNTHIA_ID_TO_TRAIN_ID
    )
    entries = parallel_map(convert, files, nproc, "Synthia labels")
    write_class_stats(Path(out_dir or root), entries)
    return entries


def convert_mapillary(
    root: Path, nproc: int = 4, out_dir: Path | None = None, splits: Sequence[str] = ()
) -> list[dict]:
    """Convert Mapillary v1.2 labels of every split found (`training`, `validation`)."""
    root = Path(root)
    splits = list(splits) or [s for s in ("training", "validation") if (root / s).is_dir()]
    fix = f"extract Mapillary Vistas so that {root}/validation/labels/*.png exists"
    if not splits:
        raise layout_error(root, "Mapillary: no split folder", "training/ or validation/", fix)
    files = []
    for split in splits:
        folder = mapillary_label_dir(root, split)
        check_folder(folder, f"Mapillary {split} labels", f"{folder}/*.png", fix)
        files += [p for p in list_files(folder, ".png") if not p.name.endswith(TRAIN_ID_SUFFIX)]
    files = _require_files(files, root, "Mapillary", "<split>/labels/*.png", fix)
    convert = partial(
        convert_label_file, read_label=read_index_png, id_to_train_id=MAPILLARY_ID_TO_TRAIN_ID
    )
    entries = parallel_map(convert, files, nproc, "Mapillary labels")
    write_class_stats(Path(out_dir or root), entries)
    return entries


def convert_cityscapes(root: Path, nproc: int = 1, out_dir: Path | None = None) -> list[dict]:
    """Convert `gtFine/*/*/*_gtFine_labelIds.png`, write train statistics and split lists.

    Statistics cover only the files under `gtFine/train/` (as the official script); the split
    lists `train.txt`, `val.txt` (and `test.txt`) hold `<city>/<city>_<seq>_<frame>` stems.
    """
    root, out_dir = Path(root), Path(out_dir or root)
    gt_dir = root / "gtFine"
    fix = f"extract gtFine_trainvaltest.zip into {root}"
    check_folder(gt_dir, "Cityscapes labels", f"{gt_dir}/<split>/<city>/*_gtFine_labelIds.png", fix)
    label_ids = list_files(gt_dir, "_gtFine_labelIds.png")
    train_ids = list_files(gt_dir, "_gtFine" + TRAIN_ID_SUFFIX)
    if not label_ids and not train_ids:
        polygons = list_files(gt_dir, "_gtFine_polygons.json")
        if polygons:
            raise layout_error(
                polygons[0],
                f"Cityscapes: found {len(polygons)} *_gtFine_polygons.json but no "
                "*_gtFine_labelIds.png (this project does not rasterize polygons)",
                "the *_gtFine_labelIds.png that gtFine_trainvaltest.zip ships beside each "
                "polygon file",
                "re-extract the complete gtFine_trainvaltest.zip, or create "
                "*_gtFine_labelTrainIds.png with cityscapesscripts "
                f"(`CITYSCAPES_DATASET={root} csCreateTrainIdLabelImgs`) and run this again",
            )
        raise layout_error(gt_dir, "Cityscapes: no labels", "*_gtFine_labelIds.png files", fix)

    # A stem with a finished train-id file needs no labelIds (e.g. made by cityscapesscripts).
    todo = {p.with_name(p.name.replace("_labelIds.png", TRAIN_ID_SUFFIX)): p for p in label_ids}
    for p in train_ids:
        todo.setdefault(p, p)
    outputs = sorted(todo, key=lambda p: p.relative_to(gt_dir).as_posix())
    convert = partial(_convert_cityscapes_file, gt_dir=gt_dir)
    entries = parallel_map(convert, [(todo[o], o) for o in outputs], nproc, "Cityscapes labels")
    write_class_stats(out_dir, entries)
    write_split_lists(gt_dir, outputs, out_dir)
    return [e for e in entries if e is not None]


def _convert_cityscapes_file(raw_and_out: tuple[Path, Path], gt_dir: Path) -> dict | None:
    raw, out = raw_and_out
    in_train = out.relative_to(gt_dir).parts[0] == "train"
    if raw == out or out.is_file():
        if not in_train:
            return None
        return stats_entry(class_stats(read_train_ids(out)), str(out))
    return convert_label_file(
        raw,
        read_label=read_index_png,
        id_to_train_id=CITYSCAPES_ID_TO_TRAIN_ID,
        raw_suffix="_labelIds.png",
        with_stats=in_train,
    )


def write_split_lists(gt_dir: Path, label_files: Sequence[Path], out_dir: Path) -> None:
    """Write `<split>.txt` files listing `<city>/<city>_<seq>_<frame>` stems per split."""
    per_split: dict[str, list[str]] = {}
    for path in label_files:
        split, *rest = path.relative_to(gt_dir).parts
        stem = "/".join(rest).split("_gtFine_")[0]
        per_split.setdefault(split, []).append(stem)
    for split, stems in per_split.items():
        atomic_write_bytes(
            Path(out_dir) / f"{split}.txt", "".join(s + "\n" for s in stems).encode()
        )
