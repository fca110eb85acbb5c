"""Where things live: paths derived from the package's own location, overridable by env vars.

`HRDA_DATA` (datasets), `HRDA_RESULTS` (outputs), `HRDA_GOLDEN` (the official-code fixtures).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Root of the datasets in their official layouts (`data/cityscapes`, `data/gta`, ...)."""
    return Path(os.environ.get("HRDA_DATA", REPO_ROOT / "data"))


def results_root() -> Path:
    """Root of everything the notebooks and benchmarks write."""
    return Path(os.environ.get("HRDA_RESULTS", REPO_ROOT / "results"))


def golden_root() -> Path:
    """The official code's golden fixtures: the project's compact copy in `tests/golden` (made
    by `tests/golden/extract.py`) unless `HRDA_GOLDEN` names another folder of that layout."""
    return Path(os.environ.get("HRDA_GOLDEN", REPO_ROOT / "tests" / "golden"))


def resolve_weights(path: str | Path) -> Path:
    """A weights path as a config names it: absolute, or relative to the working folder, or
    else to the repository (so `pretrained/mit_b5.pth` works from `notebooks/` too)."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path
