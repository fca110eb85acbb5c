"""Plot helpers shared by the notebooks, benchmarks and datasheets.

Label maps are shown in the Cityscapes palette (`hrda_lib.classes.PALETTE`); every figure is
saved through `save_figure` (PNG, dpi 120, written atomically); every column or quantity name
that a figure shows goes through `words`, so that a reader sees words, not identifiers.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from hrda_lib.classes import NUM_CLASSES, PALETTE
from hrda_lib.files import atomic_write_bytes
from hrda_lib.transforms import IMG_MEAN, IMG_STD

# What a figure shows for the names of the logs' quantities and the tables' columns.
WORDS: dict[str, str] = {
    "loss_source_total": "source loss (all terms)",
    "loss_source_fused": "source loss, fused term",
    "loss_source_detail": "source loss, detail term",
    "loss_mixed_total": "mixed-image loss (all terms)",
    "loss_mixed_fused": "mixed-image loss, fused term",
    "loss_mixed_detail": "mixed-image loss, detail term",
    "loss_mic_total": "masked-image consistency loss (MIC)",
    "loss_fd": "ImageNet feature distance loss",
    "loss_adversarial": "adversarial loss (segmentor)",
    "loss_discriminator": "discriminator loss",
    "loss_entropy": "entropy loss (target)",
    "pseudo_weight": "pseudo-label quality q",
    "val_miou": "target val mIoU (%)",
    "val_aacc": "target val pixel accuracy (%)",
    "seconds_per_iter": "training time per iteration (s)",
    "memory_mb": "training memory (MB)",
    "oracle_iou_x2": "labels down- and up-sampled ×2",
    "oracle_iou_x4": "labels down- and up-sampled ×4",
    "IoU_context": "context (LR) branch",
    "IoU_detail": "detail (HR) branch",
    "IoU_fused": "fused by scale attention",
    "mean_attention": "mean attention to the detail branch",
}


def words(name: object) -> str:
    """What a figure shows for a quantity or column name: `WORDS`, "RCS, temperature T = 0.01"
    for `rcs_probability_T0.01`, else the name with spaces for underscores."""
    name = str(name)
    if name.startswith("rcs_probability_T"):
        return f"RCS, temperature T = {name.removeprefix('rcs_probability_T')}"
    return WORDS.get(name, name.replace("_", " "))


def colorize(label: np.ndarray) -> np.ndarray:
    """(H, W) train ids -> (H, W, 3) uint8 RGB in the Cityscapes palette; 255 (and any id
    outside 0..18) is black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:NUM_CLASSES] = np.array(PALETTE, dtype=np.uint8)
    return table[np.asarray(label).astype(np.uint8)]


def to_rgb(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A normalized (3, H, W) image back to (H, W, 3) uint8 RGB, rounded to the nearest value
    (the inverse of the pipelines' normalization)."""
    array = image.detach().cpu().numpy() if torch.is_tensor(image) else np.asarray(image)
    rgb = array.transpose(1, 2, 0) * IMG_STD + IMG_MEAN
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def save_figure(fig, path: Path | str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG via a temporary file and a rename; returns the path."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path
