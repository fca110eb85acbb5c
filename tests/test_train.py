"""Training: every preset builds, smoke runs finish, resume is exact, bad losses stop cleanly."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hrda_lib import step as step_module
from hrda_lib import train as train_module
from hrda_lib.checkpoints import load_model
from hrda_lib.config import ExperimentConfig, apply_overrides, config_from_dict, with_iters
from hrda_lib.evaluate import evaluate, target_val_dataset
from hrda_lib.evaluate import main as evaluate_main
from hrda_lib.guards import DivergedError
from hrda_lib.model import build_segmentor
from hrda_lib.presets import get_preset, list_presets
from hrda_lib.step import build_state
from hrda_lib.train import train


@pytest.fixture(scope="module", autouse=True)
def tiny_data(tmp_path_factory: pytest.TempPathFactory):
    """Point HRDA_DATA at a fresh folder; the first run generates the tiny benchmark there."""
    patch = pytest.MonkeyPatch()
    patch.setenv("HRDA_DATA", str(tmp_path_factory.mktemp("data")))
    yield
    patch.undo()


def test_every_preset_builds() -> None:
    names = list_presets()
    assert len(names) == len(set(names)) > 40
    for name in names:
        cfg = get_preset(name)
        assert cfg.name == name and cfg.optimizer.max_iters == cfg.iters
    for name in ("gta_to_cityscapes_hrda", "gta_to_cityscapes_hrda_deeplabv2"):
        model = build_segmentor(get_preset(name).model)
        assert sum(p.numel() for p in model.parameters()) > 40e6
    with pytest.raises(KeyError, match="unknown preset"):
        get_preset("nope")


def test_overrides_reach_nested_fields() -> None:
    cfg = apply_overrides(get_preset("smoke_hrda"), ["model.attention=fixed", "seed=3", "iters=7"])
    assert (cfg.model.attention, cfg.seed, cfg.iters) == ("fixed", 3, 7)
    with pytest.raises(ValueError, match="no field"):
        apply_overrides(cfg, ["model.nope=1"])


@pytest.mark.parametrize(
    "row", ["source_only", "daformer_lr", "hrda", "mic_hrda", "advseg", "minent_lr", "dg_hrda"]
)
def test_smoke_training_runs(row: str, tmp_path: Path) -> None:
    result = train(get_preset(f"smoke_{row}"), tmp_path, progress=False)
    metrics = result.metrics
    assert list(metrics["iteration"]) == [1, 2, 3, 4]
    assert metrics.filter(like="loss").notna().all().all()
    assert metrics["val_miou"].notna().iloc[-1]
    if row == "mic_hrda":
        assert "loss_mic_total" in metrics
    if row == "hrda":
        assert {"loss_fd", "loss_mixed_detail", "pseudo_weight"} <= set(metrics)
    if row == "advseg":
        assert {"loss_adversarial", "loss_discriminator"} <= set(metrics)
        assert "pseudo_weight" not in metrics
    if row == "minent_lr":
        assert metrics["loss_entropy"].between(0, 0.001).all()
    if row == "dg_hrda":
        assert (metrics["loss_style_consistency"] > 0).all()
    model = load_model(result.checkpoint)
    assert not model.training


@pytest.mark.parametrize("row", ["mic_hrda", "dg_hrda"])
def test_smoke_training_runs_under_bf16_autocast(row: str, tmp_path: Path) -> None:
    """The GPU's precision (bf16 autocast, fp32 master weights) through the whole recipe, here on
    the CPU's autocast: every pass (FD, MIC's masked pass, SHADE's style statistics) runs, the
    losses stay finite and near fp32's (bf16 moves them, so autocast was on) and the weights
    stay fp32."""
    cfg = get_preset(f"smoke_{row}")
    fp32 = train(replace(cfg, precision="fp32"), tmp_path / "fp32", progress=False).metrics
    result = train(replace(cfg, precision="bf16"), tmp_path / "bf16", progress=False)
    bf16 = result.metrics
    losses = [c for c in fp32 if c.startswith("loss")]
    assert torch.isfinite(torch.tensor(bf16[losses].to_numpy(dtype=float))).all()
    first = torch.tensor(bf16[losses].iloc[0].to_numpy(dtype=float))
    reference = torch.tensor(fp32[losses].iloc[0].to_numpy(dtype=float))
    assert torch.allclose(first, reference, rtol=0.05, atol=1e-3)
    assert not torch.equal(first, reference)
    model = load_model(result.checkpoint)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_resume_is_exact(tmp_path: Path) -> None:
    cfg = replace(get_preset("smoke_mic_hrda"), checkpoint_interval=1)
    full = train(cfg, tmp_path / "full", progress=False)
    train(cfg, tmp_path / "split", stop_at=2, progress=False)
    with pytest.raises(FileExistsError):
        train(cfg, tmp_path / "split", progress=False)
    resumed = train(cfg, tmp_path / "split", resume=True, progress=False)
    a = torch.load(full.checkpoint, weights_only=False)["state"]
    b = torch.load(resumed.checkpoint, weights_only=False)["state"]
    assert a["iteration"] == b["iteration"] == 4
    for key in ("model", "teacher"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), (key, name)
    columns = [c for c in full.metrics if c.startswith("loss")]
    assert full.metrics[columns].equals(resumed.metrics[columns])
    # A finished run is returned as is.
    assert train(cfg, tmp_path / "split", resume=True, progress=False).wall_time_s == 0.0


def test_resume_is_exact_with_the_discriminator(tmp_path: Path) -> None:
    cfg = replace(get_preset("smoke_advseg"), checkpoint_interval=1, eval_interval=100)
    full = train(cfg, tmp_path / "full", iters=3, progress=False)
    train(cfg, tmp_path / "split", iters=3, stop_at=1, progress=False)
    resumed = train(cfg, tmp_path / "split", iters=3, resume=True, progress=False)
    a = torch.load(full.checkpoint, weights_only=False)["state"]
    b = torch.load(resumed.checkpoint, weights_only=False)["state"]
    assert a["teacher"] is None and a["discriminator"] is not None
    for key in ("model", "discriminator"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), (key, name)
    initial = build_state(cfg, torch.device("cpu")).discriminator.state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in a["discriminator"].items())


def test_shade_prototypes_resume_exactly_and_evaluate_on_bdd100k(tmp_path: Path) -> None:
    cfg = replace(get_preset("smoke_dg_hrda"), checkpoint_interval=1, eval_interval=100)
    cfg = replace(cfg, uda=replace(cfg.uda, shade=replace(cfg.uda.shade, refresh_interval=2)))
    full = train(cfg, tmp_path / "full", iters=3, progress=False)
    train(cfg, tmp_path / "split", iters=3, stop_at=2, progress=False)
    resumed = train(cfg, tmp_path / "split", iters=3, resume=True, progress=False)
    a = torch.load(full.checkpoint, weights_only=False)["state"]
    b = torch.load(resumed.checkpoint, weights_only=False)["state"]
    assert a["style_prototypes"] is not None
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    for saved, restored in zip(a["style_prototypes"], b["style_prototypes"], strict=True):
        assert torch.equal(saved, restored)
    # Evaluate the DG model on an unseen dataset in the BDD100K layout (tiny val images).
    val = target_val_dataset(cfg)
    bdd = tmp_path / "data" / "bdd100k"
    for i in range(2):
        image = val.img_paths[i]
        label = val.label_paths[i]
        (bdd / "images" / "10k" / "val").mkdir(parents=True, exist_ok=True)
        (bdd / "labels" / "sem_seg" / "masks" / "val").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(bdd / "images" / "10k" / "val" / f"b{i}.jpg"), cv2.imread(str(image)))
        shutil.copy(label, bdd / "labels" / "sem_seg" / "masks" / "val" / f"b{i}.png")
    out = tmp_path / "eval_bdd"
    evaluate_main(
        [
            str(full.checkpoint),
            "--dataset",
            "bdd100k",
            "--data-root",
            str(tmp_path / "data"),
            "--out",
            str(out),
            "--save-images",
            "1",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["mIoU"] <= 100
    assert (out / "per_class.csv").is_file()


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path: Path, monkeypatch) -> None:
    cfg = replace(get_preset("smoke_source_only"), checkpoint_interval=1)
    real_loss = step_module.segmentation_loss
    calls = {"n": 0}

    def poisoned(out, label, model_cfg, weight=None):
        calls["n"] += 1
        losses = real_loss(out, label, model_cfg, weight)
        if calls["n"] == 3:
            losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(step_module, "segmentation_loss", poisoned)
    with pytest.raises(DivergedError, match="iteration 3: non-finite"):
        train(cfg, tmp_path, progress=False)
    assert torch.load(tmp_path / "latest.pth", weights_only=False)["state"]["iteration"] == 2


def test_evaluate_official_checkpoint_on_synthetic_val(golden_dir: Path) -> None:
    cfg = get_preset("smoke_hrda")
    model = load_model(golden_dir / "hrda_mitb0" / "checkpoint.pth")
    result = evaluate(model, target_val_dataset(cfg), cfg.test_window, cfg.test_stride)
    assert result.confusion.sum() > 0 and 0 <= result.summary["mIoU"] <= 100
    assert len(result.per_class) == 19


def test_cli_lists_presets(capsys) -> None:
    train_module.main(["--list"])
    assert "synthetic_hrda" in capsys.readouterr().out.split()


def test_detail_equal_to_context_adds_the_context_loss_and_detail_fd(tmp_path: Path) -> None:
    paper = get_preset("gta_to_cityscapes_hrda_context512")
    assert paper.model.context_loss_weight == 0.1 and paper.uda.fd_on_detail
    assert not get_preset("gta_to_cityscapes_hrda_context768").uda.fd_on_detail
    smoke = get_preset("smoke_hrda")  # tiny: 64 px context
    cfg = replace(
        smoke,
        iters=2,
        model=replace(smoke.model, detail_crop_size=(64, 64), context_loss_weight=0.1),
        uda=replace(smoke.uda, fd_on_detail=True),
    )
    metrics = train(with_iters(cfg, 2), tmp_path, progress=False).metrics
    assert {"loss_fd", "loss_source_context"} <= set(metrics)


@pytest.mark.parametrize("slot", [None, 1])
def test_a_run_among_several_keeps_its_progress_line(slot, tmp_path: Path, monkeypatch) -> None:
    """`make demo` trains two runs at once: each bar on its own terminal line (`position`),
    shown on a terminal only (`disable=None`), with the run's name, total and ETA from tqdm."""
    bars = []

    class Recorder:
        def __init__(self, **kwargs) -> None:
            bars.append(kwargs)
            self.n = kwargs.get("initial", 0)

        def update(self, n: int = 1) -> None:
            self.n += n

        def set_postfix(self, *args, **kwargs) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(train_module, "tqdm", Recorder)
    cfg = with_iters(get_preset("smoke_daformer_lr"), 2)
    train(cfg, tmp_path, progress=True, progress_slot=slot)
    (bar,) = bars
    assert bar["total"] == 2 and bar["desc"] == f"{cfg.name} seed {cfg.seed}"
    if slot is None:
        assert "position" not in bar and "disable" not in bar
    else:
        assert bar["position"] == 1 and bar["disable"] is None


def test_a_schedule_of_no_iterations_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="iters must be a positive number of iterations, not 0"):
        train(get_preset("smoke_hrda"), tmp_path / "run", iters=0)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_a_checkpoint_of_the_previous_format_still_loads_and_resumes(tmp_path: Path) -> None:
    """v2 pickled the config dataclasses and numpy's RNG tuple: allowed by name, nothing else."""
    cfg = replace(get_preset("smoke_source_only"), checkpoint_interval=1, eval_interval=100)
    full = train(cfg, tmp_path / "full", iters=3, progress=False)
    train(cfg, tmp_path / "split", iters=3, stop_at=1, progress=False)
    path = tmp_path / "split" / "latest.pth"
    payload = torch.load(path, weights_only=True)
    numpy = payload["rng"]["numpy"]
    key = numpy["state"]["key"].numpy().astype(np.uint32)
    legacy = ("MT19937", key, numpy["state"]["pos"], numpy["has_gauss"], numpy["gauss"])
    payload |= {
        "format": "hrda_lib-train-v2",
        "config": config_from_dict(ExperimentConfig, payload["config"]),
        "rng": payload["rng"] | {"numpy": legacy},
    }
    torch.save(payload, path)
    assert load_model(path).training is False
    resumed = train(cfg, tmp_path / "split", iters=3, resume=True, progress=False)
    a = torch.load(full.checkpoint, weights_only=True)["state"]["model"]
    b = torch.load(resumed.checkpoint, weights_only=True)["state"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
