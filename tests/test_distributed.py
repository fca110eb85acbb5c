"""Training on 2 CPU processes (gloo, as torchrun starts them) computes what one process computes
with the same global batch, and a run resumes with another number of processes."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from hrda_lib import augment
from hrda_lib.cli import UsageError
from hrda_lib.distributed import Shard, ShardSampler
from hrda_lib.presets import get_preset
from hrda_lib.train import _check_distributed, train


def _identity(self, x):
    return x


def _config():
    """Smoke MIC(HRDA) with FD, without dropout and drop-path: the only draws that differ
    between processes by design (their global RNG streams are per process)."""
    cfg = get_preset("smoke_mic_hrda")
    return replace(cfg, model=replace(cfg.model, drop_path_rate=0.0), checkpoint_interval=1)


def _worker(rank, world, port, cfg, work_dir, stop_at, resume) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    torch.nn.Dropout2d.forward = _identity
    train(cfg, work_dir, stop_at=stop_at, resume=resume, progress=False)


def _torchrun(world: int, cfg, work_dir: Path, stop_at: int, resume: bool = False) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(world, port, cfg, work_dir, stop_at, resume), nprocs=world)


def _state(work_dir: Path) -> dict:
    return torch.load(work_dir / "latest.pth", weights_only=False)["state"]


def _assert_same_run(a: Path, b: Path) -> None:
    one, two = _state(a), _state(b)
    assert one["iteration"] == two["iteration"]
    for key in ("model", "teacher"):
        for name, value in one[key].items():
            if value.is_floating_point():
                torch.testing.assert_close(two[key][name], value, rtol=1e-4, atol=2e-5)
            else:
                assert torch.equal(two[key][name], value), (key, name)
    log_a, log_b = pd.read_csv(a / "metrics.csv"), pd.read_csv(b / "metrics.csv")
    losses = [c for c in log_a if c.startswith("loss") or c == "pseudo_weight"]
    assert {"loss_fd", "loss_mixed_total", "loss_mic_total"} <= set(losses)
    pd.testing.assert_frame_equal(log_a[losses], log_b[losses], rtol=1e-4, atol=1e-6)


def test_two_processes_train_as_one_and_resume_with_either(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.nn.Dropout2d, "forward", _identity)
    cfg = _config()
    train(cfg, tmp_path / "one", stop_at=3, progress=False)
    _torchrun(2, cfg, tmp_path / "two", stop_at=3)
    _assert_same_run(tmp_path / "one", tmp_path / "two")
    # One process for 2 iterations, then 2 processes resume its checkpoint for the third.
    train(cfg, tmp_path / "split", stop_at=2, progress=False)
    _torchrun(2, cfg, tmp_path / "split", stop_at=3, resume=True)
    _assert_same_run(tmp_path / "one", tmp_path / "split")
    rngs = torch.load(tmp_path / "split" / "latest.pth", weights_only=False)["rng"]
    assert len(rngs["processes"]) == 2  # each process's dropout stream, for the next resume


def test_each_process_loads_its_share_of_every_global_batch() -> None:
    stream = list(range(12))
    shares = [list(ShardSampler(stream, 4, Shard(rank, 2))) for rank in (0, 1)]
    assert shares == [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]]
    with pytest.raises(ValueError, match="not a multiple"):
        ShardSampler(stream, 3, Shard(0, 2))


def test_per_image_draws_of_a_share_are_the_global_batch_rows() -> None:
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    params = augment.sample_strong_aug_params(4, torch.Generator().manual_seed(1), 0.0)
    whole = augment.strong_augment(images, params)
    for rank in (0, 1):
        rows = Shard(rank, 2).rows(2)
        share = augment.strong_augment(images[rows], augment.select_images(params, rows))
        torch.testing.assert_close(share, whole[rows])


def test_what_a_distributed_run_cannot_do_is_one_line() -> None:
    cfg = get_preset("smoke_hrda")
    _check_distributed(cfg, Shard(0, 2))  # batch 2 on 2 processes
    with pytest.raises(UsageError, match="batch_size 2 .* --set batch_size=4"):
        _check_distributed(cfg, Shard(0, 4))
    with pytest.raises(UsageError, match="SHADE"):
        _check_distributed(get_preset("smoke_dg_hrda"), Shard(0, 2))
