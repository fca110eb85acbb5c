"""Crop geometry against the official code's boxes and grids (golden pure_functions.json g)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrda_lib.crops import (
    box_mask,
    crop,
    paste,
    pseudo_label_margin_mask,
    sample_detail_box,
    scale_box,
    sliding_windows,
)


def test_detail_box_support_matches_official(pure_functions: dict) -> None:
    cases = pure_functions["g_crop_boxes_and_helpers"]["get_crop_bbox"]["cases"]
    for case in cases:
        (height, width), crop_size, d = case["img_hw"], tuple(case["crop_size"]), case["divisible"]
        gen = torch.Generator().manual_seed(0)
        boxes = [sample_detail_box(height, width, crop_size, d, gen) for _ in range(3000)]
        if case["deterministic_box"] is not None:
            assert set(boxes) == {tuple(case["deterministic_box"])}
            continue
        for axis, key in ((0, "offset_y_support"), (2, "offset_x_support")):
            lo, hi, step, count = case[key]
            offsets = {b[axis] for b in boxes}
            assert offsets == set(range(lo, hi + 1, step)), (case, key)
            assert len(offsets) == count
        assert all(b[1] - b[0] == crop_size[0] and b[3] - b[2] == crop_size[1] for b in boxes)


def test_detail_box_replays_with_generator() -> None:
    draw = lambda seed: sample_detail_box(
        1024, 1024, (512, 512), 8, torch.Generator().manual_seed(seed)
    )  # noqa: E501
    assert draw(5) == draw(5)
    assert len({draw(s) for s in range(20)}) > 1


def test_detail_box_rejects_impossible_crop() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        sample_detail_box(100, 100, (96, 96), 8)


def test_scale_box_truncates_like_official(pure_functions: dict) -> None:
    for ex in pure_functions["g_crop_boxes_and_helpers"]["scale_box"]["examples"]:
        assert scale_box(tuple(ex["box"]), ex["scale"]) == tuple(ex["out"])


def test_slide_grids_match_official(pure_functions: dict) -> None:
    helpers = pure_functions["g_crop_boxes_and_helpers"]
    for case in helpers["extract_slide_feat_boxes"]["cases"]:
        crop_size = tuple(case["crop_size"])
        stride = tuple(c // 2 for c in crop_size)
        assert sliding_windows(*case["img_hw"], crop_size, stride) == [
            tuple(b) for b in case["boxes"]
        ]
    for case in helpers["slide_inference_windows"]["cases"]:
        got = sliding_windows(*case["img_hw"], tuple(case["crop_size"]), tuple(case["stride"]))
        assert got == [tuple(b) for b in case["windows"]]


def test_slide_grid_counts_of_the_paper() -> None:
    # Cityscapes 1024x2048 -> 3 outer windows; ACDC 1080x1920 -> 6; 9 overlapping / 4 not inside.
    assert len(sliding_windows(1024, 2048, (1024, 1024), (512, 512))) == 3
    assert len(sliding_windows(1080, 1920, (1024, 1024), (512, 512))) == 6
    assert len(sliding_windows(1024, 1024, (512, 512), (256, 256))) == 9
    assert len(sliding_windows(1024, 1024, (512, 512), (512, 512))) == 4


def test_crop_and_paste_are_inverse() -> None:
    x = torch.randn(2, 3, 16, 24)
    box = (4, 12, 8, 20)
    pasted = paste((16, 24), crop(x, box), box)
    assert torch.equal(crop(pasted, box), crop(x, box))
    assert torch.allclose(pasted.sum(), crop(x, box).sum())
    assert torch.equal(box_mask((16, 24), box)[0, 0].bool(), pasted[0, 0] != 0)
    with pytest.raises(ValueError):
        paste((16, 24), x, box)


def test_margin_mask_official_cases(pure_functions: dict) -> None:
    f = pure_functions["f_pseudo_label_weight_and_margins"]
    small = np.array(f["small_valid_pseudo_mask"], dtype=np.uint8)
    assert np.array_equal(pseudo_label_margin_mask(*small.shape, f["small_margins"]), small)
    zero = f["zero_margin_case"]
    assert np.array_equal(
        pseudo_label_margin_mask(*zero["size"], zero["margins"]), np.array(zero["mask"])
    )
    full = f["official_full_size_mask"]
    mask = pseudo_label_margin_mask(*full["size"], full["margins_top_bottom_left_right"])
    assert int(mask.sum()) == full["n_valid"]
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    assert [rows[0], rows[-1]] == full["valid_rows"] and [cols[0], cols[-1]] == full["valid_cols"]
