"""The config of the mobile family: every knob, with the architecture itself as a table of block rows."""

from __future__ import annotations

from dataclasses import dataclass

from ...layers.blur_pool import ANTI_ALIAS_KINDS
from ...layers.channels import make_divisible
from ...layers.pool import POOL_TYPES, SAME_WIDTH_POOL_TYPES, check_pool_type
from ..base import ModelConfig
from .spec import parse_stages

HEAD_TYPES = ("efficientnet", "mobilenetv3")


@dataclass(frozen=True)
class MobileNetConfig(ModelConfig):
    """Every knob of the mobile family (MobileNetV1/V3/V4, EfficientNet, MobileNet-EdgeTPU-v2).

    `stages` is the paper's table: one tuple of block rows per stage (grammar in `spec.py`). Channel counts in
    the rows, the stem and the head are the published ones; `width_multiplier` scales the rows (and the stem,
    unless `fix_stem`), `depth_multiplier` their repeats.
    """

    stages: tuple[tuple[str, ...], ...] = ()
    stem_chs: int = 32
    stem_kernel: int = 3
    fix_stem: bool = False  # keep stem_chs as given under a width multiplier
    act: str = "relu"
    width_multiplier: float = 1.0
    channel_divisor: int = 8
    channel_round_limit: float = 0.9  # rounding may not lose more than this fraction of a width
    depth_multiplier: float = 1.0
    # squeeze-excite: gate, activation (None: the block's), whether a row's `se` ratio is of the expanded
    # width (MobileNetV3) or of the block input (EfficientNet), and the rounding of the squeezed width
    # (None: nearest)
    se_gate: str = "sigmoid"
    se_act: str | None = None
    se_from_expanded: bool = False
    se_divisor: int | None = None
    # downsample by 'avg' or 'blur'/'blur_zero_pad' pooling instead of a strided conv
    anti_alias: str | None = None
    layer_scale_init: float | None = None  # uib and mqa blocks (MobileNetV4 hybrids)
    # 'efficientnet': 1x1 conv -> BN -> act -> pool -> classifier (head_chs 0: no conv).
    # 'mobilenetv3': pool -> 1x1 conv -> [BN] -> act -> classifier, cheap because it runs after pooling.
    head_type: str = "efficientnet"
    head_chs: int = 1280
    head_norm: bool = False  # mobilenetv3 head: BN after the conv (MobileNetV4) instead of a bias (V3)
    global_pool: str = "avg"

    @property
    def global_pools(self) -> tuple[str, ...]:
        """The pooling types the head can take: the MobileNetV3 head's conv after the pool fixes the width."""
        return SAME_WIDTH_POOL_TYPES if self.head_type == "mobilenetv3" else POOL_TYPES

    def __post_init__(self):
        if not self.stages:
            raise ValueError("stages must list at least one stage of block rows")
        for stage in parse_stages(self.stages):
            if any(spec.stride > 1 for spec in stage[1:]):
                raise ValueError("only the first row of a stage may have a stride")
        if self.head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {self.head_type!r}")
        check_pool_type(self.global_pool, self.global_pools)
        if self.anti_alias is not None and self.anti_alias not in ANTI_ALIAS_KINDS:
            raise ValueError(f"anti_alias must be None or one of {ANTI_ALIAS_KINDS}, got {self.anti_alias!r}")

    def round_chs(self, channels: int) -> int:
        """A published width under this config's width multiplier."""
        return make_divisible(channels * self.width_multiplier, self.channel_divisor,
                              self.channel_round_limit)

    @property
    def stem_width(self) -> int:
        return self.stem_chs if self.fix_stem else self.round_chs(self.stem_chs)
