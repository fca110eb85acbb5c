"""The README's model API section runs as written (from the repository root)."""

from __future__ import annotations

import re
import shutil

import pytest

from hrda_lib.paths import REPO_ROOT


def _api_snippets() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## The model API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_model_api_section_has_snippets() -> None:
    assert len(_api_snippets()) == 3


@pytest.mark.parametrize("index", range(3))
def test_readme_snippet_runs_as_written(index: int, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))  # the smoke run's generated data
    snippet = _api_snippets()[index]
    try:
        exec(compile(snippet, f"README snippet {index}", "exec"), {"__name__": "__readme__"})
    finally:
        shutil.rmtree(REPO_ROOT / "work_dirs" / "readme_smoke", ignore_errors=True)
