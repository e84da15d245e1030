"""Work that depends only on the weights and the input size, done once for a fixed input size.

A ViT built for dynamic input sizes resamples its position embedding on every call whose size differs from its
own grid, and Hiera interpolates and tiles its abswin position embedding on every call. For a deployment at
one input size both are constants: `fix_input_size` computes them once, and the model then accepts that
size only.
"""

from __future__ import annotations

import types

import torch
from torch import nn

from ..layers.patch_embed import resample_pos_embed
from ..models.hiera import Hiera
from ..models.vit import VisionTransformer


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@torch.no_grad()
def _fix_vit(model: VisionTransformer, img_size: tuple[int, int]) -> None:
    grid = model.patch_embed.grid_size(*img_size)
    if grid == tuple(model.grid_size):
        return
    if not model.config.dynamic_img_size:
        raise ValueError(f"{type(model).__name__} was built for another input size; create it with "
                         f"img_size={img_size[0]} or dynamic_img_size=True")
    prefix = 0 if model.config.no_embed_class else model.num_prefix_tokens
    resampled = resample_pos_embed(model.pos_embed, grid, tuple(model.grid_size), prefix)
    model.pos_embed = nn.Parameter(resampled, requires_grad=False)
    model.grid_size = grid  # the model's own check now takes this size and skips the resampling


@torch.no_grad()
def _fix_hiera(model: Hiera, img_size: tuple[int, int]) -> None:
    probe = torch.zeros(1, model.config.in_chans, *img_size, device=model.pos_embed.device)
    grid = model.patch_embed(probe.to(model.pos_embed.dtype)).shape[1:3]
    grid = (int(grid[0]), int(grid[1]))
    model.check_img_size(img_size)
    model.register_buffer("fixed_pos_embed", model._abswin_pos_embed(grid).detach().contiguous())

    def fixed_pos_embed(self, token_grid: tuple[int, int]) -> torch.Tensor:
        if tuple(token_grid) != grid:
            raise ValueError(f"this model was optimised for {img_size[0]}x{img_size[1]} inputs only")
        return self.fixed_pos_embed

    model._abswin_pos_embed = types.MethodType(fixed_pos_embed, model)


# model class -> the function that precomputes its size-dependent constants
_FIXERS = {VisionTransformer: _fix_vit, Hiera: _fix_hiera}


def fix_input_size(model: nn.Module, img_size: int | tuple[int, int]) -> nn.Module:
    """Precompute, in place, what `model` would recompute on every call at `img_size`; returns the model.

    Models without such work are returned unchanged. After this the model accepts `img_size` only.
    """
    fixer = _FIXERS.get(type(model))
    if fixer is not None:
        fixer(model, _pair(img_size))
    return model
