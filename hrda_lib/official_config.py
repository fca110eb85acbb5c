"""What an official HRDA / DAFormer / MIC checkpoint's keys and embedded config say of its
architecture, and what had to be assumed (`InferredConfig`): the encoder, head and width from
the keys and weight shapes; detail crop, context scale, loss weights, detail-window overlap,
blur and fixed attention from the mmcv config text when the file has one, else from a fallback
config the caller names (a preset), else from the paper's defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import torch

from hrda_lib.config import ModelConfig
from hrda_lib.encoders import infer_mit_variant

StateDict = dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A file that is not the checkpoint the caller asked for; the message says what was expected"""


# Fields that the keys tell (the rest of ModelConfig comes from config text, fallback, defaults).
KEY_FIELDS = ("encoder", "head", "num_classes", "multi_resolution", "attention", "decoder_channels")
# Fields of an HRDA model that keys cannot tell and that inference or a loss reads: reported.
HRDA_ASSUMED_FIELDS = (
    "detail_crop_size",
    "context_scale",
    "detail_slide_overlapping",
    "blur_detail",
    "detail_loss_weight",
    "context_loss_weight",
)
CONFIG_TEXT = "the checkpoint's config"
PAPER_DEFAULTS = "the paper's defaults"
KEYS = "the checkpoint's keys"


@dataclass(frozen=True)
class InferredConfig:
    """The ModelConfig of an official checkpoint and where each value the keys cannot tell came
    from (`CONFIG_TEXT`, the fallback's name such as "preset synthetic_hrda", `PAPER_DEFAULTS`,
    or "the caller" for overrides)."""

    model: ModelConfig
    assumed: dict[str, str]  # reported field -> its source
    overruled: dict[str, tuple[str, object]]  # field -> (winning source, the fallback's value)
    fallback: str = ""  # the fallback's name; "" when none was given

    def assumption_line(self) -> str:
        """One line: `assumed from preset X: detail_crop_size=(128, 128), ...; from ...: ...`."""
        by_source: dict[str, list[str]] = {}
        for name, source in self.assumed.items():
            by_source.setdefault(source, []).append(f"{name}={getattr(self.model, name)!r}")
        if not by_source:
            return "assumed nothing: the keys tell the whole architecture of a single-scale model"
        parts = [f"from {source}: {', '.join(items)}" for source, items in by_source.items()]
        return "assumed " + "; ".join(parts)

    def overrule_line(self) -> str:
        """One line naming what the keys (or the embedded config) decided against the fallback,
        e.g. `the checkpoint's keys overrule preset X: decoder_channels=256 (not 32)`; "" when
        they agree."""
        by_source: dict[str, list[str]] = {}
        for name, (source, theirs) in self.overruled.items():
            mine = getattr(self.model, name)
            by_source.setdefault(source, []).append(f"{name}={mine!r} (not {theirs!r})")
        parts = [
            f"{source} {'overrule' if source == KEYS else 'overrules'} {self.fallback}: "
            + ", ".join(items)
            for source, items in by_source.items()
        ]
        return "; ".join(parts)


def infer_official_config(
    state: StateDict,
    config_text: str = "",
    fallback: ModelConfig | None = None,
    fallback_name: str = "",
    **overrides,
) -> InferredConfig:
    """ModelConfig of an official segmentor state dict (`backbone.*`, `decode_head.*`).

    Args:
        state: the segmentor's weights (official key names).
        config_text: the checkpoint's embedded mmcv config, or "".
        fallback: the config (e.g. a preset's model) whose values fill what neither the keys nor
            the config text tell; where the keys disagree with it, the keys win.
        fallback_name: how messages name the fallback ("preset synthetic_hrda").
        **overrides: ModelConfig fields set by the caller, above everything else.
    """
    told = _key_values(state)
    text = _config_text_values(config_text)
    fallback_name = (fallback_name or "the fallback config") if fallback else ""
    base, base_name = (fallback, fallback_name) if fallback else (ModelConfig(), PAPER_DEFAULTS)
    values, sources = {}, {}
    for f in fields(ModelConfig):
        if f.name in told:
            values[f.name], sources[f.name] = told[f.name], KEYS
        elif f.name in text:
            values[f.name], sources[f.name] = text[f.name], CONFIG_TEXT
        else:
            values[f.name], sources[f.name] = getattr(base, f.name), base_name
    if unknown := set(overrides) - set(values):
        raise TypeError(f"unknown ModelConfig fields {sorted(unknown)}")
    values.update(overrides)
    sources.update(dict.fromkeys(overrides, "the caller"))
    cfg = ModelConfig(**values)
    reported = HRDA_ASSUMED_FIELDS if cfg.multi_resolution else ()
    if cfg.multi_resolution and cfg.attention == "fixed":
        reported += ("fixed_attention",)
    overruled = {}
    if fallback is not None:
        for name in (*KEY_FIELDS, *reported):
            theirs = getattr(fallback, name)
            if sources[name] in (KEYS, CONFIG_TEXT) and values[name] != theirs:
                overruled[name] = (sources[name], theirs)
    assumed = {name: sources[name] for name in reported}
    return InferredConfig(cfg, assumed, overruled, fallback_name)


def infer_model_config(state: StateDict, config_text: str = "", **overrides) -> ModelConfig:
    """ModelConfig of an official segmentor state dict (`infer_official_config` without a
    fallback: what keys and config text cannot tell takes the paper's defaults)."""
    return infer_official_config(state, config_text, **overrides).model


def _key_values(state: StateDict) -> dict:
    """The ModelConfig fields that an official segmentor's keys and weight shapes tell."""
    if "backbone.block1.0.attn.q.weight" in state:
        encoder = infer_mit_variant(state, "backbone.")
    elif "backbone.stem.0.weight" in state:
        encoder = "resnet101_v1c"
    else:
        raise CheckpointError(
            "expected an mmseg segmentor with a MiT ('backbone.block1.0.attn.q.weight') or "
            "ResNetV1c ('backbone.stem.0.weight') backbone; found keys like "
            f"{sorted(state)[:5]}"
        )
    multi_resolution = any(k.startswith("decode_head.head.") for k in state)
    head_prefix = "decode_head.head." if multi_resolution else "decode_head."
    values: dict = {"encoder": encoder, "multi_resolution": multi_resolution}
    if f"{head_prefix}conv_seg.weight" in state:
        classifier = state[f"{head_prefix}conv_seg.weight"]  # (K, E, 1, 1), E the decoder width
        values |= {"head": "daformer_sepaspp", "decoder_channels": int(classifier.shape[1])}
        num_classes = classifier.shape[0]
    elif f"{head_prefix}aspp_modules.0.weight" in state:  # DeepLabV2 has no decoder width
        values["head"] = "dlv2"
        num_classes = state[f"{head_prefix}aspp_modules.0.weight"].shape[0]  # (K, C, 3, 3)
    else:
        raise CheckpointError(f"no DAFormer or DeepLabV2 classifier under '{head_prefix}'")
    values["num_classes"] = int(num_classes)
    attention = "fixed"
    att_keys = [k for k in state if k.startswith("decode_head.scale_attention.")]
    if att_keys:
        att_out = (
            state[sorted(att_keys)[0]].shape[0]
            if values["head"] == "dlv2"
            else state["decode_head.scale_attention.conv_seg.weight"].shape[0]  # (K or 1, E, 1, 1)
        )
        attention = "classwise" if att_out == num_classes else "single"
    values["attention"] = attention
    return values


def _config_text_values(text: str) -> dict:
    """What an embedded mmcv config text says of detail crop, context scale, loss weights,
    blur, detail-window overlap and fixed attention. An HRDA config (one with `hr_crop_size`)
    that omits a flag or loss weight means the official code's default (`HRDAEncoderDecoder`:
    hr_slide_overlapping=True, blur_hr_crop=False; `HRDAHead`: loss weights 0)."""
    values: dict = {}
    if "hr_crop_size" in text:
        values |= {
            "detail_slide_overlapping": True,
            "blur_detail": False,
            "detail_loss_weight": 0.0,
            "context_loss_weight": 0.0,
        }
    if m := re.search(r"hr_crop_size=[\[(](\d+),\s*(\d+)[\])]", text):
        values["detail_crop_size"] = (int(m[1]), int(m[2]))
    if m := re.search(r"scales=\[([\d.]+),\s*([\d.]+)\]", text):
        values["context_scale"] = min(float(m[1]), float(m[2]))
    if m := re.search(r"hr_loss_weight=([\d.]+)", text):
        values["detail_loss_weight"] = float(m[1])
    if m := re.search(r"lr_loss_weight=([\d.]+)", text):
        values["context_loss_weight"] = float(m[1])
    if m := re.search(r"blur_hr_crop=(True|False)", text):
        values["blur_detail"] = m[1] == "True"
    if m := re.search(r"hr_slide_overlapping=(True|False)", text):
        values["detail_slide_overlapping"] = m[1] == "True"
    if m := re.search(r"fixed_attention=([\d.]+)", text):
        values["fixed_attention"] = float(m[1])
    return values
