"""Channel-count rounding shared by the conv families."""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """`value` rounded to the nearest multiple of `divisor` (at least `divisor`), never below `round_limit` of it.

    The published MobileNet, EfficientNet and ByobNet channel counts come from exactly this rounding.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded
