"""Model files: our training checkpoints, the official HRDA / DAFormer / MIC checkpoints, and
`load_model`, the one loader for any of them (ImageNet encoder weights: `imagenet_weights`).

Our training checkpoint (`save_training_checkpoint`) holds the experiment's config, the whole
`step.TrainState` (student, teacher, optimizer, generators, ...) and the global RNG states, so a
run resumes exactly. Every file is read with `torch.load(weights_only=True)`: tensors and plain
values only, so a file from elsewhere cannot run code; ours hold nothing else (the config as
plain values since format v3; v2's config dataclasses are allowed by name).

The official UDA checkpoints (mmseg 0.16 format, reference spec 1.3) hold the student under
`model.`, the EMA teacher under `ema_model.` and the ImageNet copy under `imnet_model.`; a
published one keeps only `model.`; a bare segmentor state dict has `backbone.*` and
`decode_head.*`. The architecture is inferred from the keys (MiT size or ResNet, DAFormer or
DeepLabV2 head and its width, HRDA with classwise, single-channel or fixed attention); what keys
cannot tell (detail crop, context scale, loss weights, detail-window overlap, blur, the fixed
attention value) comes from the checkpoint's embedded config text when it has one, else from a
fallback config the caller names (a preset), else from the paper's defaults
(`official_config`). Any `ModelConfig` field can be overridden.
"""

from __future__ import annotations

import errno
import pickle
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hrda_lib.alignment import AdversarialConfig
from hrda_lib.config import (
    DataConfig,
    ExperimentConfig,
    MICConfig,
    ModelConfig,
    UDAConfig,
    config_from_dict,
    config_to_plain,
)
from hrda_lib.encoders import convert_mit_keys, convert_resnet_v1c_keys
from hrda_lib.errors import UsageError
from hrda_lib.files import DiskFullError
from hrda_lib.model import HRDASegmentor, Segmentor, build_segmentor
from hrda_lib.model_file import is_model_file, model_file_config, model_file_weights
from hrda_lib.official_config import CheckpointError, InferredConfig, infer_official_config
from hrda_lib.optim import OptimizerConfig
from hrda_lib.rcs import RCSConfig
from hrda_lib.shade import SHADEConfig
from hrda_lib.transforms import PipelineConfig

# v1 kept each TrainState field under its own key; v2 pickled the config dataclasses and numpy's
# RNG state (read with those classes allowed, `_V2_CLASSES`); v3 holds plain values only.
TRAINING_FORMAT = "hrda_lib-train-v3"
RESUMABLE_FORMATS = ("hrda_lib-train-v2", TRAINING_FORMAT)
_numpy_core = getattr(np, "_core", None) or np.core
# What a v2 checkpoint pickled besides tensors: our config dataclasses (plain data, nothing runs
# when they are rebuilt) and numpy's global RNG state (a uint32 array).
_V2_CLASSES = (
    ExperimentConfig,
    ModelConfig,
    DataConfig,
    UDAConfig,
    MICConfig,
    PipelineConfig,
    RCSConfig,
    OptimizerConfig,
    AdversarialConfig,
    SHADEConfig,
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
    _numpy_core.multiarray._reconstruct,
)

StateDict = dict[str, torch.Tensor]
_WHICH = {
    "model": "model.",
    "student": "model.",
    "ema_model": "ema_model.",
    "teacher": "ema_model.",
    "imnet_model": "imnet_model.",
}


def read_checkpoint(path_or_state_dict: str | Path | dict) -> tuple[StateDict, str]:
    """Return (state dict, embedded config text or "") of a file or an in-memory checkpoint."""
    if isinstance(path_or_state_dict, dict):
        ckpt = path_or_state_dict
    else:
        ckpt = _load_file(path_or_state_dict)  # one line naming the file if it is unreadable
    if not isinstance(ckpt, dict):
        where = "" if isinstance(path_or_state_dict, dict) else f"{path_or_state_dict}: "
        raise CheckpointError(f"{where}expected a dict checkpoint, got {type(ckpt).__name__}")
    config_text = ""
    if isinstance(ckpt.get("meta"), dict):
        config_text = str(ckpt["meta"].get("config", ""))
    state = ckpt.get("state_dict", ckpt.get("model", ckpt))
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        where = "the checkpoint" if isinstance(path_or_state_dict, dict) else path_or_state_dict
        raise CheckpointError(f"{where} holds no state dict of tensors")
    return {re.sub(r"^module\.", "", k): v for k, v in state.items()}, config_text


def select_segmentor(state: StateDict, which: str = "model") -> StateDict:
    """Pick the student/teacher/ImageNet segmentor out of a UDA checkpoint, or pass a bare one."""
    if which not in _WHICH:
        raise UsageError(f"which must be one of {sorted(_WHICH)}, not {which!r}")
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
    return _load_official(path_or_state_dict, which, None, "", overrides)[0]


def _load_official(
    path_or_state_dict: str | Path | dict,
    which: str,
    fallback: ModelConfig | None,
    fallback_name: str,
    overrides: dict,
) -> tuple[HRDASegmentor | Segmentor, InferredConfig]:
    state, config_text = read_checkpoint(path_or_state_dict)
    segmentor_state = select_segmentor(state, which)
    inferred = infer_official_config(
        segmentor_state, config_text, fallback, fallback_name, **overrides
    )
    model = build_segmentor(inferred.model)
    converted = convert_segmentor_keys(segmentor_state, inferred.model)
    result = model.load_state_dict(converted, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint does not match the inferred {inferred.model}: missing "
            f"{result.missing_keys[:8]}, unexpected {result.unexpected_keys[:8]}"
        )
    return model.eval(), inferred


# -- our training checkpoints -----------------------------------------------------------------


def save_training_checkpoint(path: Path, cfg: ExperimentConfig, state: dict, rng: dict) -> None:
    """Write config, `TrainState.state_dict()` and the global RNG states to a temporary name
    and rename it over `path`, so a crash mid-write never leaves a broken `path`."""
    payload = {
        "format": TRAINING_FORMAT,
        "config": config_to_plain(cfg),
        "state": state,
        "rng": rng,
    }
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
        with torch.serialization.safe_globals(list(_V2_CLASSES)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if any(sign in str(error) for sign in PICKLED_OBJECTS):
            raise CheckpointError(
                f"{path} holds pickled Python objects besides tensors, which loading would run "
                "as code (torch.load(weights_only=True) refused it); if you trust the file, load "
                "it yourself with weights_only=False and save its state dict with torch.save"
            ) from None
        raise _unreadable(path, error) from None
    except Exception as error:  # truncated, empty, not a torch file, ...
        raise _unreadable(path, error) from None


# How torch's weights-only unpickler says that a file holds a class or function it refuses.
PICKLED_OBJECTS = ("Unsupported global", "allowlist", "Can only build")


def _unreadable(path: Path, error: Exception) -> CheckpointError:
    first = (str(error).strip().splitlines() or [""])[0][:120]
    return CheckpointError(
        f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {first}); the file "
        "may be truncated or of another kind"
    )


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
    if payload["format"] not in RESUMABLE_FORMATS:
        raise CheckpointError(
            f"{path} is a training checkpoint of an older hrda_lib ({payload['format']}): it "
            "can be loaded as a model (load_model) but not resumed"
        )
    return payload | {"config": _experiment_config(payload)}


def _experiment_config(payload: dict) -> ExperimentConfig:
    """The config of our training checkpoint or model file."""
    if is_model_file(payload):
        return model_file_config(payload)
    config = payload["config"]
    return (
        config
        if isinstance(config, ExperimentConfig)
        else config_from_dict(ExperimentConfig, config)
    )


def _segmentor_weights(payload: dict, which: str) -> dict:
    """The student or teacher weights of our training checkpoint (any format)."""
    key = {"model": "model", "student": "model", "teacher": "teacher", "ema_model": "teacher"}
    if which not in key:
        raise UsageError(f"which must be model or teacher for a training checkpoint, not {which}")
    weights = payload.get("state", payload)[key[which]]
    if weights is None:
        raise CheckpointError(f"this run has no {which} (no self-training)")
    return weights


def load_model(path: str | Path, which: str = "model", **overrides) -> HRDASegmentor | Segmentor:
    """Any model file: our training checkpoint or model file (`model_file`), an official HRDA /
    DAFormer / MIC checkpoint or a bare official segmentor state dict; the student (`"model"`)
    or the EMA teacher (`"teacher"`), in eval mode.

    Our checkpoints carry their config. An official file's architecture is inferred from its
    keys and its embedded config; a bare state dict has no config, so sizes that its keys cannot
    tell (the detail crop, the context scale) take the paper's values unless `overrides` give
    them (e.g. `detail_crop_size=(384, 384)`); `load_model_and_assumptions` takes them from a
    preset instead and says what it assumed.
    """
    return load_model_and_assumptions(path, which, **overrides)[0]


def load_model_and_assumptions(
    path: str | Path,
    which: str = "model",
    fallback: ModelConfig | None = None,
    fallback_name: str = "",
    **overrides,
) -> tuple[HRDASegmentor | Segmentor, InferredConfig | None]:
    """`load_model`, and for an official file what was assumed and from where.

    Args:
        path: our training checkpoint or an official one.
        which: `"model"` (student) or `"teacher"`.
        fallback: the model config (a preset's) that fills what an official file's keys and
            embedded config cannot tell; ignored for our checkpoints, which carry their own.
        fallback_name: how messages name it ("preset synthetic_hrda").
        **overrides: ModelConfig fields, above everything else.

    Returns:
        The model in eval mode, and its `InferredConfig` (None for our training checkpoint).
    """
    payload = _load_file(path)
    if is_training_checkpoint(payload) or is_model_file(payload):
        ours = is_training_checkpoint(payload)
        cfg = _experiment_config(payload).model
        model = build_segmentor(replace(cfg, **overrides))
        if not ours and which not in ("model", "student"):
            raise CheckpointError(f"{path} is a model file: it holds the student only")
        weights = _segmentor_weights(payload, which) if ours else model_file_weights(payload)
        model.load_state_dict(weights)
        return model.eval(), None
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"{path} holds a {type(payload).__name__}, not a checkpoint (a dict of weights); "
            "save a model with torch.save(model.state_dict(), path) or use a training checkpoint"
        )
    try:
        return _load_official(payload, which, fallback, fallback_name, overrides)
    except CheckpointError as error:
        raise CheckpointError(
            f"{path} is neither a training checkpoint of hrda_lib nor an official HRDA / "
            f"DAFormer / MIC checkpoint: {error}"
        ) from None


def checkpoint_config(path: str | Path) -> ExperimentConfig | None:
    """The experiment config stored in our training checkpoint or model file; None for an
    official file."""
    payload = _load_file(path)
    ours = is_model_file(payload) or is_training_checkpoint(payload)
    return _experiment_config(payload) if ours else None
