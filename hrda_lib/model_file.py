"""A trained model as a small file to share or commit: the student's weights in fp16 and the
experiment's config as plain values (no pickled objects, so `torch.load(weights_only=True)`
reads it and it runs no code), with free-form notes (the command that made it).

    save_model_file("model.pth", model, cfg, command="python -m ...")
    load_model("model.pth")   # hrda_lib.checkpoints reads it like any other model file

fp16 halves the file against fp32; the weights are cast back to fp32 on loading, and a model
loaded from the file predicts as the fp32 one up to fp16 rounding (what that costs in mIoU is
measured where such files are made: `hrda_lib.reproduction.trained`).
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from hrda_lib.config import ExperimentConfig, config_from_dict, config_to_plain
from hrda_lib.files import atomic_write_bytes

MODEL_FORMAT = "hrda_lib-model-v1"


def save_model_file(
    path: str | Path, model: torch.nn.Module, cfg: ExperimentConfig, **notes: str
) -> Path:
    """Write `model`'s weights (floating point ones in fp16) and `cfg` to `path` atomically
    (its folder is made if missing)."""
    weights = {
        k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()
        for k, v in model.state_dict().items()
    }
    payload = {
        "format": MODEL_FORMAT,
        "config": config_to_plain(cfg),
        "weights": weights,
        "notes": {k: str(v) for k, v in notes.items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def is_model_file(payload: object) -> bool:
    return isinstance(payload, dict) and payload.get("format") == MODEL_FORMAT


def model_file_config(payload: dict) -> ExperimentConfig:
    return config_from_dict(ExperimentConfig, payload["config"])


def model_file_weights(payload: dict) -> dict[str, torch.Tensor]:
    """The weights in fp32 (integer buffers as stored)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in payload["weights"].items()}
