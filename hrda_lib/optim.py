"""Optimizer, parameter groups and learning-rate schedule of the DAFormer/HRDA recipe.

Implements reference spec 3.9 (HRDA, Hoyer et al., ECCV 2022, which keeps DAFormer's schedule):
AdamW with lr 6e-5, a x10 learning rate for the decoder heads (segmentation and scale-attention
head), no weight decay on the encoder's normalization layers, and a polynomial decay with a
linear warm-up. The official code builds this with mmcv 1.3.7 (`DefaultOptimizerConstructor`
with `custom_keys` head/norm/pos_block, and `PolyLrUpdaterHook`); the semantics reproduced here:

* the first matching key wins, `head` before `norm`: head BatchNorm weights and biases keep
  weight decay, encoder LayerNorms (block norm1/norm2, stage norms, patch-embed norms, attention
  sr-norm; every encoder parameter whose name contains `norm`) get weight decay 0;
* warm-up MULTIPLIES the poly-decayed lr: lr(t) = poly(t) * (1 - (1 - t/T_w) * (1 - r_w)) for
  t < T_w, so lr(1500) = 0.9625 * base and not base.

mmcv puts every parameter in its own group; here parameters with the same settings share a group
(at most three: encoder, encoder norms, heads), which changes nothing in the update.
The SGD setting is the one of the AdvSeg/MinEnt baselines (no head multiplier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from hrda_lib.errors import UnknownNameError


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and schedule; defaults are the HRDA/DAFormer AdamW recipe."""

    optimizer: Literal["adamw", "sgd"] = "adamw"  # SGD only for the AdvSeg/MinEnt baselines
    lr: float = 6e-5  # base learning rate (encoder group)
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW moment decay rates
    momentum: float = 0.9  # SGD momentum (unused by AdamW)
    weight_decay: float = 0.01  # decoupled (AdamW) or L2 (SGD) weight decay
    head_lr_mult: float = 10.0  # lr multiplier of the decoder heads (seg + scale attention)
    warmup_iters: int = 1500  # T_w: iterations of linear warm-up
    warmup_ratio: float = 1e-6  # r_w: warm-up multiplier at t = 0
    power: float = 1.0  # exponent of the polynomial decay
    min_lr: float = 0.0  # lr reached at max_iters
    max_iters: int = 40000  # length of the schedule (training iterations)


def adamw_config() -> OptimizerConfig:
    """DAFormer/HRDA: AdamW 6e-5, betas (0.9, 0.999), wd 0.01, heads x10, poly + warm-up."""
    return OptimizerConfig()


def sgd_config() -> OptimizerConfig:
    """AdvSeg/MinEnt baselines: SGD 0.0025, momentum 0.9, wd 5e-4, no head multiplier."""
    return OptimizerConfig(optimizer="sgd", lr=2.5e-3, weight_decay=5e-4, head_lr_mult=1.0)


def lr_at(iteration: int, base_lr: float, cfg: OptimizerConfig) -> float:
    """Learning rate of a group with base lr `base_lr` for the update of `iteration` (0-based).

    poly(t) = (base - min_lr) * (1 - t / max_iters) ** power + min_lr, multiplied for
    t < warmup_iters by 1 - (1 - t / warmup_iters) * (1 - warmup_ratio). The float operations
    are mmcv 1.3.7's, so the values match the official ones to the last bit.
    """
    coeff = (1 - iteration / cfg.max_iters) ** cfg.power
    regular_lr = (base_lr - cfg.min_lr) * coeff + cfg.min_lr
    if iteration >= cfg.warmup_iters:
        return regular_lr
    k = (1 - iteration / cfg.warmup_iters) * (1 - cfg.warmup_ratio)
    return regular_lr * (1 - k)


def build_param_groups(
    encoder: nn.Module, head_params: Sequence[nn.Parameter], cfg: OptimizerConfig
) -> list[dict]:
    """Split the parameters into the recipe's groups.

    Args:
        encoder: the backbone; its `no_decay_parameters()` (MiT's LayerNorms; none for ResNet,
            whose BatchNorms are decayed) get weight decay 0.
        head_params: the decoder heads' parameters (segmentation and scale attention); all of
            them, BatchNorm ones included, get lr x `head_lr_mult` and weight decay.
        cfg: optimizer settings.

    Returns:
        Non-empty groups among `encoder`, `encoder_norm`, `heads`, each a dict with `params`,
        `lr` (base lr x multiplier), `weight_decay`, `lr_mult` (read by `set_lr`) and `name`.
    """
    no_decay_ids = {id(p) for p in encoder.no_decay_parameters()}
    decay = [p for p in encoder.parameters() if id(p) not in no_decay_ids]
    no_decay = [p for p in encoder.parameters() if id(p) in no_decay_ids]
    head_params = list(head_params)
    all_params = [*decay, *no_decay, *head_params]
    if len({id(p) for p in all_params}) != len(all_params):
        raise ValueError("a parameter belongs to more than one of the encoder and heads")
    groups = [
        dict(name="encoder", params=decay, lr_mult=1.0, weight_decay=cfg.weight_decay),
        dict(name="encoder_norm", params=no_decay, lr_mult=1.0, weight_decay=0.0),
        dict(
            name="heads",
            params=head_params,
            lr_mult=cfg.head_lr_mult,
            weight_decay=cfg.weight_decay,
        ),
    ]
    for group in groups:
        group["lr"] = cfg.lr * group["lr_mult"]
    return [g for g in groups if g["params"]]


def build_optimizer(
    encoder: nn.Module, head_params: Sequence[nn.Parameter], cfg: OptimizerConfig
) -> torch.optim.Optimizer:
    """AdamW (or SGD) over `build_param_groups`; call `set_lr` before every step."""
    groups = build_param_groups(encoder, head_params, cfg)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    raise UnknownNameError(f"unknown optimizer {cfg.optimizer!r}")


def set_lr(optimizer: torch.optim.Optimizer, iteration: int, cfg: OptimizerConfig) -> None:
    """Set every group's lr to the schedule value for `iteration` (before that update)."""
    for group in optimizer.param_groups:
        group["lr"] = lr_at(iteration, cfg.lr * group["lr_mult"], cfg)
