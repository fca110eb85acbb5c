"""Evaluating an official checkpoint with a preset: the keys decide the architecture (decoder
width included), the embedded config, then the preset, then the paper's defaults fill the rest,
and the command says what it assumed from where and where the keys overrule the preset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from hrda_lib import evaluate
from hrda_lib.checkpoints import read_checkpoint, select_segmentor
from hrda_lib.official_config import infer_official_config
from hrda_lib.presets import get_preset

SMOKE = "smoke_hrda"  # its data: the tiny synthetic set


@pytest.fixture
def official(golden_dir: Path) -> Path:
    return golden_dir / "hrda_mitb0" / "checkpoint.pth"


@pytest.fixture
def bare(official: Path, tmp_path: Path) -> Path:
    """The golden checkpoint as a bare mmseg state dict: no `meta` (no config), no `model.`."""
    state, _ = read_checkpoint(official)
    path = tmp_path / "bare" / "segmentor.pth"
    path.parent.mkdir()
    torch.save(select_segmentor(state), path)
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_root: Path) -> Path:
    """HRDA_DATA holding the tiny synthetic set, HRDA_RESULTS in tmp_path; returns the latter."""
    shutil.copytree(tiny_root, tmp_path / "data" / "synthetic_tiny_s0")
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HRDA_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


def _evaluate(checkpoint: Path, results: Path, capsys) -> tuple[list[str], dict]:
    evaluate.main([str(checkpoint), "--preset", SMOKE, "--max-images", "1", "--save-images", "0"])
    lines = capsys.readouterr().out.splitlines()
    summary = results / "eval" / checkpoint.parent.name / "summary.json"
    return lines, json.loads(summary.read_text())


def test_bare_state_dict_takes_what_keys_cannot_tell_from_the_preset(
    bare: Path, env: Path, capsys
) -> None:
    lines, summary = _evaluate(bare, env, capsys)
    assumed = (
        f"assumed from preset {SMOKE}: detail_crop_size=(32, 32), context_scale=0.5, "
        "detail_slide_overlapping=True, blur_detail=False, detail_loss_weight=0.1, "
        "context_loss_weight=0.0"
    )
    overruled = f"the checkpoint's keys overrule preset {SMOKE}: decoder_channels=256 (not 32)"
    assert lines[:2] == [assumed, overruled]
    assert summary["assumed"] == assumed and summary["overruled"] == overruled
    assert 0 <= summary["mIoU"] <= 100


def test_full_checkpoint_takes_them_from_its_embedded_config(
    official: Path, env: Path, capsys
) -> None:
    lines, summary = _evaluate(official, env, capsys)
    assert lines[0].startswith(
        "assumed from the checkpoint's config: detail_crop_size=(256, 256), context_scale=0.5"
    )
    assert lines[1] == (
        f"the checkpoint's keys overrule preset {SMOKE}: decoder_channels=256 (not 32); "
        f"the checkpoint's config overrules preset {SMOKE}: detail_crop_size=(256, 256) "
        "(not (32, 32))"
    )
    assert summary["assumed"] == lines[0] and 0 <= summary["mIoU"] <= 100


def test_decoder_width_comes_from_the_keys(official: Path, golden_dir: Path) -> None:
    golden = json.loads((golden_dir / "hrda_mitb0" / "config.json").read_text())
    width = golden["model_cfg"]["decode_head"]["decoder_params"]["embed_dims"]
    state, _ = read_checkpoint(official)
    narrow = get_preset(SMOKE).model  # decoder_channels 32: the keys must win
    inferred = infer_official_config(select_segmentor(state), "", narrow, f"preset {SMOKE}")
    assert narrow.decoder_channels != width
    assert inferred.model.decoder_channels == width == 256


def test_keys_overrule_a_preset_of_another_encoder(official: Path) -> None:
    state, text = read_checkpoint(official)
    paper = get_preset("gta_to_cityscapes_hrda").model  # MiT-b5
    inferred = infer_official_config(select_segmentor(state), text, paper, "preset paper")
    assert inferred.model.encoder == "mit_b0"
    assert inferred.overrule_line().startswith(
        "the checkpoint's keys overrule preset paper: encoder='mit_b0' (not 'mit_b5')"
    )
    assert "\n" not in inferred.overrule_line()


def test_deeplabv2_keys_leave_the_decoder_width_to_the_fallback() -> None:
    state = {
        "backbone.stem.0.weight": torch.empty(32, 3, 3, 3),
        "decode_head.head.aspp_modules.0.weight": torch.empty(19, 2048, 3, 3),
        "decode_head.scale_attention.aspp_modules.0.weight": torch.empty(1, 2048, 3, 3),
    }
    fallback = get_preset(SMOKE).model
    inferred = infer_official_config(state, "", fallback, f"preset {SMOKE}")
    cfg = inferred.model
    assert (cfg.encoder, cfg.head, cfg.attention) == ("resnet101_v1c", "dlv2", "single")
    assert cfg.decoder_channels == fallback.decoder_channels
    assert set(inferred.overruled) == {"encoder", "head", "attention"}
    single_scale = {
        "backbone.stem.0.weight": torch.empty(32, 3, 3, 3),
        "decode_head.aspp_modules.0.weight": torch.empty(19, 2048, 3, 3),
    }
    assert infer_official_config(single_scale).assumption_line().startswith("assumed nothing")
