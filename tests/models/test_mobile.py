"""The mobile family's block-row grammar and builder rules (conformance and the interface are tested
generically)."""

from __future__ import annotations

import dataclasses
import inspect
import itertools

import pytest

from tests.reference import meta_model
from visionzoo.models.mobile.builder import BLOCKS
from visionzoo.models.mobile.config import MobileNetConfig
from visionzoo.models.mobile.nets import VARIANTS
from visionzoo.models.mobile.spec import BLOCK_TYPES, BlockSpec, format_block, parse_block, scale_stage_depth

ROWS = sorted({row for cfg in VARIANTS.values() for stage in cfg.stages for row in stage})


@pytest.mark.parametrize("row", ROWS)
def test_every_table_row_round_trips(row):
    spec = parse_block(row)
    assert format_block(spec) == row
    assert parse_block(format_block(spec)) == spec


def test_each_letter_fills_its_named_field():
    assert parse_block("uib_r2_a3_k0_p5_s2_e4.5_g8_c80_se0.25_nge_noskip") == BlockSpec(
        kind="uib", repeats=2, start_kernel=3, kernel=0, end_kernel=5, stride=2, exp_ratio=4.5, group_size=8,
        out_chs=80, se_ratio=0.25, act="gelu", skip=False)
    assert parse_block("mqa_r1_k3_s1_h4_d64_v2_c160") == BlockSpec(
        kind="mqa", repeats=1, kernel=3, stride=1, num_heads=4, kv_dim=64, kv_stride=2, out_chs=160)


def test_format_writes_defaults_only_where_required():
    spec = BlockSpec(kind="ir", repeats=1, kernel=3, stride=1, out_chs=24, exp_ratio=1.0)
    assert format_block(spec) == "ir_r1_k3_s1_e1_c24"
    assert format_block(dataclasses.replace(spec, kind="ds")) == "ds_r1_k3_s1_c24"


@pytest.mark.parametrize("row, message", [
    ("xx_r1_k3_s1_c16", "unknown block type"),
    ("ir_r1_k3_s1_c16", r"needs field\(s\) \['e'\]"),
    ("cn_r1_k3_s1_c16_se0.25", r"takes no field\(s\) \['se'\]"),
    ("ir_r1_k3_k5_s1_e6_c16", "given twice"),
    ("ir_r1_k3_s1_e6_c16_nxx", "unknown activation"),
    ("ir_r1_k3_s3_e6_c16", "stride must be 1 or 2"),
    ("ir_r1_kx_s1_e6_c16", "cannot read field"),
    ("mqa_r1_k3_s2_h4_d64_c160", "do not downsample"),
])
def test_malformed_rows_are_rejected(row, message):
    with pytest.raises(ValueError, match=message):
        parse_block(row)


def test_depth_scaling_grows_the_last_rows_first():
    assert scale_stage_depth([1, 1], 1.2) == [1, 2]
    assert scale_stage_depth([1, 1, 2], 1.2) == [1, 2, 2]  # MobileNetV3-Large-150d, its 80-channel stage
    assert scale_stage_depth([4], 1.1) == [5]
    assert scale_stage_depth([2, 3], 1.0) == [2, 3]


def test_depth_scaling_matches_the_reference_on_every_small_stage():
    """Stages of 1-3 rows of 1-9 repeats, at the published multipliers and ones that land on exact halves."""
    from_reference = pytest.importorskip("timm.models._efficientnet_builder")._scale_stage_depth
    for rows in range(1, 4):
        for repeats in itertools.product(range(1, 10), repeat=rows):
            for multiplier in (0.5, 1.1, 1.2, 1.4, 1.8, 2.2, 2.5, 3.1):
                expanded = from_reference(list(range(rows)), list(repeats), multiplier)
                expected = [expanded.count(i) for i in range(rows)]
                assert scale_stage_depth(list(repeats), multiplier) == expected
    # floating point in the reference's order: exactly 7.5 in rationals, rounded to 7 as published models are
    assert scale_stage_depth([1, 9, 9, 3], 2.5) == [3, 22, 23, 7]


def test_only_the_first_row_of_a_stage_may_downsample():
    with pytest.raises(ValueError, match="only the first row"):
        MobileNetConfig(stages=(("cn_r1_k3_s1_c16", "ir_r1_k3_s2_e6_c24"),))


@pytest.mark.parametrize("arch", sorted(VARIANTS))
def test_no_non_persistent_buffers(arch):
    # a model built on the meta device gets all its tensors from the checkpoint: none may be left out of it
    model = meta_model(arch)
    assert {name for name, _ in model.named_buffers()} <= set(model.state_dict())


def test_the_builder_has_a_block_for_every_row_type_and_passes_only_what_it_takes():
    assert set(BLOCKS) == set(BLOCK_TYPES)
    for kind, block_type in BLOCKS.items():
        parameters = inspect.signature(block_type.cls).parameters
        missing = set(block_type.takes) - set(parameters)
        assert not missing, f"{kind}: {block_type.cls} takes no {sorted(missing)}"
