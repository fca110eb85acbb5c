"""UDA building blocks: EMA teacher and pseudo-labels against the official DACS code (golden
`e_ema_teacher`, `f_pseudo_label_weight_and_margins`), ClassMix, feature distance, MIC inputs."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch
from timm.layers import DropPath
from torch import nn

from hrda_lib import masking, uda
from hrda_lib.crops import pseudo_label_margin_mask
from hrda_lib.paths import golden_root

GOLDEN = golden_root() / "pure_functions.json"


@pytest.fixture(scope="module")
def golden() -> dict:
    if not GOLDEN.exists():
        pytest.skip(f"golden fixture {GOLDEN} not found")
    return json.loads(GOLDEN.read_text())


# ----------------------------------------------------------------------------- EMA teacher


class _StandIn(nn.Module):
    def __init__(self, vector: list[float], scalar: float, buffer: float) -> None:
        super().__init__()
        self.vector = nn.Parameter(torch.tensor(vector))  # float32 (4,)
        self.scalar = nn.Parameter(torch.tensor(scalar))  # 0-dim parameter
        self.register_buffer("stat", torch.tensor([buffer]))


def _f32_hex(values: list[float]) -> list[str]:
    return [struct.pack(">f", v).hex() for v in values]


def test_ema_matches_official_bit_for_bit(golden: dict) -> None:
    rows = golden["e_ema_teacher"]["values"]
    assert len(rows) == 22
    for row in rows:
        assert uda.ema_alpha(row["iter"], row["alpha_cfg"]) == row["effective_alpha"]
        teacher = _StandIn(row["ema_before"], row["scalar_ema_before"], row["buffer_after"][0])
        student = _StandIn(row["student"], row["scalar_student"], -7.0)
        uda.update_ema(teacher, student, row["iter"], row["alpha_cfg"])
        assert _f32_hex(teacher.vector.tolist()) == row["ema_after_f32hex"], row["iter"]
        assert teacher.scalar.item() == np.float32(row["scalar_ema_after"])
        assert teacher.stat.tolist() == row["buffer_after"]  # buffers are not averaged


def test_ema_alpha_ramp() -> None:
    assert [uda.ema_alpha(t) for t in (1, 2, 10)] == [0.5, 1 - 1 / 3, 1 - 1 / 11]
    assert uda.ema_alpha(998) < 0.999 and uda.ema_alpha(999) == 0.999
    assert uda.ema_alpha(39999) == 0.999


def test_ema_first_iteration_copies_parameters_only() -> None:
    student = _StandIn([1.0, 2.0, 3.0, 4.0], 0.5, -7.0)
    teacher = uda.create_ema_teacher(_StandIn([0.0] * 4, 0.0, 5.0))
    assert not any(p.requires_grad for p in teacher.parameters())
    uda.update_ema(teacher, student, 0)
    assert torch.equal(teacher.vector, student.vector) and teacher.scalar.item() == 0.5
    assert teacher.stat.item() == 5.0


def test_teacher_mode_keeps_batchnorm_training_and_disables_dropout() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Dropout2d(0.5), DropPath(0.5), nn.Dropout(0.5)
    )
    model.eval()
    uda.set_teacher_mode(model)
    assert model.training and model[1].training
    assert not any(m.training for m in (model[2], model[3], model[4]))
    x = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 3 + 2
    out = model(x)  # deterministic, normalized with the batch statistics
    assert torch.equal(out, model(x))
    per_channel_mean = out.mean(dim=(0, 2, 3))
    assert torch.allclose(per_channel_mean, model[1].bias, atol=1e-5)


# ----------------------------------------------------------------------------- pseudo-labels


def test_pseudo_labels_match_official_cases(golden: dict) -> None:
    f = golden["f_pseudo_label_weight_and_margins"]
    logits = torch.tensor(f["ema_logits"])  # (2, 19, 16, 24)
    expected_label = torch.tensor(f["cases"]["no_mask"]["pseudo_label"])
    assert set(f["cases"]) == {"no_mask", "crop_pseudo_margins_2_5_3_1", "ignore_top3_bottom2"}
    for name, case in f["cases"].items():
        kwargs = case["kwargs"]
        valid_mask = None
        if "valid_pseudo_mask" in kwargs:
            valid_mask = torch.tensor(kwargs["valid_pseudo_mask"], dtype=torch.uint8)[:, 0]
        label, weight = uda.pseudo_label_and_weight(
            logits,
            f["pseudo_threshold"],
            valid_mask,
            ignore_top=kwargs.get("psweight_ignore_top", 0),
            ignore_bottom=kwargs.get("psweight_ignore_bottom", 0),
        )
        assert label.dtype == torch.int64 and torch.equal(label, expected_label), name
        assert weight.dtype == torch.float32
        assert torch.equal(weight, torch.tensor(case["pseudo_weight"])), name  # bit-exact
        q = case["ps_large_p_count"] / case["ps_size"]
        assert q == case["pseudo_weight_scalar"]
        assert weight.max().item() == np.float32(q)


def test_margin_mask_matches_official_pre_pipeline(golden: dict) -> None:
    f = golden["f_pseudo_label_weight_and_margins"]
    mask = pseudo_label_margin_mask(16, 24, f["small_margins"])
    assert np.array_equal(mask, np.array(f["small_valid_pseudo_mask"], dtype=np.uint8))
    # The golden margin case is this mask for both images of the batch.
    case_mask = np.array(f["cases"]["crop_pseudo_margins_2_5_3_1"]["kwargs"]["valid_pseudo_mask"])
    assert np.array_equal(case_mask[:, 0], np.stack([mask, mask]))
    zero = f["zero_margin_case"]
    assert np.array_equal(pseudo_label_margin_mask(*zero["size"], zero["margins"]), zero["mask"])
    full = f["official_full_size_mask"]
    big = pseudo_label_margin_mask(*full["size"], full["margins_top_bottom_left_right"])
    assert int(big.sum()) == full["n_valid"]


def test_pseudo_weight_is_one_scalar_per_batch() -> None:
    logits = torch.zeros(2, 3, 2, 2)
    logits[0, 0] = 10.0  # image 0 fully confident, image 1 uniform
    label, weight = uda.pseudo_label_and_weight(logits, threshold=0.968)
    assert torch.all(weight == 0.5)  # 4 of 8 pixels are confident, on both images
    _, weight_none = uda.pseudo_label_and_weight(logits, threshold=None)
    assert torch.all(weight_none == 1.0)
    with pytest.raises(ValueError):
        uda.pseudo_label_and_weight(logits, valid_mask=torch.ones(2, 2, 2), ignore_top=1)


# ----------------------------------------------------------------------------- ClassMix


def test_classmix_uses_union_of_the_source_batch() -> None:
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    labels[0, :2] = 1
    labels[0, 2:] = 255
    labels[1, :, :2] = 2
    labels[1, :, 2:] = 3  # union {1, 2, 3, 255}: 4 classes -> 2 drawn per sample
    for seed in range(20):
        masks = uda.classmix_masks(labels, np.random.default_rng(seed))
        assert masks.shape == (2, 1, 4, 4) and masks.dtype == torch.float32
        # Sample 1's mask covers 0, 1 or 2 of its classes: the draws come from the whole union.
        picked = {int(v) for v in labels[1][masks[1, 0].bool()].unique()}
        assert picked <= {2, 3}
    masks = [uda.classmix_masks(labels, np.random.default_rng(s)) for s in range(50)]
    covered0 = {round(m[0].mean().item(), 2) for m in masks}
    assert covered0 == {0.0, 0.5, 1.0}  # sample 0 got none, one or both of {1, 255}


def test_classmix_draw_size_and_replay() -> None:
    labels = torch.arange(5).view(1, 1, 5).expand(2, 1, 5).contiguous()  # 5 classes -> 3
    m1 = uda.classmix_masks(labels, np.random.default_rng(7))
    m2 = uda.classmix_masks(labels, np.random.default_rng(7))
    assert torch.equal(m1, m2)
    assert m1.sum(dim=(1, 2, 3)).tolist() == [3.0, 3.0]


def test_mix_images_labels_weights() -> None:
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    src_img, trg_img = torch.full((1, 3, 2, 2), 1.5), torch.full((1, 3, 2, 2), -2.0)
    img = uda.mix(mask, src_img, trg_img)
    assert img[0, :, 0, 0].tolist() == [1.5] * 3 and img[0, :, 0, 1].tolist() == [-2.0] * 3
    label = uda.mix(mask, torch.full((1, 2, 2), 255), torch.full((1, 2, 2), 4))
    assert label.dtype == torch.int64 and label.tolist() == [[[255, 4], [4, 255]]]
    weight = uda.mix(mask, torch.ones(1, 2, 2), torch.full((1, 2, 2), 0.25))
    assert weight.tolist() == [[[1.0, 0.25], [0.25, 1.0]]]


# ----------------------------------------------------------------------------- feature distance


def test_downscale_label_by_majority() -> None:
    label = torch.zeros(1, 4, 16, dtype=torch.long)  # four 4x4 cells side by side
    label[0, :, 0:4] = 13  # pure car
    label[0, :, 4:8] = 13
    label[0, 0, 4:8] = 0  # car 75 % -> car (not < 0.75)
    label[0, :, 8:12] = 13
    label[0, :2, 8:11] = 0  # car 10/16 < 0.75 -> ignore
    label[0, :, 12:16] = 255
    label[0, 0, 12:16] = 6  # ignore channel wins -> ignore
    out = uda.downscale_label_by_majority(label, 4)
    assert out.tolist() == [[[13, 13, 255, 255]]]
    label[0, :, 12:16] = 6
    label[0, 0, 12:16] = 255  # 25 % ignore, 75 % light -> light
    assert uda.downscale_label_by_majority(label, 4)[0, 0, 3].item() == 6


def test_feature_distance_loss_value_and_gradient() -> None:
    label = torch.full((1, 8, 8), 0, dtype=torch.long)
    label[0, :4, :4] = 13  # one thing cell out of four (cells of 4x4)
    label[0, 4:, 4:] = 11  # another thing cell
    f_imnet = torch.zeros(1, 2, 2, 2)
    f_student = torch.zeros(1, 2, 2, 2)
    f_student[0, :, 0, 0] = torch.tensor([3.0, 4.0])  # distance 5
    f_student[0, :, 1, 1] = torch.tensor([0.0, 1.0])  # distance 1
    f_student[0, :, 0, 1] = torch.tensor([100.0, 0.0])  # road cell: not counted
    f_student.requires_grad_(True)
    f_imnet.requires_grad_(True)
    loss = uda.feature_distance_loss(f_student, f_imnet, label, weight=0.005)
    assert loss.item() == pytest.approx(0.005 * (5 + 1) / 2)
    loss.backward()
    assert f_imnet.grad is None  # the ImageNet features are detached
    assert f_student.grad[0, :, 0, 1].abs().sum() == 0
    assert torch.allclose(f_student.grad[0, :, 0, 0], 0.005 / 2 * torch.tensor([0.6, 0.8]))


def test_feature_distance_empty_mask_is_zero_not_nan() -> None:
    label = torch.zeros(2, 8, 8, dtype=torch.long)  # road only: no thing cell
    f_student = torch.randn(2, 3, 2, 2, requires_grad=True)
    loss = uda.feature_distance_loss(f_student, torch.randn(2, 3, 2, 2), label)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(f_student.grad == 0)


# ----------------------------------------------------------------------------- MIC


def test_block_mask_grid_and_ratio() -> None:
    g = torch.Generator().manual_seed(0)
    mask = masking.block_mask(2, 256, 128, block_size=64, ratio=0.7, generator=g)
    assert mask.shape == (2, 1, 256, 128) and set(mask.unique().tolist()) <= {0.0, 1.0}
    blocks = mask.view(2, 1, 4, 64, 2, 64)
    assert torch.all(blocks.amin(dim=(3, 5)) == blocks.amax(dim=(3, 5)))  # constant per block
    big = masking.block_mask(64, 1024, 1024, generator=torch.Generator().manual_seed(1))
    assert big.mean().item() == pytest.approx(0.3, abs=0.02)  # keep if U > 0.7
    odd = masking.block_mask(1, 100, 96, block_size=64, generator=g)  # round(1.56) x round(1.5)
    assert odd.shape == (1, 1, 100, 96)
    assert masking.block_mask(1, 64, 64, ratio=1.0, generator=g).max() == 0.0  # all masked
    replay = masking.block_mask(2, 64, 64, 16, generator=torch.Generator().manual_seed(5))
    again = masking.block_mask(2, 64, 64, 16, generator=torch.Generator().manual_seed(5))
    assert torch.equal(replay, again)


def test_apply_mask_zeroes_normalized_image() -> None:
    img = torch.randn(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    out = masking.apply_mask(img, mask)
    assert torch.equal(out[..., :2], img[..., :2]) and torch.all(out[..., 2:] == 0)


def _mic_batch() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    source_img, target_img = (
        torch.randn(2, 3, 8, 8, generator=g),
        torch.randn(2, 3, 8, 8, generator=g),
    )
    source_gt = torch.randint(0, 19, (2, 8, 8), generator=g)
    pseudo_label = torch.randint(0, 19, (2, 8, 8), generator=g)
    pseudo_weight = torch.full((2, 8, 8), 0.4)
    pseudo_weight[:, :1] = 0  # margin
    return source_img, source_gt, target_img, pseudo_label, pseudo_weight


def test_mic_inputs_per_mode() -> None:
    src, gt, trg, pl, pw = _mic_batch()
    img, label, weight = masking.mic_inputs("separatetrgaug", src, gt, trg, pl, pw)
    assert img is trg and torch.equal(label, pl) and weight is pw
    img, label, weight = masking.mic_inputs("separate", src, gt, trg, pl, pw)
    assert torch.equal(img, torch.stack([src[0], trg[0]]))
    assert torch.equal(label, torch.stack([gt[0], pl[0]]))
    assert torch.equal(weight, torch.stack([torch.ones(8, 8), pw[0]]))
    for mode in ("separatesrc", "separatesrcaug"):
        img, label, weight = masking.mic_inputs(mode, src, gt, trg, pl, pw)
        assert img is src and torch.equal(label, gt) and weight is None
    assert [m for m in masking.MIC_MODES if masking.mic_uses_augmentation(m)] == [
        "separateaug",
        "separatesrcaug",
        "separatetrgaug",
    ]
    with pytest.raises(ValueError):
        masking.mic_inputs("mixed", src, gt, trg, pl, pw)


def test_masked_batch_augments_only_aug_modes() -> None:
    src, gt, trg, pl, pw = _mic_batch()
    out, mask, params = masking.masked_batch(
        "separatetrg", trg, torch.Generator().manual_seed(3), block_size=4
    )
    assert params is None and torch.equal(out, trg * mask)
    out, mask, params = masking.masked_batch(
        "separatetrgaug", trg, torch.Generator().manual_seed(3), block_size=4
    )
    assert params is not None
    assert torch.all(params.blur_sigma == params.blur_sigma[0])  # one sigma for the batch
    assert torch.all(params.color_jitter.order == params.color_jitter.order[0])
    assert torch.all(out[mask.expand_as(out) == 0] == 0)
    assert math.isfinite(out.abs().sum().item())
