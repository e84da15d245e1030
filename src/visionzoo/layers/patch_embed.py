"""Image to patch tokens, and resampling of learnt absolute position embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided conv; returns channels-last (B, H', W', C) patches."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.patch_size, width // self.patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


def resample_pos_embed(pos_embed: torch.Tensor, new_grid: tuple[int, int],
                       old_grid: tuple[int, int] | None = None, num_prefix_tokens: int = 0) -> torch.Tensor:
    """Resample a (1, prefix + H*W, C) position embedding to another grid.

    Bicubic with antialiasing, computed in float32; prefix (class/register) entries are kept as they are.
    `old_grid` defaults to a square grid.
    """
    total = pos_embed.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = int(round(total ** 0.5))
        if side * side != total:
            raise ValueError(f"position embedding of {total} entries is not a square grid; give old_grid")
        old_grid = (side, side)
    if tuple(old_grid) == tuple(new_grid):
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = grid.shape[-1]
    grid = grid.float().reshape(1, old_grid[0], old_grid[1], dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", antialias=True, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1) if num_prefix_tokens else grid
