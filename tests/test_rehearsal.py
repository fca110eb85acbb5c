"""The rehearsal profile: the `paper` profile's rows on mock GTA / Cityscapes at the official
resolutions, and its fast subset executed end to end by the runner (`rehearsal-fast`: 01, 02,
03, 06 and 07 with DAFormer on LR data and HRDA, 2 iterations each at the real geometry; a few
minutes on 2 CPU cores).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path

import cv2
import pandas as pd
import pytest
import torch

from hrda_lib import compare, evaluate, predict
from hrda_lib.ablations import REHEARSAL_ITERS
from hrda_lib.config import ModelConfig
from hrda_lib.paths import REPO_ROOT, data_root, results_root
from hrda_lib.reproduction import catalogue, forecast, rehearsal, runner
from hrda_lib.synthetic.mock_real import CITYSCAPES_SIZE, GTA_SIZE, MockRealConfig, ensure_mock_real

PAPER, REHEARSAL = catalogue.PROFILES["paper"], catalogue.PROFILES["rehearsal"]


def _rows(profile: catalogue.Profile) -> set[str]:
    groups = catalogue.notebook_rows(profile)
    return {
        key for stem, pairs in groups.items() if stem != "00" for keys, _ in pairs for key in keys
    }


def test_the_rehearsal_keeps_every_row_and_its_geometry() -> None:
    assert _rows(REHEARSAL) == _rows(PAPER)
    for key in sorted(_rows(PAPER)):
        paper, rehearsed = (catalogue.row_config(p, key) for p in (PAPER, REHEARSAL))
        assert rehearsed.data == paper.data, key  # pipelines, crops, scales, RCS, data root
        assert (rehearsed.test_window, rehearsed.test_stride) == (
            paper.test_window,
            paper.test_stride,
        ), key
        geometry = ("multi_resolution", "context_scale", "detail_crop_size", "attention")
        for name in geometry:
            assert getattr(rehearsed.model, name) == getattr(paper.model, name), (key, name)
        assert rehearsed.uda.method == paper.uda.method and rehearsed.uda.mic == paper.uda.mic
        assert (rehearsed.iters, rehearsed.pretrained) == (REHEARSAL_ITERS, "")
        assert rehearsed.eval_interval == rehearsed.checkpoint_interval == rehearsed.iters
        assert rehearsed.model.encoder in ("mit_b0", "resnet18_v1d")


def test_rehearsal_profiles_write_into_their_own_workspace(monkeypatch) -> None:
    for name in ("rehearsal", "rehearsal-fast"):
        monkeypatch.delenv("HRDA_DATA", raising=False)
        monkeypatch.delenv("HRDA_RESULTS", raising=False)
        runner.use_workspace(catalogue.get_profile(name))
        assert data_root() == REPO_ROOT / name / "data"
        assert results_root() == REPO_ROOT / name / "results"
    monkeypatch.delenv("HRDA_RESULTS")
    runner.use_workspace(PAPER)  # no workspace: data/ and results/ as always
    assert results_root() == REPO_ROOT / "results"
    monkeypatch.setenv("HRDA_RESULTS", "/elsewhere")  # folders the user names win
    runner.use_workspace(REHEARSAL)
    assert results_root() == Path("/elsewhere")


def test_mock_data_has_the_official_resolutions_and_layouts(tmp_path: Path) -> None:
    config = MockRealConfig(n_gta=1, n_cityscapes_train=1, n_cityscapes_val=1)
    root = ensure_mock_real(tmp_path, config)
    gta = cv2.imread(str(root / "gta" / "images" / "00001.png"))
    assert gta.shape[:2] == GTA_SIZE
    train_ids = sorted((root / "gta" / "labels").glob("*_labelTrainIds.png"))  # gta.py ran
    assert len(train_ids) == 1 and (root / "gta" / "samples_with_class.json").is_file()
    val = sorted((root / "cityscapes" / "gtFine" / "val").rglob("*_gtFine_labelTrainIds.png"))
    assert len(val) == 1 and cv2.imread(str(val[0]), cv2.IMREAD_UNCHANGED).shape == CITYSCAPES_SIZE
    assert ensure_mock_real(tmp_path, config) == root  # a finished mock is kept
    with pytest.raises(FileExistsError, match="another config"):
        ensure_mock_real(tmp_path, replace(config, n_gta=2))


def test_the_mock_is_never_written_over_real_data(tmp_path: Path) -> None:
    (tmp_path / "gta" / "images").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a rehearsal mock"):
        ensure_mock_real(tmp_path)
    assert not (tmp_path / "cityscapes").exists()


@pytest.mark.slow
def test_rehearsal_fast_runs_its_notebooks_at_the_real_geometry(
    tmp_path: Path, monkeypatch
) -> None:
    results = tmp_path / "results"
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HRDA_RESULTS", str(results))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        done = runner.run("rehearsal-fast", results=results, log=print)
    except runner.NotebookFailure as failure:
        pytest.fail(failure.report())
    assert [d["stem"][:2] for d in done] == ["01", "02", "03", "06", "07"]
    assert all(d["status"] == "ran" for d in done)
    # The runs trained at the paper's geometry: GTA resized to 2560x1440, 1024 px crops.
    main = pd.read_csv(results / "06_full_training" / "main_comparison.csv")
    assert set(main["row"]) == {"daformer_lr", "hrda"}
    assert main["profile"].eq("rehearsal-fast").all() and main["iters"].eq(2).all()
    # The runner trains each run ahead into the first notebook that asks for it (03 for HRDA).
    (hrda_run,) = results.glob("[0-9][0-9]_*/runs/gta_to_cityscapes_hrda_seed0")
    run_config = json.loads((hrda_run / "config.json").read_text())
    assert run_config["data"]["source_pipeline"]["scale"] == [2560, 1440]
    assert run_config["data"]["source_pipeline"]["crop_size"] == [1024, 1024]
    assert run_config["test_window"] == [1024, 1024]
    claims = pd.read_csv(results / "07_figures_tables" / "claims.csv")
    assert len(claims) > 0
    status = pd.read_csv(results / "01_data_preparation" / "real_data.csv")
    ok = status[status["status"] == "ok"]
    assert {"GTA", "Cityscapes"} <= set(ok["dataset"])
    # The CLIs on a rehearsed checkpoint, at the real test geometry (2048x1024, 1024 windows).
    checkpoint = hrda_run / "latest.pth"
    out = tmp_path / "eval"
    evaluate.main([str(checkpoint), "--max-images", "1", "--save-images", "0", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["mIoU"] <= 100
    image = next((tmp_path / "data" / "cityscapes" / "leftImg8bit" / "val").rglob("*.png"))
    predict.main([str(checkpoint), str(image), "--out", str(tmp_path / "predictions")])
    (prediction,) = (tmp_path / "predictions").glob("*_pred.png")
    assert cv2.imread(str(prediction)).shape[:2] == CITYSCAPES_SIZE


def test_the_summary_reads_notebook_times_and_run_costs(tmp_path: Path) -> None:
    notebook = tmp_path / "03_scale_attention" / "03_scale_attention.ipynb"
    run = tmp_path / "03_scale_attention" / "runs" / "gta_to_cityscapes_hrda_seed0"
    run.mkdir(parents=True)
    record = {"duration": 12.34, "parameters": {"profile": "rehearsal"}, "exception": None}
    notebook.write_text(json.dumps({"metadata": {"papermill": record}, "cells": []}))
    (notebook.parent / "config.json").write_text("{}")
    config = catalogue.row_config(REHEARSAL, "hrda")
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(config), default=str))
    pd.DataFrame({"iteration": [1, 2], "seconds_per_iter": [30.0, 20.0]}).to_csv(
        run / "metrics.csv", index=False
    )
    times = rehearsal.notebook_times(tmp_path)
    assert times.to_dict("records") == [
        {
            "notebook": "03_scale_attention",
            "profile": "rehearsal",
            "seconds": 12.3,
            "error": "",
            "finished": True,
        }
    ]
    (line,) = rehearsal.run_times(tmp_path).to_dict("records")
    assert (line["encoder"], line["crop"], line["iterations"]) == ("mit_b0", "1024x1024", 2)
    assert (line["seconds_per_iter"], line["train_seconds"]) == (25.0, 50.0)
    with pytest.raises(SystemExit, match="make rehearsal"):
        rehearsal.main(["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])


def test_the_forecast_is_set_beside_a_gpu_measurement_of_the_paper_step() -> None:
    forecast = pd.read_csv(REPO_ROOT / "results" / "rehearsal" / "forecast.csv")
    step = {"seconds_per_iter": 0.5, "tflops_per_iter": 11.0, "achieved_tflops": 22.0}
    step |= {"peak_memory_gib": 10.0, "variant": "baseline", "device": "H100"}
    gpu = pd.DataFrame([{"preset": "gta_to_cityscapes_hrda", **step}])
    table = rehearsal.forecast_beside_gpu(forecast, gpu).set_index("quantity")
    hrda = forecast.set_index("key").loc["hrda"]
    assert table.loc["TFLOPs per iteration", "forecast"] == hrda["train_gflops_per_iter"] / 1000
    assert table.loc["s per iteration at the measured TFLOP/s", "forecast"] == pytest.approx(
        hrda["train_gflops_per_iter"] / 1000 / 22.0
    )
    assert table["measured"].tolist()[:3] == [11.0, 0.5, 0.5]
    smoke = gpu.assign(preset="smoke_hrda")  # what gpu_check measures on a CPU
    assert rehearsal.forecast_beside_gpu(forecast, smoke) is None


def test_the_rehearsal_narrows_the_head_that_dominates_a_cpu_step() -> None:
    # The paper's 256-channel DAFormer head on MiT-b0 costs many times the encoder at 512 px:
    # the reason the rehearsal's decoder has 32 channels (ablations.rehearsal).
    image = torch.empty(1, 3, 512, 512, device="meta")
    flops = {}
    for channels in (256, 32):
        model = forecast.meta_model(ModelConfig(encoder="mit_b0", decoder_channels=channels))
        features = model.encoder(image)
        flops[channels] = forecast.count_flops(lambda m=model, f=features: m.decode_head(f))
    encoder = forecast.count_flops(lambda: model.encoder(image))
    assert flops[256] > 10 * encoder > 2 * flops[32]


def test_compare_reads_the_rehearsals_mock_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HRDA_RESULTS", str(tmp_path / "results"))
    seen = {}

    def train_rows(profile, keys, seeds, runs_dir, iters=None):
        seen["gta"] = (data_root() / "gta" / "samples_with_class.json").is_file()
        raise KeyboardInterrupt  # stop before training: the data is what is checked

    monkeypatch.setattr(compare, "train_rows", train_rows)
    with pytest.raises(KeyboardInterrupt):
        compare.main(["--profile", "rehearsal", "--rows", "hrda", "--out", str(tmp_path / "c")])
    assert seen == {"gta": True}
