"""Anti-aliased downsampling: blur (or average) before subsampling, instead of a strided conv.

Zhang 2019, "Making Convolutional Networks Shift-Invariant Again" (arXiv 1904.11486).
"""

from __future__ import annotations

from math import comb

import torch
import torch.nn.functional as F
from torch import nn

from .conv_norm_act import conv_padding

ANTI_ALIAS_KINDS = ("avg", "blur", "blur_zero_pad")


class BlurPool2d(nn.Module):
    """Depthwise binomial blur of `filter_size` taps, then subsampling by `stride`.

    `pad_mode` is 'reflect' (the paper's choice) or 'constant' (zeros; MobileNetV4-blur was trained with it).
    The filter is a fixed function of its size, so it is made in forward rather than kept as a buffer:
    checkpoints do not carry it and a model built on the meta device needs no re-initialisation.
    """

    def __init__(self, channels: int, filter_size: int = 3, stride: int = 2, pad_mode: str = "reflect"):
        super().__init__()
        if filter_size < 2:
            raise ValueError(f"filter_size must be at least 2, got {filter_size}")
        self.channels = channels
        self.filter_size = filter_size
        self.stride = stride
        self.pad_mode = pad_mode
        self.padding = conv_padding(filter_size, stride)

    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.filter_size
        row = torch.tensor([comb(taps - 1, k) for k in range(taps)], dtype=x.dtype, device=x.device)
        row = row / row.sum()
        return (row[:, None] * row[None, :]).expand(self.channels, 1, taps, taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, [self.padding] * 4, mode=self.pad_mode)
        return F.conv2d(x, self._filter(x), stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return (f"{self.channels}, filter_size={self.filter_size}, stride={self.stride}, "
                f"pad_mode={self.pad_mode!r}")


def make_anti_alias(kind: str, channels: int, stride: int = 2) -> nn.Module:
    """The downsampling layer `kind`: 'avg' (stride x stride average pool), 'blur' or 'blur_zero_pad' (3x3
    blur)."""
    if kind == "avg":
        return nn.AvgPool2d(stride)
    if kind == "blur":
        return BlurPool2d(channels, 3, stride, pad_mode="reflect")
    if kind == "blur_zero_pad":
        return BlurPool2d(channels, 3, stride, pad_mode="constant")
    raise ValueError(f"unknown anti-aliasing {kind!r}; expected one of {ANTI_ALIAS_KINDS}")
