"""Plot helpers shared by the notebooks, benchmarks and datasheets.

Label maps are shown in the Cityscapes palette (`hrda_lib.classes.PALETTE`); every figure is
saved through `save_figure` (PNG, dpi 120, written atomically).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from hrda_lib.classes import NUM_CLASSES, PALETTE
from hrda_lib.files import atomic_write_bytes
from hrda_lib.transforms import IMG_MEAN, IMG_STD


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
