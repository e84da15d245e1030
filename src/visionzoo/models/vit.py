"""Vision Transformer (ViT) family: plain ViTs, register-token ViTs and SigLIP image towers.

Papers: Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words" (arXiv 2010.11929); Darcet et al. 2023,
"Vision Transformers Need Registers" (arXiv 2309.16588); Zhai et al. 2023, "Sigmoid Loss for Language Image
Pre-Training" (arXiv 2303.15343). Module names follow the published `timm/` checkpoints so that they load as
they are. Weights: Apache-2.0 (see each tag's license).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..image_inputs import size_pair
from ..layers.attention import Attention, AttentionPoolLatent
from ..layers.drop import drop_path_or_identity, drop_path_rates
from ..layers.layer_scale import layer_scale_or_identity
from ..layers.mlp import Mlp
from ..layers.patch_embed import PatchEmbed, resample_pos_embed
from ..layers.pool import SAME_WIDTH_POOL_TYPES, PoolTypeError, check_pool_type, global_pool
from ..layers.weight_init import init_trunc_normal
from .base import ClassifierModel, FeatureInfo, ModelConfig, TrunkStep

# the pooling types of layers/pool.py that keep the width, the class token, or attention pooling
GLOBAL_POOLS = (*SAME_WIDTH_POOL_TYPES, "token", "map")


@dataclass(frozen=True)
class VitConfig(ModelConfig):
    """Every knob of the ViT family."""

    img_size: int | tuple[int, int] = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_scale_init: float | None = None  # None: no layer scale
    class_token: bool = True
    reg_tokens: int = 0
    no_embed_class: bool = False  # position embedding for patches only; class/register tokens get none
    global_pool: str = "token"  # '' (none), 'token', 'avg', 'max', 'avgmax' or 'map' (attention pooling)
    fc_norm: bool | None = None  # final norm after pooling instead of before; None: for avg/max/avgmax
    act: str = "gelu"
    norm_eps: float = 1e-6
    dynamic_img_size: bool = False  # resample the position embedding to every input size

    def __post_init__(self):
        check_pool_type(self.global_pool, GLOBAL_POOLS)
        if self.global_pool == "token" and not self.class_token:
            raise PoolTypeError("global_pool='token' needs class_token=True")

    @property
    def grid_size(self) -> tuple[int, int]:
        height, width = (self.img_size, self.img_size) if isinstance(self.img_size, int) else self.img_size
        return height // self.patch_size, width // self.patch_size


def position_embedding_for(pos_embed: torch.Tensor, grid: tuple[int, int], built_grid: tuple[int, int],
                           num_prefix: int, dynamic: bool, patch_size: int) -> torch.Tensor:
    """The position embedding for a `grid` of patches: as built, resampled (dynamic size), or an error."""
    if tuple(grid) == tuple(built_grid):
        return pos_embed
    if dynamic:
        return resample_pos_embed(pos_embed, grid, built_grid, num_prefix)
    raise ValueError(
        f"input of {grid[0] * patch_size}x{grid[1] * patch_size} pixels does not match this model's img_size "
        f"{built_grid[0] * patch_size}x{built_grid[1] * patch_size}; create the model with that img_size "
        "or with dynamic_img_size=True")


# A graph node for torch.fx: the size check runs when the traced graph runs, not on the tracer's proxies.
torch.fx.wrap("position_embedding_for")


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)), each with optional layer
    scale."""

    def __init__(self, cfg: VitConfig, drop_path: float):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.attn = Attention(dim, cfg.num_heads, qkv_bias=cfg.qkv_bias)
        self.ls1 = layer_scale_or_identity(dim, cfg.layer_scale_init)
        self.drop_path1 = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), act=cfg.act)
        self.ls2 = layer_scale_or_identity(dim, cfg.layer_scale_init)
        self.drop_path2 = drop_path_or_identity(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class VisionTransformer(ClassifierModel):
    """ViT: patch embedding, prefix (class/register) tokens, transformer blocks, pooling and a linear head."""

    fixed_input_size = True
    supports_dynamic_img_size = True
    default_out_indices = 3  # the last three blocks
    global_pools = GLOBAL_POOLS
    classifier_module = "head"
    depth_groups = (r"^(?:cls_token|reg_token|pos_embed|patch_embed)", r"^blocks\.(\d+)\.")
    trunk_layout = "NLC"
    output_fmts = ("NCHW", "NLC")
    norm_modules = ("norm",)
    feature_norm = "all"
    head_modules = ("attn_pool", "fc_norm", "head")

    def __init__(self, cfg: VitConfig):
        super().__init__()
        self.config = cfg
        dim = cfg.embed_dim
        self.num_classes = cfg.num_classes
        self.num_features = dim
        self.global_pool = cfg.global_pool
        self.num_prefix_tokens = int(cfg.class_token) + cfg.reg_tokens
        self.grid_size = cfg.grid_size
        use_fc_norm = cfg.global_pool in ("avg", "max", "avgmax") if cfg.fc_norm is None else cfg.fc_norm

        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cfg.class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, cfg.reg_tokens, dim)) if cfg.reg_tokens else None
        num_pos = self.grid_size[0] * self.grid_size[1]
        if not cfg.no_embed_class:
            num_pos += self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.zeros(1, num_pos, dim))
        rates = drop_path_rates(cfg.drop_path_rate, cfg.depth)
        self.blocks = nn.Sequential(*(Block(cfg, rates[i]) for i in range(cfg.depth)))
        self.norm = nn.LayerNorm(dim, eps=cfg.norm_eps) if not use_fc_norm else nn.Identity()
        self.attn_pool = (AttentionPoolLatent(dim, cfg.num_heads, cfg.mlp_ratio, cfg.act, cfg.norm_eps)
                          if cfg.global_pool == "map" else None)
        self.fc_norm = nn.LayerNorm(dim, eps=cfg.norm_eps) if use_fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.feature_info = [FeatureInfo(dim, cfg.patch_size, f"blocks.{i}") for i in range(cfg.depth)]

    @torch.no_grad()
    def init_weights(self) -> None:
        """Truncated-normal linears and position embedding, near-zero prefix tokens (as trained from scratch).

        The patch embedding keeps PyTorch's default conv init, as in the reference recipe.
        """
        init_trunc_normal(self, layers=(nn.Linear,))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for token in (self.cls_token, self.reg_token):
            if token is not None:
                nn.init.normal_(token, std=1e-6)
        if self.attn_pool is not None:
            self.attn_pool.reset_parameters()

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head with a new one for `num_classes` (0: no head); optionally change the pooling."""
        self._check_head_kept()
        if global_pool is not None:
            check_pool_type(global_pool, self.global_pools)
            if global_pool == "map" and self.attn_pool is None:
                raise PoolTypeError(
                    "attention pooling cannot be added to a trained model; create it with global_pool='map'")
            if global_pool == "token" and self.cls_token is None:
                raise PoolTypeError("global_pool='token' needs a class token, which this model has not")
            if global_pool != "map":
                self.attn_pool = None
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = self.new_classifier(self.num_features, num_classes)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patches plus position embedding, with the prefix tokens in front: (B, prefix + H*W, C)."""
        x = self.patch_embed(x)
        batch, height, width, dim = x.shape
        pos_prefix = 0 if self.config.no_embed_class else self.num_prefix_tokens
        pos_embed = position_embedding_for(self.pos_embed, (height, width), self.grid_size, pos_prefix,
                                           self.config.dynamic_img_size, self.config.patch_size)
        x = x.reshape(batch, height * width, dim)
        prefix = [t.expand(batch, -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        if self.config.no_embed_class:
            return torch.cat([*prefix, x + pos_embed], dim=1)
        return torch.cat([*prefix, x], dim=1) + pos_embed

    def trunk(self) -> list[TrunkStep]:
        return [self._embed, *self.blocks]

    @torch.no_grad()
    def fix_input_size(self, img_size: int | tuple[int, int]) -> None:
        """Resample the position embedding to `img_size`'s grid once, instead of on every call."""
        self.check_img_size(img_size)
        grid = self.patch_embed.grid_size(*size_pair(img_size))
        if grid == tuple(self.grid_size):
            return
        prefix = 0 if self.config.no_embed_class else self.num_prefix_tokens
        resampled = resample_pos_embed(self.pos_embed, grid, tuple(self.grid_size), prefix)
        self.pos_embed = nn.Parameter(resampled, requires_grad=False)
        self.grid_size = grid  # _embed now takes the embedding as it is at this size

    def token_grid(self, image_size: torch.Size) -> tuple[int, int]:
        return self.patch_embed.grid_size(image_size[0], image_size[1])

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.attn_pool is not None:
            return self.attn_pool(x[:, self.num_prefix_tokens:])
        if self.global_pool == "token":
            return x[:, 0]
        if self.global_pool:
            return global_pool(x[:, self.num_prefix_tokens:], self.global_pool, dim=1)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.fc_norm(self.pool(x)))
        return x if pre_logits else self.head(x)

    def adapt_checkpoint(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Resample a checkpoint's position embedding to this model's grid (another img_size)."""
        pos_embed = state_dict.get("pos_embed")
        if pos_embed is not None and pos_embed.shape != self.pos_embed.shape:
            prefix = 0 if self.config.no_embed_class else self.num_prefix_tokens
            state_dict = dict(state_dict,
                              pos_embed=resample_pos_embed(pos_embed, self.grid_size, None, prefix))
        return super().adapt_checkpoint(state_dict)


_SBB = dict(layer_scale_init=1e-5, class_token=False, no_embed_class=True, reg_tokens=4, global_pool="avg")
_SO400M = dict(embed_dim=1152, depth=27, num_heads=16, mlp_ratio=3.7362, class_token=False, global_pool="map")

VARIANTS = {
    "test_vit": VitConfig(img_size=160, embed_dim=64, depth=6, num_heads=2, mlp_ratio=3,
                          dynamic_img_size=True),
    "vit_betwixt_patch16_reg4_gap_256": VitConfig(img_size=256, embed_dim=640, depth=12, num_heads=10,
                                                  **_SBB),
    "vit_betwixt_patch16_reg4_gap_384": VitConfig(img_size=384, embed_dim=640, depth=12, num_heads=10,
                                                  **_SBB),
    "vit_mediumd_patch16_reg4_gap_256": VitConfig(img_size=256, embed_dim=512, depth=20, num_heads=8, **_SBB),
    "vit_mediumd_patch16_reg4_gap_384": VitConfig(img_size=384, embed_dim=512, depth=20, num_heads=8, **_SBB),
    "vit_so400m_patch14_siglip_378": VitConfig(img_size=378, patch_size=14, **_SO400M),
    "vit_so400m_patch14_siglip_gap_378": VitConfig(
        img_size=378, patch_size=14, **dict(_SO400M, global_pool="avg", fc_norm=False)),
    # The multilingual (i18n) SigLIP tower; the 2024 page misnames it 'vit_so400m_patch14_siglip_256'.
    "vit_so400m_patch16_siglip_256": VitConfig(img_size=256, patch_size=16, act="gelu_tanh", **_SO400M),
}
