"""Rare Class Sampling (RCS) of DAFormer, as HRDA uses it (reference spec section 3.8).

Ported from `mmseg/datasets/uda_dataset.py` of DAFormer/HRDA (Apache-2.0). Class c is drawn with
probability `P(c) = softmax((1 - f_c) / T)`, where `f_c` is c's share of all source pixels
(counted at the original label resolution by the conversion scripts), then a source file
uniformly among those holding more than `min_pixels` pixels of c. The caller crops that file
and keeps the crop once it holds more than `min_pixels * min_crop_ratio` pixels of c, re-cropping
the same file at most 10 times.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hrda_lib.errors import UsageError


@dataclass(frozen=True)
class RCSConfig:
    """Rare class sampling settings (HRDA defaults; DAFormer used min_crop_ratio 0.5)."""

    class_temp: float = 0.01  # T, softmax temperature on 1 - f_c
    min_pixels: int = 3000  # a file is a candidate for c if it has > this many pixels of c
    min_crop_ratio: float = 2.0  # a crop is accepted with > min_pixels * ratio pixels of c
    max_recrops: int = 10  # re-crops of the same file before the last crop is kept


def rcs_class_probs(
    sample_class_stats: Sequence[Mapping], temperature: float
) -> tuple[list[int], np.ndarray]:
    """Classes sorted by ascending total pixel count and their sampling probabilities.

    Exactly `get_rcs_class_probs`: counts summed over files (str keys cast to int, the "file"
    key skipped), a stable sort (ties keep first-seen order), `freq = count / sum` as int64
    tensor true division (float32), `softmax((1 - freq) / T)` in float32. Classes that never
    occur are absent.

    Args:
        sample_class_stats: the list stored in `sample_class_stats.json`.
        temperature: T.

    Returns:
        (classes, probs) with probs a (C,) float32 array in the order of `classes`.
    """
    totals: dict[int, int] = {}
    for entry in sample_class_stats:
        for key, count in entry.items():
            if key == "file":
                continue
            totals[int(key)] = totals.get(int(key), 0) + int(count)
    ordered = sorted(totals.items(), key=lambda item: item[1])
    freq = torch.tensor([count for _, count in ordered])
    freq = freq / torch.sum(freq)
    probs = torch.softmax((1 - freq) / temperature, dim=-1)
    return [c for c, _ in ordered], probs.numpy()


def rcs_candidates(
    samples_with_class: Mapping[str, Sequence[Sequence]], classes: Sequence[int], min_pixels: int
) -> dict[int, list[str]]:
    """Per class, the basenames of the label files holding more than `min_pixels` of it.

    Args:
        samples_with_class: the dict stored in `samples_with_class.json`.
        classes: the classes to keep (those of `rcs_class_probs`).
        min_pixels: the strict lower bound on the file's pixel count of the class.
    """
    by_class = {int(k): v for k, v in samples_with_class.items()}
    candidates = {}
    for c in classes:
        files = by_class.get(c, [])
        candidates[c] = [Path(file).name for file, n in files if n > min_pixels]
    return candidates


def crop_has_rare_class(label_crop: np.ndarray, rare_class: int, config: RCSConfig) -> bool:
    """RCS crop acceptance: more than `min_pixels * min_crop_ratio` pixels of the class."""
    return int((label_crop == rare_class).sum()) > config.min_pixels * config.min_crop_ratio


@dataclass(frozen=True)
class RareClassSampler:
    """The sampling tables of one source dataset: classes, probabilities and candidate files.

    Built with `build_rare_class_sampler`; classes without any candidate file are dropped and
    the remaining probabilities renormalized (the official code asserts instead; this matters
    only for small images where a class never reaches `min_pixels` in one file).
    """

    classes: tuple[int, ...]  # classes that can be drawn
    probs: np.ndarray  # (C,) float64, sums to 1
    candidates: Mapping[int, tuple[int, ...]]  # class -> dataset indices of its candidate files
    config: RCSConfig

    def sample(self, rng: np.random.Generator) -> tuple[int, int]:
        """Draw (rare class c, dataset index of a file with c)."""
        c = self.classes[int(rng.choice(len(self.classes), p=self.probs))]
        files = self.candidates[c]
        return c, files[int(rng.integers(len(files)))]


def build_rare_class_sampler(
    stats_dir: Path, label_paths: Sequence[Path | str], config: RCSConfig
) -> RareClassSampler:
    """Read a source's statistics JSON files and index its candidate files by dataset index.

    Args:
        stats_dir: folder with `sample_class_stats.json` and `samples_with_class.json` (the
            source dataset root, where the conversion scripts write them).
        label_paths: the source dataset's label files in dataset order (matched by basename).
        config: RCS settings.
    """
    stats_dir = Path(stats_dir)
    with open(stats_dir / "sample_class_stats.json") as f:
        classes, probs = rcs_class_probs(json.load(f), config.class_temp)
    with open(stats_dir / "samples_with_class.json") as f:
        candidates = rcs_candidates(json.load(f), classes, config.min_pixels)
    file_to_index = {Path(p).name: i for i, p in enumerate(label_paths)}
    tables = {}
    for c, files in candidates.items():
        indices = tuple(file_to_index[f] for f in files if f in file_to_index)
        if indices:
            tables[c] = indices
    if not tables:
        raise UsageError(
            f"rare class sampling: no class has a file with > {config.min_pixels} pixels among "
            f"the {len(label_paths)} labels of {stats_dir}; lower RCSConfig.min_pixels"
        )
    kept = [i for i, c in enumerate(classes) if c in tables]
    kept_probs = probs[kept].astype(np.float64)
    return RareClassSampler(
        classes=tuple(classes[i] for i in kept),
        probs=kept_probs / kept_probs.sum(),
        candidates=tables,
        config=config,
    )
