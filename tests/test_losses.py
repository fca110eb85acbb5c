"""Cross entropy and accuracy against the official HRDA losses (golden `hrda_mitb0/io.pt`)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hrda_lib.losses import cross_entropy, pixel_accuracy
from hrda_lib.paths import golden_root

IO_PATH = golden_root() / "hrda_mitb0" / "io.pt"


@pytest.fixture(scope="module")
def io() -> dict:
    if not IO_PATH.exists():
        pytest.skip(f"golden fixture {IO_PATH} not found")
    return torch.load(IO_PATH, weights_only=False)


def _resize(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("case", ["no_weight", "with_seg_weight"])
def test_hrda_losses_match_official(io: dict, case: str) -> None:
    """0.9 * CE(fused) and 0.1 * CE(detail, cropped label/weight) as the official forward_train."""
    expected = io["train_losses"][case]
    label = io["train_gt"].long()[:, 0]  # (1, 512, 512), ~10 % ignored pixels
    weight = io["train_seg_weight"].float() if case == "with_seg_weight" else None
    y1, y2, x1, x2 = io["train_crop_box"].tolist()
    fused = _resize(io["train_fused"], tuple(label.shape[-2:]))
    detail = _resize(io["train_hr_logits"], (y2 - y1, x2 - x1))
    detail_label = label[:, y1:y2, x1:x2]
    detail_weight = None if weight is None else weight[:, y1:y2, x1:x2]

    fused_loss = 0.9 * cross_entropy(fused, label, weight)
    detail_loss = 0.1 * cross_entropy(detail, detail_label, detail_weight)
    assert fused_loss.item() == pytest.approx(expected["decode.loss_seg"], rel=1e-6)
    assert detail_loss.item() == pytest.approx(expected["decode.hr.loss_seg"], rel=1e-6)
    assert pixel_accuracy(fused, label).item() == pytest.approx(
        expected["decode.acc_seg"], rel=1e-6
    )
    assert pixel_accuracy(detail, detail_label).item() == pytest.approx(
        expected["decode.hr.acc_seg"], rel=1e-6
    )


def test_ignored_pixels_count_in_the_denominator() -> None:
    num_classes = 4
    logits = torch.zeros(1, num_classes, 2, 2)  # uniform: CE = log(K) per valid pixel
    label = torch.tensor([[[0, 1], [255, 255]]])
    assert cross_entropy(logits, label).item() == pytest.approx(math.log(num_classes) / 2)


def test_weight_multiplies_the_per_pixel_loss() -> None:
    logits = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(0))
    label = torch.randint(0, 5, (2, 3, 4), generator=torch.Generator().manual_seed(1))
    weight = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(2))
    per_pixel = F.cross_entropy(logits, label, reduction="none")
    assert torch.allclose(cross_entropy(logits, label, weight), (per_pixel * weight).mean())
    assert torch.allclose(cross_entropy(logits, label, torch.ones_like(weight)), per_pixel.mean())


def test_accuracy_denominator_includes_ignored_pixels() -> None:
    logits = torch.zeros(1, 3, 1, 4)
    logits[0, 2] = 1.0  # predicts class 2 everywhere
    label = torch.tensor([[[2, 2, 0, 255]]])
    assert pixel_accuracy(logits, label).item() == pytest.approx(50.0)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        cross_entropy(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.long))
