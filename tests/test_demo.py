"""The demo's comparison with the committed results (on small made-up results folders)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hrda_lib import cli
from hrda_lib.reproduction import demo


def _results(root: Path, rows: dict[str, list[float]], profile: str = "synthetic") -> Path:
    """A results folder with 07's main comparison made under `profile`: `rows` maps a row to
    its mIoU per seed."""
    lines = [
        (row, seed, 1200, "x", value)
        for row, values in rows.items()
        for seed, value in enumerate(values)
    ]
    table = pd.DataFrame(lines, columns=["row", "seed", "iters", "profile", "miou"])
    (root / "07_figures_tables").mkdir(parents=True)
    table.to_csv(root / "07_figures_tables" / "main_comparison.csv", index=False)
    config = {"notebook": "07_figures_tables", "parameters": {"profile": profile}}
    (root / "07_figures_tables" / "config.json").write_text(json.dumps(config))
    return root


def test_headline_numbers_are_judged_against_the_committed_seed_spread(tmp_path: Path) -> None:
    committed = _results(
        tmp_path / "committed", {"hrda": [50.0, 52.0, 54.0], "daformer_lr": [48.0, 49.0, 50.0]}
    )
    run = _results(tmp_path / "demo", {"hrda": [53.0], "daformer_lr": [40.0]})
    table = demo.headline_table(run, committed).set_index("headline")
    hrda = table.loc["HRDA (mIoU)"]
    assert (hrda["demo (seed 0)"], hrda["committed mean"], hrda["committed std"]) == (53, 52, 2)
    assert hrda["reproduced (within 2 std)"] == "yes"
    assert table.loc["DAFormer (LR data) (mIoU)", "reproduced (within 2 std)"] == "NO"
    delta = table.loc["HRDA − DAFormer (LR data) (Δ mIoU)"]
    assert delta["demo (seed 0)"] == 13 and delta["committed mean"] == 3  # per-seed pairs
    assert delta["reproduced (within 2 std)"] == "NO"


def test_committed_results_of_another_profile_are_not_a_reference(tmp_path: Path, capsys) -> None:
    committed = _results(tmp_path / "committed", {"hrda": [17.0]}, profile="quick")
    run = _results(tmp_path / "demo", {"hrda": [53.0]}, profile="quick")
    hrda = demo.headline_table(run, committed).set_index("headline").loc["HRDA (mIoU)"]
    assert hrda["committed seeds"] == 0 and hrda["reproduced (within 2 std)"] == "–"
    assert "is not of profile 'synthetic'" in capsys.readouterr().out


def test_the_demo_never_writes_over_the_committed_results(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.run(demo.main, ["--out", str(demo.COMMITTED)])
    assert exited.value.code == 2
    assert "never writes over the committed results" in capsys.readouterr().err


def test_the_summary_names_the_committed_rows_the_demo_did_not_train(tmp_path: Path) -> None:
    committed = _results(tmp_path / "committed", {"hrda": [50.0, 52.0], "fixedatt": [48.0, 49.0]})
    run = _results(tmp_path / "demo", {"hrda": [53.0]})
    sentence = demo._left_out(run, committed)
    assert "Not trained here" in sentence
    assert sentence.split("): ")[1].strip() == demo.row_label("synthetic", "fixedatt") + "."
    assert demo.row_label("synthetic", "fixedatt").startswith(demo.ROW_NAMES["fixedatt"])
    assert demo._left_out(committed, committed) == ""
