"""Measurements of a segmentation benchmark's properties, and the synthetic set's datasheet.

Measures, without training a network, the three difficulties that HRDA (Hoyer et al., ECCV
2022) addresses plus the class imbalance that rare class sampling addresses:

* class frequencies (share of labelled pixels, share of images containing the class);
* fine detail: the "resolution oracle" of each class, the IoU between the labels and the labels
  downsampled by 2 (nearest) and upsampled back, i.e. the best IoU a perfect half-resolution
  prediction could reach;
* domain gap: a nearest-class-mean colour classifier fitted on the source, evaluated on source
  and target (mIoU), and the shift of every class's mean colour between the domains;
* context: how well colour vs. image position separates road from sidewalk (Fisher
  separability of their colours; accuracy of a colour rule vs. a position rule fitted on the
  domain's own training labels).

`write_datasheet(root, out_dir)` runs them on a synthetic benchmark made by
`hrda_lib.synthetic.benchmark` (or any data in the GTA and Cityscapes layouts with raw label ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from hrda_lib.classes import CLASSES, IGNORE_INDEX, NUM_CLASSES
from hrda_lib.conversion import CITYSCAPES_ID_TO_TRAIN_ID, read_index_png, to_train_ids
from hrda_lib.datasets import read_image
from hrda_lib.files import atomic_write_bytes
from hrda_lib.layout import list_files
from hrda_lib.viz import colorize, save_figure

ROAD, SIDEWALK = 0, 1


def class_frequencies(labels: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(K,) share of labelled pixels per class and (K,) share of images containing it."""
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)
    present = np.zeros(NUM_CLASSES, dtype=np.int64)
    for label in labels:
        c = np.bincount(label.ravel(), minlength=256)[:NUM_CLASSES]
        counts += c
        present += c > 0
    return counts / max(counts.sum(), 1), present / max(len(labels), 1)


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,) intersections and unions of two (H, W) train-id maps over pixels with gt != 255."""
    valid = gt != IGNORE_INDEX
    p, g = pred[valid].astype(np.int64), gt[valid].astype(np.int64)  # int64: no overflow
    p = np.where(p < NUM_CLASSES, p, NUM_CLASSES)  # predicted void counts as a wrong class
    confusion = np.bincount(g * (NUM_CLASSES + 1) + p, minlength=NUM_CLASSES * (NUM_CLASSES + 1))
    confusion = confusion.reshape(NUM_CLASSES, NUM_CLASSES + 1)
    inter = np.diag(confusion[:, :NUM_CLASSES])
    union = confusion.sum(1) + confusion[:, :NUM_CLASSES].sum(0) - inter
    return inter, union


def iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """(K,) IoU, NaN where a class has no union."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def down_up(label: np.ndarray, factor: int) -> np.ndarray:
    """Nearest downsample of an (H, W) label by `factor` and nearest upsample back."""
    height, width = label.shape
    small = cv2.resize(label, (width // factor, height // factor), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def resolution_oracle_iou(labels: Sequence[np.ndarray], factor: int = 2) -> np.ndarray:
    """(K,) IoU of `down_up(label, factor)` against the labels, accumulated over the set."""
    inter = np.zeros(NUM_CLASSES, dtype=np.int64)
    union = np.zeros(NUM_CLASSES, dtype=np.int64)
    for label in labels:
        i, u = intersection_union(down_up(label, factor), label)
        inter, union = inter + i, union + u
    return iou(inter, union)


def _pixels(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], stride: int):
    """Colours (N, 3) float32 and labels (N,) of every `stride`-th pixel per axis."""
    colours = np.concatenate([im[::stride, ::stride].reshape(-1, 3) for im in images])
    classes = np.concatenate([lb[::stride, ::stride].ravel() for lb in labels])
    return colours.astype(np.float32), classes


def class_mean_colours(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], stride: int = 2
) -> np.ndarray:
    """(K, 3) mean RGB colour of every class (NaN for absent classes)."""
    colours, classes = _pixels(images, labels, stride)
    keep = classes < NUM_CLASSES
    colours, classes = colours[keep], classes[keep]
    counts = np.bincount(classes, minlength=NUM_CLASSES).astype(np.float64)
    sums = np.stack([np.bincount(classes, colours[:, ch], NUM_CLASSES) for ch in range(3)], 1)
    with np.errstate(invalid="ignore"):
        return sums / counts[:, None]


def nearest_mean_predict(image: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(H, W) class of the nearest class-mean colour of every pixel (absent classes skipped)."""
    present = np.flatnonzero(~np.isnan(means[:, 0]))
    pixels = image.reshape(-1, 1, 3).astype(np.float32)
    distances = ((pixels - means[present][None].astype(np.float32)) ** 2).sum(-1)
    return present[distances.argmin(1)].reshape(image.shape[:2]).astype(np.uint8)


def colour_classifier_iou(
    means: np.ndarray, images: Sequence[np.ndarray], labels: Sequence[np.ndarray]
) -> np.ndarray:
    """(K,) IoU of the nearest-class-mean colour classifier `means` on a labelled set."""
    inter = np.zeros(NUM_CLASSES, dtype=np.int64)
    union = np.zeros(NUM_CLASSES, dtype=np.int64)
    for image, label in zip(images, labels, strict=True):
        i, u = intersection_union(nearest_mean_predict(image, means), label)
        inter, union = inter + i, union + u
    return iou(inter, union)


def fisher_separability(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], a: int = ROAD, b: int = SIDEWALK
) -> float:
    """Distance of the mean colours of classes a and b in units of their pooled colour std."""
    colours, classes = _pixels(images, labels, 2)
    xa, xb = colours[classes == a], colours[classes == b]
    pooled = np.sqrt((xa.var(0).sum() + xb.var(0).sum()) / 2)
    return float(np.linalg.norm(xa.mean(0) - xb.mean(0)) / max(pooled, 1e-6))


def road_sidewalk_rules(
    train_images: Sequence[np.ndarray],
    train_labels: Sequence[np.ndarray],
    test_images: Sequence[np.ndarray],
    test_labels: Sequence[np.ndarray],
    grid: tuple[int, int] = (16, 32),
) -> dict[str, float]:
    """Accuracy on road+sidewalk test pixels of a colour rule and of a position rule.

    Colour rule: nearest of the two class-mean colours fitted on the training set. Position
    rule: the majority of the two classes in the pixel's cell of a coarse grid over the image,
    counted on the training labels. Layout context is what the position rule captures.
    """
    means = class_mean_colours(train_images, train_labels)
    two = np.full_like(means, np.nan)
    two[[ROAD, SIDEWALK]] = means[[ROAD, SIDEWALK]]
    votes = np.zeros((2, *grid), dtype=np.float64)
    for label in train_labels:
        for k, c in enumerate((ROAD, SIDEWALK)):
            mask = (label == c).astype(np.float32)
            votes[k] += cv2.resize(mask, (grid[1], grid[0]), interpolation=cv2.INTER_AREA)
    position_class = np.where(votes[0] >= votes[1], ROAD, SIDEWALK).astype(np.uint8)
    correct = {"colour": 0, "position": 0}
    total = 0
    for image, label in zip(test_images, test_labels, strict=True):
        flat = (label == ROAD) | (label == SIDEWALK)
        by_position = cv2.resize(position_class, label.shape[::-1], interpolation=cv2.INTER_NEAREST)
        correct["colour"] += int((nearest_mean_predict(image, two) == label)[flat].sum())
        correct["position"] += int((by_position == label)[flat].sum())
        total += int(flat.sum())
    return {rule: n / max(total, 1) for rule, n in correct.items()}


# --- the synthetic set's datasheet -------------------------------------------------------------


def load_source(root: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """RGB images and train-id labels of `root/gta` (raw label ids, converted in memory)."""
    images = list_files(Path(root) / "gta" / "images", ".png")
    labels = [Path(root) / "gta" / "labels" / p.name for p in images]
    return _load(images, labels)


def load_target(root: Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """RGB images and train-id labels of a `root/cityscapes` split (from `*_labelIds.png`)."""
    folder = Path(root) / "cityscapes" / "leftImg8bit" / split
    images = list_files(folder, "_leftImg8bit.png")
    gt = Path(root) / "cityscapes" / "gtFine" / split
    labels = [
        gt / p.relative_to(folder).as_posix().replace("_leftImg8bit", "_gtFine_labelIds")
        for p in images
    ]
    return _load(images, labels)


def _load(image_paths, label_paths):
    images = [read_image(p) for p in image_paths]
    labels = [to_train_ids(read_index_png(p), CITYSCAPES_ID_TO_TRAIN_ID) for p in label_paths]
    return images, labels


def _csv(header: Sequence[str], rows: Sequence[Sequence]) -> bytes:
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    return ("\n".join(lines) + "\n").encode()


def measure(root: Path) -> dict:
    """All measurements of a synthetic benchmark (source = gta, target = cityscapes)."""
    src_images, src_labels = load_source(root)
    trg_images, trg_labels = load_target(root, "train")
    val_images, val_labels = load_target(root, "val")
    source_means = class_mean_colours(src_images, src_labels)
    target_means = class_mean_colours(trg_images, trg_labels)
    return {
        "frequencies": {
            "source": class_frequencies(src_labels),
            "target": class_frequencies(trg_labels),
        },
        "oracle_x2": {
            "source": resolution_oracle_iou(src_labels, 2),
            "target": resolution_oracle_iou(trg_labels + val_labels, 2),
        },
        "oracle_x4_target": resolution_oracle_iou(trg_labels + val_labels, 4),
        "colour_iou": {
            "source_on_source": colour_classifier_iou(source_means, src_images, src_labels),
            "source_on_target": colour_classifier_iou(source_means, val_images, val_labels),
            "target_on_target": colour_classifier_iou(target_means, val_images, val_labels),
        },
        "mean_colour_shift": np.linalg.norm(source_means - target_means, axis=1),
        "road_sidewalk_separability": {
            "source": fisher_separability(src_images, src_labels),
            "target": fisher_separability(trg_images, trg_labels),
        },
        "road_sidewalk_rules_target": road_sidewalk_rules(
            trg_images, trg_labels, val_images, val_labels
        ),
        "counts": {
            "source": len(src_images),
            "target_train": len(trg_images),
            "target_val": len(val_images),
        },
        "samples": (src_images[:3], src_labels[:3], val_images[:3], val_labels[:3]),
    }


def write_datasheet(root: Path, out_dir: Path) -> dict:
    """Measure a synthetic benchmark and write its datasheet into `out_dir`.

    Writes `class_frequencies.csv`, `resolution_oracle.csv`, `domain_gap.csv`, `samples.png`
    and `datasheet.md`. Returns the measurements (see `measure`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = measure(root)
    (src_px, src_img), (trg_px, trg_img) = m["frequencies"]["source"], m["frequencies"]["target"]
    rows = [
        (CLASSES[k], k, float(src_px[k]), float(trg_px[k]), float(src_img[k]), float(trg_img[k]))
        for k in range(NUM_CLASSES)
    ]
    header = (
        "class",
        "train_id",
        "source_pixel_share",
        "target_pixel_share",
        "source_image_share",
        "target_image_share",
    )
    atomic_write_bytes(out_dir / "class_frequencies.csv", _csv(header, rows))
    oracle = m["oracle_x2"]
    rows = [
        (
            CLASSES[k],
            k,
            float(oracle["source"][k]),
            float(oracle["target"][k]),
            float(m["oracle_x4_target"][k]),
        )
        for k in range(NUM_CLASSES)
    ]
    header = ("class", "train_id", "source_iou_x2", "target_iou_x2", "target_iou_x4")
    atomic_write_bytes(out_dir / "resolution_oracle.csv", _csv(header, rows))
    colour = m["colour_iou"]
    rows = [
        (
            CLASSES[k],
            k,
            float(colour["source_on_source"][k]),
            float(colour["source_on_target"][k]),
            float(colour["target_on_target"][k]),
            float(m["mean_colour_shift"][k]),
        )
        for k in range(NUM_CLASSES)
    ]
    header = (
        "class",
        "train_id",
        "colour_iou_source_on_source",
        "colour_iou_source_on_target",
        "colour_iou_target_on_target",
        "mean_colour_shift",
    )
    atomic_write_bytes(out_dir / "domain_gap.csv", _csv(header, rows))
    _sample_figure(m["samples"], out_dir / "samples.png")
    atomic_write_bytes(out_dir / "datasheet.md", summary_markdown(root, m).encode())
    return m


def _sample_figure(samples, path: Path) -> None:
    src_images, src_labels, trg_images, trg_labels = samples
    n = max(len(src_images), len(trg_images))
    fig = Figure(figsize=(12, 1.6 * n + 0.4))  # no pyplot: no backend, no global figure state
    axes = fig.subplots(n, 4, squeeze=False)
    titles = ("source image", "source label", "target image", "target label")
    for i in range(n):
        panels = (
            src_images[i] if i < len(src_images) else None,
            colorize(src_labels[i]) if i < len(src_labels) else None,
            trg_images[i] if i < len(trg_images) else None,
            colorize(trg_labels[i]) if i < len(trg_labels) else None,
        )
        for j, panel in enumerate(panels):
            ax = axes[i, j]
            ax.axis("off")
            if panel is not None:
                ax.imshow(panel, interpolation="nearest")
            if i == 0:
                ax.set_title(titles[j], fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def summary_markdown(root: Path, m: dict) -> str:
    """A short markdown summary of the measurements."""
    src_px, trg_px = m["frequencies"]["source"][0], m["frequencies"]["target"][0]
    order = np.argsort(-src_px)
    top = ", ".join(f"{CLASSES[k]} {100 * src_px[k]:.1f} %" for k in order[:4])
    target_top = ", ".join(f"{CLASSES[k]} {100 * trg_px[k]:.1f} %" for k in np.argsort(-trg_px)[:4])
    rare = ", ".join(f"{CLASSES[k]} {100 * src_px[k]:.2f} %" for k in order[-5:][::-1])
    oracle = m["oracle_x2"]["target"]
    worst = np.argsort(oracle)[:5]
    lines = [
        "# Synthetic benchmark datasheet",
        "",
        f"Folder: `{root.name}` (under the data root). "
        f"Images: {m['counts']['source']} source (GTA layout), "
        f"{m['counts']['target_train']} target train and {m['counts']['target_val']} target "
        "val (Cityscapes layout).",
        "",
        "## Class frequencies (`class_frequencies.csv`)",
        f"- Dominant source classes: {top}.",
        f"- Rarest source classes: {rare}.",
        f"- Dominant target classes: {target_top}.",
        "",
        "## Fine detail (`resolution_oracle.csv`)",
        "IoU of labels downsampled x2 (nearest) and upsampled back, target:",
        f"- road {100 * oracle[0]:.1f}, building {100 * oracle[2]:.1f}, "
        f"sky {100 * oracle[10]:.1f}; lowest: "
        + ", ".join(f"{CLASSES[k]} {100 * oracle[k]:.1f}" for k in worst)
        + ".",
        "",
        "## Domain gap (`domain_gap.csv`)",
        "mIoU of a nearest-class-mean colour classifier fitted on the source: "
        f"{100 * np.nanmean(m['colour_iou']['source_on_source']):.1f} on source, "
        f"{100 * np.nanmean(m['colour_iou']['source_on_target']):.1f} on target val "
        f"(fitted on target train: {100 * np.nanmean(m['colour_iou']['target_on_target']):.1f}).",
        "",
        "## Context: road vs sidewalk",
        "- Colour separability (mean distance / pooled std): "
        f"source {m['road_sidewalk_separability']['source']:.2f}, "
        f"target {m['road_sidewalk_separability']['target']:.2f}.",
        "- Target val road+sidewalk pixels classified by colour: "
        f"{100 * m['road_sidewalk_rules_target']['colour']:.1f} % correct; by image position: "
        f"{100 * m['road_sidewalk_rules_target']['position']:.1f} % correct.",
        "",
        "`samples.png`: source and target images with their labels (Cityscapes palette).",
        "",
    ]
    return "\n".join(lines)
