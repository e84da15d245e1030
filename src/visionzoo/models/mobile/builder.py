"""The one block builder of the mobile family: block specs in, stages of blocks and feature levels out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

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


@dataclass(frozen=True)
class BlockType:
    """How the builder makes the block of a row type: its class and what it takes from the row and config."""

    cls: Callable[..., nn.Module]
    takes: tuple[str, ...]  # keyword arguments besides in_chs, out_chs, skip, drop_path (`_block_kwargs`)
    group_size: int = 1  # the group size where the row has no g field: 1 depthwise, 0 dense
    skip: bool = True  # a residual where shapes allow, unless the row says skip/noskip


_CONV = ("kernel_size", "stride", "group_size", "act", "aa")
_EXPANDING = _CONV + ("exp_ratio", "se")

BLOCKS: dict[str, BlockType] = {
    "cn": BlockType(ConvBlock, _CONV, group_size=0, skip=False),
    "ds": BlockType(DepthwiseSeparable, _CONV + ("se",)),
    "dsa": BlockType(partial(DepthwiseSeparable, pw_act=True), _CONV + ("se",), skip=False),
    "ir": BlockType(InvertedResidual, _EXPANDING),
    "er": BlockType(EdgeResidual, _EXPANDING, group_size=0),
    "uib": BlockType(UniversalInvertedBottleneck,
                     _EXPANDING + ("start_kernel", "end_kernel", "layer_scale_init")),
    "mqa": BlockType(MobileAttention,
                     ("kernel_size", "num_heads", "kv_dim", "kv_stride", "layer_scale_init")),
}


def _block_kwargs(cfg: MobileNetConfig, spec: BlockSpec, block_type: BlockType) -> dict:
    """Every argument a block may take, from its row and the model's config, named as the blocks name them."""
    return dict(
        kernel_size=spec.kernel, stride=spec.stride,
        start_kernel=spec.start_kernel, end_kernel=spec.end_kernel,
        group_size=block_type.group_size if spec.group_size is None else spec.group_size,
        act=spec.act or cfg.act, aa=cfg.anti_alias, exp_ratio=spec.exp_ratio, se=_squeeze_excite(cfg, spec),
        num_heads=spec.num_heads, kv_dim=spec.kv_dim, kv_stride=spec.kv_stride,
        layer_scale_init=cfg.layer_scale_init)


def make_block(cfg: MobileNetConfig, spec: BlockSpec, in_chs: int, drop_path: float) -> tuple[nn.Module, int]:
    """The block of one spec, and its output channels."""
    block_type = BLOCKS[spec.kind]
    out_chs = cfg.round_chs(spec.out_chs)
    available = _block_kwargs(cfg, spec, block_type)
    kwargs = {name: available[name] for name in block_type.takes}
    skip = block_type.skip if spec.skip is None else spec.skip
    return block_type.cls(in_chs, out_chs, skip=skip, drop_path=drop_path, **kwargs), out_chs


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
