"""The model API page (docs/api.md) runs as written (from the repository root)."""

from __future__ import annotations

import re
import shutil

import pytest

from hrda_lib.paths import REPO_ROOT


def _api_snippets() -> list[str]:
    page = (REPO_ROOT / "docs" / "api.md").read_text()
    return re.findall(r"```python\n(.*?)```", page, flags=re.S)


def test_the_model_api_page_has_snippets() -> None:
    assert len(_api_snippets()) == 4


@pytest.mark.parametrize("index", range(4))
def test_api_snippet_runs_as_written(index: int, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))  # the smoke run's generated data
    snippet = _api_snippets()[index]
    try:
        exec(compile(snippet, f"docs/api.md snippet {index}", "exec"), {"__name__": "__docs__"})
    finally:
        shutil.rmtree(REPO_ROOT / "work_dirs" / "readme_smoke", ignore_errors=True)
