"""Each notebook's results folder, `results/<notebook-stem>/`, and what it writes there: its
`config.json` (parameters, versions, git commit), tidy CSVs, Markdown and PNG figures, all written
atomically. Notebooks form a chain: a later one reads an earlier one's folder (`upstream_table`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch

from hrda_lib.files import atomic_write_bytes, write_text
from hrda_lib.paths import REPO_ROOT, output_root, portable, read_roots, results_root
from hrda_lib.viz import save_figure


def device() -> torch.device:
    """Where the notebooks' models run: the GPU if there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def results_dir(notebook_stem: str) -> Path:
    """The folder a notebook writes, created if missing: `<$HRDA_RESULTS>/<notebook_stem>/`
    under the runner (which sets HRDA_RESULTS), else `scratch/<notebook_stem>/`, so that a
    notebook run by hand leaves the committed `results/` as they are (it still reads them:
    `upstream_table`, the runs it reuses)."""
    path = output_root() / notebook_stem
    path.mkdir(parents=True, exist_ok=True)
    if path.parent != results_root():
        shown = os.path.relpath(path, REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        print(
            f"[results] writing to {shown}/ (a notebook run by hand: the committed results/ stay "
            "as they are; set HRDA_RESULTS to write elsewhere)"
        )
    return path


def git_commit() -> str:
    """HEAD of the checkout, with `-dirty` if tracked files differ from it ("unknown" outside
    a git checkout)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def versions() -> dict[str, str]:
    """Python, platform, the main packages and the device the notebook ran on."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("hrda", "torch", "timm", "numpy", "pandas", "matplotlib", "papermill"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    found["torch_threads"] = str(torch.get_num_threads())
    return found


def write_run_config(out_dir: Path, params: dict, **extra) -> Path:
    """Write `out_dir/config.json`: the notebook's parameters, versions, git commit, time.

    `extra` adds entries (e.g. the experiments a notebook ran); a path in them is written as it
    holds on any machine (`paths.portable`: `results/...`, `$HRDA_DATA/...`). Written last by each
    notebook, so its presence means the notebook finished (the runner's up-to-date check reads
    it).
    """
    record = {
        "notebook": Path(out_dir).name,
        "parameters": params,
        "versions": versions(),
        "git_commit": git_commit(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **{key: _portable_value(value) for key, value in extra.items()},
    }
    path = Path(out_dir) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(record, indent=2, default=str).encode())
    return path


def _portable_value(value):
    """`value` with every string or path in it through `paths.portable`."""
    if isinstance(value, str | Path):
        return portable(str(value))
    if isinstance(value, dict):
        return {key: _portable_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_portable_value(item) for item in value]
    return value


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    """Write a (tidy) table as CSV atomically; returns the path."""
    return write_text(Path(path), table.to_csv(index=False))


def save_figures(figures: dict, out_dir: Path) -> list[Path]:
    """Save every figure of a notebook as `<out_dir>/<name>.png`."""
    return [save_figure(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()]


def run_script(script: str, *args: str | Path) -> str:
    """Run `data_scripts/<script>` with this Python; its output (raises with it on failure)."""
    command = [sys.executable, str(REPO_ROOT / "data_scripts" / script), *map(str, args)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def upstream_table(stem: str, name: str = "metrics.csv", required: bool = False):
    """A table an earlier notebook wrote (`results/<stem>/<name>`, or the scratch folder's first
    when a notebook runs by hand); None if it has not run, or FileNotFoundError naming the
    notebook to run if `required`."""
    for root in read_roots():
        if (root / stem / name).is_file():
            return pd.read_csv(root / stem / name)
    path = results_root() / stem / name
    if required:
        raise FileNotFoundError(
            f"{path} is missing: run notebook {stem} first "
            f"(python -m hrda_lib.reproduce --profile <profile> --only {stem[:2]})"
        )
    return None
