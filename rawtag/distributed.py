"""Several processes, one run: PyTorch distributed data parallel, as started by `torchrun`.

`torchrun --nproc_per_node N -m rawtag train ...` starts N copies of the same command; each learns its
rank from the environment. `fit` then splits every batch of `batch_size` clips between the processes
(so the optimization sees the same global batches as one process would), averages gradients with
DistributedDataParallel, gathers validation predictions so that every process computes the same AUC
(the learning-rate schedule depends on it), and lets only rank 0 write files. Backend: NCCL on CUDA,
gloo on CPU. Taught in the README's "Scale" section; tested with two CPU processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this process group was started here, and is ended by `close`

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_environment(device: torch.device) -> Context:
    """The process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_*),
    started if needed; a one-process Context when there is none."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Context()
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned)


def device_of(ctx: Context, device: torch.device) -> torch.device:
    """Each process's own GPU (its local rank) on CUDA; the device unchanged otherwise."""
    if ctx.active and device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return device


def barrier(ctx: Context) -> None:
    if ctx.active:
        dist.barrier()


def mean(ctx: Context, value: float) -> float:
    """The mean of `value` over all processes."""
    if not ctx.active:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world


def gather(ctx: Context, logits: np.ndarray, labels: np.ndarray, rows: np.ndarray):
    """Every process's predictions, concatenated and put in row order, on every process."""
    if not ctx.active:
        return logits, labels, rows
    parts = [None] * ctx.world
    dist.all_gather_object(parts, (logits, labels, rows))
    logits, labels, rows = (np.concatenate([p[i] for p in parts]) for i in range(3))
    order = np.argsort(rows, kind="stable")
    return logits[order], labels[order], rows[order]


def close(ctx: Context) -> None:
    if ctx.owned and dist.is_initialized():
        dist.destroy_process_group()
