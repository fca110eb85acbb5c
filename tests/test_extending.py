"""Extending hrda through its tables alone: a toy UDA method (one `step.UDA_METHODS` entry), a
row that trains it (one `presets.Row`) and a notebook that trains that row after reading 06 (one
`catalogue.Notebook` and its .ipynb). The runner trains the row ahead of the notebook, runs the
notebook, and treats it as stale when 06 has newer results; nothing else is edited."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from hrda_lib import presets, step
from hrda_lib.reproduction import catalogue, runner
from hrda_lib.reproduction.results import write_run_config

TOY_NOTEBOOK = """
from hrda_lib.reproduction.results import results_dir, write_run_config
write_run_config(results_dir("10_toy"), {"profile": profile})
"""


def _toy_method(calls: list[int]) -> step.UDAMethod:
    def target_pass(state, batch, cfg, source_fused, logs, shard) -> None:
        calls.append(state.iteration)  # a real method adds its target loss here
        logs["loss_toy"] = torch.zeros(())

    return step.UDAMethod(target_pass)


def _toy_row(b: presets.Benchmark) -> presets.ExperimentConfig:
    hrda = b.hrda()
    return replace(hrda, uda=replace(hrda.uda, method="toy"))


@pytest.fixture
def toy_tables(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The three table entries (what each is, once written into its table at import)."""
    calls: list[int] = []
    monkeypatch.setitem(step.UDA_METHODS, "toy", _toy_method(calls))
    monkeypatch.setitem(presets.ROWS, "toy", presets.Row("toy", "Toy method", _toy_row))
    toy = catalogue.Notebook("10", reads=("06",), trains=lambda p: ((("toy",), p.seeds),))
    monkeypatch.setattr(catalogue, "NOTEBOOKS", (*catalogue.NOTEBOOKS, toy))
    return calls


def test_a_toy_method_row_and_notebook_are_one_table_entry_each(
    toy_tables: list[int], tmp_path: Path, tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    shutil.copytree(tiny_root, tmp_path / "data" / "synthetic_tiny_s0")
    results = tmp_path / "results"
    monkeypatch.setenv("HRDA_RESULTS", str(results))  # the kernel inherits it
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        new_code_cell('profile: str = "smoke"\n', metadata={"tags": ["parameters"]}),
        new_code_cell(TOY_NOTEBOOK),
    ]
    source = tmp_path / "notebooks" / "10_toy.ipynb"
    source.parent.mkdir()
    nbformat.write(nb, source)

    assert catalogue.notebook_rows("smoke")["10"] == ((("toy",), (0,)),)
    assert catalogue.row_config("smoke", "toy").name == "smoke_toy"
    assert catalogue.row_label("smoke", "toy").startswith("Toy method")
    done = runner.run("smoke", results=results, notebooks=[source], log=print)
    assert [d["status"] for d in done] == ["ran"]

    run = results / "10_toy" / "runs" / "smoke_toy_seed0"  # trained ahead by the runner
    assert toy_tables == [0, 1, 2, 3]  # the toy method's pass, once per iteration
    assert pd.read_csv(run / "metrics.csv")["loss_toy"].eq(0).all()
    assert json.loads((run / "config.json").read_text())["uda"]["method"] == "toy"
    params = runner.notebook_parameters(source, "smoke")
    assert runner.staleness(source, params, results) is None
    write_run_config(results / "06_full_training", {"profile": "smoke"})  # what 10 reads
    assert runner.staleness(source, params, results) == "06_full_training has newer results"
