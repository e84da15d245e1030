"""The RandAugment string grammar the published recipes write (`rand-m9-mstd0.5-inc1`): parsing and
canonical formatting. It imports no torch, so that a training option can be checked while the command line
parses; the ops themselves are in `auto_augment.py`.

Grammar: `rand` followed by dash-separated sections, in any order, each a key and its value:

    m<int>      magnitude, 0..10 on the op scale (default 10)
    n<int>      ops applied per image, drawn uniformly with replacement (default 2)
    p<float>    probability that each drawn op is applied (default 0.5)
    mstd<float> std of Gaussian noise on the magnitude per application; above 100 means uniform in [0, m]
    mmax<int>   upper clip of the noisy magnitude (default 10)
    inc<0|1>    1: the "increasing" op set, where a larger magnitude is always a stronger distortion
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The op sets. The "increasing" set replaces ops whose strength falls with the magnitude (Posterize keeps
# more bits, Solarize a higher threshold, enhancements pull towards 1.9) with versions that rise with it.
RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
            "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
RAND_INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
                       "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
                       "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel",
                       "TranslateYRel")

_SECTION = re.compile(r"^(mstd|mmax|inc|m|n|p)(\d.*)$")
_GRAMMAR = "rand-m<int>[-n<int>][-p<float>][-mstd<float>][-mmax<int>][-inc<0|1>], e.g. rand-m9-mstd0.5-inc1"


class AugmentSpecError(ValueError):
    """A RandAugment string that does not follow the grammar."""


@dataclass(frozen=True)
class RandAugmentSpec:
    """A parsed RandAugment string; `format()` writes it back in canonical order."""

    magnitude: int = 10  # m
    num_ops: int = 2  # n
    prob: float = 0.5  # p
    magnitude_std: float = 0.0  # mstd
    magnitude_max: int | None = None  # mmax
    increasing: bool = False  # inc

    @property
    def ops(self) -> tuple[str, ...]:
        return RAND_INCREASING_OPS if self.increasing else RAND_OPS

    def format(self) -> str:
        """The canonical string: `rand-m{m}-n{n}[-p][-mstd][-mmax]-inc{0|1}` (defaults omitted, except m)."""
        parts = ["rand", f"m{self.magnitude}"]
        if self.num_ops != 2:
            parts.append(f"n{self.num_ops}")
        if self.prob != 0.5:
            parts.append(f"p{self.prob:g}")
        if self.magnitude_std:
            parts.append(f"mstd{self.magnitude_std:g}")
        if self.magnitude_max is not None:
            parts.append(f"mmax{self.magnitude_max}")
        if self.increasing:
            parts.append("inc1")
        return "-".join(parts)


def parse_rand_augment(text: str) -> RandAugmentSpec:
    """Parse a RandAugment string such as `rand-m7-inc1-mstd1.0-n3`.

    Raises:
        AugmentSpecError: anything else (other policy names included), naming the bad section.
    """
    sections = text.strip().split("-")
    if sections[0] != "rand":
        raise AugmentSpecError(f"augmentation {text!r} is not a RandAugment string ({_GRAMMAR}); the "
                               "AutoAugment policies and AugMix are not built (no recipe here uses them)")
    values: dict = {}
    for section in sections[1:]:
        match = _SECTION.match(section)
        if match is None:
            raise AugmentSpecError(f"RandAugment {text!r}: unknown section {section!r}; expected {_GRAMMAR}")
        key, raw = match.groups()
        try:
            value = float(raw) if key in ("p", "mstd") else int(raw)
        except ValueError:
            raise AugmentSpecError(f"RandAugment {text!r}: section {section!r} needs a "
                                   f"{'number' if key in ('p', 'mstd') else 'whole number'}") from None
        if key in values:
            raise AugmentSpecError(f"RandAugment {text!r}: section {key!r} given twice")
        values[key] = value
    if values.get("inc", 0) not in (0, 1):
        raise AugmentSpecError(f"RandAugment {text!r}: inc must be 0 or 1")
    if not 0 <= values.get("p", 0.5) <= 1:
        raise AugmentSpecError(f"RandAugment {text!r}: p must be in [0, 1]")
    if values.get("n", 2) < 1:
        raise AugmentSpecError(f"RandAugment {text!r}: n must be at least 1")
    return RandAugmentSpec(magnitude=values.get("m", 10), num_ops=values.get("n", 2),
                           prob=values.get("p", 0.5), magnitude_std=values.get("mstd", 0.0),
                           magnitude_max=values.get("mmax"), increasing=bool(values.get("inc", 0)))
