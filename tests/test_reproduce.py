"""The reproduction apparatus: the notebook runner (up-to-date skipping, parameters per profile,
the failure report), the catalogue of rows and profiles, and the `compare` command line.

Throwaway notebooks in tmp_path stand in for the real ones (a kernel start each, ~3 s).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from hrda_lib import compare, experiments, presets
from hrda_lib.reproduction import catalogue, runner, tables
from hrda_lib.reproduction.results import write_run_config


def _notebook(path: Path, body: str) -> Path:
    """A notebook with a `parameters` cell (profile, seeds) and `body` as its second cell."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = 'profile: str = "smoke"\nseeds: list[int] = []\n'
    nb.cells = [new_code_cell(params, metadata={"tags": ["parameters"]}), new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


WRITES_CONFIG = """
from hrda_lib.reproduction.results import results_dir, write_run_config
out = results_dir("{stem}")
write_run_config(out, {{"profile": profile, "seeds": seeds}})
"""


def _age(path: Path, seconds: float) -> None:
    """Set a file's mtime `seconds` into the past (deterministic ordering without sleeping)."""
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "results"
    monkeypatch.setenv("HRDA_RESULTS", str(root))  # the kernels inherit it
    return root


def _record(results: Path, stem: str, params: dict) -> Path:
    return write_run_config(results / stem, params)


def test_staleness_reasons(tmp_path: Path, results: Path) -> None:
    source = _notebook(tmp_path / "nb" / "04_tiny.ipynb", "pass")
    library = tmp_path / "lib"
    library.mkdir()
    (library / "module.py").write_text("")
    params = {"profile": "smoke", "seeds": [0]}

    def record_provenance() -> None:
        record = runner.provenance(source, results, library)
        (results / "04_tiny" / "provenance.json").write_text(json.dumps(record))

    assert runner.staleness(source, params, results, library) == "no results yet"
    _record(results, "04_tiny", params)
    assert runner.staleness(source, params, results, library) == "no provenance record"
    record_provenance()
    assert runner.staleness(source, params, results, library) is None
    changed = {"profile": "quick", "seeds": [0]}
    assert runner.staleness(source, changed, results, library) == "parameters changed: profile"

    # Content, not file times: touching a file changes nothing, editing one does.
    _age(source, -100)
    assert runner.staleness(source, params, results, library) is None
    (library / "module.py").write_text("x = 1\n")
    assert runner.staleness(source, params, results, library) == "the notebook or hrda_lib changed"
    record_provenance()
    assert runner.staleness(source, params, results, library) is None

    _record(results, "01_other", {"profile": "smoke"})  # 04 reads 01: new results -> stale
    assert runner.staleness(source, params, results, library) == "01_other has newer results"
    record_provenance()
    assert runner.staleness(source, params, results, library) is None


def test_notebook_parameters_name_the_profile(tmp_path: Path) -> None:
    """A notebook gets the profile's name; its rows, seeds and schedule come from the profile."""
    source = _notebook(tmp_path / "01_x.ipynb", "pass")
    assert runner.notebook_parameters(source, "synthetic") == {"profile": "synthetic"}


def test_a_profile_runs_its_notebooks(tmp_path: Path) -> None:
    names = ["00_a", "01_b", "05_c", "09_d"]
    sources = [_notebook(tmp_path / f"{n}.ipynb", "pass") for n in names]
    assert [p.stem for p in runner.profile_notebooks("quick", sources)] == ["00_a", "01_b"]
    assert [p.stem for p in runner.profile_notebooks("synthetic", sources)] == names


def test_run_executes_then_skips_until_forced(tmp_path: Path, results: Path) -> None:
    source = _notebook(tmp_path / "nb" / "01_tiny.ipynb", WRITES_CONFIG.format(stem="01_tiny"))
    _age(source, 100)
    lines: list[str] = []

    first = runner.run("smoke", results=results, notebooks=[source], log=lines.append)
    assert [d["status"] for d in first] == ["ran"]
    assert (results / "01_tiny" / "01_tiny.ipynb").is_file()  # the executed copy
    recorded = json.loads((results / "01_tiny" / "config.json").read_text())
    assert recorded["parameters"] == {"profile": "smoke", "seeds": []}
    assert recorded["git_commit"] and recorded["versions"]["torch"]

    second = runner.run("smoke", results=results, notebooks=[source], log=lines.append)
    assert [d["status"] for d in second] == ["skipped"]
    forced = runner.run("smoke", force=True, results=results, notebooks=[source], log=print)
    assert [d["status"] for d in forced] == ["ran"]
    assert any("skipped (up to date)" in line for line in lines)
    assert any("done in" in line for line in lines)


def test_failure_report_names_notebook_cell_error_and_executed_copy(
    tmp_path: Path, results: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    notebooks = tmp_path / "nb"
    ok = _notebook(notebooks / "01_fine.ipynb", WRITES_CONFIG.format(stem="01_fine"))
    bad = _notebook(notebooks / "02_broken.ipynb", "x = 1\nraise ValueError('boom in cell')")
    later = _notebook(notebooks / "03_after.ipynb", WRITES_CONFIG.format(stem="03_after"))
    _record(results, "02_broken", {"profile": "smoke", "seeds": [0]})  # stale success record
    for path in (ok, bad, later):
        _age(path, 100)

    with pytest.raises(runner.NotebookFailure) as caught:
        runner.run("smoke", results=results, notebooks=[ok, bad, later], log=print)
    failure = caught.value
    assert failure.notebook == "02_broken"
    assert failure.error == "ValueError: boom in cell"
    assert "raise ValueError('boom in cell')" in failure.cell_source
    assert failure.executed_copy == results / "02_broken" / "02_broken.ipynb"
    assert failure.executed_copy.is_file()
    assert not (results / "02_broken" / "config.json").exists()  # cannot look up to date
    assert not (results / "03_after").exists()  # the chain stops at the failure
    report = failure.report()
    assert "02_broken" in report and "ValueError: boom in cell" in report
    assert str(failure.executed_copy) in report

    # The command line prints the report and exits non-zero.
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", notebooks)
    with pytest.raises(SystemExit) as exited:
        runner.main(["--profile", "smoke", "--only", "02"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "FAILED: notebook 02_broken" in err and "boom in cell" in err


def test_profiles_define_distinct_experiments_for_their_rows() -> None:
    for profile in catalogue.PROFILES.values():
        assert profile.seeds and set(profile.main) <= set(catalogue.MAIN_ROWS)
        if profile.name == "quick":  # the demo: what fits 30 minutes, the rest named
            left_out = set(catalogue.QUICK_LEAVES_OUT)
            assert set(catalogue.MAIN_ROWS) - set(profile.main) == left_out & {*catalogue.MAIN_ROWS}
            assert not left_out & {*profile.main, *profile.crop_sizes, *profile.components}
        elif profile.name != "rehearsal-fast":  # the tests' subset: the main pair only
            assert set(profile.main) == set(catalogue.MAIN_ROWS)
        keys = {*profile.main, *profile.crop_sizes, *profile.components}
        configs = [catalogue.row_config(profile, key) for key in keys]
        assert len({cfg.name for cfg in configs}) == len(keys), profile.name  # a folder per row
        for cfg in configs:  # MiT's stage-1 spatial reduction (kernel 8 at stride 4) needs 32 px
            assert min(experiments.encoder_input_sizes(cfg)) >= 32, (profile.name, cfg.name)
    assert catalogue.PROFILES["synthetic"].seeds == (0, 1, 2)


def test_every_claim_of_the_synthetic_profile_rests_on_three_seeds() -> None:
    """The README states each claim with its seed spread: under `synthetic`, both rows of every
    claim are trained (by some notebook) at the same three seeds."""
    seeds: dict[str, set[int]] = {}
    for groups in catalogue.notebook_rows("synthetic").values():
        for keys, group_seeds in groups:
            for key in keys:
                seeds.setdefault(key, set()).update(group_seeds)
    for claim, row, base in tables.CLAIMS:
        assert len(seeds.get(row, set()) & seeds.get(base, set())) == 3, claim


def test_a_profile_naming_a_row_that_is_not_in_the_row_table_cannot_be_made() -> None:
    with pytest.raises(KeyError, match="profile 'smoke' names rows that presets.ROWS lacks: nope"):
        replace(catalogue.PROFILES["smoke"], main=("hrda", "nope"))


def test_every_row_is_an_experiment_on_the_papers_data_and_the_synthetic_benchmark() -> None:
    for key in presets.ROWS:
        paper, synthetic = catalogue.row_config("paper", key), catalogue.row_config("quick", key)
        assert paper.name == presets.paper_name(key) and synthetic.name == f"synthetic_{key}"
        assert presets.get_preset(paper.name) == paper


def test_crop_rows_and_labels_follow_the_paper_notation() -> None:
    quick = catalogue.PROFILES["quick"]
    assert catalogue.profile_context(quick) == 256
    cfg = catalogue.row_config(quick, "hrda_context0.75_detail0.375")
    # The official small-crop rows: crops of the full context, then one sync window of 192.
    assert cfg.data.source_pipeline.crop_size == (256, 256)
    assert cfg.data.sync_crop_size == (192, 192)
    assert cfg.model.detail_crop_size == (96, 96) and cfg.test_window == (192, 192)
    assert catalogue.crop_label(cfg, quick) == "LR0.75 + HR0.375"
    same = catalogue.row_config(quick, "hrda_context0.5")  # detail = context: LR loss on
    assert same.model.context_loss_weight == same.model.detail_loss_weight == 0.1
    assert same.uda.fd_on_detail
    assert catalogue.crop_label(catalogue.row_config(quick, "daformer_lr"), quick) == "LR1.0"
    assert catalogue.crop_label(catalogue.row_config(quick, "daformer_lr0.5"), quick) == "LR0.5"
    assert catalogue.crop_label(catalogue.row_config(quick, "daformer_hr"), quick) == "HR0.5"
    assert catalogue.crop_label(catalogue.row_config(quick, "daformer_hr0.75"), quick) == "HR0.75"
    assert catalogue.crop_label(catalogue.row_config(quick, "samescale"), quick) == "LR1.0 + LR0.5"
    paper = catalogue.row_config("paper", "detail0.25")
    assert paper.model.detail_crop_size == (256, 256)
    assert catalogue.crop_label(paper, "paper") == "LR1.0 + HR0.25"


def test_rcs_crop_ratio_scales_with_the_pixel_count_on_lr_data() -> None:
    for profile in ("paper", "quick"):
        hrda = catalogue.row_config(profile, "hrda")
        lr = catalogue.row_config(profile, "daformer_lr")
        assert hrda.data.rcs.min_crop_ratio == 2.0 and lr.data.rcs.min_crop_ratio == 0.5
        assert lr.data.rcs.min_pixels == hrda.data.rcs.min_pixels  # judged on full-res stats


def test_compare_cli_trains_evaluates_and_tabulates(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HRDA_RESULTS", str(tmp_path / "results"))
    out = tmp_path / "results" / "06_full_training"  # as if a notebook had trained them
    compare.main(
        ["--profile", "smoke", "--rows", "daformer_lr", "hrda", "--iters", "2", "--out", str(out)]
    )
    table = pd.read_csv(out / "table.csv")
    assert list(table.columns[:5]) == ["row", "seed", "iters", "profile", "miou"]
    assert list(table["row"]) == ["daformer_lr", "hrda"] and (table["iters"] == 2).all()
    assert "road" in table.columns and table["miou"].between(0, 100).all()
    assert "Measured on: synthetic 'tiny'" in (out / "table.md").read_text()
    # A second call reuses the finished runs.
    compare.main(["--profile", "smoke", "--rows", "hrda", "--iters", "2", "--out", str(out)])
    assert len(list((out / "runs").iterdir())) == 2
    # Into a new folder, from the notebooks' runs: nothing trained, the tables written.
    elsewhere = tmp_path / "new" / "compare"
    compare.main(["--profile", "smoke", "--rows", "hrda", "--iters", "2", "--out", str(elsewhere)])
    assert (elsewhere / "table.csv").is_file() and not (elsewhere / "runs").exists()


def test_tables_of_another_profile_are_left_out(capsys) -> None:
    table = pd.DataFrame(
        {
            "key": ["hrda", "daformer_lr", "hrda"],
            "mean": [40.0, 35.0, 17.0],
            "measured_on": [
                "synthetic 'quick' benchmark, profile synthetic, seeds 0, 1, 2, 1500 iterations",
                "synthetic 'quick' benchmark, profile synthetic, seeds 0, 1, 2, 1500 iterations",
                "synthetic 'quick' benchmark, profile quick, seed 0, 200 iterations",
            ],
        }
    )
    mine = tables.of_profile(table, "synthetic", "06")
    assert list(mine["mean"]) == [40.0, 35.0]
    assert "1 rows of other profiles" in capsys.readouterr().out
    assert tables.of_profile(table.iloc[[2]], "synthetic", "04") is None
    assert "04: no rows of profile 'synthetic'" in capsys.readouterr().out
    wide = pd.DataFrame(
        {"row": ["hrda", "hrda"], "profile": ["quick", "synthetic"], "road": [1, 2]}
    )
    assert list(tables.of_profile(wide, "quick", "06")["road"]) == [1]
    assert tables.of_profile(None, "quick", "05") is None


def test_training_curves_average_windows_and_keep_validation() -> None:
    from hrda_lib.reproduction.runs import Run, training_curves

    metrics = pd.DataFrame(
        {
            "iteration": range(1, 41),
            "loss": [float(i) for i in range(1, 41)],
            "lr": 1e-4,
            "val_miou": [50.0 if i % 20 == 0 else None for i in range(1, 41)],
        }
    )
    run = Run("hrda", 0, presets.get_preset("smoke_hrda"), Path("."), metrics, reused=False)
    curves = training_curves([run], window=10)
    loss = curves[curves["quantity"] == "loss"]
    assert list(loss["iteration"]) == [10, 20, 30, 40]
    assert list(loss["value"]) == [5.5, 15.5, 25.5, 35.5]  # means of 1-10, 11-20, ...
    val = curves[curves["quantity"] == "val_miou"]
    assert list(val["iteration"]) == [20, 40] and list(val["value"]) == [50.0, 50.0]
    assert "lr" not in set(curves["quantity"]) and set(curves["key"]) == {"hrda"}


def test_claims_compare_rows_over_the_seeds_both_have() -> None:
    """A row of one seed is set against the other row's run of that seed, never against its mean
    over three seeds (hrda 40/44/48 has mean 44; its seed 0 is 40)."""
    per_run = pd.DataFrame(
        {
            "key": ["hrda"] * 3 + ["daformer_lr"] * 3 + ["blurhr"],
            "seed": [0, 1, 2, 0, 1, 2, 0],
            "mIoU": [40.0, 44.0, 48.0, 38.0, 41.0, 42.0, 41.0],
        }
    )
    claims = tables.claim_deltas(per_run, lambda seeds: f"seeds {seeds}").set_index("claim")
    blurred = claims.loc["HR − blurred detail crop (Table 6)"]
    assert blurred["ours: Δ mIoU"] == -1.0 and blurred["ours: seeds"] == 1
    assert blurred["ours: measured on"] == "seeds [0]"
    main = claims.loc["HRDA − DAFormer (LR data)"]
    assert main["ours: Δ mIoU"] == 3.67 and main["ours: seeds"] == 3
    assert main["ours: paired std"] == 2.08 and main["ours: smallest per seed"] == 2.0  # 2, 3, 6
    assert np.isnan(blurred["ours: paired std"])  # one seed: no spread
    assert main["published: Δ mIoU"] == 5.5
    assert "MIC(HRDA) − HRDA" not in claims.index  # a row without runs makes no claim


def test_schedule_study_finds_a_rows_runs_at_every_length(tmp_path: Path) -> None:
    """Runs of a row at its own length and at a longer one (`compare --iters`) are found by their
    configs; a run still training, and another experiment in the same folder, are not."""
    from hrda_lib.config import config_to_plain
    from hrda_lib.reproduction.convergence import schedule_study
    from hrda_lib.reproduction.runs import train_length

    profile = catalogue.get_profile("smoke")

    def run(folder: str, key: str, iters: int, last: int, miou: tuple[float, float]) -> None:
        cfg = train_length(catalogue.row_config(profile, key, 0), iters)
        work_dir = tmp_path / folder / "runs" / f"{cfg.name}_seed0"
        work_dir.mkdir(parents=True)
        (work_dir / "config.json").write_text(json.dumps(config_to_plain(cfg)))
        log = {"iteration": [iters * 2 // 3, last], "val_miou": list(miou)}
        pd.DataFrame(log).to_csv(work_dir / "metrics.csv", index=False)

    own = catalogue.row_config(profile, "hrda", 0).iters
    run("06_full_training", "hrda", own, own, (30.0, 30.5))
    run("schedule_40", "hrda", 40, 40, (40.0, 42.0))
    run("schedule_40", "daformer_lr", 40, 20, (35.0, 36.0))  # unfinished
    run("schedule_60", "source_only", 60, 60, (20.0, 20.0))  # not asked for
    table, curves = schedule_study("smoke", ["hrda", "daformer_lr"], tmp_path)
    assert list(table["iters"]) == [own, 40] and set(table["key"]) == {"hrda"}
    assert list(table["last_third_gain"]) == [0.5, 2.0]
    assert list(table["converged"]) == [True, False]
    assert len(curves) == 4 and set(curves["iters"]) == {own, 40}


def test_a_notebook_run_by_hand_writes_to_scratch_not_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in JupyterLab (`make lab`): no HRDA_RESULTS, so the notebook writes into the scratch
    folder and the committed results/ stay as they are."""
    import papermill

    monkeypatch.delenv("HRDA_RESULTS", raising=False)
    monkeypatch.setenv("HRDA_SCRATCH", str(tmp_path / "scratch"))
    source = _notebook(tmp_path / "nb" / "02_probe.ipynb", WRITES_CONFIG.format(stem="02_probe"))
    papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), progress_bar=False)
    assert (tmp_path / "scratch" / "02_probe" / "config.json").is_file()
    assert not (runner.REPO_ROOT / "results" / "02_probe").exists()
    printed = "".join(
        o.get("text", "")
        for c in nbformat.read(tmp_path / "out.ipynb", 4).cells
        for o in c.get("outputs", [])
    )
    assert "writing to" in printed and "committed results/ stay as they are" in printed


def test_the_runner_points_the_kernels_at_its_results_and_restores_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HRDA_RESULTS", raising=False)
    monkeypatch.setenv("HRDA_SCRATCH", str(tmp_path / "scratch"))
    source = _notebook(tmp_path / "nb" / "02_probe.ipynb", WRITES_CONFIG.format(stem="02_probe"))
    runner.run("smoke", results=tmp_path / "mine", notebooks=[source], log=lambda _: None)
    assert (tmp_path / "mine" / "02_probe" / "config.json").is_file()
    assert not (tmp_path / "scratch").exists()
    assert "HRDA_RESULTS" not in os.environ
