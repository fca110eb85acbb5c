"""Encoders of HRDA: MiT-b0..b5 (SegFormer's Mix Transformer) and ResNet-101 V1c for DeepLabV2.

MiT is timm's `pvt_v2_b*` (architecturally identical, reference spec 1.2), with drop path 0.1
passed explicitly (timm's default is 0) and MLP ratio 4 in every stage (timm's b0..b4 default to
8, 8, 4, 4, which is PVTv2's, not MiT's; b5 agrees). ResNet-101 V1c is timm's `resnet101c` (deep
3x3 stem of width 32, no average-pool downsample) at output stride 8, whose dilation schedule
contracts the first block of a dilated stage like mmcv's `contract_dilation=True` (spec 1.4).

Key conversion of the official checkpoints (SegFormer `mit_b*.pth`, mmseg `backbone.*`, mmcv
`open-mmlab://resnet101_v1c`, and the Hugging Face `nvidia/mit-b*` copies of SegFormer's weights)
into these modules lives here too, as pure functions on dicts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import timm
import torch
from torch import nn

from hrda_lib.errors import UnknownNameError

MIT_VARIANTS: tuple[str, ...] = ("mit_b0", "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5")

# Blocks per stage of each MiT variant (the fingerprint used to infer the variant from keys).
MIT_DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "mit_b0": (2, 2, 2, 2),
    "mit_b1": (2, 2, 2, 2),
    "mit_b2": (3, 4, 6, 3),
    "mit_b3": (3, 4, 18, 3),
    "mit_b4": (3, 8, 27, 3),
    "mit_b5": (3, 6, 40, 3),
}


class MiTEncoder(nn.Module):
    """SegFormer's Mix Transformer as timm `pvt_v2_b*`, returning the four stage features.

    Args:
        variant: one of `mit_b0` ... `mit_b5`.
        drop_path_rate: maximum stochastic-depth rate, linear over all blocks (0.1 in MiT).
    """

    def __init__(self, variant: str = "mit_b5", drop_path_rate: float = 0.1) -> None:
        super().__init__()
        if variant not in MIT_VARIANTS:
            raise UnknownNameError(
                f"unknown MiT variant {variant!r}; expected one of {MIT_VARIANTS}"
            )
        self.variant = variant
        self.mit = timm.create_model(
            f"pvt_v2_{variant[-2:]}",
            pretrained=False,
            num_classes=0,
            drop_path_rate=drop_path_rate,
            mlp_ratios=(4, 4, 4, 4),  # MiT: 4 in every stage; timm's pvt_v2_b0..b4 use (8, 8, 4, 4)
        )
        self.channels: list[int] = [info["num_chs"] for info in self.mit.feature_info]
        self.reductions: list[int] = [info["reduction"] for info in self.mit.feature_info]

    def forward(
        self,
        x: torch.Tensor,
        after_first_stage: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """x: (B, 3, H, W) -> 4 maps (B', C_i, H / 4·2^i, W / 4·2^i), after each stage's norm.

        `after_first_stage` maps the stage-1 output (B, C_1, H/4, W/4) to what the later stages
        (and the returned first map) see; SHADE's style hallucination doubles the batch there,
        so B' = 2B. None: the plain encoder.
        """
        if after_first_stage is None:
            return self.mit.forward_intermediates(x, indices=4, intermediates_only=True)
        x = self.mit.patch_embed(x)  # (B, H/4, W/4, C_0), channels last
        features = []
        for index, stage in enumerate(self.mit.stages):
            x = stage(x)  # (B, C_i, h, w)
            if index == 0:
                x = after_first_stage(x)
            features.append(x)
        return features

    def load_official_weights(self, state_dict: dict[str, torch.Tensor]):
        """Load SegFormer `mit_b*.pth` weights (official key names); returns the load result
        (missing and unexpected keys; the ImageNet classifier is dropped)."""
        return self.mit.load_state_dict(convert_mit_keys(state_dict), strict=False)

    def no_decay_parameters(self) -> list[nn.Parameter]:
        """The LayerNorm parameters (names containing `norm`), which get no weight decay."""
        return [p for name, p in self.named_parameters() if "norm" in name]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute every MiT block in the backward pass (less activation memory)."""
        self.mit.set_grad_checkpointing(enable)

    def first_stage(self, x: torch.Tensor) -> torch.Tensor:
        """The stage-1 map (B, C_1, H/4, W/4) whose channel statistics SHADE calls style."""
        return self.mit.stages[0](self.mit.patch_embed(x))


RESNET_VARIANTS: dict[str, str] = {
    "resnet101_v1c": "resnet101c",  # DeepLabV2's ResNet-101 V1c (Table 2), 2048 channels
    "resnet18_v1d": "resnet18d",  # a small stand-in of it for the rehearsal, 512 channels
}


class ResNetV1cEncoder(nn.Module):
    """ResNet-101 V1c (or a `RESNET_VARIANTS` stand-in) at output stride 8, returning only the
    last stage (2048 channels for ResNet-101)."""

    def __init__(self, timm_name: str = "resnet101c") -> None:
        super().__init__()
        self.resnet = timm.create_model(
            timm_name,
            pretrained=False,
            features_only=True,
            output_stride=8,
            out_indices=(4,),
        )
        self.channels: list[int] = list(self.resnet.feature_info.channels())
        self.reductions: list[int] = list(self.resnet.feature_info.reduction())

    def load_official_weights(self, state_dict: dict[str, torch.Tensor]):
        """Load mmcv `resnet101_v1c` ImageNet weights; returns the load result."""
        return self.resnet.load_state_dict(convert_resnet_v1c_keys(state_dict), strict=False)

    def no_decay_parameters(self) -> list[nn.Parameter]:
        """None: the recipe decays ResNet's BatchNorm parameters too."""
        return []

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        raise ValueError("activation checkpointing is implemented for MiT encoders only")

    def forward(self, x: torch.Tensor, after_first_stage=None) -> list[torch.Tensor]:
        """x: (B, 3, H, W) -> [(B, 2048, H/8, W/8)]."""
        if after_first_stage is not None:
            raise NotImplementedError("style hallucination is implemented for MiT encoders only")
        return self.resnet(x)


def build_encoder(name: str, drop_path_rate: float = 0.1) -> nn.Module:
    """Build `mit_b0`..`mit_b5` or `resnet101_v1c` (drop path applies to MiT only)."""
    if name in MIT_VARIANTS:
        return MiTEncoder(name, drop_path_rate)
    if name in RESNET_VARIANTS:
        return ResNetV1cEncoder(RESNET_VARIANTS[name])
    raise UnknownNameError(
        f"unknown encoder {name!r}; expected one of {(*MIT_VARIANTS, *RESNET_VARIANTS)}"
    )


def convert_mit_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename SegFormer/mmseg MiT keys (`block1.0.attn.q.weight`) to timm pvt_v2 keys.

    `patch_embed{k}` -> `patch_embed` / `stages.{k-1}.downsample`, `block{s}.{j}` ->
    `stages.{s-1}.blocks.{j}`, `mlp.dwconv.dwconv` -> `mlp.dwconv`, top-level `norm{s}` ->
    `stages.{s-1}.norm`. The ImageNet classifier `head.*` is dropped. Keys already in timm
    naming pass unchanged.
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith("head."):
            continue
        key = key.replace("patch_embed1.", "patch_embed.")
        key = re.sub(r"^patch_embed([234])\.", lambda m: f"stages.{int(m[1]) - 1}.downsample.", key)
        key = key.replace("dwconv.dwconv", "dwconv")
        key = re.sub(
            r"^block(\d+)\.(\d+)\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.", key
        )
        key = re.sub(r"^norm(\d+)\.", lambda m: f"stages.{int(m[1]) - 1}.norm.", key)
        out[key] = value
    return out


# Hugging Face `transformers` Segformer names -> SegFormer's names, inside a block
# (`encoder.block.{s}.{j}.<hf>` -> `block{s+1}.{j}.<original>`).
_HF_SEGFORMER_BLOCK = {
    "layer_norm_1.": "norm1.",
    "attention.self.query.": "attn.q.",
    "attention.self.sr.": "attn.sr.",
    "attention.self.layer_norm.": "attn.norm.",
    "attention.output.dense.": "attn.proj.",
    "layer_norm_2.": "norm2.",
    "mlp.dense1.": "mlp.fc1.",
    "mlp.dwconv.dwconv.": "mlp.dwconv.dwconv.",
    "mlp.dense2.": "mlp.fc2.",
}


def is_hf_segformer_state(state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether keys are in the Hugging Face Segformer layout (`[segformer.]encoder.block...`)."""
    pattern = re.compile(r"^(segformer\.)?encoder\.(block|patch_embeddings)\.")
    return any(pattern.match(k) for k in state_dict)


def convert_hf_segformer_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename Hugging Face Segformer MiT keys (`nvidia/mit-b*`) to SegFormer's `mit_b*.pth` names.

    The layout is that of the files `transformers` writes and the hub holds
    (`SegformerModel`, or `SegformerFor*` with a `segformer.` prefix); stage `s` and block `j`
    count from 0 there and from 1 in SegFormer's names:

        encoder.patch_embeddings.{s}.proj / .layer_norm   -> patch_embed{s+1}.proj / .norm
        encoder.block.{s}.{j}.layer_norm_1                -> block{s+1}.{j}.norm1
        ....attention.self.query                          -> ....attn.q
        ....attention.self.key + ....attention.self.value -> ....attn.kv (concatenated on dim 0,
                                                             key first: kv's (2C, C) output rows)
        ....attention.self.sr / .layer_norm               -> ....attn.sr / .attn.norm
        ....attention.output.dense                        -> ....attn.proj
        ....layer_norm_2, mlp.dense1, mlp.dwconv.dwconv,
            mlp.dense2                                    -> ....norm2, mlp.fc1, mlp.dwconv.dwconv,
                                                             mlp.fc2
        encoder.layer_norm.{s}                            -> norm{s+1}

    Everything else (the ImageNet `classifier.*`, a `decode_head.*`) is dropped. Feed the result
    to `convert_mit_keys` (as `MiTEncoder.load_official_weights` does) for timm's names.
    """
    out: dict[str, torch.Tensor] = {}
    key_value: dict[str, dict[str, torch.Tensor]] = {}  # "block1.0.attn.kv.weight" -> k, v
    for key, value in state_dict.items():
        key = key.removeprefix("segformer.")
        if m := re.match(r"^encoder\.patch_embeddings\.(\d+)\.(proj|layer_norm)\.(\w+)$", key):
            name = "norm" if m[2] == "layer_norm" else "proj"
            out[f"patch_embed{int(m[1]) + 1}.{name}.{m[3]}"] = value
        elif m := re.match(r"^encoder\.layer_norm\.(\d+)\.(\w+)$", key):
            out[f"norm{int(m[1]) + 1}.{m[2]}"] = value
        elif m := re.match(r"^encoder\.block\.(\d+)\.(\d+)\.(.+)$", key):
            block, rest = f"block{int(m[1]) + 1}.{m[2]}.", m[3]
            if kv := re.match(r"^attention\.self\.(key|value)\.(\w+)$", rest):
                key_value.setdefault(f"{block}attn.kv.{kv[2]}", {})[kv[1]] = value
                continue
            for old, new in _HF_SEGFORMER_BLOCK.items():
                if rest.startswith(old):
                    rest = new + rest[len(old) :]
                    break
            out[block + rest] = value  # an unknown name stays, to show as an unexpected key
    for name, parts in key_value.items():
        if set(parts) != {"key", "value"}:
            raise ValueError(f"{name}: Hugging Face Segformer weights hold only {sorted(parts)}")
        out[name] = torch.cat([parts["key"], parts["value"]], dim=0)  # (2C, ...) key rows first
    return out


_RESNET_STEM = {
    "stem.0.": "conv1.0.",
    "stem.1.": "conv1.1.",
    "stem.3.": "conv1.3.",
    "stem.4.": "conv1.4.",
    "stem.6.": "conv1.6.",
    "stem.7.": "bn1.",
}


def convert_resnet_v1c_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename mmcv ResNetV1c keys (`stem.0.weight`, `layer1.0.conv1.weight`) to timm `resnet*c`.

    Only the deep stem differs (mmcv `stem.{0,1,3,4,6,7}` = timm `conv1.{0,1,3,4,6}`, `bn1`);
    the classifier `fc.*` is dropped.
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith("fc."):
            continue
        for old, new in _RESNET_STEM.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def infer_mit_variant(state_dict: dict[str, torch.Tensor], prefix: str = "") -> str:
    """Infer `mit_b0`..`mit_b5` from MiT keys in official naming (`{prefix}block3.39...`).

    b0 and b1 share depths and differ in width (32 vs 64 channels in stage 1).
    """
    depths = []
    for stage in range(1, 5):
        pattern = re.compile(rf"^{re.escape(prefix)}block{stage}\.(\d+)\.")
        blocks = {int(m[1]) for k in state_dict if (m := pattern.match(k))}
        depths.append(max(blocks) + 1 if blocks else 0)
    for variant, expected in MIT_DEPTHS.items():
        if tuple(depths) == expected:
            if variant in ("mit_b0", "mit_b1"):
                width = state_dict[f"{prefix}patch_embed1.proj.weight"].shape[0]
                return "mit_b0" if width == 32 else "mit_b1"
            return variant
    raise ValueError(f"MiT block depths {tuple(depths)} match no variant of {MIT_VARIANTS}")
