"""Normalisation over the channel dimension, for channels-last (N..C) and channels-first (NCHW) tensors.

Three kinds, by name, so that configs stay plain strings:
- 'layernorm': subtract the mean, divide by the standard deviation, then scale and shift (weight, bias).
- 'rmsnorm': divide by the root mean square, then scale (weight only); no centring.
- 'simplenorm': divide by the square root of the *unbiased* variance, then scale (weight only); no centring.
  This is the norm timm calls SimpleNorm; the ConvNeXt 'zepto_rms' weights were trained with it. Using
  Bessel's correction (n - 1) matters for conformance: it changes every output by a factor sqrt(n / (n - 1)).

The channels-first ('...2d') forms reduce over dim 1 of an NCHW tensor, so convolutional nets need no
permutes.
Every norm keeps the parameter names `weight` (and `bias` for layernorm) of the published checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True):
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Permuting to channels-last and back lets the fused layer_norm kernel do the work.
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class _ScaleOnlyNorm(nn.Module):
    """Base of the norms that divide by a second moment and scale per channel, without a shift."""

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True):
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels)) if affine else None

    def reset_parameters(self) -> None:
        if self.weight is not None:
            nn.init.ones_(self.weight)

    def _scale(self, x: torch.Tensor, channels_first: bool) -> torch.Tensor:
        if self.weight is None:
            return x
        # NCHW: the per-channel weight broadcasts over H and W (a shape built from x.ndim would stop torch.fx)
        return x * (self.weight[:, None, None] if channels_first else self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.weight is not None}"


class RmsNorm(_ScaleOnlyNorm):
    """RMSNorm over the last dimension (channels-last input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (self.num_channels,), self.weight, self.eps)


class RmsNorm2d(_ScaleOnlyNorm):
    """RMSNorm over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)
        return self._scale(x, channels_first=True)


class SimpleNorm(_ScaleOnlyNorm):
    """x / sqrt(unbiased variance + eps) * weight over the last dimension (channels-last input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._scale(x * torch.rsqrt(x.var(dim=-1, keepdim=True) + self.eps), channels_first=False)


class SimpleNorm2d(_ScaleOnlyNorm):
    """x / sqrt(unbiased variance + eps) * weight over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._scale(x * torch.rsqrt(x.var(dim=1, keepdim=True) + self.eps), channels_first=True)


_NORMS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    # name: (channels-last, channels-first)
    "layernorm": (nn.LayerNorm, LayerNorm2d),
    "rmsnorm": (RmsNorm, RmsNorm2d),
    "simplenorm": (SimpleNorm, SimpleNorm2d),
}
NORM_NAMES = tuple(_NORMS)


def make_norm(name: str, num_channels: int, eps: float = 1e-6, channels_first: bool = False) -> nn.Module:
    """Build the norm called `name` over `num_channels`; raises ValueError for an unknown name."""
    try:
        channels_last_cls, channels_first_cls = _NORMS[name]
    except KeyError:
        raise ValueError(f"unknown norm {name!r}; expected one of {NORM_NAMES}") from None
    return (channels_first_cls if channels_first else channels_last_cls)(num_channels, eps=eps)
