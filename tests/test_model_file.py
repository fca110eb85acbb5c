"""The fp16 model file (`hrda_lib.model_file`) and the trained models committed with it."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from hrda_lib import presets
from hrda_lib.checkpoints import CheckpointError, checkpoint_config, load_model
from hrda_lib.model import build_segmentor
from hrda_lib.model_file import save_model_file
from hrda_lib.paths import REPO_ROOT
from hrda_lib.reproduction.catalogue import get_profile, row_config
from hrda_lib.reproduction.runs import finished_run_dir, model_for_views
from hrda_lib.reproduction.trained import PROFILE, SEED, TRAINED


def test_a_model_file_loads_without_pickled_objects_and_predicts_as_the_model(tmp_path) -> None:
    cfg = presets.get_preset("smoke_hrda")
    torch.manual_seed(0)
    model = build_segmentor(cfg.model).eval()
    path = save_model_file(tmp_path / "model.pth", model, cfg, command="a test")
    payload = torch.load(path, map_location="cpu", weights_only=True)  # no code runs
    assert payload["notes"] == {"command": "a test"}
    assert all(v.dtype != torch.float32 for v in payload["weights"].values())
    assert checkpoint_config(path) == cfg
    loaded = load_model(path)
    image = torch.randn(1, 3, *cfg.data.source_pipeline.crop_size)
    with torch.no_grad():
        ours, theirs = model.encode_decode(image), loaded.encode_decode(image)
    assert torch.allclose(ours, theirs, atol=1e-2), (ours - theirs).abs().max()
    with pytest.raises(CheckpointError, match="student only"):
        load_model(path, which="teacher")


@pytest.mark.parametrize(("stem", "key"), TRAINED)
def test_the_committed_trained_models_are_what_their_manifest_says(stem: str, key: str) -> None:
    cfg = row_config(get_profile(PROFILE), key, SEED)
    folder = REPO_ROOT / "results" / stem / "runs" / f"{cfg.name}_seed{SEED}"
    manifest = json.loads((folder / "manifest.json").read_text())
    data = (folder / "model.pth").read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert len(data) < 10e6  # small enough to commit
    assert len(manifest["val_log_retrained"]) == len(manifest["val_log_committed"])
    assert manifest["val_log_max_difference"] < 1.0  # the same run, up to CPU float order
    assert abs(manifest["val_miou_fp16_file"] - manifest["val_miou_fp32"]) < 0.5
    assert finished_run_dir(cfg, [folder.parent]) == folder  # the notebooks reuse it
    assert checkpoint_config(folder / "model.pth") == cfg


def test_the_views_show_the_committed_hrda_on_a_fresh_clone(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HRDA_RESULTS", raising=False)
    monkeypatch.setenv("HRDA_SCRATCH", str(tmp_path))
    _, note = model_for_views(PROFILE, SEED)
    assert note.startswith("trained:") and "03_scale_attention" in note


def test_the_docs_state_the_manifests_numbers() -> None:
    text = " ".join((REPO_ROOT / "docs" / "reproduce.md").read_text().split())
    for stem, key in TRAINED:
        cfg = row_config(get_profile(PROFILE), key, SEED)
        folder = REPO_ROOT / "results" / stem / "runs" / f"{cfg.name}_seed{SEED}"
        manifest = json.loads((folder / "manifest.json").read_text())
        for field in ("val_miou_fp32", "val_miou_fp16_file", "val_log_max_difference"):
            assert f"{manifest[field]:.2f}" in text, (stem, field, manifest[field])
