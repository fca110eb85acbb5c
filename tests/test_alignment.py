"""The other UDA methods of Table 2 (AdvSeg, MinEnt) and the photometric source augmentation of
their `gtaCAug` datasets."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from hrda_lib import alignment
from hrda_lib.config import ExperimentConfig, MICConfig, UDAConfig
from hrda_lib.step import UDA_METHODS, uda_method
from hrda_lib.transforms import (
    PhotometricParams,
    PipelineConfig,
    crop_flip_normalize,
    photometric_distortion,
    sample_photometric_params,
)

# ----------------------------------------------------------------------------- MinEnt


def test_entropy_is_one_for_uniform_and_zero_for_certain_predictions() -> None:
    uniform = torch.zeros(2, 19, 4, 5)
    assert torch.allclose(alignment.entropy_map(uniform), torch.ones(2, 4, 5))
    certain = torch.full((1, 19, 3, 3), -1e4)
    certain[:, 7] = 1e4
    assert alignment.entropy_map(certain).abs().max() < 1e-6
    assert alignment.entropy_loss(uniform, 0.001).item() == pytest.approx(0.001)


def test_entropy_of_two_classes_by_hand() -> None:
    p = 0.8
    logits = torch.tensor([math.log(p), math.log(1 - p)]).view(1, 2, 1, 1)
    expected = -(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2)
    assert alignment.entropy_map(logits).item() == pytest.approx(expected, rel=1e-5)


def test_entropy_gradient_sharpens_the_prediction() -> None:
    logits = torch.tensor([0.5, 0.0, -0.5]).view(1, 3, 1, 1).requires_grad_(True)
    alignment.entropy_loss(logits, 1.0).backward()
    assert logits.grad[0, 0].item() < 0 < logits.grad[0, 2].item()  # descent raises the top class


# ----------------------------------------------------------------------------- AdvSeg


def test_discriminator_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    discriminator = alignment.build_discriminator(19, alignment.AdversarialConfig(base_channels=8))
    logits = torch.randn(2, 19, 16, 16, requires_grad=True)
    probabilities = alignment.discriminator_input(logits, (64, 64))
    assert probabilities.shape == (2, 19, 64, 64)
    assert torch.allclose(probabilities.sum(1), torch.ones(2, 64, 64), atol=1e-5)
    domain = discriminator(probabilities)
    assert domain.shape == (2, 1, 2, 2)
    alignment.gan_loss(domain, alignment.SOURCE_DOMAIN).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert all(p.grad is not None for p in discriminator.parameters())
    with pytest.raises(ValueError, match="under 32 px"):
        discriminator(torch.zeros(1, 19, 16, 16))


def test_gan_losses_by_hand() -> None:
    domain = torch.tensor([0.0, 1.0, 2.0]).view(1, 1, 1, 3)
    assert alignment.gan_loss(domain, 1.0, "ls").item() == pytest.approx((1 + 0 + 1) / 3)
    bce = [math.log(2), math.log1p(math.exp(-1)), math.log1p(math.exp(-2))]
    assert alignment.gan_loss(domain, 1.0, "vanilla").item() == pytest.approx(sum(bce) / 3)
    with pytest.raises(ValueError, match="unknown GAN"):
        alignment.gan_loss(domain, 1.0, "wasserstein")


def test_discriminator_lr_decays_polynomially_to_zero() -> None:
    cfg = alignment.AdversarialConfig()
    assert alignment.discriminator_lr(0, 100, cfg) == cfg.lr
    assert alignment.discriminator_lr(50, 100, cfg) == pytest.approx(1e-4 * 0.5**0.9)
    assert alignment.discriminator_lr(100, 100, cfg) == 0.0


def test_uda_methods_come_from_one_table() -> None:
    assert uda_method(ExperimentConfig()).teacher and UDAConfig().uses_target
    advseg = uda_method(ExperimentConfig(uda=UDAConfig(method="advseg")))
    assert not advseg.teacher and advseg.discriminator
    assert not UDAConfig(method="source_only").uses_target
    assert set(UDA_METHODS) == {"dacs", "advseg", "minent", "source_only"}
    with pytest.raises(ValueError, match="unknown UDA method 'fda'; expected one of dacs"):
        uda_method(ExperimentConfig(uda=UDAConfig(method="fda")))
    with pytest.raises(ValueError, match="MIC"):
        UDAConfig(method="minent", mic=MICConfig())


# ----------------------------------------------------------------------------- photometric


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (8, 9, 3), dtype=np.uint8)


def test_no_operation_leaves_the_image_unchanged() -> None:
    image = _image()
    params = PhotometricParams(None, True, None, None, None)
    assert np.array_equal(photometric_distortion(image, params), image)


def test_brightness_and_contrast_clip_and_truncate_like_mmseg() -> None:
    image = np.array([[[10, 100, 250]]], dtype=np.uint8)
    brighter = photometric_distortion(image, PhotometricParams(10.7, True, None, None, None))
    assert brighter.tolist() == [[[20, 110, 255]]]  # + 10.7, truncated, clipped at 255
    contrast = photometric_distortion(image, PhotometricParams(None, False, 1.5, None, None))
    assert contrast.tolist() == [[[15, 150, 255]]]


def test_contrast_order_matters_with_clipping() -> None:
    image = np.array([[[200, 100, 50]]], dtype=np.uint8)
    first = photometric_distortion(image, PhotometricParams(None, True, 2.0, None, 30))
    last = photometric_distortion(image, PhotometricParams(None, False, 2.0, None, 30))
    assert first.tolist() == [[[157, 255, 100]]]  # x2 clips red to 255 before the hue shift
    assert last.tolist() == [[[255, 255, 100]]]


def test_saturation_zero_makes_grey_and_hue_rotates_in_opencv_units() -> None:
    grey = photometric_distortion(_image(), PhotometricParams(None, True, None, 0.0, None))
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 255
    cyan = photometric_distortion(red, PhotometricParams(None, True, None, None, 90))
    assert cyan.tolist() == [[[0, 255, 255]]]  # 90 of 180 = half way round the hue circle
    back = photometric_distortion(red, PhotometricParams(None, True, None, None, -90))
    hsv = cv2.cvtColor(back, cv2.COLOR_RGB2HSV)
    assert hsv[0, 0, 0] == 90  # (0 - 90) mod 180


def test_sampled_parameters_follow_mmseg_ranges() -> None:
    rng = np.random.default_rng(0)
    draws = [sample_photometric_params(rng) for _ in range(2000)]
    for name in ("brightness", "contrast", "saturation", "hue"):
        applied = [getattr(d, name) for d in draws if getattr(d, name) is not None]
        assert 0.45 < len(applied) / len(draws) < 0.55, name
    assert all(-32 <= d.brightness <= 32 for d in draws if d.brightness is not None)
    assert all(0.5 <= d.contrast <= 1.5 for d in draws if d.contrast is not None)
    hues = {d.hue for d in draws if d.hue is not None}
    assert min(hues) == -18 and max(hues) == 17  # numpy randint: the upper bound is exclusive
    assert 0.45 < np.mean([d.contrast_first for d in draws]) < 0.55


def test_pipeline_applies_it_only_when_configured() -> None:
    image, label = _image(1), np.zeros((8, 9), np.uint8)
    mask = np.ones((8, 9), np.uint8)
    plain = PipelineConfig(scale=(9, 8), flip_prob=0.0)
    caug = PipelineConfig(scale=(9, 8), flip_prob=0.0, photometric=True)
    out_plain = crop_flip_normalize(image, label, mask, plain, np.random.default_rng(3))
    out_caug = crop_flip_normalize(image, label, mask, caug, np.random.default_rng(3))
    assert not np.allclose(out_plain["img"], out_caug["img"])
    assert np.array_equal(out_plain["gt_semantic_seg"], out_caug["gt_semantic_seg"])
