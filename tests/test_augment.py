"""Strong augmentation: kornia-0.5.8 colour-jitter and Gaussian-blur semantics (spec 3.6)."""

from __future__ import annotations

import colorsys
import math

import pytest
import torch
import torch.nn.functional as F

from hrda_lib import augment
from hrda_lib.augment import ColorJitterParams, StrongAugParams


def _images(batch: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _params(b=1.0, c=1.0, s=1.0, h=0.0, order=(0, 1, 2, 3)) -> ColorJitterParams:
    one = torch.ones(1)
    return ColorJitterParams(b * one, c * one, s * one, h * one, torch.tensor([order]))


# ----------------------------------------------------------------------------- HSV


def test_rgb_to_hsv_matches_colorsys() -> None:
    img = _images(1, 8)
    hsv = augment.rgb_to_hsv(img)
    for y in range(8):
        for x in range(8):
            h, s, v = colorsys.rgb_to_hsv(*img[0, :, y, x].tolist())
            assert hsv[0, 0, y, x].item() == pytest.approx(h * 2 * math.pi, abs=1e-5)
            assert hsv[0, 1, y, x].item() == pytest.approx(s, abs=1e-5)
            assert hsv[0, 2, y, x].item() == pytest.approx(v, abs=1e-7)


def test_hsv_primaries_and_round_trip() -> None:
    rgb = torch.eye(3).view(3, 3, 1, 1)  # red, green, blue pixels
    hsv = augment.rgb_to_hsv(rgb)[..., 0, 0]
    expected = torch.tensor([[0.0, 1, 1], [2 * math.pi / 3, 1, 1], [4 * math.pi / 3, 1, 1]])
    assert torch.allclose(hsv, expected, atol=1e-6)
    img = _images()
    assert torch.allclose(augment.hsv_to_rgb(augment.rgb_to_hsv(img)), img, atol=1e-5)


# ----------------------------------------------------------------------------- colour ops


def test_brightness_is_additive_and_clamped() -> None:
    img = _images()
    out = augment.adjust_brightness(img, torch.tensor([0.15, -0.15]))
    assert torch.allclose(out[0], (img[0] + 0.15).clamp(0, 1))
    assert torch.allclose(out[1], (img[1] - 0.15).clamp(0, 1))


def test_contrast_is_a_plain_product_without_mean_blending() -> None:
    gray = torch.full((1, 3, 4, 4), 0.5)
    # torchvision would blend with the mean and leave a constant image unchanged.
    assert torch.allclose(augment.adjust_contrast(gray, torch.tensor([1.2])), gray * 1.2)
    img = _images()
    assert torch.equal(augment.adjust_contrast(img, torch.tensor([1.2, 0.8]))[1], img[1] * 0.8)
    assert augment.adjust_contrast(img, torch.tensor([1.2, 1.2])).max() <= 1.0


def test_saturation_zero_gives_gray_at_value() -> None:
    img = _images()
    out = augment.adjust_saturation(img, torch.zeros(2))
    value = img.max(dim=1, keepdim=True).values  # HSV V, not luminance
    assert torch.allclose(out, value.expand_as(out), atol=1e-6)
    assert torch.allclose(augment.adjust_saturation(img, torch.ones(2)), img, atol=1e-5)


def test_hue_shift() -> None:
    img = _images()
    assert torch.allclose(augment.adjust_hue(img, torch.full((2,), 2 * math.pi)), img, atol=1e-5)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    green = augment.adjust_hue(red, torch.tensor([2 * math.pi / 3]))
    blue = augment.adjust_hue(red, torch.tensor([-2 * math.pi / 3]))  # negative shifts wrap
    assert torch.allclose(green.flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)
    assert torch.allclose(blue.flatten(), torch.tensor([0.0, 0.0, 1.0]), atol=1e-5)


def test_color_jitter_follows_the_drawn_order() -> None:
    img = _images(1)
    b, c, s, h = 1.1, 1.2, 0.9, 0.1
    manual = augment.adjust_brightness(img, torch.tensor([b - 1]))
    manual = augment.adjust_contrast(manual, torch.tensor([c]))
    manual = augment.adjust_saturation(manual, torch.tensor([s]))
    manual = augment.adjust_hue(manual, torch.tensor([h * 2 * math.pi]))
    out = augment.color_jitter(img, _params(b, c, s, h, order=(0, 1, 2, 3)))
    assert torch.allclose(out, manual)
    swapped = augment.color_jitter(img, _params(b, c, s, h, order=(1, 0, 2, 3)))
    assert not torch.allclose(swapped, out, atol=1e-3)  # (x + 0.1) * 1.2 != x * 1.2 + 0.1
    identity = augment.color_jitter(img, _params(order=(3, 2, 1, 0)))
    assert torch.allclose(identity, img, atol=1e-5)


def test_sample_color_jitter_params_ranges_and_replay() -> None:
    p = augment.sample_color_jitter_params(1000, torch.Generator().manual_seed(0))
    for factor in (p.brightness, p.contrast, p.saturation):
        assert factor.min() >= 0.8 and factor.max() <= 1.2 and factor.std() > 0.1
    assert p.hue.min() >= -0.2 and p.hue.max() <= 0.2 and p.hue.min() < -0.19
    assert p.order.shape == (1000, 4)
    assert torch.all(p.order.sort(dim=1).values == torch.arange(4))
    assert len({tuple(o) for o in p.order.tolist()}) == 24  # per-image permutations
    q = augment.sample_color_jitter_params(1000, torch.Generator().manual_seed(0))
    assert torch.equal(p.brightness, q.brightness) and torch.equal(p.order, q.order)
    shared = augment.sample_color_jitter_params(
        5, torch.Generator().manual_seed(0), shared_order=True
    )
    assert torch.all(shared.order == shared.order[0])


# ----------------------------------------------------------------------------- blur


def test_blur_kernel_sizes() -> None:
    assert augment.blur_kernel_size(1024) == 103
    assert augment.blur_kernel_size(512) == 51
    assert augment.blur_kernel_size(2048) == 205
    assert augment.blur_kernel_size(64) == 7
    assert augment.blur_kernel_size(10) == 1


def test_gaussian_kernel1d() -> None:
    k = augment.gaussian_kernel1d(7, 1.0)
    x = torch.arange(7.0) - 3
    expected = torch.exp(-(x**2) / 2)
    assert torch.allclose(k, expected / expected.sum())
    assert torch.allclose(k, k.flip(0)) and k.sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        augment.gaussian_kernel1d(4, 1.0)


def test_blur_matches_2d_reflect_convolution() -> None:
    """kornia GaussianBlur2d: 2-D outer-product kernel (rows from H), reflect padding."""
    img = torch.randn(1, 3, 40, 64, generator=torch.Generator().manual_seed(1))
    sigma = 0.9
    k_y, k_x = augment.blur_kernel_size(40), augment.blur_kernel_size(64)  # 3, 7
    kernel = torch.outer(
        augment.gaussian_kernel1d(k_y, sigma), augment.gaussian_kernel1d(k_x, sigma)
    )
    padded = F.pad(img, (k_x // 2, k_x // 2, k_y // 2, k_y // 2), mode="reflect")
    expected = F.conv2d(padded, kernel.expand(3, 1, k_y, k_x), groups=3)
    out = augment.gaussian_blur(img, torch.tensor([sigma]))
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, img, atol=1e-2)


def test_blur_preserves_constants_and_uses_per_image_sigma() -> None:
    constant = torch.full((2, 3, 32, 32), -1.7)
    assert torch.allclose(augment.gaussian_blur(constant, torch.tensor([0.3, 1.1])), constant)
    img = _images(2, 32)
    sigma = torch.tensor([0.2, 1.1])
    both = augment.gaussian_blur(img, sigma)
    for i in range(2):
        assert torch.allclose(
            both[i : i + 1], augment.gaussian_blur(img[i : i + 1], sigma[i : i + 1])
        )


# ----------------------------------------------------------------------------- strong augmentation


def test_normalize_round_trip() -> None:
    img = torch.randn(2, 3, 4, 4)
    img01 = augment.denormalize(img)
    expected = (
        img * torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
        + torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    ) / 255
    assert torch.allclose(img01, expected)
    assert torch.allclose(augment.normalize(img01), img, atol=1e-5)


def test_strong_augment_gates() -> None:
    img = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 0.3
    params = augment.sample_strong_aug_params(2, torch.Generator().manual_seed(0))
    off = StrongAugParams(False, params.color_jitter, False, params.blur_sigma)
    assert torch.equal(augment.strong_augment(img, off), img)
    neutral = augment.sample_color_jitter_params(2, torch.Generator().manual_seed(0), strength=0.0)
    jitter_only = StrongAugParams(True, neutral, False, params.blur_sigma)
    assert torch.allclose(augment.strong_augment(img, jitter_only), img, atol=1e-4)
    blur_only = StrongAugParams(False, params.color_jitter, True, params.blur_sigma)
    assert torch.allclose(
        augment.strong_augment(img, blur_only), augment.gaussian_blur(img, params.blur_sigma)
    )


def test_sample_strong_aug_params_distribution() -> None:
    g = torch.Generator().manual_seed(0)
    draws = [augment.sample_strong_aug_params(2, g) for _ in range(2000)]
    assert sum(p.apply_color_jitter for p in draws) / 2000 == pytest.approx(0.8, abs=0.03)
    assert sum(p.apply_blur for p in draws) / 2000 == pytest.approx(0.5, abs=0.03)
    sigmas = torch.cat([p.blur_sigma for p in draws])
    assert sigmas.min() >= 0.15 and sigmas.max() < 1.15
    assert any(p.blur_sigma[0] != p.blur_sigma[1] for p in draws)  # per image (DACS)
    batch = augment.sample_strong_aug_params(3, g, batch_level=True)
    assert torch.all(batch.blur_sigma == batch.blur_sigma[0])
    assert torch.all(batch.color_jitter.order == batch.color_jitter.order[0])
    assert not augment.sample_strong_aug_params(2, g, blur=False).apply_blur
