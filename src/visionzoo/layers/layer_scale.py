"""Per-channel learnable residual scaling (CaiT / DeiT-III layer scale)."""

from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """Multiplies channels-last input by a learnt per-channel `gamma`, initialised to `init_value`."""

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def reset_parameters(self) -> None:
        nn.init.constant_(self.gamma, self.init_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class LayerScale2d(LayerScale):
    """Layer scale for channels-first (NCHW) input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)


def layer_scale_or_identity(dim: int, init_value: float | None, channels_first: bool = False) -> nn.Module:
    if not init_value:
        return nn.Identity()
    return LayerScale2d(dim, init_value) if channels_first else LayerScale(dim, init_value)
