"""Notebook 02's ipywidgets explorer (`hrda_lib.plots.multires_explorer`): it draws its figure
before any slider moves and each move replaces it; and, in JupyterLab in a headless Chromium
(`docs/widgets/screenshots.py`, slow, skipped without selenium / Chromium / chromedriver), the
figure shows and changes when a slider moves."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from hrda_lib import plots
from hrda_lib.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "docs" / "widgets" / "screenshots.py"
PNG = b"\x89PNG"


def test_explorer_draws_its_figure_before_any_slider_moves() -> None:
    calls, figures = [], []

    def render(y: int, x: int, context_scale: float) -> plt.Figure:
        calls.append((y, x, context_scale))
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.set_title(f"{y} {x} {context_scale}")
        figures.append(fig)
        return fig

    explorer = plots.multires_explorer(render, context=64, detail=32)
    detail_y, detail_x, context_scale, figure = explorer.children
    assert calls == [(16, 16, 0.5)]  # the initial values, centred on the 8 px grid
    assert bytes(figure.value).startswith(PNG)
    first = bytes(figure.value)

    detail_x.value = 24
    assert calls == [(16, 16, 0.5), (16, 24, 0.5)]
    assert bytes(figure.value).startswith(PNG) and bytes(figure.value) != first
    assert len(explorer.children) == 4  # the figure is replaced, not stacked
    assert not any(plt.fignum_exists(fig.number) for fig in figures)  # nor left open


def _script():
    spec = importlib.util.spec_from_file_location("screenshots", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_screenshots_in_jupyterlab(tmp_path) -> None:
    missing = _script().missing_requirements()
    if missing:
        pytest.skip(missing)
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    before, after = tmp_path / "before.png", tmp_path / "after.png"
    assert before.read_bytes() != after.read_bytes()
    for path in (before, after):
        width, height = Image.open(path).size
        assert width > 800 and height > 400, (path.name, width, height)  # sliders and figure
