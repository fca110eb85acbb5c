"""The other UDA methods of HRDA's Table 2: adversarial output-space alignment (AdvSeg) and
entropy minimization (MinEnt), each trainable with or without HRDA.

HRDA's Table 2 shows that multi-resolution training helps UDA methods other than DAFormer's
self-training (reference spec 7, exp 41). These two replace the teacher, ClassMix and pseudo-labels
with a loss on the student's own target prediction:

* AdvSeg (Tsai et al., CVPR 2018): a fully convolutional discriminator sees the softmax output of
  source and target images; the segmentor is trained to make target outputs look like source ones.
* MinEnt (Vu et al., CVPR 2019, "ADVENT"): the mean normalized entropy of the target softmax is
  minimized.

The spec records only their optimizer (SGD 0.0025, momentum 0.9, wd 5e-4, no head multiplier) and
the photometric source augmentation (`gtaCAug`). The rest is *(general knowledge)* of the
published methods as DAFormer's code base configures them, not read from the official repos:
discriminator with 64 base channels and four 4x4 stride-2 LeakyReLU(0.2) layers, Adam lr 1e-4 with
betas (0.9, 0.99) and poly decay of power 0.9, least-squares GAN loss, lambda_adv 0.001 and
lambda_ent 0.001. With HRDA both losses act on the fused prediction (the one inference uses); the
softmax is upsampled to the input size before the discriminator, as in AdvSeg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hrda_lib.errors import UnknownNameError

SOURCE_DOMAIN, TARGET_DOMAIN = 0.0, 1.0  # discriminator targets (AdvSeg's convention)


@dataclass(frozen=True)
class AdversarialConfig:
    """AdvSeg's discriminator and its optimizer."""

    weight: float = 0.001  # lambda_adv of the segmentor's adversarial loss on the target
    gan: str = "ls"  # "ls" (least squares, mean squared error) | "vanilla" (BCE with logits)
    base_channels: int = 64  # ndf: channels of the discriminator's first layer
    lr: float = 1e-4  # Adam learning rate of the discriminator
    betas: tuple[float, float] = (0.9, 0.99)  # its Adam moment decay rates
    power: float = 0.9  # poly decay of its lr to 0 over the schedule (no warm-up)


def entropy_map(logits: torch.Tensor) -> torch.Tensor:
    """Normalized entropy of the softmax, in [0, 1].

    Args:
        logits: (B, K, H, W).

    Returns:
        (B, H, W) `-sum_k p_k log p_k / log K`, computed in fp32.
    """
    log_p = F.log_softmax(logits.float(), dim=1)
    return -(log_p.exp() * log_p).sum(dim=1) / math.log(logits.shape[1])


def entropy_loss(logits: torch.Tensor, weight: float) -> torch.Tensor:
    """MinEnt's loss: `weight` x the mean normalized entropy over all pixels of (B, K, H, W)."""
    return weight * entropy_map(logits).mean()


class FCDiscriminator(nn.Module):
    """AdvSeg's fully convolutional discriminator on (B, K, H, W) softmax maps.

    Four 4x4 stride-2 convolutions (ndf, 2ndf, 4ndf, 8ndf channels) with LeakyReLU(0.2), then a
    4x4 stride-2 classifier to one channel: (B, 1, ~H/32, ~W/32) domain logits. Inputs need at
    least 32 px per side.
    """

    def __init__(self, num_classes: int, base_channels: int = 64) -> None:
        super().__init__()
        widths = [num_classes] + [base_channels * 2**i for i in range(4)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, stride=2, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, probabilities: torch.Tensor) -> torch.Tensor:
        if min(probabilities.shape[-2:]) < 32:
            raise ValueError(f"discriminator input {tuple(probabilities.shape)} under 32 px")
        return self.layers(probabilities)


def discriminator_input(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Softmax of (B, K, h, w) logits, bilinearly upsampled to the input `size` (H, W), fp32."""
    probabilities = F.softmax(logits.float(), dim=1)
    if tuple(probabilities.shape[-2:]) == tuple(size):
        return probabilities
    return F.interpolate(probabilities, size=size, mode="bilinear", align_corners=False)


def gan_loss(domain_logits: torch.Tensor, domain: float, gan: str = "ls") -> torch.Tensor:
    """Distance of discriminator outputs (B, 1, h, w) from the `domain` label (0 source, 1
    target), averaged over cells: squared error ("ls") or binary cross-entropy ("vanilla")."""
    target = torch.full_like(domain_logits, domain)
    if gan == "ls":
        return F.mse_loss(domain_logits.float(), target.float())
    if gan == "vanilla":
        return F.binary_cross_entropy_with_logits(domain_logits.float(), target.float())
    raise UnknownNameError(f"unknown GAN loss {gan!r}; expected 'ls' or 'vanilla'")


def build_discriminator(num_classes: int, cfg: AdversarialConfig) -> FCDiscriminator:
    return FCDiscriminator(num_classes, cfg.base_channels)


def build_discriminator_optimizer(
    discriminator: nn.Module, cfg: AdversarialConfig
) -> torch.optim.Adam:
    return torch.optim.Adam(discriminator.parameters(), lr=cfg.lr, betas=cfg.betas)


def discriminator_lr(iteration: int, max_iters: int, cfg: AdversarialConfig) -> float:
    """Poly decay `lr (1 - t / T) ** power` of the discriminator (AdvSeg: no warm-up)."""
    return cfg.lr * (1 - iteration / max_iters) ** cfg.power
