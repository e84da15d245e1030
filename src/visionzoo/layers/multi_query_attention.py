"""Multi-query attention over NCHW feature maps, with optional key/value downsampling (MobileNetV4 MQA).

Shazeer 2019, "Fast Transformer Decoding: One Write-Head is All You Need" (arXiv 1911.02150); the mobile form
with strided key/value (Qin et al. 2024, MobileNetV4, arXiv 2404.10518, Sec. 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv_norm_act import make_conv2d


def _kv_branch(dim: int, out_dim: int, kernel_size: int, stride: int) -> nn.Sequential:
    """Key or value branch: [depthwise strided conv -> BN] -> 1x1 projection to a single head."""
    branch = nn.Sequential()
    if stride > 1:
        branch.add_module("down_conv", make_conv2d(dim, dim, kernel_size, stride, groups=dim))
        branch.add_module("norm", nn.BatchNorm2d(dim))
    branch.add_module("proj", make_conv2d(dim, out_dim, 1))
    return branch


class MultiQueryAttention2d(nn.Module):
    """`num_heads` query heads share one key and one value head; keys and values may be spatially downsampled.

    Sharing the key/value head and shrinking its map by `kv_stride` cuts the memory traffic that dominates
    attention on mobile accelerators. Module names follow the published MobileNetV4 checkpoints.
    """

    def __init__(self, dim: int, dim_out: int | None = None, num_heads: int = 8, key_dim: int = 64,
                 value_dim: int = 64, kv_stride: int = 1, kv_kernel_size: int = 3, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.kv_stride = kv_stride
        self.attn_drop = attn_drop
        self.query = nn.Sequential()
        self.query.add_module("proj", make_conv2d(dim, num_heads * key_dim, 1))
        self.key = _kv_branch(dim, key_dim, kv_kernel_size, kv_stride)
        self.value = _kv_branch(dim, value_dim, kv_kernel_size, kv_stride)
        self.output = nn.Sequential()
        self.output.add_module("proj", make_conv2d(num_heads * value_dim, dim_out or dim, 1))
        self.output.add_module("drop", nn.Dropout(proj_drop))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Xavier-uniform projections: the MobileNetV4 hybrids train stably with it."""
        convs = [self.query.proj, self.key.proj, self.value.proj, self.output.proj]
        if self.kv_stride > 1:
            convs += [self.key.down_conv, self.value.down_conv]
        for conv in convs:
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        # queries (B, heads, HW, key_dim); keys and values (B, 1, hw, dim), broadcast over the heads
        q = self.query(x).reshape(batch, self.num_heads, self.key_dim, height * width).transpose(-1, -2)
        k = self.key(x).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.value(x).flatten(2).transpose(1, 2).unsqueeze(1)
        heads = self.num_heads
        out = F.scaled_dot_product_attention(q, k.expand(-1, heads, -1, -1), v.expand(-1, heads, -1, -1),
                                             dropout_p=self.attn_drop if self.training else 0.0)
        # (B, heads, HW, value_dim) -> (B, heads * value_dim, H, W), channels ordered head-major
        out = out.transpose(1, 2).reshape(batch, height, width, heads * self.value_dim).permute(0, 3, 1, 2)
        return self.output(out)
