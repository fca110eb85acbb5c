"""ImageNet weights for the encoders: SegFormer's `mit_b*.pth`, mmcv's `resnet101_v1c`, the
synthetic benchmark's stand-in (in SegFormer's layout), and SegFormer's MiT weights in the Hugging
Face `transformers` layout (`nvidia/mit-b0` ... `mit-b5`: a folder with `config.json` and
`model.safetensors` or `pytorch_model.bin`, or the hub id itself, fetched through
`huggingface_hub` and its cache; never at test time).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file as load_safetensors

from hrda_lib.checkpoints import CheckpointError, StateDict, read_checkpoint
from hrda_lib.encoders import convert_hf_segformer_keys, is_hf_segformer_state


@dataclass(frozen=True)
class LoadReport:
    """Keys that did not match when loading ImageNet weights into an encoder."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


# The weight files of a Hugging Face model folder, in the order `transformers` prefers them.
HF_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")
_CHECKPOINT_SUFFIXES = {".pth", ".pt", ".bin", ".ckpt", ".safetensors"}


def is_hub_id(text: str) -> bool:
    """Whether `text` reads as a Hugging Face hub id (`owner/name`, no checkpoint suffix)."""
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", text)) and (
        Path(text).suffix not in _CHECKPOINT_SUFFIXES
    )


def fetch_hub_model(repo_id: str) -> Path:
    """Download (or find in the local cache) the config and weights of hub model `repo_id`
    with `huggingface_hub`; returns the snapshot folder."""
    try:
        import huggingface_hub  # optional: only hub ids need it
    except ImportError:
        raise CheckpointError(
            f"{repo_id}: reading a Hugging Face hub id needs huggingface_hub "
            "(pip install huggingface_hub), or pass a local folder or file"
        ) from None
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, allow_patterns=["config.json", *HF_WEIGHT_FILES]
        )
    except (OSError, ValueError) as error:  # offline and not cached, unknown repo, bad id
        first_line = (str(error).splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"{repo_id}: cannot fetch it from the Hugging Face hub ({type(error).__name__}: "
            f"{first_line}); without network access, fetch it once elsewhere (it is cached under "
            "~/.cache/huggingface) or pass the path of a downloaded folder"
        ) from None
    return Path(folder)


def read_hf_folder(folder: Path) -> StateDict:
    """The weights of a Hugging Face Segformer folder: `config.json` (checked to be a
    Segformer's, when present) with `model.safetensors` or `pytorch_model.bin`."""
    config = folder / "config.json"
    if config.is_file():
        model_type = json.loads(config.read_text()).get("model_type")
        if model_type != "segformer":
            raise CheckpointError(
                f"{folder}: a Hugging Face {model_type!r} model; expected a Segformer / MiT "
                "(model_type 'segformer', e.g. nvidia/mit-b5)"
            )
    for name in HF_WEIGHT_FILES:
        if (folder / name).is_file():
            return read_weights_file(folder / name)
    raise CheckpointError(
        f"{folder}: a folder without {' or '.join(HF_WEIGHT_FILES)}; expected a Hugging Face "
        "model folder such as a download of nvidia/mit-b5"
    )


def read_weights_file(path: Path) -> StateDict:
    """A state dict from a `.safetensors` file or a plain PyTorch state dict file."""
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def read_imagenet_weights(source: str | Path | dict) -> StateDict:
    """The state dict of ImageNet encoder weights, Hugging Face keys already converted to
    SegFormer's (see `load_imagenet_encoder` for what `source` may be)."""
    if isinstance(source, str) and not Path(source).exists() and is_hub_id(source):
        source = fetch_hub_model(source)
    if isinstance(source, dict):
        state, _ = read_checkpoint(source)
    elif Path(source).is_dir():
        state = read_hf_folder(Path(source))
    elif Path(source).suffix == ".safetensors" and Path(source).is_file():
        state = read_weights_file(Path(source))
    else:
        state, _ = read_checkpoint(source)
    return convert_hf_segformer_keys(state) if is_hf_segformer_state(state) else state


def load_imagenet_encoder(
    encoder: torch.nn.Module, path_or_state_dict: str | Path | dict
) -> LoadReport:
    """Load ImageNet weights into an encoder: SegFormer's `mit_b*.pth`, mmcv's
    `resnet101_v1c`, or MiT weights in the Hugging Face layout.

    Args:
        encoder: a `MiTEncoder` or `ResNetV1cEncoder`.
        path_or_state_dict: a checkpoint file, a state dict in memory, a Hugging Face model
            folder (`config.json` + `model.safetensors` or `pytorch_model.bin`), or a hub id
            such as `"nvidia/mit-b5"` (a string that is not an existing path), fetched through
            `huggingface_hub` and its cache. Hugging Face keys (`[segformer.]encoder.block...`)
            are mapped to SegFormer's by `convert_hf_segformer_keys`.

    Key names are converted to timm's; the ImageNet classifier is ignored. Returns the keys that
    did not match (an empty report means every encoder weight was loaded).
    """
    state = read_imagenet_weights(path_or_state_dict)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    result = encoder.load_official_weights(state)
    return LoadReport(tuple(result.missing_keys), tuple(result.unexpected_keys))
