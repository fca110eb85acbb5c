"""What notebook 01 shows about the data: the synthetic benchmark's datasheet as a tidy table,
rare class sampling's class distribution, and the layout check of the real datasets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from hrda_lib import layout
from hrda_lib.classes import CLASSES, NUM_CLASSES
from hrda_lib.paths import data_root, portable
from hrda_lib.rcs import RCSConfig, build_rare_class_sampler
from hrda_lib.reproduction.results import upstream_table


def datasheet_table(sheet: dict) -> pd.DataFrame:
    """The per-class measurements of `hrda_lib.synthetic.datasheet.measure` as a tidy table:
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


def rcs_distribution(
    source_root: Path, config: RCSConfig, temperatures: Sequence[float]
) -> pd.DataFrame:
    """Rare class sampling probability of each class at each temperature T, as a tidy table
    (class, train_id, domain, quantity `rcs_probability_T<T>`, value; 0 for undrawable classes).

    Args:
        source_root: a converted source (GTA layout) with its statistics JSON files.
        config: the RCS settings whose temperature is varied.
    """
    pairs = layout.find_pairs(layout.gta_layout(Path(source_root)), check_sizes=False)
    labels = [label for _, label in pairs]
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
    """Layout check of the real datasets under `data/`: dataset, split, status, images, detail
    (the folder or the problem, its path as `paths.portable` writes it: `data/gta/images`).

    Raises `DatasetLayoutError` (with what to fix) if `required` and GTA or Cityscapes is not ok.
    """
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
            rows.append((dataset, split, "ok", len(pairs), portable(str(spec.img_dir))))
        except layout.DatasetLayoutError as error:
            status = "missing" if not spec.img_dir.exists() else "layout error"
            rows.append((dataset, split, status, 0, portable(str(error).splitlines()[0])))
            if dataset != "Synthia":
                errors.append(error)
    if required and errors:
        raise layout.DatasetLayoutError("\n\n".join(map(str, errors)))
    return pd.DataFrame(rows, columns=["dataset", "split", "status", "images", "detail"])


def resolution_oracle() -> pd.DataFrame:
    """class, oracle_iou_x2: 01's half-resolution oracle IoU of the target labels (an empty
    table if 01 has not run)."""
    table = upstream_table("01_data_preparation")
    if table is None:
        return pd.DataFrame(columns=["class", "oracle_iou_x2"])
    rows = table[(table["domain"] == "target") & (table["quantity"] == "oracle_iou_x2")]
    return rows[["class", "value"]].rename(columns={"value": "oracle_iou_x2"})
