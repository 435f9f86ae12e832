"""Data-parallel training across processes (torchrun): who this process is, and what it shares.

`torchrun --nproc-per-node N cli.py train ...` (or `python cli.py train --nproc N`, which launches
it) starts N ranks. Every rank draws the same global step from the seeded loaders (so the stream
of sweeps is the single-process one), reads only its own share of it, and `torch.nn.parallel.
DistributedDataParallel` averages the gradients: a step of S sweeps on N ranks is S/N sweeps per
rank, each clamped on its own, and equals the single-process step of S sweeps. The sampling noise
ε is drawn for the whole global step on every rank and sliced the same way, so a 2-process run
follows the 1-process run's weights up to float summation order.

Backends: `gloo` on CPU, `nccl` on CUDA (one GPU per rank, `cuda:<LOCAL_RANK>`). Rank 0 alone
writes checkpoints and DVCLive logs (its losses are those of its share of each step; images/s
counts the whole step); a resumed run's state is read by rank 0 and broadcast, so ranks need no
shared storage. Checkpoints do not record the process count: a run resumes on any number of ranks
that splits its step.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from config import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    """Ranks on this machine (they share its cores)."""

    @classmethod
    def from_env(cls) -> "World":
        """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE); one process without it."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)),
                   int(env.get("LOCAL_WORLD_SIZE", 1)))

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """The rank that writes checkpoints, logs and progress."""
        return self.rank == 0

    def share(self, count: int, what: str) -> slice:
        """This rank's contiguous part of `count` items of a step (sweeps or images)."""
        if count % self.size:
            raise UserError(f"{what} is {count}, which does not split over {self.size} processes; "
                            f"make it a multiple of {self.size} or change --nproc")
        part = count // self.size
        return slice(self.rank * part, (self.rank + 1) * part)


def start(world: World, device: torch.device) -> None:
    """Join the process group (gloo on CPU, nccl on CUDA)."""
    if world.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def stop() -> None:
    """Leave the process group together: without the barrier a rank that finished first could tear its
    side of gloo's connections down while another was still closing, and that rank hung (seen in the
    full test suite, 2 runs of 3)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def from_main(obj, world: World):
    """Rank 0's `obj` on every rank (any picklable object; rank 0's argument is the one kept)."""
    if not world.distributed:
        return obj
    box = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_finite(loss: torch.Tensor, world: World) -> bool:
    """Whether the loss is finite on every rank: all ranks stop together rather than wait on one that stopped."""
    ok = torch.isfinite(loss.detach()).to(torch.float32).reshape(1)
    if world.distributed:
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


def launch(nproc: int, argv: list[str]) -> int:
    """Run `cli.py argv` as `nproc` ranks on this machine under torchrun; returns its exit code."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *argv]
    return subprocess.run(cmd).returncode
