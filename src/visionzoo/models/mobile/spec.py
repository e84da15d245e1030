"""Block specs of the mobile family: the rows of the papers' architecture tables, and their string grammar.

An architecture is a tuple of stages; a stage is a tuple of block rows; a row is one string that parses into a
typed `BlockSpec`. This docstring is the one place the grammar is defined.

A row is `<type>_<field>_<field>...`, the fields in this canonical order (`format_block` writes them so):

    type    cn   conv -> BN -> act                                   (MobileNetV4 stem stages, heads)
            ds   depthwise-separable: dw conv, [SE], pw conv, no act after pw   (EfficientNet stage 1)
            dsa  MobileNetV1's separable conv: act after the pw conv and never a residual
            ir   inverted residual (MBConv): pw expansion, dw conv, [SE], pw projection
            er   edge residual (FusedMBConv): full conv expansion, [SE], pw projection
            uib  universal inverted bottleneck (MobileNetV4): [dw], pw expansion, [dw], [SE], pw projection,
                 [dw]
            mqa  mobile multi-query attention (MobileNetV4 hybrids)
    r<n>    repeats of the row (the first repeat takes the stride)
    a<k>    uib only: depthwise kernel before the expansion (default 0: none)
    k<k>    the main kernel: the conv of cn/er, the depthwise conv of ds/dsa/ir, the middle depthwise conv of
            uib (k0: none), the key/value downsampling conv of mqa
    p<k>    uib only: depthwise kernel after the projection (default 0: none)
    s<n>    stride (1 or 2)
    e<x>    expansion ratio (ir, er, uib)
    h<n>    mqa only: query heads
    d<n>    mqa only: key and value dim
    v<n>    mqa only: key/value stride (default 1)
    g<n>    group size of the grouped convs (1: depthwise); default: dense for cn/er, depthwise for the others
    c<n>    output channels, before the model's width multiplier
    se<x>   squeeze-excite ratio (default 0: none)
    n<act>  activation of this block instead of the model's: nre relu, nr6 relu6, nhs hard_swish, nsw swish,
            nge gelu
    skip    force a residual where shapes allow (cn has none by default); noskip: never a residual

Required fields: `r k s c` for every type, plus `e` for ir/er/uib and `h d` for mqa; the others are optional
and written only when they differ from their default. mqa rows never downsample (s1).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, fields

BLOCK_TYPES = ("cn", "ds", "dsa", "ir", "er", "uib", "mqa")

# letter -> BlockSpec field, in canonical order
LETTERS = {
    "r": "repeats",
    "a": "start_kernel",
    "k": "kernel",
    "p": "end_kernel",
    "s": "stride",
    "e": "exp_ratio",
    "h": "num_heads",
    "d": "kv_dim",
    "v": "kv_stride",
    "g": "group_size",
    "c": "out_chs",
    "se": "se_ratio",
}
ACTIVATION_CODES = {"re": "relu", "r6": "relu6", "hs": "hard_swish", "sw": "swish", "ge": "gelu"}

_COMMON = {"r", "k", "s", "c"}
_REQUIRED = {
    "cn": _COMMON, "ds": _COMMON, "dsa": _COMMON,
    "ir": _COMMON | {"e"}, "er": _COMMON | {"e"}, "uib": _COMMON | {"e"},
    "mqa": _COMMON | {"h", "d"},
}
_OPTIONAL = {
    "cn": {"g", "n", "skip"},
    "ds": {"g", "se", "n", "skip"},
    "dsa": {"g", "se", "n"},
    "ir": {"g", "se", "n", "skip"},
    "er": {"g", "se", "n", "skip"},
    "uib": {"a", "p", "g", "se", "n", "skip"},
    "mqa": {"v", "skip"},
}
_FLOAT_FIELDS = {"exp_ratio", "se_ratio"}
_FIELD_TOKEN = re.compile(r"([a-z]+)(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class BlockSpec:
    """One row of an architecture table; see the module docstring for the letter of each field."""

    kind: str
    repeats: int
    kernel: int
    stride: int
    out_chs: int
    exp_ratio: float = 1.0
    start_kernel: int = 0
    end_kernel: int = 0
    num_heads: int = 0
    kv_dim: int = 0
    kv_stride: int = 1
    group_size: int | None = None  # None: the block type's default
    se_ratio: float = 0.0
    act: str | None = None  # None: the model's activation
    skip: bool | None = None  # None: a residual wherever input and output shapes agree (cn: never)

    def __post_init__(self):
        if self.kind not in BLOCK_TYPES:
            raise ValueError(f"unknown block type {self.kind!r}; expected one of {BLOCK_TYPES}")
        if self.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {self.stride}")
        if self.kind == "mqa" and self.stride != 1:
            raise ValueError("mqa blocks do not downsample; give them s1")
        if self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {self.repeats}")


def _number(text: str, field: str) -> int | float:
    return float(text) if field in _FLOAT_FIELDS else int(text)


def _format_number(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_block(row: str) -> BlockSpec:
    """Parse one row such as 'ir_r2_k3_s2_e6_c24_se0.25'; raises ValueError naming what is wrong."""
    kind, *tokens = row.split("_")
    if kind not in BLOCK_TYPES:
        raise ValueError(f"{row!r}: unknown block type {kind!r}; expected one of {BLOCK_TYPES}")
    values: dict = {}
    seen: list[str] = []
    for token in tokens:
        if token in ("skip", "noskip"):
            key, values["skip"] = "skip", token == "skip"
        elif token.startswith("n"):
            if token[1:] not in ACTIVATION_CODES:
                raise ValueError(f"{row!r}: unknown activation {token!r}; expected one of "
                                 f"{['n' + code for code in ACTIVATION_CODES]}")
            key, values["act"] = "n", ACTIVATION_CODES[token[1:]]
        else:
            match = _FIELD_TOKEN.fullmatch(token)
            if match is None or match.group(1) not in LETTERS:
                raise ValueError(f"{row!r}: cannot read field {token!r}")
            key = match.group(1)
            values[LETTERS[key]] = _number(match.group(2), LETTERS[key])
        if key in seen:
            raise ValueError(f"{row!r}: field {key!r} given twice")
        seen.append(key)
    missing = _REQUIRED[kind] - set(seen)
    if missing:
        raise ValueError(f"{row!r}: {kind} needs field(s) {sorted(missing)}")
    extra = set(seen) - _REQUIRED[kind] - _OPTIONAL[kind]
    if extra:
        raise ValueError(f"{row!r}: {kind} takes no field(s) {sorted(extra)}")
    return BlockSpec(kind=kind, **values)


def format_block(spec: BlockSpec) -> str:
    """The canonical row of `spec`: the required fields, and the optional ones unless at their default."""
    defaults = {f.name: f.default for f in fields(BlockSpec)}
    parts = [spec.kind]
    for letter, name in LETTERS.items():
        value = getattr(spec, name)
        if letter in _REQUIRED[spec.kind] or (letter in _OPTIONAL[spec.kind] and value != defaults[name]):
            parts.append(f"{letter}{_format_number(value)}")
    if spec.act is not None:
        code = {name: code for code, name in ACTIVATION_CODES.items()}[spec.act]
        parts.append(f"n{code}")
    if spec.skip is not None:
        parts.append("skip" if spec.skip else "noskip")
    return "_".join(parts)


def parse_stages(stages: tuple[tuple[str, ...], ...]) -> list[list[BlockSpec]]:
    """Parse an architecture: a tuple of stages, each a tuple of rows."""
    return [[parse_block(row) for row in stage] for stage in stages]


def scale_stage_depth(repeats: list[int], multiplier: float) -> list[int]:
    """Repeats of a stage's rows after depth scaling by `multiplier`, one count per row, each at least 1.

    EfficientNet's compound scaling (Tan & Le 2019, arXiv 1905.11946, Sec. 3.3; `round_repeats` in its
    official code) multiplies the layer count L of every stage by the depth coefficient d and rounds up:
    ceil(d * L) layers. Our stages may hold several rows, so that stage total is handed out to the rows in
    proportion to their repeats, walking from the last row to the first: each row takes its share of what is
    still to hand out (rounded half to even), and the first row, which usually changes resolution or width,
    is the last to grow.
    """
    rows_up_to = list(itertools.accumulate(repeats))  # rows_up_to[i]: the unscaled repeats of rows 0..i
    to_hand_out = math.ceil(rows_up_to[-1] * multiplier)
    scaled = [0] * len(repeats)
    for i in reversed(range(len(repeats))):
        # (fraction of the rows) * (layers left) in floating point, in this order, as the reference scales
        # the published models: on an exact half, repeats * left / rows_up_to can round the other way.
        scaled[i] = max(1, round(repeats[i] / rows_up_to[i] * to_hand_out))
        to_hand_out -= scaled[i]
    return scaled
