"""SHADE style hallucination and style-consistency loss for domain generalization.

Implements the SHADE part of the HRDA domain-generalization extension (Zhao et al.,
"Style-Hallucinated Dual Consistency Learning for Domain Generalized Semantic Segmentation",
ECCV 2022): after MiT stage 1, each sample's channels are normalized by their own mean/std and
re-styled with a Dirichlet(0.0156 * 1_64) mixture of 64 prototype styles. The prototypes are
(mean, std) pairs picked by farthest-point sampling over the source set's stage-1 statistics and
recomputed every 4000 iterations. The batch is doubled (original + hallucinated) and the two
softmax outputs of the fused HRDA logits are tied by lambda = 10 times the symmetric KL to their
mixture (a Jensen-Shannon style consistency).

Written from the paper and the reference spec; no code was ported. Choices where the spec is
silent: the per-channel variance is the population variance (divided by H * W); the input's
statistics are not detached, so the hallucinated features back-propagate into the encoder through
both the normalized content and the statistics; Dirichlet weights are drawn as a softmax over
log-Gamma draws, which is the normalized Gamma construction computed in log space, so rows never
underflow to all zeros for tiny alpha (every U^(1/alpha) boost factor stays finite in log space).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SHADEConfig:
    """Style hallucination and consistency settings (SHADE defaults of the DG extension)."""

    num_prototypes: int = 64  # k, prototype styles picked by farthest-point sampling
    concentration: float = 0.0156  # alpha, Dirichlet concentration per prototype
    consistency_weight: float = 10.0  # lambda, weight of the style-consistency loss
    refresh_interval: int = 4000  # iterations between prototype re-computations
    eps: float = 1e-6  # added to the channel variance before the square root
    style_images: int | None = None  # source images whose styles the prototypes are drawn
    # from at each refresh (None: the whole source set, as SHADE)


def channel_style(features: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel style statistics.

    Args:
        features: (B, C, H, W) feature map.
        eps: added to the variance before the square root.

    Returns:
        mean (B, C) and std (B, C) over the H * W positions, std = sqrt(var + eps) with the
        population variance (divided by H * W). Computed in fp32 (stable under autocast).
    """
    if features.ndim != 4:
        raise ValueError(f"features must be (B, C, H, W), got shape {tuple(features.shape)}")
    x = features.float()
    mean = x.mean(dim=(2, 3))  # (B, C)
    var = x.var(dim=(2, 3), correction=0)  # (B, C)
    return mean, (var + eps).sqrt()


def collect_styles(
    feature_batches: Iterable[torch.Tensor], eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the style statistics of every sample of a stream of (B, C, H, W) feature batches.

    Returns:
        means (N, C) and stds (N, C), fp32 and detached, N the total number of samples, on the
        device of the batches.
    """
    means, stds = [], []
    for features in feature_batches:
        mean, std = channel_style(features.detach(), eps)
        means.append(mean)
        stds.append(std)
    if not means:
        raise ValueError("collect_styles needs at least one feature batch")
    return torch.cat(means), torch.cat(stds)


def farthest_point_sampling(
    points: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Greedy farthest-point sampling of k of N points.

    The first index is drawn uniformly with `generator` (on the generator's device); each next
    one is the point with the largest Euclidean distance to the set chosen so far (ties: lowest
    index). The start point is part of the result. With fewer than k distinct points the
    result repeats points (all remaining distances are 0).

    Args:
        points: (N, D).
        k: number of points to pick, >= 1.
        generator: source of the random start point.

    Returns:
        (min(k, N),) long indices into points, in the order picked, on points' device. If
        N <= k, all points are returned as arange(N) (nothing to choose) and no random number
        is drawn.
    """
    if points.ndim != 2:
        raise ValueError(f"points must be (N, D), got shape {tuple(points.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    n = points.shape[0]
    if n <= k:
        return torch.arange(n, device=points.device)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    start = torch.randint(n, (1,), generator=generator, device=gen_device).to(points.device)
    x = points.double()  # distances in fp64: ties between far points are resolved reproducibly
    chosen = torch.empty(k, dtype=torch.long, device=points.device)
    chosen[0] = start[0]
    min_dist = torch.full((n,), math.inf, dtype=x.dtype, device=x.device)  # (N,)
    for i in range(1, k):
        dist = (x - x[chosen[i - 1]]).square().sum(dim=1)  # (N,) squared distance to newest
        min_dist = torch.minimum(min_dist, dist)
        chosen[i] = min_dist.argmax()
    return chosen


def style_prototypes(
    means: torch.Tensor, stds: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick k prototype styles by farthest-point sampling over [mean, std] vectors.

    Args:
        means: (N, C) per-sample channel means of the source set.
        stds: (N, C) matching channel stds.
        k: number of prototypes (64 in SHADE).
        generator: source of FPS's random start point.

    Returns:
        proto_mean (k', C) and proto_std (k', C) with k' = min(k, N).
    """
    if means.shape != stds.shape or means.ndim != 2:
        raise ValueError(f"means and stds must both be (N, C), got {means.shape}, {stds.shape}")
    points = torch.cat([means, stds], dim=1)  # (N, 2C)
    idx = farthest_point_sampling(points, k, generator)
    return means[idx], stds[idx]


def _log_standard_gamma(
    concentration: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """log of Gamma(alpha, 1) draws, one per element of concentration (alpha > 0), same shape.

    Marsaglia & Tsang (2000) squeeze method for alpha >= 1; for alpha < 1 the boost
    Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha), added in log space so that the tiny values of
    alpha ~ 0.0156 (U^64) do not underflow. Vectorised: every round draws one normal and one
    uniform per still-pending element, so results depend only on the generator state.
    """
    alpha = concentration.reshape(-1)  # (n,) flat view; reshaped back at the end
    small = alpha < 1
    d = torch.where(small, alpha + 1, alpha) - 1.0 / 3.0  # the squeeze needs shape >= 1
    c = 1.0 / (9.0 * d).sqrt()
    log_sample = torch.empty_like(alpha)
    pending = torch.arange(alpha.numel(), device=alpha.device)  # (m,) not yet accepted
    like = {"generator": generator, "dtype": alpha.dtype, "device": alpha.device}
    while pending.numel() > 0:  # acceptance rate > 0.95 per round for shape >= 1
        x = torch.randn(pending.shape, **like)
        u = 1.0 - torch.rand(pending.shape, **like)  # (0, 1]: log(u) is finite
        dp, cp = d[pending], c[pending]
        v = (1.0 + cp * x) ** 3
        log_v = v.clamp_min(torch.finfo(alpha.dtype).tiny).log()  # only used where v > 0
        accept = (v > 0) & (u.log() < 0.5 * x.square() + dp - dp * v + dp * log_v)
        log_sample[pending[accept]] = (dp.log() + log_v)[accept]
        pending = pending[~accept]
    u = 1.0 - torch.rand(alpha.shape, **like)
    boost = u.log() / alpha  # log(U^(1/alpha)), U in (0, 1]
    return torch.where(small, log_sample + boost, log_sample).reshape(concentration.shape)


def _check_concentration(concentration: torch.Tensor) -> torch.Tensor:
    if not concentration.is_floating_point():
        raise TypeError("concentration must be a floating-point tensor")
    if not (torch.isfinite(concentration).all() and (concentration > 0).all()):
        raise ValueError("concentration must be finite and > 0")
    return concentration


def sample_gamma(
    concentration: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gamma(alpha, 1) draws with an explicit generator (torch._standard_gamma takes none).

    Args:
        concentration: alpha > 0, any shape, floating point, on the generator's device.
        generator: source of all random numbers.

    Returns:
        One draw per element, same shape and dtype; finite and >= 0 (may round to 0 for
        tiny alpha, as the true distribution puts mass there).
    """
    return _log_standard_gamma(_check_concentration(concentration), generator).exp()


def sample_dirichlet(
    concentration: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Dirichlet draws, one per row: normalized Gamma(alpha_i, 1) draws, computed in log space.

    Args:
        concentration: (..., k) alpha > 0, floating point, on the generator's device.
        generator: source of all random numbers.

    Returns:
        (..., k) weights >= 0 with rows summing to 1. softmax of the log-Gamma draws equals
        G_i / sum_j G_j and cannot produce an all-zero (0/0) row, so no floor is needed.
    """
    log_gamma = _log_standard_gamma(_check_concentration(concentration), generator)
    return log_gamma.softmax(dim=-1)


def hallucinate(
    features: torch.Tensor,
    proto_mean: torch.Tensor,
    proto_std: torch.Tensor,
    concentration: float = 0.0156,
    generator: torch.Generator | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Re-style each sample with a random Dirichlet mixture of the prototype styles.

    x' = (x - mu(x)) / sigma(x) * (w @ proto_std) + (w @ proto_mean), w ~ Dirichlet(alpha * 1_k)
    drawn per sample. mu(x), sigma(x) are not detached: gradients reach `features` both through
    the normalized content and through its own statistics (the plain autograd of the formula).

    Args:
        features: (B, C, H, W) stage-1 features.
        proto_mean: (k, C) prototype channel means.
        proto_std: (k, C) prototype channel stds.
        concentration: alpha, Dirichlet concentration per prototype.
        generator: source of the mixing weights; they are drawn in fp64 on the generator's
            device (CPU if None) and moved to the features' device.
        eps: added to the variance of features before the square root.

    Returns:
        (B, C, H, W) hallucinated features in features' dtype.
    """
    b, c = features.shape[:2]
    if proto_mean.ndim != 2 or proto_mean.shape != proto_std.shape or proto_mean.shape[1] != c:
        raise ValueError(
            f"prototypes must be (k, {c}), got {tuple(proto_mean.shape)}, {tuple(proto_std.shape)}"
        )
    mean, std = channel_style(features, eps)  # (B, C) each, fp32
    normalized = (features.float() - mean[:, :, None, None]) / std[:, :, None, None]
    gen_device = generator.device if generator is not None else torch.device("cpu")
    alpha = torch.full(
        (b, proto_mean.shape[0]), concentration, dtype=torch.float64, device=gen_device
    )
    weights = sample_dirichlet(alpha, generator).to(device=features.device, dtype=torch.float32)
    new_mean = weights @ proto_mean.float()  # (B, k) @ (k, C) -> (B, C)
    new_std = weights @ proto_std.float()  # (B, C)
    out = normalized * new_std[:, :, None, None] + new_mean[:, :, None, None]
    return out.to(features.dtype)


def double_with_styles(
    features: torch.Tensor,
    prototypes: tuple[torch.Tensor, torch.Tensor],
    config: SHADEConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SHADE after MiT stage 1: (B, C, H, W) -> (2B, C, H, W), [features, hallucinated].

    Args:
        features: stage-1 features.
        prototypes: (k, C) prototype means and stds (`style_prototypes`), from the training
            state, where the loop refreshes them.
        config: the Dirichlet concentration and eps.
        generator: source of the mixing weights.
    """
    proto_mean, proto_std = prototypes
    if features.ndim != 4 or features.shape[1] != proto_mean.shape[1]:
        raise ValueError(
            f"features must be (B, {proto_mean.shape[1]}, H, W), got {tuple(features.shape)}"
        )
    styled = hallucinate(
        features, proto_mean, proto_std, config.concentration, generator, config.eps
    )
    return torch.cat([features, styled], dim=0)


def needs_refresh(iteration: int, refresh_interval: int = 4000) -> bool:
    """True at iterations 0, refresh_interval, 2 * refresh_interval, ... (prototype recompute)."""
    return iteration % refresh_interval == 0


def style_consistency_loss(
    logits_original: torch.Tensor, logits_hallucinated: torch.Tensor, weight: float = 10.0
) -> torch.Tensor:
    """SHADE's style consistency: weight * symmetric KL of both predictions to their mixture.

    p1 = softmax(l1), p2 = softmax(l2) over the class dim, m = clamp((p1 + p2) / 2, 1e-7, 1);
    loss = weight * (KL(p1 || m) + KL(p2 || m)) / 2, each KL averaged over pixels: the logits
    are flattened to (B·H·W, K) rows before F.kl_div(log m, p, "batchmean"), so the loss is
    per pixel and does not grow with the image (AugMix's classification form, applied per
    pixel; the spec does not record the reduction).

    Args:
        logits_original: (B, K, H, W) logits of the original samples (e.g. fused HRDA output).
        logits_hallucinated: (B, K, H, W) logits of their hallucinated copies.
        weight: lambda (10 in SHADE).

    Returns:
        Scalar fp32 loss; gradients flow into both logits.
    """
    if logits_original.shape != logits_hallucinated.shape or logits_original.ndim < 2:
        raise ValueError(
            "logits must share a (B, K, ...) shape, got "
            f"{tuple(logits_original.shape)} and {tuple(logits_hallucinated.shape)}"
        )
    k = logits_original.shape[1]
    p1 = logits_original.float().movedim(1, -1).reshape(-1, k).softmax(dim=1)  # (B·H·W, K)
    p2 = logits_hallucinated.float().movedim(1, -1).reshape(-1, k).softmax(dim=1)
    log_mixture = ((p1 + p2) / 2).clamp(1e-7, 1).log()
    kl1 = F.kl_div(log_mixture, p1, reduction="batchmean")
    kl2 = F.kl_div(log_mixture, p2, reduction="batchmean")
    return weight * (kl1 + kl2) / 2
