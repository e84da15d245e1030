"""Hiera: a hierarchical vision transformer with mask-unit attention and no other bells and whistles.

Papers: Ryali et al. 2023, "Hiera: A Hierarchical Vision Transformer without the Bells-and-Whistles" (arXiv
2306.00989); Bolya et al. 2023, "Window Attention is Bugged: How not to Interpolate Position Embeddings"
(arXiv 2311.05613), whose absolute-window position embedding ('abswin') the registered variant uses. Original
code: github.com/facebookresearch/hiera. Module names follow the published `timm/` checkpoints so that they
load as they are. Weights: the abswin 'sbb2' tags are Apache-2.0 (timm-trained); the original MAE weights are
CC-BY-NC-4.0.

Tokens are kept "unrolled": ordered so that the 2x2 neighbours every later pooling step merges are the
outermost token axis, and each mask unit's tokens are strided by the number of mask units. Pooling is then a
max over one axis and mask-unit attention a reshape, for any input size; features are "rerolled" into maps
only when asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..image_inputs import size_pair
from ..layers.drop import drop_path_or_identity, drop_path_rates
from ..layers.layer_scale import layer_scale_or_identity
from ..layers.mlp import Mlp
from ..layers.pool import SAME_WIDTH_POOL_TYPES, check_pool_type, global_pool
from ..layers.weight_init import init_trunc_normal
from .base import ClassifierModel, FeatureInfo, ModelConfig, TrunkStep


@dataclass(frozen=True)
class HieraConfig(ModelConfig):
    """Every knob of the Hiera family."""

    img_size: int | tuple[int, int] = 224
    embed_dim: int = 96  # width of the first stage; each later stage multiplies it by dim_mul
    num_heads: int = 1  # heads of the first stage; each later stage multiplies them by head_mul
    depths: tuple[int, ...] = (2, 3, 16, 3)
    q_pool: int = 3  # how many stage transitions pool the tokens (2x2 max pool of the queries)
    q_stride: tuple[int, int] = (2, 2)
    mask_unit_size: tuple[int, int] = (8, 8)  # tokens per attention window, before any pooling
    # per stage: windowed, else global attention
    mask_unit_attn: tuple[bool, ...] = (True, True, False, False)
    expand_proj: bool = True  # widen with a linear layer; False: concatenate max- and avg-pooled tokens
    dim_mul: float = 2.0
    head_mul: float = 2.0
    patch_kernel: int = 7
    patch_stride: int = 4
    patch_padding: int = 3
    mlp_ratio: float = 4.0
    layer_scale_init: float | None = None  # None: no layer scale
    global_pos_size: tuple[int, int] = (14, 14)  # grid of the global part of the abswin position embedding
    global_pool: str = "avg"
    norm_eps: float = 1e-6
    dynamic_img_size: bool = False  # accept any input whose token grid splits into whole mask units

    def __post_init__(self):
        if len(self.mask_unit_attn) != len(self.depths):
            raise ValueError("mask_unit_attn needs one entry per stage")
        if not 0 <= self.q_pool < len(self.depths):
            raise ValueError(f"q_pool must be below the number of stages ({len(self.depths)}), "
                             f"got {self.q_pool}")
        if not self.expand_proj and self.dim_mul != 2:
            raise ValueError("expand_proj=False doubles the width by concatenation, so it needs dim_mul=2")
        check_pool_type(self.global_pool, SAME_WIDTH_POOL_TYPES)


def unroll(x: torch.Tensor, stride: tuple[int, int], levels: int) -> torch.Tensor:
    """(B, H, W, C) map -> (B, H*W, C) tokens ordered (y1, x1, ..., yL, xL, h, w), finest stride offset first.

    (yk, xk) is a token's offset inside the stride cell at level k; (h, w) its cell on the coarsest grid.
    """
    batch, height, width, dim = x.shape
    sy, sx = stride
    coarse_h, coarse_w = height // sy ** levels, width // sx ** levels
    # The view lists the offsets coarsest first (they are the high digits of a row or column index).
    x = x.view(batch, coarse_h, *[sy] * levels, coarse_w, *[sx] * levels, dim)
    offsets = [d for k in reversed(range(levels)) for d in (2 + k, levels + 3 + k)]  # y1, x1, y2, x2, ...
    return x.permute(0, *offsets, 1, levels + 2, 2 * levels + 3).reshape(batch, -1, dim)


def reroll(x: torch.Tensor, stride: tuple[int, int], levels: int, coarse: tuple[int, int]) -> torch.Tensor:
    """Inverse of `unroll` for tokens with `levels` offset levels left: (B, N, C) -> (B, H, W, C) map."""
    batch, _, dim = x.shape
    sy, sx = stride
    x = x.view(batch, *[sy, sx] * levels, *coarse, dim)
    ys = [1 + 2 * k for k in reversed(range(levels))]
    xs = [2 + 2 * k for k in reversed(range(levels))]
    x = x.permute(0, 2 * levels + 1, *ys, 2 * levels + 2, *xs, 2 * levels + 3)
    return x.reshape(batch, coarse[0] * sy ** levels, coarse[1] * sx ** levels, dim)


def pool_tokens(x: torch.Tensor, stride: int, mode: str = "max") -> torch.Tensor:
    """Pool unrolled tokens over their finest stride cell (the outermost token axis): a 2-d pool of `stride`
    cells."""
    x = x.view(x.shape[0], stride, -1, x.shape[-1])
    return x.amax(dim=1) if mode == "max" else x.mean(dim=1)


class MaskUnitAttention(nn.Module):
    """Multi-head attention within each mask unit (or over all tokens), with the queries optionally
    max-pooled.

    `window_size`: tokens per mask unit after this block's pooling; 0 for global attention.
    """

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_stride: int = 1, window_size: int = 0):
        super().__init__()
        if dim_out % num_heads:
            raise ValueError(f"width {dim_out} is not divisible by {num_heads} heads")
        self.dim_out = dim_out
        self.num_heads = num_heads
        self.head_dim = dim_out // num_heads
        self.q_stride = q_stride
        self.window_size = window_size
        self.qkv = nn.Linear(dim, 3 * dim_out)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        # Unrolled order puts the mask unit index innermost, so a window is a stride over the tokens.
        windows = tokens // (self.q_stride * self.window_size) if self.window_size else 1
        qkv = self.qkv(x).reshape(batch, -1, windows, 3, self.num_heads, self.head_dim)
        # each (B, heads, windows, tokens per window, head_dim)
        q, k, v = qkv.permute(3, 0, 4, 2, 1, 5).unbind(0)
        if self.q_stride > 1:
            q = q.view(batch, self.num_heads, windows, self.q_stride, -1, self.head_dim).amax(dim=3)
        # Four dims for the fused kernels: heads and windows share the batch axis.
        x = F.scaled_dot_product_attention(q.flatten(1, 2), k.flatten(1, 2), v.flatten(1, 2))
        x = x.view(batch, self.num_heads, windows, -1, self.head_dim)
        return self.proj(x.permute(0, 3, 2, 1, 4).reshape(batch, -1, self.dim_out))


class HieraBlock(nn.Module):
    """Pre-norm transformer block; the first block of a stage also pools the tokens and widens them."""

    def __init__(self, cfg: HieraConfig, dim: int, dim_out: int, num_heads: int, q_stride: int,
                 window_size: int, drop_path: float):
        super().__init__()
        self.dim, self.dim_out, self.q_stride = dim, dim_out, q_stride
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.proj = nn.Linear(dim, dim_out) if dim != dim_out and cfg.expand_proj else None
        self.attn = MaskUnitAttention(dim, dim_out, num_heads, q_stride, window_size)
        self.ls1 = layer_scale_or_identity(dim_out, cfg.layer_scale_init)
        self.drop_path1 = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(dim_out, eps=cfg.norm_eps)
        self.mlp = Mlp(dim_out, int(dim_out * cfg.mlp_ratio))
        self.ls2 = layer_scale_or_identity(dim_out, cfg.layer_scale_init)
        self.drop_path2 = drop_path_or_identity(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_norm = self.norm1(x)
        if self.proj is not None:
            x = pool_tokens(self.proj(x_norm), self.q_stride)
        elif self.dim != self.dim_out:
            # The abswin models widen without parameters: the un-normed tokens, max- and average-pooled.
            x = torch.cat([pool_tokens(x, self.q_stride, "max"), pool_tokens(x, self.q_stride, "mean")],
                          dim=-1)
        x = x + self.drop_path1(self.ls1(self.attn(x_norm)))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class PatchEmbed(nn.Module):
    """Overlapping patches by a strided conv; returns a channels-last (B, H', W', C) map."""

    def __init__(self, in_chans: int, dim: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


def checked_token_grid(x: torch.Tensor, image_size: tuple[int, int], img_size: tuple[int, int], dynamic: bool,
                       mask_unit_size: tuple[int, int], q_stride: tuple[int, int], unroll_levels: int,
                       patch_stride: int) -> torch.Tensor:
    """The patch map `x` (B, H, W, C) unchanged, if the input size is the model's (or it is dynamic) and the
    token grid splits into whole mask units and pooling cells; else a ValueError saying which sizes work."""
    height, width = image_size
    if (height, width) != tuple(img_size) and not dynamic:
        raise ValueError(f"input of {height}x{width} pixels does not match this model's img_size "
                         f"{img_size[0]}x{img_size[1]}; create the model with that img_size or with "
                         "dynamic_img_size=True")
    grid = (x.shape[1], x.shape[2])
    for tokens, unit, stride in zip(grid, mask_unit_size, q_stride, strict=True):
        if tokens % unit or tokens % stride ** unroll_levels:
            raise ValueError(f"a {grid[0]}x{grid[1]} token grid does not split into whole mask units of "
                             f"{tuple(mask_unit_size)}; use an input size that is a multiple of "
                             f"{patch_stride * unit}")
    return x


# A graph node for torch.fx: the check runs when the traced graph runs, on real sizes, not on proxies.
torch.fx.wrap("checked_token_grid")


class NormClassifierHead(nn.Module):
    """Token pooling, LayerNorm, dropout and a linear classifier."""

    def __init__(self, dim: int, num_classes: int, pool: str, drop_rate: float, norm_eps: float):
        super().__init__()
        self.global_pool = pool
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.norm(global_pool(x, self.global_pool, dim=1)))
        return x if pre_logits else self.fc(x)


class Hiera(ClassifierModel):
    """Hiera with the abswin position embedding: patch embedding, stages of Hiera blocks, pooled normed
    head."""

    fixed_input_size = True
    supports_dynamic_img_size = True
    global_pools = SAME_WIDTH_POOL_TYPES  # the head's norm follows the pool
    default_out_indices = (0, 1, 2, 3)
    depth_groups = (r"^(?:pos_embed|pos_embed_win|patch_embed)", r"^blocks\.(\d+)\.")
    trunk_layout = "NLC"
    output_fmts = ("NCHW", "NHWC")

    def __init__(self, cfg: HieraConfig):
        super().__init__()
        self.config = cfg
        self.num_classes = cfg.num_classes
        self.q_stride = size_pair(cfg.q_stride)
        self.mask_unit_size = size_pair(cfg.mask_unit_size)
        self.unroll_levels = len(cfg.depths) - 1  # one stride level per stage transition, pooled or not
        dim = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg.in_chans, dim, cfg.patch_kernel, cfg.patch_stride,
                                      cfg.patch_padding)
        # NCHW so that the global part interpolates and the window part tiles directly.
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *size_pair(cfg.global_pos_size)))
        self.pos_embed_win = nn.Parameter(torch.zeros(1, dim, *self.mask_unit_size))
        # set by fix_input_size: the embedding for one token grid, not part of the checkpoint
        self.register_buffer("fixed_pos_embed", None, persistent=False)
        self.fixed_grid: tuple[int, int] | None = None

        q_flat = math.prod(self.q_stride)
        window = math.prod(self.mask_unit_size)
        heads = cfg.num_heads
        rates = iter(drop_path_rates(cfg.drop_path_rate, sum(cfg.depths)))
        blocks, self.feature_info, self._pools_done = [], [], []
        for stage, depth in enumerate(cfg.depths):
            for index in range(depth):
                entering = stage > 0 and index == 0
                dim_out = int(dim * cfg.dim_mul) if entering else dim
                heads = int(heads * cfg.head_mul) if entering else heads
                pooling = entering and stage <= cfg.q_pool
                window = window // q_flat if pooling else window
                # A stage's first block still attends the way the previous stage did: it runs at the old size.
                windowed = cfg.mask_unit_attn[stage - 1 if entering else stage]
                blocks.append(HieraBlock(cfg, dim, dim_out, heads, q_flat if pooling else 1,
                                         window if windowed else 0, next(rates)))
                dim = dim_out
            pools = min(stage, cfg.q_pool)
            reduction = cfg.patch_stride * self.q_stride[0] ** pools
            self.feature_info.append(FeatureInfo(dim, reduction, f"blocks.{len(blocks) - 1}"))
            self._pools_done.append(pools)
        self.blocks = nn.ModuleList(blocks)
        self.num_features = dim
        self.head = NormClassifierHead(dim, cfg.num_classes, cfg.global_pool, cfg.drop_rate, cfg.norm_eps)

    @torch.no_grad()
    def init_weights(self) -> None:
        """Truncated-normal linears and position embeddings, depth-scaled residual outputs, a near-zero head.

        Dividing each block's output projections by sqrt(2 * depth index) keeps the residual stream's variance
        bounded at init; a tiny head starts the classifier near uniform.
        """
        init_trunc_normal(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed_win, std=0.02)
        for layer, block in enumerate(self.blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer))
        if isinstance(self.head.fc, nn.Linear):
            self.head.fc.weight.mul_(1e-3)

    def _abswin_pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        """Global embedding interpolated to the token grid plus the window embedding tiled over every mask
        unit (computed once by `fix_input_size` for deployment at one size)."""
        if self.fixed_pos_embed is not None:
            if tuple(grid) != self.fixed_grid:
                raise ValueError(f"this model's position embedding was fixed for a {self.fixed_grid[0]}x"
                                 f"{self.fixed_grid[1]} token grid, not {grid[0]}x{grid[1]}")
            return self.fixed_pos_embed
        units = [g // u for g, u in zip(grid, self.mask_unit_size, strict=True)]
        window = self.pos_embed_win.tile(1, 1, *units)
        pos_embed = F.interpolate(self.pos_embed, size=window.shape[-2:], mode="bicubic", antialias=True)
        return (pos_embed + window).permute(0, 2, 3, 1)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unrolled, position-embedded tokens (B, N, C)."""
        height, width = x.shape[-2:]
        x = checked_token_grid(self.patch_embed(x), (height, width), size_pair(self.config.img_size),
                               self.config.dynamic_img_size, self.mask_unit_size, self.q_stride,
                               self.unroll_levels, self.config.patch_stride)
        grid = (x.shape[1], x.shape[2])
        x = x + self._abswin_pos_embed(grid)
        return unroll(x, self.q_stride, self.unroll_levels)

    def trunk(self) -> list[TrunkStep]:
        return [self._embed, *self.blocks]

    @torch.no_grad()
    def fix_input_size(self, img_size: int | tuple[int, int]) -> None:
        """Interpolate and tile the abswin position embedding for `img_size` once, not on every call."""
        self.check_img_size(img_size)
        cfg = self.config
        grid = tuple((side + 2 * cfg.patch_padding - cfg.patch_kernel) // cfg.patch_stride + 1
                     for side in size_pair(img_size))  # the patch convolution's output size
        self.fixed_pos_embed = None  # fixed again: computed from the weights, not from the last fixed size
        self.fixed_pos_embed = self._abswin_pos_embed(grid).contiguous()
        self.fixed_grid = grid

    def format_feature(self, x: torch.Tensor, level: int, image_size: torch.Size,
                       output_fmt: str) -> torch.Tensor:
        """Reroll a stage's unrolled tokens into its (B, H, W, C) map, by the stride offsets it still has."""
        patch = self.patch_embed.proj
        grid = [(size + 2 * patch.padding[i] - patch.kernel_size[i]) // patch.stride[i] + 1
                for i, size in enumerate((image_size[0], image_size[1]))]
        coarse = tuple(g // s ** self.unroll_levels for g, s in zip(grid, self.q_stride, strict=True))
        feature = reroll(x, self.q_stride, self.unroll_levels - self._pools_done[level], coarse)
        return feature.permute(0, 3, 1, 2) if output_fmt == "NCHW" else feature

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)


VARIANTS = {
    "hiera_small_abswin_256": HieraConfig(
        img_size=256, embed_dim=96, num_heads=1, depths=(1, 2, 11, 2), global_pos_size=(16, 16),
        layer_scale_init=1e-5, expand_proj=False),
}
