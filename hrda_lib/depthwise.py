"""The DAFormer head's depthwise dilated 3x3 convolution as shifted multiply-adds, for the CPU.

DAFormer's ASPP (reference spec 1.3) convolves the 4E fused channels depthwise at dilations 6,
12 and 18 on stride-4 maps. On a CPU, oneDNN runs these slowly: on the synthetic profile's
32x32 maps they took a quarter of the training step; the teacher's 18 detail windows took up
to 80x the time of 2 images (dilation 6), and the backward pass 4-35x the forward. Written out,
the convolution is nine per-channel multiply-adds of shifted views, each tap over the cells
where it lands inside the map (a dilation-18 tap on a 32x32 map touches 14 rows), done two
images at a time so that the nine passes stay in cache. Same function (equal to `F.conv2d` to
float rounding, tested in `tests/test_depthwise.py`); the gain is measured by
`benchmarks/cpu_speed.py` (`shifted_depthwise`). GPUs keep cuDNN's kernel.
"""

from __future__ import annotations

import torch
from torch import nn

Slices = tuple[slice, slice]
CHUNK = 2  # images per pass: 2 x 4E x h x w floats stay in cache on the synthetic profile


def _spans(size: int, shift: int) -> tuple[slice, slice]:
    """Output and input cells along an axis for a tap `shift` cells away: out[i] += in[i+shift]."""
    return slice(max(0, -shift), size - max(0, shift)), slice(max(0, shift), size + min(0, shift))


def _taps(height: int, width: int, dilation: int) -> list[tuple[int, Slices, Slices]]:
    """(tap index 0..8, output cells, input cells) of each tap of a 3x3 kernel at `dilation`
    with padding `dilation` that lands inside a (height, width) map, the centre tap first."""
    taps = []
    for k in (4, 0, 1, 2, 3, 5, 6, 7, 8):
        dy, dx = (k // 3 - 1) * dilation, (k % 3 - 1) * dilation
        if abs(dy) >= height or abs(dx) >= width:
            continue  # the tap only ever sees padding
        (out_y, in_y), (out_x, in_x) = _spans(height, dy), _spans(width, dx)
        taps.append((k, (out_y, out_x), (in_y, in_x)))
    return taps


def _shift_accumulate(
    x: torch.Tensor, weight: torch.Tensor, taps: list, transpose: bool = False
) -> torch.Tensor:
    """sum over taps of weight[:, k] * x shifted; `transpose` swaps the roles of input and
    output cells (the gradient with respect to the input)."""
    channels = x.shape[1]
    out = torch.empty_like(x)
    for start in range(0, x.shape[0], CHUNK):
        xs, os = x[start : start + CHUNK], out[start : start + CHUNK]
        for i, (k, out_cells, in_cells) in enumerate(taps):
            dst, src = (in_cells, out_cells) if transpose else (out_cells, in_cells)
            w = weight[:, k].view(1, channels, 1, 1)
            if i == 0:  # the centre tap covers every cell
                torch.mul(xs, w, out=os)
            else:
                os[:, :, dst[0], dst[1]].addcmul_(xs[:, :, src[0], src[1]], w)
    return out


class _DepthwiseConv3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
        taps = _taps(x.shape[2], x.shape[3], dilation)
        ctx.save_for_backward(x, weight)
        ctx.taps = taps
        return _shift_accumulate(x, weight.reshape(-1, 9), taps)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = _shift_accumulate(grad, weight.reshape(-1, 9), ctx.taps, transpose=True)
        if ctx.needs_input_grad[1]:
            grad_w = torch.zeros(weight.shape[0], 9, dtype=weight.dtype)  # (C, 9)
            for k, out_cells, in_cells in ctx.taps:
                for start in range(0, x.shape[0], CHUNK):
                    g = grad[start : start + CHUNK, :, out_cells[0], out_cells[1]]
                    v = x[start : start + CHUNK, :, in_cells[0], in_cells[1]]
                    grad_w[:, k] += (g * v).sum((0, 2, 3))
            grad_w = grad_w.view_as(weight)
        return grad_x, grad_w, None


def applies(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether `conv` is a bias-free depthwise 3x3 convolution with padding = dilation on a
    float32 CPU tensor (the case `depthwise_conv3x3` computes)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.kernel_size == (3, 3)
        and conv.groups == conv.in_channels == conv.out_channels
        and conv.bias is None
        and conv.stride == (1, 1)
        and conv.dilation[0] == conv.dilation[1] == conv.padding[0] == conv.padding[1]
        and conv.padding_mode == "zeros"
    )


def depthwise_conv3x3(x: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
    """`F.conv2d(x, weight, padding=dilation, dilation=dilation, groups=C)` for x (B, C, h, w)
    and weight (C, 1, 3, 3), as shifted multiply-adds (see the module docstring)."""
    assert weight.shape == (x.shape[1], 1, 3, 3), (tuple(weight.shape), tuple(x.shape))
    return _DepthwiseConv3x3.apply(x, weight, dilation)
