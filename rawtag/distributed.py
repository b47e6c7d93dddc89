"""Several processes, one run: PyTorch distributed data parallel, as started by `torchrun`.

`torchrun --nproc_per_node N -m rawtag train ...` starts N copies of the same command; each learns its
rank from the environment. `fit` then splits every batch of `batch_size` clips between the processes
and takes the same optimizer steps as one process would on the whole batches:

- DistributedDataParallel averages the processes' gradients, so each process weights its mean loss by
  `share` (its part of the batch, times the number of processes): shares of 4/3/3 clips, or an odd
  batch over 2 processes, then give exactly the one-process gradient of the batch's mean loss;
- batch norm layers become `SyncBatchNorm`: statistics over the whole batch, not each process's part.

Validation predictions are gathered so that every process computes the same AUC (the learning-rate
schedule depends on it), and only rank 0 writes files. Backend: gloo for CPU tensors, NCCL for CUDA ones.
Taught in the README's "Scale" section, on top of chapter 03's training loop; tested with two CPU
processes (`tests/test_distributed.py`).

Chapter: 03_base_cnn
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .models import timemajor


@dataclass
class Context:
    """This process's place in the process group: its rank among `world` processes, its local rank
    (its GPU on this machine), and whether it started the group. One process: rank 0 of 1.

    Chapter: 03_base_cnn
    """
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
    started if needed; a one-process Context when there is none.

    Chapter: 03_base_cnn
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Context()
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned)


def device_of(ctx: Context, device: torch.device) -> torch.device:
    """Each process's own GPU (its local rank) on CUDA; the device unchanged otherwise.

    Chapter: 03_base_cnn
    """
    if ctx.active and device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return device


def barrier(ctx: Context) -> None:
    """Wait until every process gets here (nothing to wait for in one process).

    Chapter: 03_base_cnn
    """
    if ctx.active:
        dist.barrier()


def mean(ctx: Context, value: float) -> float:
    """The mean of `value` over all processes.

    Chapter: 03_base_cnn
    """
    if not ctx.active:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world


def share(ctx: Context, clips: int) -> float:
    """The weight of this process's mean loss over its `clips` of the batch: world * clips / the batch's clips
    (1 in one process). DDP averages gradients, so the weighted losses give the whole batch's mean.

    Chapter: 03_base_cnn
    """
    if not ctx.active:
        return 1.0
    t = torch.tensor([float(clips)], dtype=torch.float64)
    dist.all_reduce(t)
    return ctx.world * clips / float(t.item())


class SyncBatchNorm(timemajor.BatchNorm1d):
    """Batch norm whose training statistics are over the whole batch, every process's part of it (torch's
    own `nn.SyncBatchNorm` runs on GPUs only; this one on any device). In one process, or in eval mode,
    it is the models' `timemajor.BatchNorm1d`.

    Chapter: 03_base_cnn
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable: gradients reach every process

        x = x.float()  # statistics in float32 under bfloat16 autocast too
        dims = [0] + list(range(2, x.dim()))
        count = all_reduce(torch.tensor(float(x.numel() // x.shape[1]), dtype=torch.float64, device=x.device))
        shape = [1, -1] + [1] * (x.dim() - 2)
        mean = all_reduce(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = all_reduce(centred.square().sum(dims)) / count
        with torch.no_grad():
            self.num_batches_tracked += 1
            momentum = 1 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
            self.running_var.lerp_((var * count / (count - 1)).to(self.running_var.dtype), momentum)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        return out * self.weight.view(shape) + self.bias.view(shape)


def sync_batch_norm(model: nn.Module) -> nn.Module:
    """`model` with every `nn.BatchNorm1d` replaced by a `SyncBatchNorm` holding the same values (call it
    before an optimizer takes the parameters).

    Chapter: 03_base_cnn
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm1d) and not isinstance(child, SyncBatchNorm):
                synced = SyncBatchNorm(child.num_features, child.eps, child.momentum)
                synced.load_state_dict(child.state_dict())
                setattr(parent, name, synced.to(child.weight.device))
    return model


def gather(ctx: Context, logits: np.ndarray, labels: np.ndarray, rows: np.ndarray):
    """Every process's predictions, concatenated and put in row order, on every process.

    Chapter: 03_base_cnn
    """
    if not ctx.active:
        return logits, labels, rows
    parts = [None] * ctx.world
    dist.all_gather_object(parts, (logits, labels, rows))
    logits, labels, rows = (np.concatenate([p[i] for p in parts]) for i in range(3))
    order = np.argsort(rows, kind="stable")
    return logits[order], labels[order], rows[order]


def close(ctx: Context) -> None:
    """End the process group if this process started it (see `Context.owned`).

    Chapter: 03_base_cnn
    """
    if ctx.owned and dist.is_initialized():
        dist.destroy_process_group()
