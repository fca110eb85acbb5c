"""Label conversion against the official scripts' mapping tables and statistics formats."""

from __future__ import annotations

import json
import os
import runpy
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from hrda_lib import conversion, files
from hrda_lib.conversion import (
    CITYSCAPES_ID_TO_TRAIN_ID,
    GTA_ID_TO_TRAIN_ID,
    MAPILLARY_ID_TO_TRAIN_ID,
    SYNTHIA_ID_TO_TRAIN_ID,
    class_stats,
    class_stats_files,
    convert_cityscapes,
    convert_gta,
    convert_mapillary,
    convert_synthia,
    to_train_ids,
)
from hrda_lib.layout import DatasetLayoutError
from hrda_lib.paths import REPO_ROOT, golden_root

ALL_IDS = np.arange(256, dtype=np.uint8).reshape(16, 16)  # the golden probe image


@pytest.fixture(scope="module")
def golden() -> dict:
    with open(golden_root() / "pure_functions.json") as f:
        return json.load(f)["d_label_mappings"]


def as_int_map(d: dict) -> dict[int, int]:
    return {int(k): int(v) for k, v in d.items()}


def expected_train_ids(id_to_train_id: dict[int, int]) -> np.ndarray:
    return np.array([id_to_train_id.get(i, 255) for i in range(256)], dtype=np.uint8)


def test_tables_equal_the_official_ones(golden):
    assert GTA_ID_TO_TRAIN_ID == as_int_map(golden["gta_id_to_trainId"])
    assert SYNTHIA_ID_TO_TRAIN_ID == as_int_map(golden["synthia_id_to_trainId"])
    cityscapes = {
        k: v for k, v in as_int_map(golden["cityscapes_labelId_to_trainId"]).items() if v != 255
    }
    assert CITYSCAPES_ID_TO_TRAIN_ID == cityscapes
    table = {
        row["id"]: row["trainId_in_converted_png"] for row in golden["cityscapes_labels_table"]
    }
    mapped = to_train_ids(np.array([[i for i in table if i >= 0]]), CITYSCAPES_ID_TO_TRAIN_ID)
    assert mapped[0].tolist() == [table[i] for i in table if i >= 0]


def test_mapillary_merges_classes():
    ids = np.array([[13, 24, 41, 2, 15, 45, 47, 20, 21, 22, 52, 0, 65]], dtype=np.uint8)
    assert to_train_ids(ids, MAPILLARY_ID_TO_TRAIN_ID)[0].tolist() == [
        0,
        0,
        0,
        1,
        1,
        5,
        5,
        12,
        12,
        12,
        18,
        255,
        255,
    ]


def test_gta_conversion_on_the_golden_probe(tmp_path, golden):
    (tmp_path / "labels").mkdir()
    image = Image.fromarray(ALL_IDS)
    image.putpalette(list(range(256)) * 3)  # GTA labels are palette PNGs
    image.save(tmp_path / "labels" / "00001.png")
    entries = convert_gta(tmp_path, nproc=1)
    out = Image.open(tmp_path / "labels" / "00001_labelTrainIds.png")
    assert out.mode == "L"
    assert np.array_equal(np.asarray(out).ravel(), expected_train_ids(GTA_ID_TO_TRAIN_ID))
    counts = {k: v for k, v in entries[0].items() if k != "file"}
    assert counts == golden["gta_sample_class_stats_of_that_png"]
    assert entries[0]["file"] == str(tmp_path / "labels" / "00001_labelTrainIds.png")


def test_synthia_reads_the_last_bgr_channel_of_16_bit_labels(tmp_path):
    folder = tmp_path / "GT" / "LABELS"
    folder.mkdir(parents=True)
    label = np.zeros((16, 16, 3), dtype=np.uint16)
    label[..., 2] = ALL_IDS  # R in OpenCV's BGR order: the class id
    label[..., 0] = 1000 + ALL_IDS.astype(np.uint16)  # instance ids in the other channels
    label[..., 1] = 7
    cv2.imwrite(str(folder / "0000000.png"), label)
    convert_synthia(tmp_path, nproc=1)
    out = cv2.imread(str(folder / "0000000_labelTrainIds.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(out.ravel(), expected_train_ids(SYNTHIA_ID_TO_TRAIN_ID))


def write_cityscapes_label(root, split, city, frame, label_ids):
    folder = root / "gtFine" / split / city
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{city}_000000_{frame:06d}"
    Image.fromarray(label_ids).save(folder / f"{stem}_gtFine_labelIds.png")
    return folder / f"{stem}_gtFine_labelTrainIds.png"


def test_cityscapes_conversion_statistics_and_split_lists(tmp_path):
    train_ids = write_cityscapes_label(tmp_path, "train", "aachen", 19, ALL_IDS)
    write_cityscapes_label(tmp_path, "train", "aachen", 20, np.full((4, 4), 7, np.uint8))
    write_cityscapes_label(tmp_path, "val", "lindau", 1, ALL_IDS)
    entries = convert_cityscapes(tmp_path, nproc=1)
    out = cv2.imread(str(train_ids), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(out.ravel(), expected_train_ids(CITYSCAPES_ID_TO_TRAIN_ID))
    assert [e["file"] for e in entries] == [
        str(train_ids),
        str(train_ids.with_name("aachen_000000_000020_gtFine_labelTrainIds.png")),
    ]  # statistics cover gtFine/train only
    assert entries[1] == {"0": 16, "file": entries[1]["file"]}
    assert (tmp_path / "train.txt").read_text() == (
        "aachen/aachen_000000_000019\naachen/aachen_000000_000020\n"
    )
    assert (tmp_path / "val.txt").read_text() == "lindau/lindau_000000_000001\n"
    val_out = (
        tmp_path / "gtFine" / "val" / "lindau" / "lindau_000000_000001_gtFine_labelTrainIds.png"
    )
    assert val_out.is_file()  # val labels are converted, only not counted


def test_cityscapes_with_polygons_only_says_so(tmp_path):
    folder = tmp_path / "gtFine" / "train" / "aachen"
    folder.mkdir(parents=True)
    (folder / "aachen_000000_000019_gtFine_polygons.json").write_text("{}")
    with pytest.raises(DatasetLayoutError) as info:
        convert_cityscapes(tmp_path)
    message = str(info.value)
    assert "polygons.json" in message and "labelIds.png" in message
    assert "csCreateTrainIdLabelImgs" in message


def test_statistics_files_have_the_official_formats(tmp_path):
    entries = [
        conversion.stats_entry({0: 10, 5: 2}, "d/a_labelTrainIds.png"),
        conversion.stats_entry({0: 3}, "d/b_labelTrainIds.png"),
    ]
    conversion.write_class_stats(tmp_path, entries)
    stats = json.loads((tmp_path / "sample_class_stats.json").read_text())
    assert stats == [
        {"0": 10, "5": 2, "file": "d/a_labelTrainIds.png"},
        {"0": 3, "file": "d/b_labelTrainIds.png"},
    ]
    assert list(stats[0]) == ["0", "5", "file"]
    assert json.loads((tmp_path / "sample_class_stats_dict.json").read_text()) == {
        "d/a_labelTrainIds.png": {"0": 10, "5": 2},
        "d/b_labelTrainIds.png": {"0": 3},
    }
    assert json.loads((tmp_path / "samples_with_class.json").read_text()) == {
        "0": [["d/a_labelTrainIds.png", 10], ["d/b_labelTrainIds.png", 3]],
        "5": [["d/a_labelTrainIds.png", 2]],
    }
    assert (tmp_path / "sample_class_stats.json").read_text().startswith('[\n  {\n    "0": 10')
    assert set(class_stats_files(entries)) == {
        "sample_class_stats.json",
        "sample_class_stats_dict.json",
        "samples_with_class.json",
    }


def test_class_stats_counts_only_present_train_ids():
    label = np.array([[0, 0, 18, 255], [19, 3, 3, 3]], dtype=np.uint8)
    assert class_stats(label) == {0: 2, 3: 3, 18: 1}


def test_rerun_skips_finished_files(tmp_path):
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "labels" / "00001.png")
    first = convert_gta(tmp_path, nproc=1)
    out = tmp_path / "labels" / "00001_labelTrainIds.png"
    os.utime(out, (1, 1))
    assert convert_gta(tmp_path, nproc=1) == first
    assert out.stat().st_mtime == 1  # not rewritten


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "labels" / "00001.png")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_gta(tmp_path, nproc=1)
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["00001.png"]


def test_parallel_conversion_equals_serial(tmp_path):
    for name in ("a", "b"):
        folder = tmp_path / name / "labels"
        folder.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.roll(ALL_IDS, i)).save(folder / f"{i:05d}.png")
    serial = convert_gta(tmp_path / "a", nproc=1)
    parallel = convert_gta(tmp_path / "b", nproc=2)
    assert [{k: v for k, v in e.items() if k != "file"} for e in serial] == [
        {k: v for k, v in e.items() if k != "file"} for e in parallel
    ]


def test_missing_label_folder_is_a_layout_error(tmp_path):
    with pytest.raises(DatasetLayoutError, match="GTA labels: folder does not exist"):
        convert_gta(tmp_path)
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetLayoutError, match="no raw labels"):
        convert_gta(tmp_path)
    with pytest.raises(DatasetLayoutError, match="Mapillary"):
        convert_mapillary(tmp_path)


def test_gta_and_cityscapes_scripts(tmp_path, monkeypatch, capsys):
    (tmp_path / "gta" / "labels").mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 26, np.uint8)).save(tmp_path / "gta" / "labels" / "00001.png")
    write_cityscapes_label(tmp_path / "cs", "train", "aachen", 1, np.full((8, 8), 26, np.uint8))
    for script, root in (("gta.py", tmp_path / "gta"), ("cityscapes.py", tmp_path / "cs")):
        monkeypatch.setattr(sys, "argv", [script, str(root), "--nproc", "1"])
        runpy.run_path(str(REPO_ROOT / "data_scripts" / script), run_name="__main__")
        stats = json.loads((root / "sample_class_stats.json").read_text())
        assert [{k: v for k, v in e.items() if k != "file"} for e in stats] == [{"13": 64}]
    assert "converted" in capsys.readouterr().out
