"""Schedule and parameter groups against mmcv 1.3.7 (golden `a_poly_lr_with_warmup`)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from torch import nn

from hrda_lib import optim
from hrda_lib.encoders import MiTEncoder
from hrda_lib.paths import golden_root

GOLDEN = golden_root() / "pure_functions.json"


@pytest.fixture(scope="module")
def golden() -> dict:
    if not GOLDEN.exists():
        pytest.skip(f"golden fixture {GOLDEN} not found")
    return json.loads(GOLDEN.read_text())["a_poly_lr_with_warmup"]


def _head() -> nn.Module:
    """A small conv + BN + ReLU + 1x1 classifier, standing in for a decode head."""
    return nn.Sequential(
        nn.Conv2d(256, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 19, 1),
    )


@pytest.fixture(scope="module")
def modules() -> tuple[nn.Module, list[nn.Module]]:
    return MiTEncoder("mit_b0"), [_head(), _head()]


def _params(heads: list[nn.Module]) -> list[nn.Parameter]:
    return [p for head in heads for p in head.parameters()]


class _DecayEverything(nn.Module):
    """An encoder with ResNet's rule: its norms (BatchNorm) are decayed too."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder

    def no_decay_parameters(self) -> list[nn.Parameter]:
        return []


def test_config_matches_official(golden: dict) -> None:
    cfg = optim.adamw_config()
    official = golden["optimizer_cfg"]
    schedule = golden["lr_config"]
    assert (cfg.lr, list(cfg.betas), cfg.weight_decay) == (
        official["lr"],
        official["betas"],
        official["weight_decay"],
    )
    assert cfg.head_lr_mult == official["paramwise_cfg"]["custom_keys"]["head"]["lr_mult"]
    assert (cfg.warmup_iters, cfg.warmup_ratio, cfg.power, cfg.min_lr) == (
        schedule["warmup_iters"],
        schedule["warmup_ratio"],
        schedule["power"],
        schedule["min_lr"],
    )
    assert cfg.max_iters == golden["max_iters"]


def test_lr_at_matches_official_bit_for_bit(golden: dict) -> None:
    cfg = optim.adamw_config()
    for row in golden["values"]:
        t = row["iter"]
        assert optim.lr_at(t, cfg.lr, cfg) == row["lr_base_group"], t
        assert optim.lr_at(t, cfg.lr, cfg) == row["lr_norm_group"], t
        assert optim.lr_at(t, cfg.lr * cfg.head_lr_mult, cfg) == row["lr_head_group"], t
    # Warm-up multiplies the poly-decayed lr: 0.9625 * base at t = 1500, not base.
    assert optim.lr_at(1500, 1.0, cfg) == pytest.approx(0.9625)


def test_param_groups_follow_the_official_rule(golden: dict, modules) -> None:
    encoder, heads = modules
    cfg = optim.adamw_config()
    table = golden["param_group_table_b0_segmentor"]["table"]
    official = Counter(
        ("head" if name.startswith("decode_head") else "backbone", s["lr"], s["weight_decay"])
        for name, s in table.items()
    )
    groups = {g["name"]: g for g in optim.build_param_groups(encoder, _params(heads), cfg)}
    ours = Counter()
    for group in groups.values():
        kind = "head" if group["name"] == "heads" else "backbone"
        ours[(kind, group["lr"], group["weight_decay"])] += len(group["params"])
    backbone = {k: v for k, v in official.items() if k[0] == "backbone"}
    # timm pvt_v2_b0 has the same 176 parameters as mit_b0: 60 norm params without decay.
    assert {k: v for k, v in ours.items() if k[0] == "backbone"} == backbone
    assert backbone == {("backbone", 6e-5, 0.01): 116, ("backbone", 6e-5, 0.0): 60}
    # Every head parameter, BatchNorm weights/biases included, gets lr x10 and weight decay.
    assert {k[1:] for k in official if k[0] == "head"} == {(6e-5 * 10.0, 0.01)}
    n_head = sum(1 for h in heads for _ in h.parameters())
    assert ours[("head", 6e-5 * 10.0, 0.01)] == n_head
    norm_names = [n for n, _ in encoder.named_parameters() if "norm" in n]
    norm_ids = {id(p) for n, p in encoder.named_parameters() if "norm" in n}
    assert {id(p) for p in groups["encoder_norm"]["params"]} == norm_ids
    assert any(".attn.norm." in n for n in norm_names) and any(
        "downsample.norm" in n for n in norm_names
    )


def test_resnet_style_encoder_norms_are_decayed(modules) -> None:
    encoder, heads = modules
    groups = optim.build_param_groups(
        _DecayEverything(encoder), _params(heads), optim.adamw_config()
    )
    assert [g["name"] for g in groups] == ["encoder", "heads"]
    assert all(g["weight_decay"] == 0.01 for g in groups)


def test_set_lr_applies_schedule_per_group(golden: dict, modules) -> None:
    encoder, heads = modules
    cfg = optim.adamw_config()
    optimizer = optim.build_optimizer(encoder, _params(heads), cfg)
    assert isinstance(optimizer, torch.optim.AdamW)
    row = next(r for r in golden["values"] if r["iter"] == 1000)
    optim.set_lr(optimizer, 1000, cfg)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs == {
        "encoder": row["lr_base_group"],
        "encoder_norm": row["lr_norm_group"],
        "heads": row["lr_head_group"],
    }
    assert optimizer.param_groups[1]["weight_decay"] == 0.0


def test_sgd_baseline_has_no_head_multiplier(modules) -> None:
    encoder, heads = modules
    cfg = optim.sgd_config()
    optimizer = optim.build_optimizer(_DecayEverything(encoder), _params(heads), cfg)
    assert isinstance(optimizer, torch.optim.SGD)
    optim.set_lr(optimizer, 20000, cfg)
    assert {g["lr"] for g in optimizer.param_groups} == {0.0025 * 0.5}
    assert {g["momentum"] for g in optimizer.param_groups} == {0.9}
    assert {g["weight_decay"] for g in optimizer.param_groups} == {5e-4}


def test_shared_parameter_is_rejected() -> None:
    encoder = MiTEncoder("mit_b0")
    with pytest.raises(ValueError, match="more than one"):
        optim.build_param_groups(encoder, list(encoder.parameters())[:3], optim.adamw_config())
