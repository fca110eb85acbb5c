"""Shared test data for the data-side tests: the `tiny` synthetic benchmark, made once.

Each test module declares its own session fixture calling `tiny_synthetic_root`, which
generates and converts the set on the first call of the session and returns the same folder
afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hrda_lib.synthetic import ensure_synthetic

_ROOTS: dict[int, Path] = {}


def tiny_synthetic_root(tmp_path_factory: pytest.TempPathFactory, seed: int = 0) -> Path:
    """The converted tiny synthetic set of `seed`, generated once per test session."""
    if seed not in _ROOTS:
        root = tmp_path_factory.mktemp(f"synthetic_tiny_s{seed}")
        _ROOTS[seed] = ensure_synthetic(root, "tiny", seed=seed, nproc=1)
    return _ROOTS[seed]
