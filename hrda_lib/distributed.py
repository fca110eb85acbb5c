"""Training on several processes with torchrun: one process per GPU (or per CPU with gloo), the
experiment's batch split between them.

    torchrun --nproc-per-node 2 -m hrda_lib.train synthetic_hrda --work-dir work_dirs/x

A run on N processes computes what the same run computes in one process (to float tolerance,
tested with 2 CPU processes), up to the draws of dropout and drop-path:

* **The batch is global.** `batch_size` is the batch of all processes together; each process
  loads its share of the same sample stream (`ShardSampler`), so the samples of a run do not
  depend on N, and a run resumes with any N.
* **Per-image draws** (ClassMix classes, colour jitter and blur, MIC's masks) are drawn for the
  global batch on every process from the same generator, and each process keeps its rows
  (`Shard.rows`); the detail crop, one per batch, is drawn alike everywhere.
* **Batch-level quantities** are computed over the global batch (`Shard.total`): the
  pseudo-label quality q (confident pixels over all pixels) and the feature distance's mean over
  thing cells. Every other loss is a mean over pixels, to which equal shards average.
* **BatchNorm** (the decode heads) normalizes with the global batch's statistics, in the student
  and in the teacher (`SyncBatchNorm2d`, which also runs on CPU, unlike `torch.nn.SyncBatchNorm`).
* **Gradients** are averaged over the processes once per step, after the step's backward passes
  and before the optimizer (`Shard.average_gradients`, one flattened all-reduce). DDP's module
  wrapper is not used: the step calls several model methods (student passes, teacher) and
  accumulates up to three backward passes, which its forward hook does not follow.
* **The EMA teacher** is updated from identical weights on every process, so it stays identical.

Deviation: the global torch generator, which dropout and drop-path draw from, is seeded per
process (`seed + rank`), so those draws differ from a one-process run's (and between processes,
as they would between the images of one batch). SHADE's style draws and MIC's `separate*` modes
(which train on the first image of the batch) are refused with N > 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from hrda_lib.errors import UsageError


@dataclass(frozen=True)
class Shard:
    """This process's place in a run: `rank` of `world` processes (0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """The process that writes (checkpoints, logs, validation)."""
        return self.rank == 0

    def rows(self, local: int) -> slice:
        """This process's rows of a global batch whose per-process share is `local` images."""
        return slice(self.rank * local, (self.rank + 1) * local)

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """`value` summed over the processes (no gradient); `value` itself in one process."""
        if not self.distributed:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """The processes' `tensor`s concatenated along dim 0 in rank order (no gradient)."""
        if not self.distributed:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def average_gradients(self, modules: Iterable[nn.Module | None]) -> None:
        """Replace every gradient by its mean over the processes (one all-reduce)."""
        if not self.distributed:
            return
        grads = [
            p.grad for m in modules if m is not None for p in m.parameters() if p.grad is not None
        ]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def gather_objects(self, value: object) -> list[object]:
        """Every process's `value` (picklable), by rank."""
        if not self.distributed:
            return [value]
        values: list[object] = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


ONE_PROCESS = Shard()  # a run without torchrun


def launch(device_type: str) -> tuple[Shard, torch.device | None, bool]:
    """Join the process group that torchrun describes in the environment (`WORLD_SIZE`, `RANK`,
    `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`), NCCL on CUDA and gloo on CPU.

    Returns:
        The shard, this process's device (`cuda:LOCAL_RANK`, None without CUDA or torchrun) and
        whether this call created the group (and so should destroy it).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return ONE_PROCESS, None, False
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = None
    if device_type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Shard(rank, world), device, created


class ShardSampler(Sampler[int]):
    """This process's indices of each global batch of `sampler`: of every `batch_size`
    consecutive indices, the `batch_size / world` ones at position `rank`."""

    def __init__(self, sampler: Iterable[int], batch_size: int, shard: Shard) -> None:
        if batch_size % shard.world:
            raise UsageError(f"batch size {batch_size} is not a multiple of {shard.world}")
        self.sampler, self.batch_size, self.shard = sampler, batch_size, shard

    def __iter__(self) -> Iterator[int]:
        rows = self.shard.rows(self.batch_size // self.shard.world)
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield from batch[rows]
                batch = []


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; its gradient is the sum of the processes' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the batch of all processes.

    The statistics are reduced with autograd-aware all-reduces (mean first, then the variance
    around it), so the gradient of every process's loss reaches the other processes' inputs as
    in one process. In eval mode, or in one process, it is `nn.BatchNorm2d`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        count = x.new_tensor(float(x.numel() // channels))
        sums = _AllReduceSum.apply(torch.cat([x.sum((0, 2, 3)), count[None]]))
        count = sums[-1].detach()
        mean = sums[:channels] / count
        centred = x - mean[None, :, None, None]
        var = _AllReduceSum.apply(centred.pow(2).sum((0, 2, 3))) / count  # biased, as BN
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * count / (count - 1), momentum)
        out = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """Turn every `nn.BatchNorm2d` of `module` into a `SyncBatchNorm2d` in place, keeping its
    parameter and buffer objects (an optimizer built before still holds them)."""
    for child in module.children():
        if type(child) is nn.BatchNorm2d:
            child.__class__ = SyncBatchNorm2d
        else:
            sync_batchnorm(child)
    return module
