"""SegFormer's MiT weights in the Hugging Face `transformers` layout (`nvidia/mit-b*`): key
conversion (`encoders.convert_hf_segformer_keys`) and loading
(`imagenet_weights.load_imagenet_encoder`) checked against transformers' own Segformer forward
pass, offline, on random weights."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hrda_lib import imagenet_weights
from hrda_lib.checkpoints import CheckpointError
from hrda_lib.encoders import MiTEncoder, convert_hf_segformer_keys
from hrda_lib.imagenet_weights import load_imagenet_encoder

transformers = pytest.importorskip("transformers")


def _mit_b0_config():
    """transformers' Segformer config with MiT-b0's sizes (SegFormer, Xie et al. 2021)."""
    return transformers.SegformerConfig(
        num_encoder_blocks=4,
        depths=[2, 2, 2, 2],
        hidden_sizes=[32, 64, 160, 256],
        sr_ratios=[8, 4, 2, 1],
        num_attention_heads=[1, 2, 5, 8],
        mlp_ratios=[4, 4, 4, 4],
    )


# transformers' Segformer builds the block and stage LayerNorms with PyTorch's default eps 1e-5;
# SegFormer's MiT (and timm's pvt_v2, ours) use 1e-6 there, a difference of up to ~2e-5 in the
# features. The reference is given SegFormer's eps so that only the weights are compared.
_MIT_EPS_NORMS = re.compile(
    r"(layernorm_before|layernorm_after|layer_norm_1|layer_norm_2"  # block norms (v5 | v4 names)
    r"|stages\.\d+\.layer_norm|encoder\.layer_norm\.\d+)$"  # stage norms (v5 | v4 names)
)


@pytest.fixture(scope="module")
def hf_model():
    """A randomly initialized transformers `SegformerModel` of MiT-b0 size, in eval mode, with
    SegFormer's LayerNorm eps 1e-6 in the blocks and after each stage."""
    torch.manual_seed(0)
    model = transformers.SegformerModel(_mit_b0_config()).eval()
    norms = [m for n, m in model.named_modules() if _MIT_EPS_NORMS.search(n)]
    assert len(norms) == 2 * 8 + 4  # two per block (8 blocks), one per stage
    for norm in norms:
        norm.eps = 1e-6
    return model


def _assert_same_features(encoder: MiTEncoder, hf_model) -> None:
    """Our four stage maps equal transformers' hidden states on one random 64x64 image."""
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = encoder.eval()(image)  # 4 maps (1, C_i, 64 / 4·2^i, ...)
        theirs = hf_model(pixel_values=image, output_hidden_states=True).hidden_states
    assert len(ours) == len(theirs) == 4
    for stage, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == b.shape == (1, (32, 64, 160, 256)[stage], 16 >> stage, 16 >> stage)
        assert (a - b).abs().max().item() <= 1e-5, stage


def test_hf_safetensors_folder_loads_into_mit_b0_and_matches_transformers(
    hf_model, tmp_path: Path
) -> None:
    hf_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    encoder = MiTEncoder("mit_b0")
    report = load_imagenet_encoder(encoder, tmp_path)
    assert report.ok, report
    _assert_same_features(encoder, hf_model)


def test_hf_pytorch_model_bin_folder_loads_the_same(hf_model, tmp_path: Path) -> None:
    hf_model.save_pretrained(tmp_path, safe_serialization=False)
    if not (tmp_path / "pytorch_model.bin").is_file():  # transformers >= 5 writes safetensors only
        state = load_file(tmp_path / "model.safetensors")
        torch.save(state, tmp_path / "pytorch_model.bin")
        (tmp_path / "model.safetensors").unlink()
    encoder = MiTEncoder("mit_b0")
    report = load_imagenet_encoder(encoder, tmp_path)
    assert report.ok, report
    _assert_same_features(encoder, hf_model)


def test_hf_image_classifier_folder_drops_the_classifier(hf_model, tmp_path: Path) -> None:
    """`nvidia/mit-b*` are `SegformerForImageClassification`: keys under `segformer.`."""
    classifier = transformers.SegformerForImageClassification(_mit_b0_config())
    classifier.segformer.load_state_dict(hf_model.state_dict())
    classifier.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert any(k.startswith("segformer.encoder.block.") for k in saved)
    assert any(k.startswith("classifier.") for k in saved)
    encoder = MiTEncoder("mit_b0")
    assert load_imagenet_encoder(encoder, str(tmp_path)).ok
    _assert_same_features(encoder, hf_model)


def test_converted_keys_are_segformers_official_names(
    hf_model, golden_dir: Path, tmp_path: Path
) -> None:
    """Against the key names and shapes of the official `mit_b0.pth` (golden fixture)."""
    official = json.loads((golden_dir / "mitb_keys.json").read_text())["models"]["mit_b0"]
    expected = {name: tuple(shape) for name, shape, _, _ in official["keys"]}
    expected = {k: v for k, v in expected.items() if not k.startswith("head.")}
    hf_model.save_pretrained(tmp_path)
    converted = convert_hf_segformer_keys(load_file(tmp_path / "model.safetensors"))
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected


def test_key_and_value_are_concatenated_key_first() -> None:
    key, value = torch.full((4, 4), 1.0), torch.full((4, 4), 2.0)
    state = {
        "segformer.encoder.block.1.0.attention.self.key.weight": key,
        "segformer.encoder.block.1.0.attention.self.value.weight": value,
        "segformer.encoder.block.1.0.attention.self.query.bias": torch.zeros(4),
        "segformer.encoder.patch_embeddings.3.layer_norm.weight": torch.ones(4),
        "segformer.encoder.layer_norm.2.bias": torch.zeros(4),
        "classifier.weight": torch.zeros(10, 4),
    }
    out = convert_hf_segformer_keys(state)
    assert sorted(out) == [
        "block2.0.attn.kv.weight",
        "block2.0.attn.q.bias",
        "norm3.bias",
        "patch_embed4.norm.weight",
    ]
    torch.testing.assert_close(out["block2.0.attn.kv.weight"], torch.cat([key, value]))


def test_hub_ids_are_told_apart_from_paths() -> None:
    assert imagenet_weights.is_hub_id("nvidia/mit-b0")
    assert not imagenet_weights.is_hub_id("pretrained/mit_b5.pth")
    assert not imagenet_weights.is_hub_id("mit_b5.pth")
    assert not imagenet_weights.is_hub_id("/abs/nvidia/mit-b0")


def test_hub_id_without_huggingface_hub_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails, no network
    with pytest.raises(CheckpointError, match="needs huggingface_hub"):
        load_imagenet_encoder(MiTEncoder("mit_b0"), "nvidia/mit-b0")


def test_unreachable_hub_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")

    def offline(*args, **kwargs):  # what snapshot_download raises offline, uncached
        raise huggingface_hub.errors.LocalEntryNotFoundError("cannot reach the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError, match="nvidia/mit-b0: cannot fetch it from the Hugging"):
        load_imagenet_encoder(MiTEncoder("mit_b0"), "nvidia/mit-b0")


def test_a_folder_of_another_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="'bert' model"):
        load_imagenet_encoder(MiTEncoder("mit_b0"), tmp_path)
