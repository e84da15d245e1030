"""Channel arithmetic shared by the conv families: rounding widths, splitting them into groups."""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """`value` rounded to the nearest multiple of `divisor` (at least `divisor`), >= `round_limit` of it.

    The published MobileNet, EfficientNet and ByobNet channel counts come from exactly this rounding: the
    width-multiplier rule of the MobileNetV2 paper's TensorFlow code (half-up rounding to a multiple of the
    divisor, one multiple more where rounding down lost over 10% of the width).
    """
    multiples = max(1, int(value + divisor / 2) // divisor)
    if multiples * divisor < round_limit * value:
        multiples += 1
    return multiples * divisor


def conv_groups(channels: int, group_size: int) -> int:
    """Groups of a conv over `channels` channels for a group size: 0 means one group (dense), 1 depthwise.

    Raises ValueError when the channels do not split into whole groups.
    """
    if not group_size:
        return 1
    if channels % group_size:
        raise ValueError(f"{channels} channels do not split into groups of {group_size}; "
                         f"choose a group size that divides {channels}")
    return channels // group_size
