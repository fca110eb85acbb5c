"""Project conventions: dependency lists agree, notebooks are clean, CI calls make test."""

from __future__ import annotations

import json
import re
import tomllib

from hrda_lib.paths import REPO_ROOT


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ \[]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    lines = (REPO_ROOT / "environment.yml").read_text().splitlines()
    pip_section = [ln.strip()[2:] for ln in lines if ln.startswith("      - ")]
    assert {r.replace(" ", "") for r in pip_section} == {r.replace(" ", "") for r in wanted}
    assert _names(pip_section) >= {"torch", "torchvision", "timm", "papermill", "jupyterlab"}


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme


def test_source_notebooks_have_no_outputs_and_a_parameters_cell() -> None:
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and not c.get("execution_count") for c in code), path
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells), path
