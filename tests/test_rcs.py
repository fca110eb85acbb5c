"""Rare class sampling against the official `get_rcs_class_probs` and its crop acceptance."""

from __future__ import annotations

import json
import struct
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from hrda_lib import datasets
from hrda_lib.experiments import synthetic_data
from hrda_lib.paths import golden_root
from hrda_lib.rcs import (
    RCSConfig,
    build_rare_class_sampler,
    crop_has_rare_class,
    rcs_candidates,
    rcs_class_probs,
)


@pytest.fixture(scope="module")
def golden() -> dict:
    with open(golden_root() / "pure_functions.json") as f:
        return json.load(f)["b_rare_class_sampling"]


def float32_hex(x: float) -> str:
    return struct.pack(">f", np.float32(x)).hex()


@pytest.mark.parametrize("temperature", ["0.01", "0.1", "1.0"])
def test_class_probs_match_official_bit_for_bit(golden, temperature):
    expected = golden["outputs_by_temperature"][temperature]
    classes, probs = rcs_class_probs(golden["input_sample_class_stats_json"], float(temperature))
    assert classes == expected["classes"]
    assert probs.dtype == np.float32
    assert [float32_hex(p) for p in probs] == expected["probs_float32_hex"]


def test_class_probs_do_not_consume_their_input(golden):
    stats = json.loads(json.dumps(golden["input_sample_class_stats_json"]))
    rcs_class_probs(stats, 0.01)
    assert stats == golden["input_sample_class_stats_json"]


def test_candidates_need_strictly_more_than_min_pixels(golden):
    stats = golden["input_sample_class_stats_json"]
    samples_with_class: dict[str, list] = {}
    for entry in stats:
        for c, n in entry.items():
            if c != "file":
                samples_with_class.setdefault(c, []).append(["some/dir/" + entry["file"], n])
    classes, _ = rcs_class_probs(stats, 0.01)
    candidates = rcs_candidates(samples_with_class, classes, min_pixels=3000)
    assert candidates[12] == ["e_labelTrainIds.png"]  # b has exactly 3000: not a candidate
    assert candidates[6] == ["e_labelTrainIds.png"]  # c has 2500
    assert candidates[0] == ["a_labelTrainIds.png", "b_labelTrainIds.png", "c_labelTrainIds.png"]
    assert candidates[17] == ["c_labelTrainIds.png"]


def test_crop_acceptance_threshold():
    config = RCSConfig(min_pixels=3000, min_crop_ratio=2.0)
    label = np.zeros((100, 100), dtype=np.uint8)
    label.ravel()[:6000] = 7
    assert not crop_has_rare_class(label, 7, config)  # needs > 6000
    label.ravel()[6000] = 7
    assert crop_has_rare_class(label, 7, config)


def _write_stats(tmp_path, stats):
    from hrda_lib.conversion import write_class_stats

    write_class_stats(tmp_path, stats)
    return [tmp_path / e["file"] for e in stats]


def test_sampler_follows_the_class_probabilities(tmp_path, golden):
    stats = golden["input_sample_class_stats_json"]
    labels = _write_stats(tmp_path, stats)
    sampler = build_rare_class_sampler(tmp_path, labels, RCSConfig(class_temp=0.1))
    assert len(sampler.classes) == 19
    rng = np.random.default_rng(0)
    draws = [sampler.sample(rng) for _ in range(20000)]
    counts = Counter(c for c, _ in draws)
    expected = dict(zip(sampler.classes, sampler.probs, strict=True))
    for c, p in expected.items():
        assert abs(counts[c] / len(draws) - p) < 0.01
    names = [labels[i].name for _, i in draws]
    for (c, _), name in zip(draws[:200], names[:200], strict=True):
        assert next(e for e in stats if e["file"] == name)[str(c)] > 3000


def test_sampler_drops_classes_without_candidates(tmp_path, golden):
    labels = _write_stats(tmp_path, golden["input_sample_class_stats_json"])
    sampler = build_rare_class_sampler(tmp_path, labels, RCSConfig(min_pixels=50000))
    assert set(sampler.classes) == {0, 1, 2, 8, 10, 13}
    assert sampler.probs.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lower RCSConfig.min_pixels"):
        build_rare_class_sampler(tmp_path, labels, RCSConfig(min_pixels=10**7))


def test_rare_class_sample_recrops_the_same_file_at_most_ten_times(tiny_root, monkeypatch):
    source = datasets.read_dataset(
        "gta", tiny_root / "gta", "train", synthetic_data("tiny").source_pipeline
    )
    # An unreachable acceptance threshold: 1 crop + 10 re-crops, all of one decoded file.
    sampler = build_rare_class_sampler(
        tiny_root / "gta", source.label_paths, RCSConfig(min_pixels=1, min_crop_ratio=1e9)
    )
    calls = Counter()
    load, crop = source.load, source.crop
    monkeypatch.setattr(source, "load", lambda i: (calls.update(["load"]), load(i))[1])
    monkeypatch.setattr(source, "crop", lambda *a: (calls.update(["crop"]), crop(*a))[1])
    sample = datasets.rare_class_sample(source, sampler, np.random.default_rng(0))
    assert calls == {"load": 1, "crop": 11}
    assert int(sample["rare_class"]) in sampler.classes


def test_rare_class_sampling_shows_the_class(tiny_root):
    source = datasets.read_dataset(
        "gta", tiny_root / "gta", "train", synthetic_data("tiny").source_pipeline
    )
    rcs = synthetic_data("tiny").rcs
    uda_target = datasets.read_dataset(
        "cityscapes",
        tiny_root / "cityscapes",
        "train",
        replace(synthetic_data("tiny").target_pipeline, margins=None),
        labels=False,
    )
    uda = datasets.UDADataset(source, uda_target, rcs=rcs, seed=0)
    shown = 0
    for i in range(40):
        sample = uda[i]
        shown += crop_has_rare_class(
            sample["gt_semantic_seg"].numpy(), int(sample["rare_class"]), rcs
        )
    assert shown >= 25  # most crops show their class (at most 10 re-crops each)
