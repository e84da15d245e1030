"""Global pooling of a feature map (or token sequence) into one vector per image, for every family's head.

The pooling types are the reference's names, so configs and `reset_classifier(n, global_pool=...)` calls
written for it work unchanged:
- 'avg': the mean over the spatial positions; 'max': the maximum.
- 'avgmax': the mean of the two (same width).
- 'catavgmax': both, concatenated along the channels (twice the width: the classifier widens with it).
- '': no pooling; the head returns the unpooled features (with `num_classes=0`, a backbone output).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

POOL_TYPES = ("avg", "max", "avgmax", "catavgmax", "")
# Pooling that keeps the channel width: the only kinds a head with a norm or conv after the pool can take.
SAME_WIDTH_POOL_TYPES = ("avg", "max", "avgmax", "")


class PoolTypeError(ValueError, AssertionError):
    """A pooling type the model cannot take.

    A ValueError like every bad option here; also an AssertionError because the reference raises that for a
    refused pooling type, and code written for it (its own test-suite included) catches that.
    """


def check_pool_type(pool_type: str, supported: Sequence[str] = POOL_TYPES) -> None:
    """Raise PoolTypeError naming the supported types if `pool_type` is not one of them."""
    if pool_type not in supported:
        raise PoolTypeError(f"global_pool must be one of {tuple(supported)}, got {pool_type!r}")


def pooled_width(pool_type: str, channels: int) -> int:
    """Width of the pooled vector for `channels` input channels."""
    return 2 * channels if pool_type == "catavgmax" else channels


def global_pool(x: torch.Tensor, pool_type: str, dim: int | tuple[int, ...] = (2, 3),
                keepdim: bool = False) -> torch.Tensor:
    """Pool `x` over `dim` (NCHW: (2, 3); tokens NLC: 1) by `pool_type` (see the module docstring).

    'catavgmax' concatenates along dim 1, the channels of the pooled tensor in every layout we pool.
    """
    if not pool_type:
        return x
    if pool_type == "avg":
        return x.mean(dim, keepdim=keepdim)
    if pool_type == "max":
        return x.amax(dim, keepdim=keepdim)
    mean, peak = x.mean(dim, keepdim=keepdim), x.amax(dim, keepdim=keepdim)
    if pool_type == "avgmax":
        return 0.5 * (mean + peak)
    if pool_type == "catavgmax":
        return torch.cat((mean, peak), dim=1)
    raise PoolTypeError(f"unknown pooling type {pool_type!r}; expected one of {POOL_TYPES}")
