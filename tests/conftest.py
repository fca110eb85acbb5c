"""Shared fixtures: the official-code golden files, the tiny synthetic benchmark (generated once
per session) and deterministic torch settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hrda_lib.paths import golden_root
from hrda_lib.synthetic import ensure_synthetic

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """`../shared/golden` (or $HRDA_GOLDEN); the parity tests need it, so its absence fails."""
    root = golden_root()
    if not (root / "hrda_mitb0" / "io.pt").is_file():
        pytest.fail(f"golden fixtures not found at {root}; set HRDA_GOLDEN to shared/golden")
    return root


@pytest.fixture(scope="session")
def pure_functions(golden_dir: Path) -> dict:
    """Reference values of the deterministic parts, produced by the official code."""
    return json.loads((golden_dir / "pure_functions.json").read_text())


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted `tiny` synthetic benchmark (seed 0), generated once per test session."""
    root = tmp_path_factory.mktemp("synthetic_tiny_s0")
    return ensure_synthetic(root, "tiny", seed=0, nproc=1)
