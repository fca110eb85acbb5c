"""Parity with the official HRDA code: the golden checkpoint must reproduce its recorded outputs.

Tolerance: 1e-4 max abs (the official code itself varies by ~1.5e-5 across thread counts).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from hrda_lib.checkpoints import load_official_checkpoint
from hrda_lib.golden import (
    RECORDED_TENSORS,
    load_golden_io,
    recompute_golden_tensors,
    reference_tensor,
)
from hrda_lib.inference import slide_inference
from hrda_lib.model import segmentation_loss
from hrda_lib.paths import REPO_ROOT
from hrda_lib.uda import pseudo_label_and_weight

ATOL = 1e-4
GOLDEN_COPY = REPO_ROOT / "tests" / "golden"  # the project's copy, whatever HRDA_GOLDEN says


@pytest.fixture(scope="module")
def golden(golden_dir: Path) -> dict:
    return load_golden_io(golden_dir)


@pytest.fixture(scope="module")
def model(golden_dir: Path):
    return load_official_checkpoint(golden_dir / "hrda_mitb0" / "checkpoint.pth")


@pytest.fixture(scope="module")
def ours(model, golden) -> dict:
    return recompute_golden_tensors(model, golden)


def test_inferred_architecture(model) -> None:
    cfg = model.cfg
    assert (cfg.encoder, cfg.head, cfg.attention) == ("mit_b0", "daformer_sepaspp", "classwise")
    assert cfg.detail_crop_size == (256, 256) and cfg.context_scale == 0.5
    assert sum(p.numel() for p in model.parameters()) == 7_300_230


@pytest.mark.parametrize("key", RECORDED_TENSORS)
def test_recorded_tensor(ours: dict, golden: dict, key: str) -> None:
    ref = reference_tensor(golden, key)
    assert ours[key].shape == ref.shape
    diff = (ours[key] - ref).abs().max().item()
    assert diff < ATOL, f"{key}: max abs diff {diff:.2e}"


def test_prediction_and_softmax_sums(ours: dict, golden: dict) -> None:
    # Argmax and class sums pin the full-resolution output that the fixture does not ship.
    assert torch.equal(ours["test_seg_pred"], golden["test_seg_pred"].long())
    sums = golden["test_softmax_class_sums"].double().flatten()
    assert torch.allclose(ours["test_softmax_class_sums"], sums, rtol=1e-5)


@pytest.mark.parametrize("case", ["no_weight", "with_seg_weight"])
def test_training_losses(model, ours, golden, golden_dir: Path, case: str) -> None:
    config = json.loads((golden_dir / "hrda_mitb0" / "config.json").read_text())
    ref = config["train_losses"][case]
    weight = golden["train_seg_weight"].float() if case == "with_seg_weight" else None
    losses = segmentation_loss(
        ours["train_output"], golden["train_gt"].long()[:, 0], model.cfg, weight
    )
    assert losses["fused"].item() == pytest.approx(ref["decode.loss_seg"], abs=1e-5)
    assert losses["detail"].item() == pytest.approx(ref["decode.hr.loss_seg"], abs=1e-5)


def test_pseudo_labels(ours: dict, golden: dict) -> None:
    label, weight = pseudo_label_and_weight(ours["pl_logits_fullres"], threshold=0.968)
    mismatch = (label != golden["pl_pseudo_label"].long()).float().mean().item()
    assert mismatch < 1e-4  # argmax ties under float noise only
    ref = golden["pl_pseudo_weight_scalar"].item()
    assert weight.flatten()[0].item() == pytest.approx(ref, abs=1e-4)


def test_bounded_batches_give_the_same_logits(model, golden: dict) -> None:
    image = golden["img"][..., :512]
    full = slide_inference(model, image, window=512, stride=256)
    bounded = slide_inference(model, image, window=512, stride=256, max_batch=2)
    assert (bounded - full).abs().max().item() < ATOL  # batch size changes float rounding only


def _tensor_hashes(golden_dir: Path) -> dict[str, str]:
    """SHA-256 of every tensor the compact copy holds, named as in its manifest."""
    extract = _load_extract()
    state = torch.load(golden_dir / "hrda_mitb0" / "checkpoint.pth", weights_only=False)
    io = torch.load(golden_dir / "hrda_mitb0" / "io.pt", weights_only=False)
    hashes = {f"checkpoint:{k}": extract.tensor_hash(v) for k, v in state["state_dict"].items()}
    hashes |= {f"io:{k}": extract.tensor_hash(v) for k, v in extract.flat_tensors(io, "").items()}
    return hashes


def _load_extract():
    spec = importlib.util.spec_from_file_location("extract", GOLDEN_COPY / "extract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_compact_copy_equals_what_the_official_code_recorded() -> None:
    """Every weight and recorded tensor of `tests/golden` hashes to what `extract.py` read from
    the official fixtures; where those are at hand (a folder of their layout named by
    `HRDA_OFFICIAL_GOLDEN`, e.g. `../shared/golden`) the copy is also compared with them
    directly. Nothing outside the clone is read unless asked."""
    manifest = json.loads((GOLDEN_COPY / "manifest.json").read_text())
    ours = _tensor_hashes(GOLDEN_COPY)
    assert ours == manifest["tensor_sha256"]
    assert len([k for k in ours if k.startswith("checkpoint:")]) == 250
    original = Path(os.environ.get("HRDA_OFFICIAL_GOLDEN", GOLDEN_COPY / "absent"))
    if (original / "hrda_mitb0" / "io.pt").is_file():
        extract = _load_extract()
        full = torch.load(original / "hrda_mitb0" / "checkpoint.pth", weights_only=False)
        copied = torch.load(GOLDEN_COPY / "hrda_mitb0" / "checkpoint.pth", weights_only=False)
        for key, value in copied["state_dict"].items():
            assert torch.equal(value, full["state_dict"][key]), key
        recorded = torch.load(original / "hrda_mitb0" / "io.pt", weights_only=False)
        copy = torch.load(GOLDEN_COPY / "hrda_mitb0" / "io.pt", weights_only=False)
        for key in extract.IO_KEYS:
            a, b = extract.flat_tensors(copy[key], key), extract.flat_tensors(recorded[key], key)
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), key
