"""The strided "frame" convolution as matrix products over stride-sized blocks.

The first layer of the paper's CNNs slides `out_channels` filters of `length` samples over a sub-clip in
steps of `stride`. When the length is a multiple m of the stride, cut the sub-clip into blocks of `stride`
samples (a view: no copy) and the filters into m slices of `stride` taps: frame f is blocks f .. f+m-1, so

    output[f] = sum over j < m of  block[f + j] . slice[j]

one matrix product of every block with every slice, then m shifted sums; the weights' gradient is the
same product backwards, sum over frames f of  gradient[f] * block[f + j]  for slice j. The arithmetic
is the convolution's, in another order (equal to about 1e-6). For the base CNN's one filter on 2 CPU
cores, per batch of 10 clips: forward 1.7 -> 0.7 ms and weight gradient 3.3 -> 1.5 ms at 256/256, and
2.2 -> 0.8 ms and 6.1 -> 1.9 ms at 512/256, against `nn.Conv1d`. Lengths that are not a multiple of the
stride use `nn.Conv1d`.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import torch
from torch import nn

from .timemajor import autocast_inputs


class _BlockConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride):
        x, weight, bias = autocast_inputs(x, weight, bias)
        channels, _, length = weight.shape
        m, frames = length // stride, (x.shape[-1] - length) // stride + 1
        blocks = x[:, 0].unfold(-1, stride, stride)[:, :frames + m - 1]  # [N, frames + m - 1, stride], a view
        slices = weight.view(channels * m, stride).t().expand(len(x), -1, -1)  # bmm, not matmul: no copy of x
        products = torch.bmm(blocks, slices).unflatten(-1, (channels, m))  # [N, blocks, channels, m]
        out = products[:, :frames, :, 0] + bias
        for j in range(1, m):
            out += products[:, j:j + frames, :, j]
        ctx.save_for_backward(x, weight)
        ctx.stride = stride
        return out.transpose(1, 2)  # [N, channels, frames], stored time-major

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.to(x.dtype)
        stride, (n, channels, frames), length = ctx.stride, grad.shape, weight.shape[-1]
        m = length // stride
        blocks = x[:, 0].unfold(-1, stride, stride)[:, :frames + m - 1]
        shifted = grad.new_zeros(n, m, channels, frames + m - 1)  # slice j meets block f + j
        for j in range(m):
            shifted[:, j, :, j:j + frames] = grad
        grad_weight = torch.bmm(shifted.view(n, m * channels, -1), blocks).sum(0)  # [m * channels, stride]
        grad_weight = grad_weight.view(m, channels, stride).transpose(0, 1).reshape(weight.shape)
        grad_x = (nn.grad.conv1d_input(x.shape, weight, grad, stride=stride) if ctx.needs_input_grad[0]
                  else None)
        return grad_x, grad_weight, grad.sum((0, 2)), None


class FrameConv(nn.Conv1d):
    """`nn.Conv1d(1, out_channels, length, stride)` (same parameters, same results) computed by blocks when
    the length is a multiple of the stride; input [N, 1, samples], output [N, out_channels, frames].

    Chapter: 03_base_cnn
    """

    def __init__(self, out_channels: int, length: int, stride: int):
        super().__init__(1, out_channels, length, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, stride = self.kernel_size[0], self.stride[0]
        if length % stride:
            return super().forward(x)
        return _BlockConv.apply(x, self.weight, self.bias, stride)
