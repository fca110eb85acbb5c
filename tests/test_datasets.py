"""Readers, pipelines and the UDA dataset on the tiny synthetic set."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hrda_lib import datasets, synthetic
from hrda_lib.crops import pseudo_label_margin_mask
from hrda_lib.experiments import synthetic_data
from hrda_lib.transforms import (
    PipelineConfig,
    crop_array,
    crop_box_with_cat_max_ratio,
    crop_is_balanced,
    random_crop_box,
    rescale_size,
    train_transform,
)
from hrda_lib.viz import to_rgb

CONFIG = synthetic.tiny()  # 64 x 128 images


@pytest.fixture(scope="module")
def source(tiny_root):
    return datasets.read_dataset(
        "gta", tiny_root / "gta", "train", synthetic_data("tiny").source_pipeline, seed=1
    )


@pytest.fixture(scope="module")
def target(tiny_root):
    pipeline = replace(synthetic_data("tiny").target_pipeline, margins=(2, 6, 3, 1))
    return datasets.read_dataset(
        "cityscapes", tiny_root / "cityscapes", "train", pipeline, labels=False, seed=2
    )


def test_source_sample_contract(source):
    sample = source[3]
    assert sample["img"].shape == (3, 64, 64) and sample["img"].dtype == torch.float32
    assert sample["gt_semantic_seg"].shape == (64, 64)
    assert sample["gt_semantic_seg"].dtype == torch.int64
    values = set(sample["gt_semantic_seg"].unique().tolist())
    assert values <= set(range(19)) | {255} and len(values) > 1
    assert sample["valid_pseudo_mask"].dtype == torch.uint8
    assert bool((sample["valid_pseudo_mask"] == 1).all())  # margins off: all valid
    assert sample["img_path"].endswith("00004.png")  # index 3 -> file 4
    assert abs(float(sample["img"].mean())) < 2.0  # normalized


def test_samples_are_replayable_and_indices_beyond_len_draw_anew(source):
    a, b = source[5], source[5]
    assert torch.equal(a["img"], b["img"]) and torch.equal(a["crop_box"], b["crop_box"])
    later = [source[5 + k * len(source)] for k in range(1, 6)]
    assert all(s["img_path"] == a["img_path"] for s in later)
    draws = {(tuple(s["crop_box"].tolist()), bool(s["flip"])) for s in [a, *later]}
    assert len(draws) > 1


def test_target_sample_has_no_labels_and_a_margin_mask(target):
    sample = target[0]
    assert "gt_semantic_seg" not in sample
    mask = sample["valid_pseudo_mask"].numpy()
    assert mask.shape == (64, 64)
    assert (mask[:2] == 0).all() and (mask[-6:] == 0).all()  # crops span the full height
    assert (mask[2:-6].sum(1) > 0).all()


@pytest.mark.parametrize("index", range(8))
def test_margin_mask_follows_the_image_through_crop_and_flip(target, index):
    sample = target[index]
    y1, y2, x1, x2 = sample["crop_box"].tolist()
    expected = pseudo_label_margin_mask(64, 128, (2, 6, 3, 1))[y1:y2, x1:x2]
    if bool(sample["flip"]):
        expected = expected[:, ::-1]
    assert np.array_equal(sample["valid_pseudo_mask"].numpy(), expected)


def test_margin_mask_is_built_at_original_size_and_resized(tiny_root):
    image = np.zeros((64, 128, 3), np.uint8)
    config = PipelineConfig(scale=(256, 128), crop_size=None, flip_prob=0.0, margins=(4, 8, 2, 2))
    out = train_transform(image, None, config, np.random.default_rng(0))
    mask = out["valid_pseudo_mask"]
    assert mask.shape == (128, 256)
    assert (mask[:8] == 0).all() and (mask[8] == 1).any() and (mask[-16:] == 0).all()
    assert (mask[:, :4] == 0).all() and (mask[20, 4] == 1)


def test_flip_mirrors_image_label_and_mask_together():
    rng_image = np.random.default_rng(0).integers(0, 255, (16, 32, 3), dtype=np.uint8)
    label = np.tile(np.arange(32, dtype=np.uint8) % 19, (16, 1))
    config = PipelineConfig(scale=(32, 16), crop_size=None, flip_prob=1.0, margins=(0, 0, 5, 0))
    out = train_transform(rng_image, label, config, np.random.default_rng(0))
    assert out["flip"]
    assert np.array_equal(out["gt_semantic_seg"], label[:, ::-1])
    assert np.array_equal(to_rgb(out["img"]), rng_image[:, ::-1])
    assert (out["valid_pseudo_mask"][:, -5:] == 0).all() and (
        out["valid_pseudo_mask"][:, :-5] == 1
    ).all()


def test_keep_ratio_rescale_sizes_of_the_paper():
    assert rescale_size(1052, 1914, (2560, 1440)) == (1407, 2560)  # GTA
    assert rescale_size(760, 1280, (2560, 1520)) == (1520, 2560)  # Synthia
    assert rescale_size(1024, 2048, (2048, 1024)) == (1024, 2048)  # Cityscapes
    assert rescale_size(1080, 1920, (1920, 1080)) == (1080, 1920)  # ACDC / Dark Zurich
    assert rescale_size(1052, 1914, (1280, 720)) == (704, 1280)  # GTA, LR configs


def test_cat_max_ratio_redraws_like_mmseg():
    label = np.zeros((40, 40), np.uint8)
    label[:, 20:] = 1  # a crop is balanced only across the border: x1 in 13..17 of 0..30

    def balanced_share(cat_max_ratio):
        balanced = 0
        for seed in range(200):
            rng = np.random.default_rng(seed)
            box = crop_box_with_cat_max_ratio(label, (10, 10), cat_max_ratio, rng)
            balanced += crop_is_balanced(crop_array(label, box), 0.75)
        return balanced / 200

    assert balanced_share(1.0) < 0.3  # about 5/31 without the constraint
    assert balanced_share(0.75) > 0.75  # 1 - (26/31)^11 = 0.86 with 10 re-draws
    # A single-class label never passes: the first box + 10 re-draws, the 11th box is kept.
    replay = np.random.default_rng(7)
    boxes = [random_crop_box(40, 40, (10, 10), replay) for _ in range(11)]
    uniform = np.zeros((40, 40), np.uint8)
    assert (
        crop_box_with_cat_max_ratio(uniform, (10, 10), 0.75, np.random.default_rng(7)) == boxes[-1]
    )


def test_test_pipeline_keeps_the_original_label(tiny_root):
    val = datasets.read_dataset(
        "cityscapes", tiny_root / "cityscapes", "val", PipelineConfig(scale=(64, 32)), train=False
    )
    sample = val[0]
    assert sample["img"].shape == (3, 32, 64)  # resized to the test scale
    assert sample["gt_semantic_seg"].shape == (64, 128)  # evaluated at original size
    assert len(val) == CONFIG.n_target_val
    assert torch.equal(val[0]["img"], val[0]["img"])


def test_uda_dataset_pairs_source_with_random_targets(source, target):
    uda = datasets.UDADataset(source, target, seed=0)
    assert len(uda) == len(source) * len(target)
    sample = uda[2]
    assert sample["img_path"] == str(source.img_paths[2])
    assert sample["target_img"].shape == (3, 64, 64)
    assert sample["target_valid_pseudo_mask"].shape == (64, 64)
    assert "cityscapes/leftImg8bit/train" in sample["target_img_path"]
    assert len({uda[i]["target_img_path"] for i in range(24)}) > 2
    with pytest.raises(ValueError, match="training pipelines"):
        datasets.UDADataset(
            source,
            datasets.read_dataset(
                "cityscapes",
                source.root.parent / "cityscapes",
                "val",
                synthetic_data("tiny").test_pipeline,
                train=False,
            ),
        )


def test_source_only_dataset_with_rcs(source):
    dg = datasets.SourceOnlyDataset(source, rcs=synthetic_data("tiny").rcs, seed=0)
    sample = dg[0]
    assert {"img", "gt_semantic_seg", "rare_class", "img_path"} <= set(sample)
    assert len(dg) == len(source)


def test_dataloader_workers_give_the_same_batches(source, target):
    uda = datasets.UDADataset(source, target, rcs=synthetic_data("tiny").rcs, seed=0)

    def batches(num_workers):
        loader = DataLoader(
            uda,
            batch_size=2,
            sampler=datasets.InfiniteSampler(len(uda), seed=0),
            num_workers=num_workers,
            worker_init_fn=datasets.worker_init_fn,
        )
        iterator = iter(loader)
        return [next(iterator) for _ in range(3)]

    serial, parallel = batches(0), batches(2)
    for a, b in zip(serial, parallel, strict=True):
        assert a["img"].shape == (2, 3, 64, 64)
        assert a["gt_semantic_seg"].dtype == torch.int64
        assert torch.equal(a["img"], b["img"]) and torch.equal(a["target_img"], b["target_img"])
        assert a["img_path"] == b["img_path"]


def test_infinite_sampler_never_repeats_an_index():
    iterator = iter(datasets.InfiniteSampler(5, seed=0))
    indices = [next(iterator) for _ in range(15)]
    assert len(set(indices)) == 15
    assert sorted(i % 5 for i in indices[:5]) == list(range(5))


def test_readers_of_the_other_layouts(tiny_root, tmp_path):
    """ACDC, Dark Zurich, BDD100K and Mapillary readers on copies of the tiny target files."""
    images = sorted((tiny_root / "cityscapes" / "leftImg8bit" / "val").rglob("*.png"))[:2]
    labels = [
        tiny_root
        / "cityscapes"
        / "gtFine"
        / "val"
        / p.parent.name
        / p.name.replace("_leftImg8bit", "_gtFine_labelTrainIds")
        for p in images
    ]
    test = PipelineConfig(scale=(128, 64))
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        acdc_stem, dz = f"GOPR0400_frame_{i:06d}", tmp_path / "dz"
        copies = {
            tmp_path / "acdc" / "rgb_anon" / "val" / f"{acdc_stem}_rgb_anon.png": img,
            tmp_path / "acdc" / "gt" / "val" / f"{acdc_stem}_gt_labelTrainIds.png": label,
            dz / "rgb_anon" / "train" / "night" / "GOPR0351" / f"f{i}_rgb_anon.png": img,
            dz / "rgb_anon" / "val" / "night" / "GOPR0356" / f"f{i}_rgb_anon.png": img,
            dz / "gt" / "val" / "night" / "GOPR0356" / f"f{i}_gt_labelTrainIds.png": label,
            tmp_path / "bdd" / "labels" / "sem_seg" / "masks" / "val" / f"b{i}.png": label,
            tmp_path / "map" / "validation" / "labels" / f"m{i}_labelTrainIds.png": label,
        }
        for dst, src in copies.items():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
        for folder in (
            tmp_path / "bdd" / "images" / "10k" / "val",
            tmp_path / "map" / "validation" / "images",
        ):
            folder.mkdir(parents=True, exist_ok=True)
            import cv2

            name = f"b{i}.jpg" if "bdd" in str(folder) else f"m{i}.jpg"
            cv2.imwrite(str(folder / name), cv2.imread(str(img)))
    acdc = datasets.read_dataset("acdc", tmp_path / "acdc", "val", test, train=False)
    dz_train = datasets.read_dataset(
        "dark_zurich",
        tmp_path / "dz",
        "train",
        replace(synthetic_data("tiny").target_pipeline, margins=None),
    )
    dz_val = datasets.read_dataset("dark_zurich", tmp_path / "dz", "val", test, train=False)
    bdd = datasets.read_dataset("bdd100k", tmp_path / "bdd", "val", test, train=False)
    mapillary = datasets.read_dataset(
        "mapillary", tmp_path / "map", "validation", test, train=False
    )
    for dataset in (acdc, dz_val, bdd, mapillary):
        assert len(dataset) == 2
        assert dataset[1]["gt_semantic_seg"].shape == (64, 128)
    assert "gt_semantic_seg" not in dz_train[0] and dz_train[0]["img"].shape == (3, 64, 64)


def test_target_side_follows_the_spec(source, target):
    """The target half of a UDA pair as the official code draws it (spec 3.8 and the pipeline
    table): a uniformly random target image, independent of the rare class drawn for the source;
    the target crop without `cat_max_ratio`, the source crop with 0.75; both flipped with p 0.5."""
    from collections import Counter

    from hrda_lib.presets import get_preset

    uda = datasets.UDADataset(source, target, rcs=synthetic_data("tiny").rcs, seed=0)
    draws = [uda[i] for i in range(360)]
    counts = Counter(d["target_img_path"] for d in draws)
    assert len(counts) == len(target)
    expected = len(draws) / len(target)
    assert all(abs(n - expected) < 0.4 * expected for n in counts.values()), counts
    by_class = Counter((int(d["rare_class"]), d["target_img_path"]) for d in draws)
    common = Counter(int(d["rare_class"]) for d in draws).most_common(1)[0][0]
    with_common = [n for (c, _), n in by_class.items() if c == common]
    assert len(with_common) == len(target)  # every target image follows the commonest class
    for name in ("gta_to_cityscapes_hrda", "synthetic_hrda"):
        data = get_preset(name).data
        assert data.target_pipeline.cat_max_ratio == 1.0
        assert data.source_pipeline.cat_max_ratio == 0.75
        assert data.source_pipeline.flip_prob == data.target_pipeline.flip_prob == 0.5
