"""Convolution and max-pooling with time-major ("channels last") storage.

A tensor [N, C, T] is usually stored channel by channel: the T steps of channel 0, then channel 1, ...
Stored time-major instead (step 0 of every channel, then step 1, ...; the same shape, other strides),
PyTorch's CPU max-pool compares whole rows of channels at once: 5-10x faster than its per-channel loop,
which cost the base CNN a quarter of its training step. So every layer here keeps that storage: the
convolution runs as a channels-last conv2d, batch norm as a channels-last 2-D batch norm.

The convolution's backward visits only the time steps that receive a gradient when they are few: with
global max pooling over time (the base CNN), each channel of each sub-clip passes its gradient back
through one time step of the last convolution, about a quarter of the steps once the 32 channels' steps
are counted together. When most steps have a gradient (after batch norm, in the improved CNN), the
weights' gradient is one matrix product per filter tap and the input's a convolution with the flipped
filters: the improved CNN trains 1.4x faster than with PyTorch's own backward on a 2-core CPU. All are
PyTorch's layers with another memory layout and order of summation: same parameters, outputs and
gradients equal to about 1e-6 (`tests/test_models.py`); they also run under bfloat16 autocast.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SPARSE = 1 / 3  # the backward visits time steps one by one when at most this fraction has a gradient


def autocast_inputs(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """The tensors in autocast's precision (bfloat16 under `TrainConfig(precision="bf16")`) when autocast is on
    for their device: autocast casts the inputs of PyTorch's convolutions, not of our autograd functions.

    Chapter: 03_base_cnn
    """
    device = tensors[0].device.type
    if not torch.is_autocast_enabled(device):
        return list(tensors)
    return [t.to(torch.get_autocast_dtype(device)) for t in tensors]


def time_major(x: torch.Tensor) -> torch.Tensor:
    """`x` [N, C, T] stored time-major; `x` itself when it already is.

    Chapter: 03_base_cnn
    """
    return x.transpose(1, 2).contiguous().transpose(1, 2)


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        x, weight, bias = autocast_inputs(x, weight, bias)
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # [N, C, 1, T], time-major
        out = F.conv2d(x, weight.unsqueeze(2), bias)
        ctx.save_for_backward(x, weight)
        return out.contiguous(memory_format=torch.channels_last).squeeze(2)  # a copy only for 1 input channel

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.to(x.dtype)
        (n, cin, _, steps), (cout, _, k) = x.shape, weight.shape
        rows = grad.transpose(1, 2).reshape(-1, cout)  # one row per output step: [n * (steps - k + 1), cout]
        hit = rows.abs().amax(1).ne(0).nonzero()[:, 0]  # the output steps with a gradient (NaN counts)
        if len(hit) > SPARSE * len(rows):
            return _dense_backward(x, weight, grad, ctx.needs_input_grad[0])
        g = rows.index_select(0, hit)  # [hits, cout]
        first = hit + hit // (steps - k + 1) * (k - 1)  # each hit's first input step, as a row of x_rows
        x_rows = x.permute(0, 2, 3, 1).reshape(-1, cin)  # [n * steps, cin], a view
        windows = x_rows.as_strided((len(x_rows) - k + 1, k * cin), (cin, 1))  # k steps from each row on
        taps = weight.permute(0, 2, 1).reshape(cout, k * cin)  # the filters in the windows' (step, channel) order
        grad_weight = (g.t() @ windows.index_select(0, first)).view(cout, k, cin).transpose(1, 2)
        grad_x = None
        if ctx.needs_input_grad[0]:
            into = (first[:, None] + torch.arange(k)).reshape(-1)
            grad_x = grad.new_zeros(n * steps, cin).index_add_(0, into, (g @ taps).view(-1, cin))
            grad_x = grad_x.view(n, steps, cin).transpose(1, 2)
        return grad_x, grad_weight, g.sum(0)


def _dense_backward(x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, input_grad: bool):
    """The three gradients of the convolution when most output steps have one (x [N, C, 1, T] time-major).

    Weights: output step t of a sub-clip saw input steps t .. t + k - 1, so tap j's gradient is the sum over
    steps of grad[t] (outer) x[t + j]. With the time-major rows of every sub-clip laid end to end, that is one
    matrix product per tap, of the gradient rows (zero after each sub-clip's last output step) with the input
    rows shifted by j: k products of contiguous matrices. Input: a convolution of the gradient, padded by
    k - 1 zeros on both sides, with the filters flipped in time and in/out channels swapped.
    PyTorch's own backward computes the same sums in one call, 2x slower on a CPU for the improved CNN's
    512-channel layer (weights: 760 -> 320 ms, input: 420 -> 330 ms per batch of 10 clips on 2 cores)."""
    (n, cin, _, steps), (cout, _, k) = x.shape, weight.shape
    valid = steps - k + 1
    rows = grad.new_zeros(n, steps, cout)  # the gradient rows, aligned with the input rows they start at
    rows[:, :valid] = grad.transpose(1, 2)
    rows = rows.view(n * steps, cout)[:n * steps - k + 1]
    x_rows = x.permute(0, 2, 3, 1).reshape(n * steps, cin)  # a view: x is time-major
    taps = torch.stack([rows.t() @ x_rows[j:j + len(rows)] for j in range(k)], dim=-1)  # [cout, cin, k]
    grad_x = None
    if input_grad:
        padded = F.pad(grad.unsqueeze(2), (k - 1, k - 1)).contiguous(memory_format=torch.channels_last)
        flipped = weight.flip(-1).transpose(0, 1).unsqueeze(2)  # [cin, cout, 1, k]
        grad_x = F.conv2d(padded, flipped).squeeze(2)
    return grad_x, taps, grad.sum((0, 2))


class Conv1d(nn.Conv1d):
    """`nn.Conv1d(in_channels, out_channels, kernel_size)` with stride 1 and no padding, computed time-major:
    the same parameters and results, output [N, out_channels, T - kernel_size + 1] stored time-major.

    Chapter: 03_base_cnn
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Conv.apply(x, self.weight, self.bias)


class BatchNorm1d(nn.BatchNorm1d):
    """`nn.BatchNorm1d` computed as a 2-D batch norm of [N, C, 1, T]: PyTorch's fast path for time-major
    storage (its 1-D batch norm copies time-major input to channel-major first, and runs 5x slower). Chapter 06's
    improved CNN is the first model with batch norm.

    Chapter: 06_improvements
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        super()._check_input_dim(x.squeeze(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.unsqueeze(2)).squeeze(2)


class MaxPool1d(nn.MaxPool1d):
    """`nn.MaxPool1d` on a time-major copy of its input (no copy when the input is time-major already, as
    after `Conv1d`, `BatchNorm1d` and ReLU). Ties go to the first maximum, as in `nn.MaxPool1d`.

    Chapter: 03_base_cnn
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(time_major(x))
