"""Model files: our training checkpoints, the official HRDA / DAFormer / MIC checkpoints, and
`load_model`, the one loader for any of them (ImageNet encoder weights: `imagenet_weights`).

Our training checkpoint (`save_training_checkpoint`) holds the experiment's config, the whole
`step.TrainState` (student, teacher, optimizer, generators, ...) and the global RNG states, so a
run resumes exactly.

The official UDA checkpoints (mmseg 0.16 format, reference spec 1.3) hold the student under
`model.`, the EMA teacher under `ema_model.` and the ImageNet copy under `imnet_model.`; a
published one keeps only `model.`; a bare segmentor state dict has `backbone.*` and
`decode_head.*`. The architecture is inferred from the keys (MiT size or ResNet, DAFormer or
DeepLabV2 head, HRDA with classwise, single-channel or fixed attention); sizes that keys cannot tell
(detail crop, context scale, loss weights) come from the checkpoint's embedded config text when it
has one, else from the paper's defaults, and any `ModelConfig` field can be overridden.
"""

from __future__ import annotations

import errno
import re
from dataclasses import fields, replace
from pathlib import Path

import torch

from hrda_lib.config import ExperimentConfig, ModelConfig
from hrda_lib.encoders import convert_mit_keys, convert_resnet_v1c_keys, infer_mit_variant
from hrda_lib.files import DiskFullError
from hrda_lib.model import HRDASegmentor, Segmentor, build_segmentor

TRAINING_FORMAT = "hrda_lib-train-v2"  # v1 kept each TrainState field under its own key

StateDict = dict[str, torch.Tensor]
_WHICH = {
    "model": "model.",
    "student": "model.",
    "ema_model": "ema_model.",
    "teacher": "ema_model.",
    "imnet_model": "imnet_model.",
}


class CheckpointError(ValueError):
    """A file that is not the checkpoint the caller asked for; the message says what was expected"""


def read_checkpoint(path_or_state_dict: str | Path | dict) -> tuple[StateDict, str]:
    """Return (state dict, embedded config text or "") of a file or an in-memory checkpoint."""
    if isinstance(path_or_state_dict, dict):
        ckpt = path_or_state_dict
    else:
        path = Path(path_or_state_dict)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"expected a dict checkpoint, got {type(ckpt).__name__}")
    config_text = ""
    if isinstance(ckpt.get("meta"), dict):
        config_text = str(ckpt["meta"].get("config", ""))
    state = ckpt.get("state_dict", ckpt.get("model", ckpt))
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError("the checkpoint holds no state dict of tensors")
    return {re.sub(r"^module\.", "", k): v for k, v in state.items()}, config_text


def select_segmentor(state: StateDict, which: str = "model") -> StateDict:
    """Pick the student/teacher/ImageNet segmentor out of a UDA checkpoint, or pass a bare one."""
    if which not in _WHICH:
        raise ValueError(f"which must be one of {sorted(_WHICH)}, not {which!r}")
    prefix = _WHICH[which]
    if any(k.startswith(("model.", "ema_model.", "imnet_model.")) for k in state):
        selected = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not selected:
            present = sorted({k.split(".")[0] for k in state})
            raise CheckpointError(
                f"no '{prefix}*' keys (a published checkpoint keeps only "
                f"'model.'); prefixes present: {present}"
            )
        return selected
    if which not in ("model", "student"):
        raise CheckpointError(f"a bare segmentor state dict has no {which!r}")
    return state


def infer_model_config(state: StateDict, config_text: str = "", **overrides) -> ModelConfig:
    """ModelConfig of an official segmentor state dict (`backbone.*`, `decode_head.*`)."""
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
    if f"{head_prefix}conv_seg.weight" in state:
        head, num_classes = "daformer_sepaspp", state[f"{head_prefix}conv_seg.weight"].shape[0]
    elif f"{head_prefix}aspp_modules.0.weight" in state:
        head, num_classes = "dlv2", state[f"{head_prefix}aspp_modules.0.weight"].shape[0]
    else:
        raise CheckpointError(f"no DAFormer or DeepLabV2 classifier under '{head_prefix}'")
    attention = "fixed"
    att_keys = [k for k in state if k.startswith("decode_head.scale_attention.")]
    if att_keys:
        att_out = (
            state[sorted(att_keys)[0]].shape[0]
            if head == "dlv2"
            else state["decode_head.scale_attention.conv_seg.weight"].shape[0]
        )
        attention = "classwise" if att_out == num_classes else "single"
    values = dict(
        encoder=encoder,
        head=head,
        num_classes=int(num_classes),
        multi_resolution=multi_resolution,
        attention=attention,
    )
    values.update(_config_text_values(config_text))
    values.update(overrides)
    known = {f.name for f in fields(ModelConfig)}
    if unknown := set(values) - known:
        raise TypeError(f"unknown ModelConfig fields {sorted(unknown)}")
    return ModelConfig(**values)


def _config_text_values(text: str) -> dict:
    """Detail crop, context scale and loss weights from an embedded mmcv config text."""
    values: dict = {}
    if m := re.search(r"hr_crop_size=[\[(](\d+),\s*(\d+)[\])]", text):
        values["detail_crop_size"] = (int(m[1]), int(m[2]))
    if m := re.search(r"scales=\[([\d.]+),\s*([\d.]+)\]", text):
        values["context_scale"] = min(float(m[1]), float(m[2]))
    if m := re.search(r"hr_loss_weight=([\d.]+)", text):
        values["detail_loss_weight"] = float(m[1])
    if m := re.search(r"lr_loss_weight=([\d.]+)", text):
        values["context_loss_weight"] = float(m[1])
    if re.search(r"blur_hr_crop=True", text):
        values["blur_detail"] = True
    if re.search(r"hr_slide_overlapping=False", text):
        values["detail_slide_overlapping"] = False
    if m := re.search(r"fixed_attention=([\d.]+)", text):
        values["fixed_attention"] = float(m[1])
    return values


def convert_segmentor_keys(state: StateDict, cfg: ModelConfig) -> StateDict:
    """Official segmentor keys -> ours (`encoder.*`, `decode_head.*`, `scale_attention_head.*`)."""
    backbone = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    if cfg.encoder.startswith("mit_"):
        out = {f"encoder.mit.{k}": v for k, v in convert_mit_keys(backbone).items()}
    else:
        out = {f"encoder.resnet.{k}": v for k, v in convert_resnet_v1c_keys(backbone).items()}
    renames = (
        [
            ("decode_head.head.", "decode_head."),
            ("decode_head.scale_attention.", "scale_attention_head."),
        ]
        if cfg.multi_resolution
        else [("decode_head.", "decode_head.")]
    )
    for key, value in state.items():
        for old, new in renames:
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
    return out


def load_official_checkpoint(
    path_or_state_dict: str | Path | dict, which: str = "model", **overrides
) -> HRDASegmentor | Segmentor:
    """Build the segmentor of an official HRDA / DAFormer / MIC checkpoint and load its weights.

    Args:
        path_or_state_dict: a UDA training checkpoint, a published checkpoint, a bare segmentor
            state dict, or such a dict already in memory.
        which: `"model"` (the student, which the paper evaluates), `"ema_model"` / `"teacher"`,
            or `"imnet_model"`.
        **overrides: ModelConfig fields that the keys and embedded config cannot tell.

    Returns:
        The segmentor in eval mode with every key loaded (strict).
    """
    state, config_text = read_checkpoint(path_or_state_dict)
    segmentor_state = select_segmentor(state, which)
    cfg = infer_model_config(segmentor_state, config_text, **overrides)
    model = build_segmentor(cfg)
    converted = convert_segmentor_keys(segmentor_state, cfg)
    result = model.load_state_dict(converted, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint does not match the inferred {cfg}: missing {result.missing_keys[:8]}, "
            f"unexpected {result.unexpected_keys[:8]}"
        )
    return model.eval()


# -- our training checkpoints -----------------------------------------------------------------


def save_training_checkpoint(path: Path, cfg: ExperimentConfig, state: dict, rng: dict) -> None:
    """Write config, `TrainState.state_dict()` and the global RNG states to a temporary name
    and rename it over `path`, so a crash mid-write never leaves a broken `path`."""
    payload = {"format": TRAINING_FORMAT, "config": cfg, "state": state, "rng": rng}
    tmp = Path(path).with_suffix(Path(path).suffix + ".tmp")
    try:
        torch.save(payload, tmp)
    except BaseException as error:
        tmp.unlink(missing_ok=True)  # a full disk or an interrupt leaves no partial file
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise DiskFullError(
                errno.ENOSPC, f"disk full while writing {path}: free space on its drive"
            ) from None
        raise
    tmp.replace(path)


def _load_file(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # truncated, not a torch file, ...
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:120]}); the file may be truncated or of another kind"
        ) from None


def is_training_checkpoint(payload: object) -> bool:
    return isinstance(payload, dict) and str(payload.get("format", "")).startswith(
        "hrda_lib-train-"
    )


def read_training_checkpoint(path: str | Path) -> dict:
    """The payload of our training checkpoint at `path` (CheckpointError naming the file if it
    is not one)."""
    payload = _load_file(path)
    if not is_training_checkpoint(payload):
        raise CheckpointError(f"{path} is not a training checkpoint of hrda_lib.train")
    if payload["format"] != TRAINING_FORMAT:
        raise CheckpointError(
            f"{path} is a training checkpoint of an older hrda_lib ({payload['format']}): it "
            "can be loaded as a model (load_model) but not resumed"
        )
    return payload


def _segmentor_weights(payload: dict, which: str) -> dict:
    """The student or teacher weights of our training checkpoint (format v1 or v2)."""
    key = {"model": "model", "student": "model", "teacher": "teacher", "ema_model": "teacher"}
    if which not in key:
        raise ValueError(f"which must be model or teacher for a training checkpoint, not {which}")
    weights = payload.get("state", payload)[key[which]]
    if weights is None:
        raise CheckpointError(f"this run has no {which} (no self-training)")
    return weights


def load_model(path: str | Path, which: str = "model", **overrides) -> HRDASegmentor | Segmentor:
    """Any model file: our training checkpoint, an official HRDA / DAFormer / MIC checkpoint or
    a bare official segmentor state dict; the student (`"model"`) or the EMA teacher
    (`"teacher"`), in eval mode.

    Our checkpoints carry their config. An official file's architecture is inferred from its
    keys and its embedded config; a bare state dict has no config, so sizes that its keys cannot
    tell (the detail crop, the context scale) take the paper's values unless `overrides` give
    them (e.g. `detail_crop_size=(384, 384)`).
    """
    payload = _load_file(path)
    if is_training_checkpoint(payload):
        cfg = payload["config"].model
        if overrides:
            cfg = replace(cfg, **overrides)
        model = build_segmentor(cfg)
        model.load_state_dict(_segmentor_weights(payload, which))
        return model.eval()
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"{path} holds a {type(payload).__name__}, not a checkpoint (a dict of weights); "
            "save a model with torch.save(model.state_dict(), path) or use a training checkpoint"
        )
    try:
        return load_official_checkpoint(payload, which=which, **overrides)
    except CheckpointError as error:
        raise CheckpointError(
            f"{path} is neither a training checkpoint of hrda_lib nor an official HRDA / "
            f"DAFormer / MIC checkpoint: {error}"
        ) from None


def checkpoint_config(path: str | Path) -> ExperimentConfig | None:
    """The experiment config stored in our training checkpoint; None for an official file."""
    payload = _load_file(path)
    return payload["config"] if is_training_checkpoint(payload) else None
