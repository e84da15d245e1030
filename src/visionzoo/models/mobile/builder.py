"""The one block builder of the mobile family: block specs in, stages of blocks and feature levels out."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from ..base import FeatureInfo
from .blocks import (
    ConvBlock,
    DepthwiseSeparable,
    EdgeResidual,
    InvertedResidual,
    MobileAttention,
    SqueezeExciteSpec,
    UniversalInvertedBottleneck,
)
from .config import MobileNetConfig
from .spec import BlockSpec, parse_stages, scale_stage_depth

STEM_STRIDE = 2


def expand_stages(cfg: MobileNetConfig) -> list[list[BlockSpec]]:
    """One spec per block: rows repeated (depth-scaled), stride kept on the first block of each stage only."""
    stages = []
    for rows in parse_stages(cfg.stages):
        counts = scale_stage_depth([row.repeats for row in rows], cfg.depth_multiplier)
        blocks = [row for row, count in zip(rows, counts, strict=True) for _ in range(count)]
        stages.append([blocks[0]] + [_unstrided(block) for block in blocks[1:]])
    return stages


def _unstrided(spec: BlockSpec) -> BlockSpec:
    return replace(spec, stride=1) if spec.stride != 1 else spec


def _squeeze_excite(cfg: MobileNetConfig, spec: BlockSpec) -> SqueezeExciteSpec | None:
    if not spec.se_ratio:
        return None
    # EfficientNet states the ratio against the block input, but the SE sits on the expanded width
    ratio = spec.se_ratio if cfg.se_from_expanded else spec.se_ratio / spec.exp_ratio
    return SqueezeExciteSpec(ratio, gate=cfg.se_gate, act=cfg.se_act, divisor=cfg.se_divisor)


def make_block(cfg: MobileNetConfig, spec: BlockSpec, in_chs: int, drop_path: float) -> tuple[nn.Module, int]:
    """The block of one spec, and its output channels."""
    out_chs = cfg.round_chs(spec.out_chs)
    act = spec.act or cfg.act
    skip = spec.skip is not False
    common = dict(stride=spec.stride, drop_path=drop_path)
    if spec.kind == "cn":
        block = ConvBlock(in_chs, out_chs, spec.kernel, group_size=spec.group_size or 0, act=act,
                          skip=bool(spec.skip), aa=cfg.anti_alias, **common)
    elif spec.kind in ("ds", "dsa"):
        block = DepthwiseSeparable(in_chs, out_chs, spec.kernel, group_size=_or(spec.group_size, 1), act=act,
                                   pw_act=spec.kind == "dsa", skip=skip and spec.kind == "ds",
                                   se=_squeeze_excite(cfg, spec), aa=cfg.anti_alias, **common)
    elif spec.kind == "ir":
        block = InvertedResidual(in_chs, out_chs, spec.kernel, exp_ratio=spec.exp_ratio,
                                 group_size=_or(spec.group_size, 1), act=act, skip=skip,
                                 se=_squeeze_excite(cfg, spec), aa=cfg.anti_alias, **common)
    elif spec.kind == "er":
        block = EdgeResidual(in_chs, out_chs, spec.kernel, exp_ratio=spec.exp_ratio,
                             group_size=spec.group_size or 0, act=act, skip=skip,
                             se=_squeeze_excite(cfg, spec), aa=cfg.anti_alias, **common)
    elif spec.kind == "uib":
        block = UniversalInvertedBottleneck(
            in_chs, out_chs, spec.start_kernel, spec.kernel, spec.end_kernel, exp_ratio=spec.exp_ratio,
            group_size=_or(spec.group_size, 1), act=act, skip=skip, se=_squeeze_excite(cfg, spec),
            aa=cfg.anti_alias, layer_scale_init=cfg.layer_scale_init, **common)
    else:  # mqa
        if spec.stride != 1:
            raise ValueError("mqa blocks do not downsample; give them s1")
        block = MobileAttention(in_chs, out_chs, spec.num_heads, spec.kv_dim, spec.kv_stride, spec.kernel,
                                skip=skip, layer_scale_init=cfg.layer_scale_init, drop_path=drop_path)
    return block, out_chs


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def build_stages(cfg: MobileNetConfig, in_chs: int) -> tuple[nn.Sequential, list[FeatureInfo], int]:
    """Build every stage after a stem of `in_chs` channels.

    Returns the stages (`blocks.<stage>.<block>`), the feature levels and the last stage's channels. A feature
    level is taken wherever the resolution is about to halve, and after the last stage; when the first stage
    already halves it, the stem output ('bn1') is the first level.
    """
    stages = expand_stages(cfg)
    total = sum(len(stage) for stage in stages)
    reduction = STEM_STRIDE
    features = []
    if stages[0][0].stride > 1:
        features.append(FeatureInfo(in_chs, reduction, "bn1"))
    built = nn.Sequential()
    index = 0
    for stage_index, stage in enumerate(stages):
        blocks = nn.Sequential()
        for spec in stage:
            # drop-path rate grows linearly with depth (Huang et al. 2016), from 0 for the first block
            block, in_chs = make_block(cfg, spec, in_chs, cfg.drop_path_rate * index / total)
            blocks.append(block)
            reduction *= spec.stride
            index += 1
        built.append(blocks)
        is_last = stage_index == len(stages) - 1
        if is_last or stages[stage_index + 1][0].stride > 1:
            features.append(FeatureInfo(in_chs, reduction, f"blocks.{stage_index}"))
    return built, features, in_chs
