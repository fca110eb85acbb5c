"""What makes a training run resumable: its checkpoint (the whole `step.TrainState` and the
process's RNG states, so that a resumed run continues exactly), the check that a checkpoint is
resumed only by the experiment that wrote it, and Ctrl-C ending a run at a whole iteration with
a checkpoint.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from hrda_lib import distributed
from hrda_lib.checkpoints import read_training_checkpoint, save_training_checkpoint
from hrda_lib.config import ExperimentConfig, config_to_plain
from hrda_lib.errors import UsageError
from hrda_lib.step import TrainState


def global_rng_state() -> dict:
    """The process-wide RNG states that a resumed run must continue from."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": _plain_numpy_state(np.random.get_state(legacy=False)),
        "python": random.getstate(),
    }


def _plain_numpy_state(state: dict) -> dict:
    """numpy's global state with its key array as a tensor: a checkpoint of tensors and plain
    values, which `torch.load(weights_only=True)` reads."""
    key = torch.from_numpy(state["state"]["key"].astype(np.int64))
    return state | {"state": state["state"] | {"key": key}}


def set_global_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    numpy = rng["numpy"]  # a dict with the key as a tensor (v3), or numpy's tuple (v2)
    if isinstance(numpy, dict):
        key = numpy["state"]["key"].numpy().astype(np.uint32)
        numpy = numpy | {"state": numpy["state"] | {"key": key}}
    np.random.set_state(numpy)
    random.setstate(rng["python"])


def save_checkpoint(
    state: TrainState, cfg: ExperimentConfig, path: Path, process_rngs: list[dict] | None = None
) -> None:
    """Everything needed to resume exactly, written atomically (`checkpoints`); a distributed
    run adds every process's global RNG state (`process_rngs`, by rank) to rank 0's."""
    rng = global_rng_state()
    if process_rngs is not None:
        rng["processes"] = process_rngs
    save_training_checkpoint(path, cfg, state.state_dict(), rng)


def load_checkpoint(
    state: TrainState, path: Path, cfg: ExperimentConfig, shard: distributed.Shard | None = None
) -> bool:
    """Restore `state` and the global RNGs from `save_checkpoint` (in a distributed run, this
    process's global RNG), once `check_resumable` has found it a checkpoint of `cfg` (the file is
    read once). Returns False if the checkpoint holds no RNG state for this process (it was
    saved by fewer processes), which the caller seeds then."""
    payload = read_training_checkpoint(path)
    check_resumable(path, payload["config"], cfg)
    state.load_state_dict(payload["state"])
    rank = shard.rank if shard is not None else 0
    rngs = payload["rng"].get("processes") or [payload["rng"]]
    if rank >= len(rngs):
        return False
    set_global_rng_state(rngs[rank])
    return True


# What may change when a run resumes: how often it is checked and saved, and how fast it runs;
# not what it computes (seed, schedule, data, model, UDA method and losses).
RESUME_MAY_CHANGE = frozenset(
    {
        "eval_interval",
        "eval_max_images",
        "checkpoint_interval",
        "log_interval",
        "max_batch",
        "activation_checkpointing",
        "channels_last",
        "compile",
        "notes",
    }
)


def _differences(saved: dict, new: dict, prefix: str = "") -> list[str]:
    """The dotted names of the fields that differ between two plain configs."""
    out = []
    for key in sorted(saved.keys() | new.keys()):
        a, b = saved.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def check_resumable(checkpoint: Path, saved: ExperimentConfig, cfg: ExperimentConfig) -> None:
    """Refuse to resume `checkpoint` (holding a run of `saved`) as `cfg` when they are other
    experiments: another architecture (its weights would not load), or another seed, schedule,
    data or UDA setting (the run would be neither the one it started as nor the new one);
    `config.json` is left as it was."""
    changed = [
        name
        for name in _differences(config_to_plain(saved), config_to_plain(cfg))
        if name.split(".")[0] not in RESUME_MAY_CHANGE
    ]
    model = [name.removeprefix("model.") for name in changed if name.startswith("model.")]
    if model:
        raise UsageError(
            f"{checkpoint} holds a run of another model ({', '.join(model)} differ): choose "
            "another --work-dir, or resume with the experiment it was trained with"
        )
    if changed:
        shown = ", ".join(changed[:6]) + (
            f" and {len(changed) - 6} more" if len(changed) > 6 else ""
        )
        raise UsageError(
            f"{checkpoint} holds a run of another experiment ({shown} differ): resume it with "
            f"the config it was trained with ({checkpoint.parent / 'config.json'}), or train "
            "the changed experiment into another --work-dir"
        )


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, raised once the last whole iteration is in the checkpoint."""


class InterruptRequest:
    """Set by the first Ctrl-C within `deferred_interrupt`; the loop reads it between
    iterations."""

    requested: bool = False


@contextlib.contextmanager
def deferred_interrupt(enabled: bool = True) -> Iterator[InterruptRequest]:
    """Within: the first Ctrl-C (SIGINT) only sets `.requested`, so that training ends its
    iteration and writes a checkpoint before it stops; a second one stops at once (the last
    periodic checkpoint stays, written atomically). Off the main thread, where Python delivers no
    signals, or when not `enabled` (a distributed run, whose processes must stop together),
    Ctrl-C keeps its usual meaning."""
    request = InterruptRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True
        print(
            "\n[train] Ctrl-C: stopping after this iteration with a checkpoint (again: at once)",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)
