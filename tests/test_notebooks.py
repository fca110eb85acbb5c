"""Every numbered notebook, executed by papermill with the smoke profile, and what each writes.

The whole chain runs once per session through the runner (`hrda_lib.reproduction.runner.run`)
into a temporary results
folder ($HRDA_RESULTS) with a temporary data folder ($HRDA_DATA): 01 generates the tiny synthetic
set, the runner trains the 4-iteration runs of 03-09 ahead (two at a time) and the notebooks reuse
them, 07 collects their tables, 08 checks parity with the official code, 09 shows Table 2's
other UDA methods. About 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from hrda_lib.classes import CLASSES
from hrda_lib.reproduction import catalogue, runner

STEMS = [p.stem for p in runner.notebook_paths()]
PROFILE = catalogue.PROFILES["smoke"]


@pytest.fixture(scope="session")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the smoke chain once; returns the results root, per-notebook status and any failure."""
    root = tmp_path_factory.mktemp("notebooks")
    results = root / "results"
    with pytest.MonkeyPatch.context() as env:  # the kernels inherit the environment
        env.setenv("HRDA_RESULTS", str(results))
        env.setenv("HRDA_DATA", str(root / "data"))
        # One thread: 2 OpenMP threads slow down many-fold when other processes share the cores.
        env.setenv("OMP_NUM_THREADS", "1")
        try:
            done, failure = runner.run("smoke", results=results, log=print), None
        except runner.NotebookFailure as error:
            done, failure = error.done, error
    return {"results": results, "done": done, "failure": failure}


def _results(executed: dict, stem: str) -> Path:
    """The notebook's results folder, after checking that it ran and its common outputs."""
    if stem not in {d["stem"] for d in executed["done"]}:
        failure = executed["failure"]
        pytest.fail(failure.report() if failure else f"{stem} did not run")
    out = executed["results"] / stem
    config = json.loads((out / "config.json").read_text())
    assert config["parameters"]["profile"] == "smoke"
    assert config["git_commit"] and config["versions"]["torch"]
    executed_copy = nbformat.read(out / f"{stem}.ipynb", as_version=4)
    for cell in executed_copy.cells:
        assert not any(o.get("output_type") == "error" for o in cell.get("outputs", []))
    assert list(out.glob("*.png")), f"{stem} saved no figure"
    assert len(pd.read_csv(out / "metrics.csv")) > 0
    return out


def test_notebooks_follow_the_common_anatomy() -> None:
    assert STEMS == [
        "00_imagenet_stand_in",
        "01_data_preparation",
        "02_multires_crops",
        "03_scale_attention",
        "04_ablation_crop_sizes",
        "05_ablation_components",
        "06_full_training",
        "07_figures_tables",
        "08_official_checkpoints",
        "09_uda_methods",
    ]
    for path in runner.notebook_paths():
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        # The views of a trained model (02, 03) default to the profile of the committed models;
        # the others to the seconds-long smoke profile.
        default = "synthetic" if path.stem[:2] in ("02", "03") else "smoke"
        assert len(tagged) == 1 and f'profile: str = "{default}"' in tagged[0].source
        assert "write_run_config" in nb.cells[-1].source, path.name  # the last cell saves
        assert "profile" in runner.notebook_parameters(path, "quick")


def test_00_imagenet_stand_in(executed: dict) -> None:
    out = _results(executed, "00_imagenet_stand_in")
    metrics = pd.read_csv(out / "metrics.csv")
    accuracy = metrics.query("quantity == 'heldout_accuracy'")["value"].iloc[0]
    assert 0 <= accuracy <= 100  # a tiny stand-in built in the folder (never the committed one)
    assert (out / "stand_in_smoke.pth").is_file() and (out / "fractal_smoke.pth").is_file()
    runs = metrics.query("quantity == 'val_mIoU'")
    assert set(runs["item"]) == set(PROFILE.stand_in)
    assert set(runs["seed"]) == set(PROFILE.stand_in_seeds)  # each run's seed beside its mIoU
    assert "fractal" in set(metrics["item"])  # the alternative's manifest beside the stand-in's
    figures = {p.name for p in out.iterdir()}
    assert {"neutral_set.png", "stand_in_loss.png", "fractal_set.png"} <= figures


def test_01_data_preparation(executed: dict) -> None:
    out = _results(executed, "01_data_preparation")
    metrics = pd.read_csv(out / "metrics.csv")
    oracle = metrics[(metrics["quantity"] == "oracle_iou_x2") & (metrics["domain"] == "target")]
    assert sorted(oracle["class"]) == sorted(CLASSES)
    rcs = metrics[metrics["quantity"] == "rcs_probability_T0.01"]
    assert rcs["value"].sum() == pytest.approx(1.0, abs=1e-6)
    assert (out / "datasheet" / "datasheet.md").is_file()
    assert {"samples.png", "rcs.png", "resolution_oracle.png"} <= {p.name for p in out.iterdir()}
    real = pd.read_csv(out / "real_data.csv")
    assert set(real["status"]) == {"missing"}  # no real data in the temporary data folder


def test_02_multires_crops(executed: dict) -> None:
    out = _results(executed, "02_multires_crops")
    metrics = pd.read_csv(out / "metrics.csv")
    windows = metrics[metrics["quantity"] == "windows"].set_index("item")["value"]
    assert list(windows) == [3, 9, 4]  # 64x128 image: 3 context windows, 3x3 / 2x2 detail
    accuracy = metrics[metrics["quantity"] == "pixel_accuracy_in_detail_box"]["value"]
    assert len(accuracy) == 3 and accuracy.between(0, 1).all()
    assert "UNTRAINED" in json.loads((out / "config.json").read_text())["model"]  # 06 runs later
    losses = metrics[metrics["quantity"] == "loss"].set_index("item")["value"]
    assert {"loss_source_total", "loss_mixed_total", "loss_mic_total", "pseudo_weight"} <= set(
        losses.index
    )  # section 4: one iteration of the recipe, MIC included
    assert (out / "self_training_step.png").is_file()


def test_03_scale_attention(executed: dict) -> None:
    out = _results(executed, "03_scale_attention")
    metrics = pd.read_csv(out / "metrics.csv")
    attention = metrics[metrics["quantity"] == "mean_attention"]["value"].dropna()
    assert len(attention) > 0 and attention.between(0, 1).all()
    assert (out / "runs" / "smoke_hrda_seed0" / "latest.pth").is_file()


def test_04_ablation_crop_sizes(executed: dict) -> None:
    out = _results(executed, "04_ablation_crop_sizes")
    runs = pd.read_csv(out / "metrics.csv")
    assert sorted(runs["key"]) == sorted(PROFILE.crop_sizes)
    assert runs.set_index("key").loc["hrda", "reused"]  # 03's finished run, not retrained
    assert not (out / "runs" / "smoke_hrda_seed0").exists()
    assert (runs["memory_mb"] > 0).all() and (runs["seconds_per_iter"] > 0).all()
    tables = pd.read_csv(out / "tables.csv")
    assert "Figure 4: DAFormer crop size (UDA)" in set(tables["table"])
    assert runs.set_index("key").loc["daformer_hr0.75", "memory_mb"] > 0  # a sync-crop row
    assert "Measured on: synthetic 'tiny'" in (out / "tables.md").read_text()


def test_05_ablation_components(executed: dict) -> None:
    out = _results(executed, "05_ablation_components")
    runs = pd.read_csv(out / "metrics.csv")
    assert sorted(runs["key"]) == sorted(PROFILE.components)
    reused = set(runs.loc[runs["reused"], "key"])
    assert {"hrda", "daformer_lr", "daformer_hr"} <= reused
    tables = pd.read_csv(out / "tables.csv")
    assert {"Table 7: components", "Figure S1: detail loss weight"} <= set(tables["table"])
    content = pd.read_csv(out / "blurred_input.csv")
    assert set(content["key"]) == {"hrda", "oracle_hr", "blurhr"} and len(content) == 6
    assert set(content["test images"]) == {"real", "blurred"}
    # the blurred-HR row evaluated on real images is its own training's last validation
    blurhr = content[content["key"] == "blurhr"].set_index("test images")
    assert blurhr.loc["real", "mIoU"] == pytest.approx(
        runs.set_index("key").loc["blurhr", "mIoU"], abs=0.01
    )


def test_06_full_training(executed: dict) -> None:
    out = _results(executed, "06_full_training")
    metrics = pd.read_csv(out / "metrics.csv")
    miou = metrics[metrics["metric"] == "mIoU"]
    assert sorted(miou["key"]) == sorted(catalogue.MAIN_ROWS)
    assert miou["value"].between(0, 100).all()
    assert set(metrics[metrics["metric"] == "IoU"]["class"]) == set(CLASSES)
    trained_here = {p.name for p in (out / "runs").iterdir()}
    assert trained_here == {"smoke_source_only_seed0", "smoke_mic_hrda_seed0"}  # others reused
    wide = pd.read_csv(out / "main_comparison.csv")
    assert list(wide.columns[:5]) == ["row", "seed", "iters", "profile", "miou"]
    assert list(wide.columns[5:]) == list(CLASSES) and len(wide) == len(catalogue.MAIN_ROWS)
    assert {"qualitative.png", "training_curves.png", "attention_hrda.png"} <= {
        p.name for p in out.iterdir()
    }


def test_09_uda_methods(executed: dict) -> None:
    out = _results(executed, "09_uda_methods")
    metrics = pd.read_csv(out / "metrics.csv")
    rows = [key for pair in PROFILE.uda_methods.values() for key in pair]
    assert sorted(metrics.query("metric == 'mIoU'")["key"]) == sorted(rows)
    trained_here = {p.name for p in (out / "runs").iterdir()}
    dg = {f"smoke_{k}_seed0" for k in PROFILE.domain_generalization} - {"smoke_source_only_seed0"}
    assert (
        trained_here
        == {f"smoke_{k}_seed0" for k in rows}
        - {
            "smoke_daformer_lr_seed0",
            "smoke_hrda_seed0",
        }
        | dg
    )  # the DAFormer-recipe pair and source only are reused from 03-06
    table = (out / "table.md").read_text()
    assert all(method in table for method in ("DACS", "AdvSeg", "MinEnt"))
    dg = pd.read_csv(out / "domain_generalization.csv")
    assert set(dg["key"]) == set(PROFILE.domain_generalization)
    assert dg["mean"].between(0, 100).all()
    curves = pd.read_csv(out / "curves.csv")
    assert {"loss_adversarial", "loss_entropy", "loss_mixed_total"} <= set(curves["quantity"])
    assert {"uda_methods.png", "training_curves.png"} <= {p.name for p in out.iterdir()}


def test_07_figures_tables(executed: dict) -> None:
    out = _results(executed, "07_figures_tables")
    main = pd.read_csv(out / "main_table.csv")
    published = [c for c in main.columns if c.startswith("published: mIoU")]
    assert len(published) == 1 and "GTA→Cityscapes val" in published[0]
    assert any("synthetic 'tiny' benchmark" in c for c in main.columns if c.startswith("ours"))
    claims = pd.read_csv(out / "claims.csv").set_index("claim")
    ours = pd.read_csv(out / "metrics.csv").query("source == '06_full_training'")
    means = ours.set_index("key")["mean"]
    delta = claims.loc["HRDA − DAFormer (LR data)", "ours: Δ mIoU"]
    assert delta == pytest.approx(means["hrda"] - means["daformer_lr"], abs=0.01)
    assert "Table 7: components" in (out / "tables.md").read_text()
    assert (out / "main_comparison.csv").read_bytes() == (
        executed["results"] / "06_full_training" / "main_comparison.csv"
    ).read_bytes()
    by_class = pd.read_csv(out / "class_differences.csv").set_index("class")
    wide = pd.read_csv(out / "main_comparison.csv").set_index("row")
    assert by_class.loc["road", "hrda − daformer_lr"] == pytest.approx(
        wide.loc["hrda", "road"] - wide.loc["daformer_lr", "road"], abs=0.01
    )
    attention = pd.read_csv(out / "attention.csv")
    assert set(attention["classes"]) == {"thin", "large"}
    schedules = pd.read_csv(out / "schedules.csv")  # no longer schedule trained here
    assert schedules.empty and "last_third_gain" in schedules


def test_08_official_checkpoints(executed: dict) -> None:
    out = _results(executed, "08_official_checkpoints")
    parity = pd.read_csv(out / "parity.csv")
    assert len(parity) > 0 and parity["ok"].all()  # the golden fixtures are part of the checkout
    official = pd.read_csv(out / "official.csv")
    status = official[official["metric"] == "status"]["measured_on"]
    assert status.str.contains("no checkpoint_path").all()


def test_a_second_run_skips_every_notebook(executed: dict) -> None:
    if executed["failure"] is not None:
        pytest.fail(executed["failure"].report())
    again = runner.run("smoke", results=executed["results"], log=print)
    assert [d["status"] for d in again] == ["skipped"] * len(STEMS)


def test_runs_trained_ahead_leave_nothing_for_the_notebooks(executed: dict) -> None:
    """With two jobs the runner trains every run of 03-09 before 03 (`notebook_rows`); the
    notebooks then only reuse them, so the plan matches what each notebook asks for."""
    assert PROFILE.jobs == 2
    for stem in [s for s in STEMS if s[:2] in ("03", "04", "05", "06", "09")]:
        executed_copy = nbformat.read(_results(executed, stem) / f"{stem}.ipynb", as_version=4)
        text = "".join(
            output.get("text", "")
            for cell in executed_copy.cells
            for output in cell.get("outputs", [])
        )
        assert "finished run reused" in text, stem
        assert "iterations in" not in text, f"{stem} trained a run that was not trained ahead"
