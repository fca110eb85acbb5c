"""The ImageNet stand-in: the neutral set, the pretraining (deterministic, resumable), the
SegFormer layout of its weights, and the committed weights being current."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hrda_lib import pretrain
from hrda_lib.encoders import MiTEncoder
from hrda_lib.imagenet_weights import load_imagenet_encoder
from hrda_lib.synthetic import fractals
from hrda_lib.synthetic.fractals import FractalSetConfig, build_fractal_set
from hrda_lib.synthetic.pretraining import DISTRACTOR, PretrainingSetConfig, build_set

SET = PretrainingSetConfig(n_scenes=6, per_scene=4)
TRAINING = replace(pretrain.SMOKE_TRAINING, iters=4, checkpoint_interval=2)


def test_the_neutral_set_is_deterministic_and_balanced() -> None:
    images, labels = build_set(SET, seed=3, progress=False)
    again, labels_again = build_set(SET, seed=3, progress=False)
    assert np.array_equal(images, again) and np.array_equal(labels, labels_again)
    assert images.shape[1:] == (64, 64, 3) and images.dtype == np.uint8
    assert DISTRACTOR in labels and len(np.unique(labels)) >= 8
    other, _ = build_set(SET, seed=4, progress=False)
    assert not np.array_equal(images[: len(other)], other[: len(images)])


def test_weights_load_like_segformer_mit_b0(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    manifest = pretrain.pretrain(tmp_path / "w.pth", SET, TRAINING, progress=False)
    state = torch.load(tmp_path / "w.pth", weights_only=True)
    assert "block1.0.attn.kv.weight" in state and "head.weight" in state
    assert all(v.dtype == torch.float16 for v in state.values())  # stored half, loaded float
    encoder = MiTEncoder("mit_b0")
    assert load_imagenet_encoder(encoder, tmp_path / "w.pth").ok
    assert manifest["sha256"] == pretrain.hash_file(tmp_path / "w.pth")
    assert pretrain.staleness(tmp_path / "w.pth", SET, TRAINING) is None
    assert "changed" in pretrain.staleness(tmp_path / "w.pth", SET, replace(TRAINING, lr=0.1))


def test_an_interrupted_pretraining_resumes_to_the_same_weights(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    pretrain.pretrain(tmp_path / "full.pth", SET, TRAINING, progress=False)
    assert (
        pretrain.pretrain(tmp_path / "split.pth", SET, TRAINING, progress=False, stop_at=2) is None
    )
    assert (
        not (tmp_path / "split.pth").exists() and (tmp_path / "split.work" / "latest.pt").is_file()
    )
    pretrain.pretrain(tmp_path / "split.pth", SET, TRAINING, progress=False)  # resumes at 2
    a = torch.load(tmp_path / "full.pth", weights_only=True)
    b = torch.load(tmp_path / "split.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_committed_weights_are_current() -> None:
    """`python -m hrda_lib.pretrain --check`: the committed stand-in matches the code that makes
    it (set, generator and training config, hash), so the demo never has to rebuild it."""
    assert pretrain.staleness() is None
    manifest = json.loads(pretrain.manifest_path(pretrain.DEFAULT_WEIGHTS).read_text())
    assert manifest["heldout_accuracy"] > 80  # chance is 5 %
    assert pretrain.DEFAULT_WEIGHTS.stat().st_size < 8 * 2**20


def test_the_fractal_set_is_deterministic_and_its_categories_fill_the_image() -> None:
    """FractalDB's rule: a category is a convergent system whose attractor covers >= 20 % of
    the image; its instances differ (jitter, colour, pose) but keep the category's shape."""
    config = FractalSetConfig(n_categories=4, per_category=3)
    images, labels = build_fractal_set(config, seed=1, progress=False)
    again, _ = build_fractal_set(config, seed=1, progress=False)
    assert np.array_equal(images, again) and images.shape == (12, 64, 64, 3)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for cat in range(4):
        maps = fractals.category(config, 1, cat)
        xy = fractals.attractor(maps, config.points, config.steps, np.random.default_rng(0))
        # another draw of the same attractor: the rate up to the chaos game's sampling noise
        assert fractals.filling_rate(xy, config.crop) >= 0.75 * config.min_filling
    drawn = (images.max(-1) > 0).mean((1, 2))
    assert (drawn > 0.05).all()  # no blank (diverged) instance
    assert not np.array_equal(images[0], images[1])
    other, _ = build_fractal_set(config, seed=2, progress=False)
    assert not np.array_equal(images, other)


def test_pretraining_on_fractals_writes_its_own_weights(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    config = FractalSetConfig(n_categories=3, per_category=6)
    manifest = pretrain.pretrain(tmp_path / "f.pth", config, TRAINING, progress=False)
    assert manifest["set"]["kind"] == "fractal" and manifest["chance_accuracy"] == round(100 / 3, 2)
    assert load_imagenet_encoder(MiTEncoder("mit_b0"), tmp_path / "f.pth").ok
    assert pretrain.staleness(tmp_path / "f.pth", config, TRAINING) is None
    assert "changed" in pretrain.staleness(tmp_path / "f.pth", SET, TRAINING)  # not the neutral
    assert list((tmp_path / "data" / "pretraining").glob("fractal_s0_*.npz"))
