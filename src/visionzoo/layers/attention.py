"""Multi-head self-attention over token sequences, through PyTorch's fused SDPA kernels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .mlp import Mlp


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection; input and output are (B, N, C)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj_drop(self.proj(x))


class AttentionPoolLatent(nn.Module):
    """Multi-head attention pooling (MAP): a learnt latent query attends over the tokens, then an MLP.

    The SigLIP image towers pool this way instead of with a class token.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, act: str = "gelu", norm_eps: float = 1e-6):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.latent = nn.Parameter(torch.zeros(1, 1, dim))
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act=act)

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.latent, std=self.latent.shape[-1] ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q = self.q(self.latent.expand(batch, -1, -1))
        q = q.reshape(batch, 1, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = (self.kv(x).reshape(batch, tokens, 2, self.num_heads, self.head_dim)
                .permute(2, 0, 3, 1, 4).unbind(0))
        x = F.scaled_dot_product_attention(q, k, v)
        x = self.proj(x.transpose(1, 2).reshape(batch, 1, dim))
        x = x + self.mlp(self.norm(x))
        return x[:, 0]
