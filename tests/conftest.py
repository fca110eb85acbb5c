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
    """The project's copy of the official code's golden fixtures (`tests/golden`)."""
    return golden_root()


@pytest.fixture(scope="session")
def pure_functions(golden_dir: Path) -> dict:
    """Reference values of the deterministic parts, produced by the official code."""
    return json.loads((golden_dir / "pure_functions.json").read_text())


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted `tiny` synthetic benchmark (seed 0), generated once per test session."""
    root = tmp_path_factory.mktemp("synthetic_tiny_s0")
    return ensure_synthetic(root, "tiny", seed=0, nproc=1)


def train_smoke_checkpoint(tmp_path_factory: pytest.TempPathFactory, name: str, iters: int) -> Path:
    """A real training checkpoint of our format: `iters` iterations of the smoke HRDA preset."""
    from hrda_lib import train
    from hrda_lib.presets import get_preset

    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HRDA_DATA", str(root / "data"))
        train.train(get_preset("smoke_hrda"), root / "run", iters=iters, progress=False)
    return root / "run" / "latest.pth"
