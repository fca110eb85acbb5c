"""Metrics against the official mmseg eval_metrics and CustomDataset.evaluate (golden c_miou)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hrda_lib import metrics
from hrda_lib.classes import CLASSES, SYNTHIA_ABSENT
from hrda_lib.paths import golden_root

GOLDEN = golden_root() / "pure_functions.json"


@pytest.fixture(scope="module")
def golden() -> dict:
    if not GOLDEN.exists():
        pytest.skip(f"golden fixture {GOLDEN} not found")
    return json.loads(GOLDEN.read_text())["c_miou"]


@pytest.fixture(scope="module")
def confusion(golden: dict) -> torch.Tensor:
    """Accumulated over the two golden images one by one (dataset-level accumulation)."""
    pred = torch.tensor(golden["pred"], dtype=torch.int64)  # (2, 64, 64)
    label = torch.tensor(golden["label"], dtype=torch.uint8)  # uint8 as stored officially
    return sum(
        metrics.confusion_matrix(p, g, golden["num_classes"], golden["ignore_index"])
        for p, g in zip(pred, label, strict=True)
    )


def _nan_array(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def test_eval_metrics_match_official(golden: dict, confusion: torch.Tensor) -> None:
    expected = golden["eval_metrics"]
    np.testing.assert_allclose(
        metrics.iou_per_class(confusion), _nan_array(expected["IoU"]), rtol=1e-12
    )
    np.testing.assert_allclose(
        metrics.accuracy_per_class(confusion), _nan_array(expected["Acc"]), rtol=1e-12
    )
    assert metrics.aacc(confusion) == pytest.approx(expected["aAcc"], rel=1e-12)


def test_summary_matches_dataset_evaluate(golden: dict, confusion: torch.Tensor) -> None:
    expected = golden["dataset_evaluate"]  # fractions rounded as round(x * 100, 2) / 100
    table = metrics.summary(confusion)
    for key in ("aAcc", "mIoU", "mAcc"):
        assert table[key] == pytest.approx(expected[key] * 100, abs=1e-9), key
    assert [row["class"] for row in table["per_class"]] == list(CLASSES)
    for row in table["per_class"]:
        for metric in ("IoU", "Acc"):
            value = expected[f"{metric}.{row['class']}"]
            if value is None:
                assert np.isnan(row[metric])
            else:
                assert row[metric] == pytest.approx(value * 100, abs=1e-9)
    # The golden pair has a class absent from both (NaN), one predicted but absent (IoU 0).
    assert np.isnan(metrics.iou_per_class(confusion)).sum() == 1
    assert metrics.miou(confusion) == pytest.approx(np.nanmean(metrics.iou_per_class(confusion)))


def test_uint8_labels_do_not_overflow() -> None:
    """255 * 19 overflows uint8: the cast to int64 must come before gt * K + pred."""
    gt = torch.tensor([[18, 255, 13]], dtype=torch.uint8)
    pred = torch.tensor([[18, 3, 13]], dtype=torch.uint8)
    cm = metrics.confusion_matrix(pred, gt)
    assert cm.dtype == torch.int64
    assert cm.sum() == 2 and cm[18, 18] == 1 and cm[13, 13] == 1


def test_confusion_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError):
        metrics.confusion_matrix(torch.tensor([19]), torch.tensor([0]))
    with pytest.raises(ValueError):
        metrics.confusion_matrix(torch.tensor([0]), torch.tensor([254]))


def test_synthia_means() -> None:
    rng = np.random.default_rng(0)
    cm = rng.integers(1, 50, size=(19, 19))
    cm[:, list(SYNTHIA_ABSENT)] = 0  # never predicted -> IoU 0 (they are labelled)
    iou = metrics.iou_per_class(cm)
    assert np.all(iou[list(SYNTHIA_ABSENT)] == 0)
    assert metrics.synthia_miou16(cm) == pytest.approx(metrics.miou(cm) * 19 / 16)
    kept13 = [c for c in range(19) if c not in (3, 4, 5, 9, 14, 16)]
    assert metrics.synthia_miou13(cm) == pytest.approx(iou[kept13].mean())
    table = metrics.summary(cm, synthia=True)
    assert table["mIoU16"] == pytest.approx(round(metrics.synthia_miou16(cm) * 100, 2))
