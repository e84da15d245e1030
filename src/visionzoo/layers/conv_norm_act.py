"""Convolution, batch norm and activation: the unit most conv nets are built from."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import make_activation


def conv_padding(kernel_size: int, stride: int = 1, dilation: int = 1) -> int:
    """Symmetric padding that keeps `ceil(size / stride)` outputs for odd kernels (PyTorch-style 'same')."""
    return ((stride - 1) + dilation * (kernel_size - 1)) // 2


def make_conv2d(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride,
                     padding=conv_padding(kernel_size, stride, dilation), dilation=dilation, groups=groups,
                     bias=bias)


class BatchNormAct2d(nn.BatchNorm2d):
    """Batch norm followed by an activation, as one module so its parameters keep the plain BN names."""

    def __init__(self, num_features: int, act: str | None = "relu", eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.act = make_activation(act, inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.batch_norm directly: BatchNorm2d.forward branches on x.dim(), which torch.fx cannot trace. With a
        # numeric momentum the batch count (kept for checkpoints) does not enter the computation, so traced
        # graphs need not count; momentum None means a cumulative average over the batches seen, as in
        # BatchNorm2d (torch.optim.swa_utils.update_bn recomputes statistics that way).
        momentum = self.momentum if self.momentum is not None else 0.0  # unused in eval mode
        if self.training:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                         momentum, self.eps)
        return self.act(x)


class ConvNormAct(nn.Module):
    """Conv (no bias) -> BatchNorm -> activation; `act=None` leaves the activation out."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, dilation: int = 1,
                 groups: int = 1, act: str | None = "relu", bias: bool = False):
        super().__init__()
        self.conv = make_conv2d(in_chs, out_chs, kernel_size, stride, dilation, groups, bias)
        self.bn = BatchNormAct2d(out_chs, act)

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))
