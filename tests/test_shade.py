"""SHADE style hallucination: statistics, FPS prototypes, Gamma/Dirichlet sampling, the batch
doubling and the style-consistency loss (values from the reference spec or computed by hand)."""

from __future__ import annotations

import math

import pytest
import torch

from hrda_lib.shade import (
    SHADEConfig,
    channel_style,
    collect_styles,
    double_with_styles,
    farthest_point_sampling,
    hallucinate,
    needs_refresh,
    sample_dirichlet,
    sample_gamma,
    style_consistency_loss,
    style_prototypes,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _features(seed: int = 0, shape: tuple[int, ...] = (3, 4, 5, 6)) -> torch.Tensor:
    g = _gen(seed)
    scale = torch.rand(shape[0], shape[1], 1, 1, generator=g) * 3 + 0.5
    shift = torch.randn(shape[0], shape[1], 1, 1, generator=g) * 2
    return torch.randn(shape, generator=g) * scale + shift


def test_config_defaults_follow_spec() -> None:
    cfg = SHADEConfig()
    assert (cfg.num_prototypes, cfg.concentration) == (64, 0.0156)
    assert (cfg.consistency_weight, cfg.refresh_interval, cfg.eps) == (10.0, 4000, 1e-6)


def test_needs_refresh_every_interval() -> None:
    assert [i for i in range(0, 12001) if needs_refresh(i)] == [0, 4000, 8000, 12000]


# ----------------------------------------------------------------------------- statistics


def test_channel_style_matches_manual() -> None:
    x = _features()
    mean, std = channel_style(x, eps=1e-6)
    b, c = x.shape[:2]
    for i in range(b):
        for j in range(c):
            values = x[i, j].flatten().double()
            m = values.sum() / values.numel()
            var = ((values - m) ** 2).sum() / values.numel()  # population variance
            assert mean[i, j].item() == pytest.approx(m.item(), abs=1e-5)
            assert std[i, j].item() == pytest.approx(math.sqrt(var.item() + 1e-6), rel=1e-5)
    assert mean.shape == std.shape == (b, c)


def test_collect_styles_stacks_batches() -> None:
    a, b = _features(0, (2, 4, 3, 3)), _features(1, (3, 4, 3, 3))
    means, stds = collect_styles(iter([a, b]))
    assert means.shape == stds.shape == (5, 4)
    torch.testing.assert_close(means, torch.cat([channel_style(a)[0], channel_style(b)[0]]))
    torch.testing.assert_close(stds, torch.cat([channel_style(a)[1], channel_style(b)[1]]))


# ----------------------------------------------------------------------------- prototypes

CORNERS = torch.tensor([[0.0, 0.0], [0.0, 10.0], [10.0, 0.0], [10.0, 10.0]])
INTERIOR = torch.tensor([[4.0, 5.0], [5.0, 5.0], [6.0, 4.0], [5.0, 6.0]])


def test_fps_picks_corners_of_square() -> None:
    points = torch.cat([INTERIOR[:2], CORNERS, INTERIOR[2:]])  # corners at indices 2..5
    corners = {2, 3, 4, 5}
    started_at_corner = 0
    for seed in range(16):
        idx = farthest_point_sampling(points, 4, _gen(seed)).tolist()
        assert len(set(idx)) == 4
        assert set(idx[1:]) <= corners  # after the random start, only extreme points
        if idx[0] in corners:
            started_at_corner += 1
            assert set(idx) == corners
    assert started_at_corner > 0  # the case above was exercised


def test_fps_deterministic_and_seed_dependent() -> None:
    points = torch.randn(200, 6, generator=_gen(3))
    a = farthest_point_sampling(points, 10, _gen(7))
    b = farthest_point_sampling(points, 10, _gen(7))
    assert a.dtype == torch.long and a.shape == (10,)
    assert torch.equal(a, b)
    starts = {farthest_point_sampling(points, 10, _gen(s))[0].item() for s in range(8)}
    assert len(starts) > 1


def test_fps_returns_all_when_not_more_points_than_k() -> None:
    points = torch.randn(5, 3, generator=_gen(0))
    assert torch.equal(farthest_point_sampling(points, 5, _gen(0)), torch.arange(5))
    assert torch.equal(farthest_point_sampling(points, 64, _gen(0)), torch.arange(5))


def test_style_prototypes_keep_mean_std_pairs() -> None:
    n, c = 50, 3
    means = torch.arange(n, dtype=torch.float32)[:, None].expand(n, c) * 0.1  # sample id in mean
    stds = 1.0 + torch.arange(n, dtype=torch.float32)[:, None].expand(n, c) * 0.01
    proto_mean, proto_std = style_prototypes(means, stds, 8, _gen(0))
    assert proto_mean.shape == proto_std.shape == (8, c)
    ids_from_mean = (proto_mean[:, 0] / 0.1).round()
    ids_from_std = ((proto_std[:, 0] - 1.0) / 0.01).round()
    torch.testing.assert_close(ids_from_mean, ids_from_std)
    start, second = ids_from_mean[:2].tolist()
    assert second == (0.0 if start >= (n - 1) / 2 else float(n - 1))  # far end of the line


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("alpha", [0.0156, 0.5, 2.0])
def test_gamma_sampler_matches_distribution(alpha: float) -> None:
    n = 200_000
    draws = sample_gamma(torch.full((n,), alpha, dtype=torch.float64), _gen(11))
    assert draws.shape == (n,)
    assert torch.isfinite(draws).all() and (draws >= 0).all()
    # mean alpha: relative standard error 1 / sqrt(alpha n), 1.8 % for alpha = 0.0156
    assert draws.mean().item() == pytest.approx(alpha, rel=0.05)
    # empirical CDF against the regularized incomplete gamma P(alpha, x) = Gamma CDF
    for q in (0.1, 0.3, 0.5, 0.7, 0.9):
        x = torch.quantile(draws[:100_000], q)
        expected = torch.special.gammainc(torch.tensor(alpha, dtype=torch.float64), x)
        assert expected.item() == pytest.approx(q, abs=0.01)


def test_gamma_sampler_uses_only_the_generator() -> None:
    alpha = torch.full((1000,), 0.3, dtype=torch.float64)
    torch.manual_seed(0)
    a = sample_gamma(alpha, _gen(5))
    torch.manual_seed(1)
    b = sample_gamma(alpha, _gen(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, sample_gamma(alpha, _gen(6)))


def test_dirichlet_rows_sum_to_one() -> None:
    k, n = 64, 10_000
    for alpha in (1e-3, 0.0156, 1.0):
        w = sample_dirichlet(torch.full((n, k), alpha, dtype=torch.float64), _gen(2))
        assert torch.isfinite(w).all() and (w >= 0).all()
        torch.testing.assert_close(w.sum(dim=1), torch.ones(n, dtype=torch.float64))
    # symmetric Dirichlet: E[w_i] = 1/k; with alpha = 0.0156 nearly one-hot (E[max] > 0.5)
    w = sample_dirichlet(torch.full((n, k), 0.0156, dtype=torch.float64), _gen(4))
    assert (w.mean(dim=0) - 1 / k).abs().max().item() < 0.006
    assert w.max(dim=1).values.mean().item() > 0.5


# ----------------------------------------------------------------------------- hallucination


def test_hallucinate_single_prototype_sets_its_statistics() -> None:
    x = _features(shape=(3, 4, 6, 7))
    proto_mean = torch.tensor([[1.0, -2.0, 0.5, 3.0]])  # (k=1, C)
    proto_std = torch.tensor([[0.5, 2.0, 1.0, 4.0]])
    out = hallucinate(x, proto_mean, proto_std, 0.0156, _gen(0), eps=0.0)
    assert out.shape == x.shape and out.dtype == x.dtype
    mean, std = channel_style(out, eps=0.0)
    torch.testing.assert_close(mean, proto_mean.expand(3, 4), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(std, proto_std.expand(3, 4), atol=1e-5, rtol=1e-5)
    # normalized content is kept: per channel, out is an increasing affine map of x
    corr = torch.corrcoef(torch.stack([x[1, 2].flatten(), out[1, 2].flatten()]))[0, 1]
    assert corr.item() == pytest.approx(1.0, abs=1e-5)


def test_hallucinate_mixes_prototypes_with_dirichlet_weights() -> None:
    x = _features(shape=(4, 3, 5, 5))
    proto_mean = torch.randn(5, 3, generator=_gen(1))
    proto_std = torch.rand(5, 3, generator=_gen(2)) + 0.5
    out = hallucinate(x, proto_mean, proto_std, 0.7, _gen(9), eps=0.0)
    # replay the generator: the weights are one Dirichlet draw of shape (B, k) in fp64
    w = sample_dirichlet(torch.full((4, 5), 0.7, dtype=torch.float64), _gen(9)).float()
    mean, std = channel_style(out, eps=0.0)
    torch.testing.assert_close(mean, w @ proto_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(std, w @ proto_std, atol=1e-5, rtol=1e-5)


def test_hallucinate_deterministic_and_differentiable() -> None:
    x = _features().requires_grad_(True)
    proto_mean, proto_std = torch.randn(8, 4, generator=_gen(1)), torch.rand(8, 4) + 0.5
    a = hallucinate(x, proto_mean, proto_std, 0.0156, _gen(3))
    b = hallucinate(x, proto_mean, proto_std, 0.0156, _gen(3))
    c = hallucinate(x, proto_mean, proto_std, 0.0156, _gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    (a * torch.randn(a.shape, generator=_gen(5))).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- batch doubling


def _prototypes(k: int = 3, c: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    means, stds = collect_styles([_features(7, (k, c, 4, 4))])
    return style_prototypes(means, stds, 64, _gen(0))  # N = k < 64


def test_doubling_keeps_originals_and_restyles_copies() -> None:
    prototypes = _prototypes()
    assert prototypes[0].shape == (3, 4)
    x = _features(shape=(2, 4, 5, 5))
    out = double_with_styles(x, prototypes, SHADEConfig(), _gen(1))
    assert out.shape == (4, 4, 5, 5)
    assert torch.equal(out[:2], x)
    assert not torch.allclose(out[2:], x)
    assert torch.equal(out, double_with_styles(x, prototypes, SHADEConfig(), _gen(1)))


def test_doubling_rejects_features_of_another_width() -> None:
    with pytest.raises(ValueError, match="features must be"):
        double_with_styles(_features(shape=(2, 5, 5, 5)), _prototypes(c=4), SHADEConfig())


# ----------------------------------------------------------------------------- loss


def test_consistency_loss_zero_for_identical_logits() -> None:
    logits = torch.randn(2, 5, 3, 3, generator=_gen(0))
    assert style_consistency_loss(logits, logits.clone(), 10.0).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_consistency_loss_positive_symmetric_linear_in_weight() -> None:
    l1 = torch.randn(2, 5, 3, 3, generator=_gen(0))
    l2 = torch.randn(2, 5, 3, 3, generator=_gen(1))
    loss = style_consistency_loss(l1, l2, 1.0)
    assert loss.ndim == 0 and loss.item() > 0
    torch.testing.assert_close(style_consistency_loss(l2, l1, 1.0), loss)
    torch.testing.assert_close(style_consistency_loss(l1, l2, 10.0), 10.0 * loss)


def test_consistency_loss_hand_computed() -> None:
    # one pixel, K = 2: p1 = (1/2, 1/2), p2 = (3/4, 1/4), mixture m = (5/8, 3/8)
    kl1 = 0.5 * math.log(0.5 / 0.625) + 0.5 * math.log(0.5 / 0.375)
    kl2 = 0.75 * math.log(0.75 / 0.625) + 0.25 * math.log(0.25 / 0.375)
    per_pixel = (kl1 + kl2) / 2
    l1 = torch.tensor([0.0, 0.0]).view(1, 2, 1, 1)
    l2 = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1)
    assert style_consistency_loss(l1, l2, 1.0).item() == pytest.approx(per_pixel, rel=1e-5)
    # A mean over pixels: the same pixel repeated (B = 2, 3 pixels each) gives the same value.
    l1_big, l2_big = l1.expand(2, 2, 1, 3), l2.expand(2, 2, 1, 3)
    assert style_consistency_loss(l1_big, l2_big, 10.0).item() == pytest.approx(
        10.0 * per_pixel, rel=1e-5
    )
