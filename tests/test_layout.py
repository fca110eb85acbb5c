"""The layout check: one clear message per kind of bad input, naming path, expectation, fix."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hrda_lib.layout import (
    DatasetLayoutError,
    acdc_layout,
    cityscapes_layout,
    dark_zurich_layout,
    find_pairs,
    gta_layout,
    mapillary_layout,
)


def save(path, height=8, width=16, channels=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (height, width, channels) if channels > 1 else (height, width)
    Image.fromarray(np.zeros(shape, dtype=np.uint8)).save(path)


def gta_pair(root, name, label_size=(8, 16)):
    save(root / "images" / f"{name}.png")
    save(root / "labels" / f"{name}_labelTrainIds.png", *label_size, channels=1)


def message_of(layout, **kwargs) -> str:
    with pytest.raises(DatasetLayoutError) as info:
        find_pairs(layout, **kwargs)
    message = str(info.value)
    assert "\n  expected: " in message and "\n  fix: " in message
    return message


def test_valid_layout_gives_sorted_pairs(tmp_path):
    for name in ("00002", "00001", "00010"):
        gta_pair(tmp_path, name)
    pairs = find_pairs(gta_layout(tmp_path))
    assert [img.name for img, _ in pairs] == ["00001.png", "00002.png", "00010.png"]
    assert pairs[0][1] == tmp_path / "labels" / "00001_labelTrainIds.png"


def test_missing_folder(tmp_path):
    message = message_of(gta_layout(tmp_path / "gta"))
    assert f"{tmp_path}/gta/images" in message
    assert "folder does not exist" in message
    assert "download GTA5" in message


def test_missing_label_folder_points_to_the_conversion(tmp_path):
    save(tmp_path / "images" / "00001.png")
    message = message_of(gta_layout(tmp_path))
    assert f"{tmp_path}/labels" in message
    assert "data_scripts/gta.py" in message


def test_empty_split(tmp_path):
    (tmp_path / "leftImg8bit" / "val").mkdir(parents=True)
    message = message_of(cityscapes_layout(tmp_path, "val"))
    assert "Cityscapes val: no images (empty split)" in message
    assert f"{tmp_path}/leftImg8bit/val" in message
    assert "*_leftImg8bit.png" in message


def test_image_without_label(tmp_path):
    gta_pair(tmp_path, "00001")
    save(tmp_path / "images" / "00002.png")
    save(tmp_path / "labels" / "00002.png", channels=1)  # raw label, not converted
    message = message_of(gta_layout(tmp_path))
    assert "1 of 2 images have no label" in message
    assert str(tmp_path / "labels" / "00002_labelTrainIds.png") in message
    assert "python data_scripts/gta.py" in message


def test_label_of_the_wrong_size(tmp_path):
    gta_pair(tmp_path, "00001")
    gta_pair(tmp_path, "00002", label_size=(8, 15))
    message = message_of(gta_layout(tmp_path))
    assert str(tmp_path / "labels" / "00002_labelTrainIds.png") in message
    assert "15x8 (WxH)" in message and "16x8" in message
    assert "check_sizes=False" in message
    assert len(find_pairs(gta_layout(tmp_path), check_sizes=False)) == 2


def test_cityscapes_acdc_dark_zurich_mapillary_layouts(tmp_path):
    cs = tmp_path / "cs"
    save(cs / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png")
    save(
        cs / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelTrainIds.png",
        channels=1,
    )
    [(img, label)] = find_pairs(cityscapes_layout(cs, "train"))
    assert label.name == "aachen_000000_000019_gtFine_labelTrainIds.png"
    assert find_pairs(cityscapes_layout(cs, "train", labels=False)) == [(img, None)]

    acdc = tmp_path / "acdc"
    save(acdc / "rgb_anon" / "val" / "GOPR0400_frame_000001_rgb_anon.png")
    message = message_of(acdc_layout(acdc, "val"))
    assert "rsync" in message  # the HRDA README's flattening commands

    dz = tmp_path / "dz"
    save(dz / "rgb_anon" / "train" / "night" / "GOPR0351" / "GOPR0351_frame_000159_rgb_anon.png")
    assert find_pairs(dark_zurich_layout(dz, "train"))[0][1] is None

    mapillary = tmp_path / "mapillary"
    (mapillary / "validation" / "v1.2" / "labels").mkdir(parents=True)
    assert mapillary_layout(mapillary).ann_dir == mapillary / "validation" / "v1.2" / "labels"


def test_hidden_temporary_files_are_ignored(tmp_path):
    gta_pair(tmp_path, "00001")
    save(tmp_path / "images" / ".00002.png.123.tmp.png")
    assert len(find_pairs(gta_layout(tmp_path))) == 1
