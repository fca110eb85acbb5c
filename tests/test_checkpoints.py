"""Checkpoint loading: official key layouts of MiT b0..b5, the UDA wrapper, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hrda_lib.checkpoints import (
    CheckpointError,
    load_model,
    load_official_checkpoint,
    read_checkpoint,
    select_segmentor,
)
from hrda_lib.encoders import MiTEncoder, ResNetV1cEncoder, convert_mit_keys, infer_mit_variant
from hrda_lib.imagenet_weights import load_imagenet_encoder


@pytest.fixture(scope="module")
def mit_keys(golden_dir: Path) -> dict:
    return json.loads((golden_dir / "mitb_keys.json").read_text())["models"]


@pytest.mark.parametrize("variant", ["mit_b0", "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5"])
def test_official_mit_keys_map_onto_the_encoder(mit_keys: dict, variant: str) -> None:
    spec = mit_keys[variant]
    official = {name: torch.empty(shape) for name, shape, _, _ in spec["keys"]}
    assert infer_mit_variant(official) == variant
    ours = MiTEncoder(variant).mit.state_dict()
    converted = convert_mit_keys(official)
    assert set(converted) == set(ours)
    assert all(tuple(converted[k].shape) == tuple(ours[k].shape) for k in ours)
    assert sum(v.numel() for v in converted.values()) == spec["n_params"]


def test_segformer_imagenet_weights_load_with_a_report(mit_keys: dict, tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    official = {n: torch.randn(s, generator=gen) for n, s, _, _ in mit_keys["mit_b0"]["keys"]}
    official["head.weight"] = torch.randn(1000, 256)  # the ImageNet classifier is ignored
    path = tmp_path / "mit_b0.pth"
    torch.save(official, path)
    encoder = MiTEncoder("mit_b0")
    report = load_imagenet_encoder(encoder, path)
    assert report.ok
    loaded = encoder.mit.state_dict()["stages.2.blocks.1.mlp.dwconv.weight"]
    assert torch.equal(loaded, official["block3.1.mlp.dwconv.dwconv.weight"])
    del official["block4.1.mlp.fc2.bias"]
    report = load_imagenet_encoder(MiTEncoder("mit_b0"), official)
    assert report.missing == ("stages.3.blocks.1.mlp.fc2.bias",)


def test_resnet_v1c_keys_convert_from_mmcv_names() -> None:
    encoder = ResNetV1cEncoder()
    timm_keys = encoder.resnet.state_dict()
    inverse = {
        "conv1.0.": "stem.0.",
        "conv1.1.": "stem.1.",
        "conv1.3.": "stem.3.",
        "conv1.4.": "stem.4.",
        "conv1.6.": "stem.6.",
        "bn1.": "stem.7.",
    }
    mmcv = {}
    for key, value in timm_keys.items():
        for new, old in inverse.items():
            if key.startswith(new):
                key = old + key[len(new) :]
                break
        mmcv[key] = value.clone() + 1
    mmcv["fc.weight"] = torch.zeros(1000, 2048)
    assert load_imagenet_encoder(encoder, {"state_dict": mmcv}).ok
    assert torch.equal(encoder.resnet.state_dict()["bn1.weight"], mmcv["stem.7.weight"])


def test_uda_checkpoint_student_teacher_and_bare(golden_dir: Path, tmp_path: Path) -> None:
    published, text = read_checkpoint(golden_dir / "hrda_mitb0" / "checkpoint.pth")
    assert "hr_crop_size" in text and len(published) == 250  # a published file: `model.` only
    # A UDA training checkpoint holds the student, the EMA teacher and the ImageNet model.
    weights = {k[len("model.") :]: v for k, v in published.items()}
    uda = {
        f"{prefix}.{k}": v
        for prefix in ("model", "ema_model", "imnet_model")
        for k, v in weights.items()
    }
    path = tmp_path / "uda.pth"
    torch.save({"meta": {"config": text}, "state_dict": uda}, path)
    state, _ = read_checkpoint(path)
    assert len(state) == 750
    student = load_official_checkpoint(path)
    teacher = load_official_checkpoint(path, which="teacher")
    bare = load_official_checkpoint(select_segmentor(state, "model"), detail_crop_size=(256, 256))
    for other in (teacher, bare):
        for (name, a), (_, b) in zip(
            student.state_dict().items(), other.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), name
    # Without the embedded config the paper's defaults apply unless overridden.
    assert load_official_checkpoint(select_segmentor(state)).cfg.detail_crop_size == (512, 512)


def test_wrong_files_get_clear_errors(tmp_path: Path, golden_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_official_checkpoint(tmp_path / "missing.pth")
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "cls.pth")
    with pytest.raises(CheckpointError, match="expected an mmseg segmentor"):
        load_official_checkpoint(tmp_path / "cls.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_official_checkpoint(tmp_path / "list.pth")
    state, _ = read_checkpoint(golden_dir / "hrda_mitb0" / "checkpoint.pth")  # published
    published = {k: v for k, v in state.items() if k.startswith("model.")}
    with pytest.raises(CheckpointError, match="published checkpoint keeps only"):
        load_official_checkpoint(published, which="teacher")


@pytest.mark.parametrize("content", [b"", b"not a torch file", "truncated"])
def test_an_unreadable_file_is_one_error_naming_it(content, tmp_path) -> None:
    """Not only `load_model`: the official loader and the ImageNet loader read through
    `read_checkpoint`, which must not let torch's own error through."""
    if content == "truncated":
        torch.save({"state_dict": {"x": torch.zeros(1000)}}, tmp_path / "good.pth")
        content = (tmp_path / "good.pth").read_bytes()[:200]
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pth: not a readable PyTorch checkpoint"):
        read_checkpoint(path)
    torch.save([1, 2], path)  # a torch file, but not a checkpoint
    with pytest.raises(CheckpointError, match="bad.pth: expected a dict checkpoint, got list"):
        read_checkpoint(path)


class _RunsCode:
    """A pickled object whose loading would create `marker`: what an untrusted file can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_file_with_pickled_objects_is_refused_before_it_runs_code(tmp_path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "foreign.pth"
    torch.save({"state_dict": {"x": torch.zeros(2)}, "extra": _RunsCode(marker)}, path)
    for read in (read_checkpoint, load_model):
        with pytest.raises(CheckpointError, match="foreign.pth holds pickled Python objects"):
            read(path)
    assert not marker.exists()  # weights_only=True: nothing in the file ran
