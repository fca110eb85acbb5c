"""What keeps a training run from losing or mislabelling work: one run per work folder at a time,
and the detection of a run that diverged, so that its last checkpoint stays one from before."""

from __future__ import annotations

import math
import os
import socket
from collections import deque
from contextlib import contextmanager
from pathlib import Path

import torch

from hrda_lib.cli import UsageError


class DivergedError(RuntimeError):
    """The run diverged; the message names the iteration and the last good checkpoint."""


@contextmanager
def work_dir_lock(work_dir: Path):
    """Hold `<work_dir>/.lock` while training writes there: a second run in the same folder
    fails at once (a lock left by a process that no longer exists is taken over)."""
    lock = Path(work_dir) / ".lock"
    owner = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pid, _, host = lock.read_text().partition(" ")
            if host.strip() == socket.gethostname() and not _alive(int(pid or 0)):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            raise UsageError(
                f"{work_dir} is in use by another training (pid {pid} on {host.strip()}): wait "
                f"for it to end, or choose another --work-dir (delete {lock} if it crashed)"
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(owner)
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def weight_norm(model: torch.nn.Module) -> float:
    """L2 norm of all parameters together."""
    with torch.no_grad():
        return math.sqrt(sum(float(p.double().square().sum()) for p in model.parameters()))


class DivergenceMonitor:
    """Flags a diverging run: a non-finite loss or weight, a source loss `factor` times its
    running median (over the last `window` iterations, after `warmup`), or a weight norm
    `factor` times its value at the start.

    Args:
        model: the student whose weights are watched.
        factor: how far above its running level a quantity may go.
    """

    def __init__(
        self, model: torch.nn.Module, factor: float = 10.0, window: int = 50, warmup: int = 20
    ) -> None:
        self.factor, self.warmup = factor, warmup
        self.losses: deque[float] = deque(maxlen=window)
        self.initial_norm = weight_norm(model)

    def loss_problem(self, row: dict) -> str | None:
        """Why the logged losses of one iteration are divergent, or None."""
        values = {k: v for k, v in row.items() if k.startswith(("loss", "pseudo"))}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            return f"non-finite {', '.join(f'{k}={v}' for k, v in bad.items())}"
        loss = row.get("loss_source_total")
        if loss is None:
            return None
        if len(self.losses) >= self.warmup:
            level = sorted(self.losses)[len(self.losses) // 2]
            if loss > self.factor * level:
                return f"loss_source_total {loss:.3g} is over {self.factor:g} x its running level"
        self.losses.append(loss)
        return None

    def weight_problem(self, model: torch.nn.Module) -> str | None:
        """Why the weights are divergent (non-finite, or far above their start), or None."""
        norm = weight_norm(model)
        if not math.isfinite(norm):
            return "non-finite weights"
        if norm > self.factor * self.initial_norm:
            start = self.initial_norm
            return f"weight norm {norm:.3g} is over {self.factor:g} x its start {start:.3g}"
        return None
