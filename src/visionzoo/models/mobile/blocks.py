"""The blocks of the mobile family, smallest first. Module names follow the published `timm/` checkpoints.

Every block takes `in_chs`, `out_chs` and its own knobs as plain arguments; the builder reads them off
the block specs. `aa` names the anti-aliased downsampling ('avg', 'blur', 'blur_zero_pad'; None: strided
conv): with it, a strided conv runs at stride 1 and the pooling after its norm and activation downsamples
instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...layers.activations import make_activation
from ...layers.blur_pool import make_anti_alias
from ...layers.channels import conv_groups, make_divisible
from ...layers.conv_norm_act import BatchNormAct2d, ConvNormAct, make_conv2d
from ...layers.drop import drop_path_or_identity
from ...layers.layer_scale import layer_scale_or_identity
from ...layers.multi_query_attention import MultiQueryAttention2d


def _conv_stride(aa: str | None, stride: int) -> int:
    """The stride of a block's strided conv: 1 where an anti-aliasing pool after it downsamples instead."""
    return 1 if aa and stride > 1 else stride


def _anti_alias(aa: str | None, channels: int, stride: int) -> nn.Module:
    return make_anti_alias(aa, channels, stride) if aa and stride > 1 else nn.Identity()


@dataclass(frozen=True)
class SqueezeExciteSpec:
    """How a model sizes and gates its squeeze-excite: it squeezes to `ratio` of the channels it sees."""

    ratio: float
    gate: str = "sigmoid"
    act: str | None = None  # None: the block's activation (MobileNetV3 always squeezes with relu)
    divisor: int | None = None  # round the squeezed channels to a multiple of this; None: to an integer

    def squeezed_channels(self, channels: int) -> int:
        value = channels * self.ratio
        return make_divisible(value, self.divisor) if self.divisor else round(value)


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al. 2018): global mean, 1x1 squeeze, act, 1x1 excite, gate, rescale."""

    def __init__(self, channels: int, squeezed: int, act: str = "relu", gate: str = "sigmoid"):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, squeezed, 1, bias=True)
        self.act1 = make_activation(act, inplace=True)
        self.conv_expand = nn.Conv2d(squeezed, channels, 1, bias=True)
        self.gate = make_activation(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.conv_expand(self.act1(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * self.gate(scale)


def _squeeze_excite(se: SqueezeExciteSpec | None, channels: int, block_act: str) -> nn.Module:
    if se is None:
        return nn.Identity()
    return SqueezeExcite(channels, se.squeezed_channels(channels), se.act or block_act, se.gate)


class ConvNormActAa(ConvNormAct):
    """ConvNormAct whose downsampling, when anti-aliased, is a pooling after the activation."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 act: str | None = "relu", aa: str | None = None):
        super().__init__(in_chs, out_chs, kernel_size, _conv_stride(aa, stride), groups=groups, act=act)
        self.aa = _anti_alias(aa, out_chs, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aa(super().forward(x))


class _Residual(nn.Module):
    """What every block shares: a residual where asked for and the shapes agree, and drop path on the branch.

    Subclasses call `super().__init__(...)` first, then register their layers, and end forward with `_finish`.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, skip: bool, drop_path: float):
        super().__init__()
        self.residual = skip and stride == 1 and in_chs == out_chs
        self.drop_path = drop_path_or_identity(drop_path)

    def _finish(self, x: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return self.drop_path(x) + shortcut if self.residual else x


class ConvBlock(_Residual):
    """cn: a plain conv -> BN -> act, with a residual only where asked for."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, group_size: int = 0,
                 act: str = "relu", skip: bool = False, aa: str | None = None, drop_path: float = 0.0):
        super().__init__(in_chs, out_chs, stride, skip, drop_path)
        self.conv = make_conv2d(in_chs, out_chs, kernel_size, _conv_stride(aa, stride),
                                groups=conv_groups(in_chs, group_size))
        self.bn1 = BatchNormAct2d(out_chs, act)
        self.aa = _anti_alias(aa, out_chs, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._finish(self.aa(self.bn1(self.conv(x))), x)


class DepthwiseSeparable(_Residual):
    """ds/dsa (MobileNetV1, EfficientNet stage 1): depthwise conv -> [SE] -> pointwise conv.

    MobileNetV1 (`pw_act`) activates after the pointwise conv and has no residual; elsewhere the pointwise
    conv is linear and a residual joins where shapes agree.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, group_size: int = 1,
                 act: str = "relu", pw_act: bool = False, skip: bool = True,
                 se: SqueezeExciteSpec | None = None, aa: str | None = None, drop_path: float = 0.0):
        super().__init__(in_chs, out_chs, stride, skip, drop_path)
        self.conv_dw = make_conv2d(in_chs, in_chs, kernel_size, _conv_stride(aa, stride),
                                   groups=conv_groups(in_chs, group_size))
        self.bn1 = BatchNormAct2d(in_chs, act)
        self.aa = _anti_alias(aa, in_chs, stride)
        self.se = _squeeze_excite(se, in_chs, act)
        self.conv_pw = make_conv2d(in_chs, out_chs, 1)
        self.bn2 = BatchNormAct2d(out_chs, act if pw_act else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.aa(self.bn1(self.conv_dw(x))))
        return self._finish(self.bn2(self.conv_pw(y)), x)


class InvertedResidual(_Residual):
    """ir / MBConv (MobileNetV2/V3, EfficientNet): 1x1 expansion -> depthwise conv -> [SE] -> linear 1x1."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1,
                 exp_ratio: float = 6.0, group_size: int = 1, act: str = "relu", skip: bool = True,
                 se: SqueezeExciteSpec | None = None, aa: str | None = None, drop_path: float = 0.0):
        super().__init__(in_chs, out_chs, stride, skip, drop_path)
        mid_chs = make_divisible(in_chs * exp_ratio)
        self.conv_pw = make_conv2d(in_chs, mid_chs, 1)
        self.bn1 = BatchNormAct2d(mid_chs, act)
        self.conv_dw = make_conv2d(mid_chs, mid_chs, kernel_size, _conv_stride(aa, stride),
                                   groups=conv_groups(mid_chs, group_size))
        self.bn2 = BatchNormAct2d(mid_chs, act)
        self.aa = _anti_alias(aa, mid_chs, stride)
        self.se = _squeeze_excite(se, mid_chs, act)
        self.conv_pwl = make_conv2d(mid_chs, out_chs, 1)
        self.bn3 = BatchNormAct2d(out_chs, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.conv_pw(x))
        y = self.se(self.aa(self.bn2(self.conv_dw(y))))
        return self._finish(self.bn3(self.conv_pwl(y)), x)


class EdgeResidual(_Residual):
    """er / FusedMBConv (EfficientNet-EdgeTPU, MobileNetV4): full kxk expansion conv -> [SE] -> linear 1x1.

    On accelerators a dense conv beats the 1x1 + depthwise pair at high resolution, hence its use early on.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1,
                 exp_ratio: float = 4.0, group_size: int = 0, act: str = "relu", skip: bool = True,
                 se: SqueezeExciteSpec | None = None, aa: str | None = None, drop_path: float = 0.0):
        super().__init__(in_chs, out_chs, stride, skip, drop_path)
        mid_chs = make_divisible(in_chs * exp_ratio)
        # the group count follows the expanded width (EfficientNet-EdgeTPU-v2 group convs)
        self.conv_exp = make_conv2d(in_chs, mid_chs, kernel_size, _conv_stride(aa, stride),
                                    groups=conv_groups(mid_chs, group_size))
        self.bn1 = BatchNormAct2d(mid_chs, act)
        self.aa = _anti_alias(aa, mid_chs, stride)
        self.se = _squeeze_excite(se, mid_chs, act)
        self.conv_pwl = make_conv2d(mid_chs, out_chs, 1)
        self.bn2 = BatchNormAct2d(out_chs, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.aa(self.bn1(self.conv_exp(x))))
        return self._finish(self.bn2(self.conv_pwl(y)), x)


class UniversalInvertedBottleneck(_Residual):
    """uib (MobileNetV4, Fig. 4): [dw] -> 1x1 expansion -> [dw] -> [SE] -> linear 1x1 -> [dw], layer scale.

    The optional depthwise convs make one block cover the paper's variants: ExtraDW (both), IB (middle only),
    ConvNeXt-like (start only) and FFN (none). `kernel_size` is the middle one's, `start_kernel` and
    `end_kernel` the others' (0: none). The stride goes to the first depthwise conv present.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1,
                 start_kernel: int = 0, end_kernel: int = 0, exp_ratio: float = 4.0, group_size: int = 1,
                 act: str = "relu", skip: bool = True, se: SqueezeExciteSpec | None = None,
                 aa: str | None = None, layer_scale_init: float | None = None, drop_path: float = 0.0):
        if stride > 1 and not (start_kernel or kernel_size or end_kernel):
            raise ValueError("a strided uib block needs at least one depthwise conv")
        super().__init__(in_chs, out_chs, stride, skip, drop_path)
        mid_chs = make_divisible(in_chs * exp_ratio)
        start_stride = 1 if kernel_size else stride
        end_stride = stride if not (start_kernel or kernel_size) else 1
        self.dw_start = (ConvNormActAa(in_chs, in_chs, start_kernel, start_stride,
                                       conv_groups(in_chs, group_size), act=None, aa=aa)
                         if start_kernel else nn.Identity())
        self.pw_exp = ConvNormAct(in_chs, mid_chs, 1, act=act)
        self.dw_mid = (ConvNormActAa(mid_chs, mid_chs, kernel_size, stride, conv_groups(mid_chs, group_size),
                                     act=act, aa=aa) if kernel_size else nn.Identity())
        self.se = _squeeze_excite(se, mid_chs, act)
        self.pw_proj = ConvNormAct(mid_chs, out_chs, 1, act=None)
        self.dw_end = (ConvNormAct(out_chs, out_chs, end_kernel, end_stride,
                                   groups=conv_groups(out_chs, group_size), act=None)
                       if end_kernel else nn.Identity())
        self.layer_scale = layer_scale_or_identity(out_chs, layer_scale_init, channels_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw_exp(self.dw_start(x))
        y = self.pw_proj(self.se(self.dw_mid(y)))
        return self._finish(self.layer_scale(self.dw_end(y)), x)


class MobileAttention(_Residual):
    """mqa (MobileNetV4 hybrids): BN -> multi-query attention with strided keys/values -> layer scale.

    It never downsamples its output; `kernel_size` is that of the key/value downsampling (`kv_stride` > 1).
    """

    def __init__(self, in_chs: int, out_chs: int, num_heads: int, kv_dim: int, kv_stride: int = 1,
                 kernel_size: int = 3, skip: bool = True, layer_scale_init: float | None = None,
                 drop_path: float = 0.0):
        super().__init__(in_chs, out_chs, 1, skip, drop_path)
        self.norm = nn.BatchNorm2d(in_chs)
        self.attn = MultiQueryAttention2d(in_chs, out_chs, num_heads, kv_dim, kv_dim, kv_stride, kernel_size)
        self.layer_scale = layer_scale_or_identity(out_chs, layer_scale_init, channels_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._finish(self.layer_scale(self.attn(self.norm(x))), x)
