"""Stochastic depth (drop path)."""

from __future__ import annotations

import torch
from torch import nn


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Linearly increasing drop-path rates over `depth` blocks, from 0 to `rate`."""
    if depth <= 1:
        return [0.0] * depth
    return [rate * i / (depth - 1) for i in range(depth)]


class DropPath(nn.Module):
    """Drops the whole residual branch per sample with probability `rate`, rescaling the survivors."""

    def __init__(self, rate: float = 0.0):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def drop_path_or_identity(rate: float) -> nn.Module:
    return DropPath(rate) if rate > 0 else nn.Identity()
