"""Compare a deployed model (optimised, exported, compiled) with the eager model it came from.

Inputs: real photos shipped with the package (see photos/README.md), preprocessed as the model's weights
expect, and random batches of one and several images. Figures per input set: the largest absolute logit
difference, that difference relative to the largest eager logit, and top-1 agreement. A top-1 disagreement
counts only where the eager model's own margin between the two classes exceeds the tolerance (a tie within
rounding is no error).

Some weights amplify float32 rounding (randomised MobileNetV3-Large-150d: the eager model itself is 2e-4
of its logit scale away from its float64 answer). Where a float32 candidate misses the tolerance, the eager
model is rerun in float64, and the tolerance for that input set becomes FLOAT32_MARGIN times the eager
model's own float32 error if that is larger: a deployment is not blamed for what float32 cannot do.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data import create_transform, resolve_data_config
from ..errors import VisionzooError
from ..models.base import size_pair

PHOTOS = Path(__file__).with_name("photos")
PHOTO_NAMES = ("chelsea.jpg", "coffee.jpg", "rocket.jpg")
RANDOM_BATCH_SIZES = (1, 4)
FP32_RTOL = 1e-4
# bf16 keeps 8 bits of mantissa: logits move by about 1% of their scale
REDUCED_PRECISION_RTOL = 5e-2
# how much further than the eager model's own float32 error a float32 candidate may be (as the conformance
# tests allow ours against the reference)
FLOAT32_MARGIN = 8.0


class VerificationError(VisionzooError, RuntimeError):
    """A deployed model disagrees with its eager model beyond the tolerance (`verification`: the figures)."""

    def __init__(self, message: str, verification: Verification | None = None):
        super().__init__(message)
        self.verification = verification


@dataclass(frozen=True)
class Comparison:
    """How one input set came out: logit differences and top-1 agreement."""

    inputs: str
    count: int
    max_abs_diff: float
    rel_diff: float  # max_abs_diff / the largest |eager logit|
    top1_agree: int
    top1_errors: int  # disagreements not explained by an eager tie within the tolerance
    rtol: float  # the relative tolerance for this input set
    float32_error: float | None = None  # the eager model's own, relative to float64, where it was measured

    @property
    def passed(self) -> bool:
        return self.rel_diff <= self.rtol and self.top1_errors == 0

    def line(self) -> str:
        line = (f"{self.inputs:<12} n={self.count:<2} max|diff| {self.max_abs_diff:.3g}  "
                f"relative {self.rel_diff:.3g}  top-1 agree {self.top1_agree}/{self.count}")
        if self.float32_error is not None:
            line += f"  (eager float32 is {self.float32_error:.3g} from float64: tolerance {self.rtol:.3g})"
        return line


@dataclass(frozen=True)
class Verification:
    """The comparisons of a deployed model with its eager model, and whether they pass `rtol`."""

    comparisons: tuple[Comparison, ...]
    rtol: float
    top1_margin: float | None = None  # where the top-1 alone is checked (int8)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    def lines(self) -> list[str]:
        verdict = "ok" if self.passed else "FAILED"
        summary = f"verification {verdict} (relative tolerance {self.rtol:g})"
        if self.top1_margin is not None and math.isinf(self.rtol):
            summary = (f"verification {verdict} (top-1 agreement; a change counts where fp32's own margin "
                       f"exceeds {self.top1_margin:g} of its logit scale)")
        return [c.line() for c in self.comparisons] + [summary]

    def check(self, what: str) -> Verification:
        """Raise VerificationError naming `what` if the comparisons fail; return self."""
        if not self.passed:
            worst = max(self.comparisons, key=lambda c: c.rel_diff / c.rtol + c.top1_errors)
            raise VerificationError(f"{what} differs from the eager model: {worst.line().strip()} (tolerance "
                                    f"{worst.rtol:g}); rerun with verification off to keep it anyway", self)
        return self


def photo_batch(model: nn.Module, img_size: int | tuple[int, int]) -> torch.Tensor:
    """The shipped photos, preprocessed as `model`'s weights expect, at `img_size`: (3, C, H, W)."""
    from PIL import Image

    config = resolve_data_config(model, img_size=size_pair(img_size))
    transform = create_transform(config)
    images = []
    for name in PHOTO_NAMES:
        with Image.open(PHOTOS / name) as image:
            images.append(transform(image))
    return torch.stack(images)


def verification_inputs(model: nn.Module, img_size: int | tuple[int, int], in_chans: int = 3,
                        batch_sizes: tuple[int, ...] = RANDOM_BATCH_SIZES, fixed_batch: int | None = None,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Named input batches: the photos (3-channel models) and standard-normal batches of each size.

    `fixed_batch`: for an artifact that takes only that batch size: the photos are repeated or cut to it and
    the random batch has that size.
    """
    height, width = size_pair(img_size)
    inputs = {}
    if in_chans == 3:
        photos = photo_batch(model, (height, width))
        if fixed_batch is not None:
            photos = photos[torch.arange(fixed_batch) % photos.shape[0]]
        inputs["photos"] = photos
    generator = torch.Generator().manual_seed(seed)
    for size in (fixed_batch,) if fixed_batch is not None else batch_sizes:
        inputs[f"random x{size}"] = torch.randn(size, in_chans, height, width, generator=generator)
    return inputs


def _top1_errors(reference: torch.Tensor, candidate: torch.Tensor, tolerance: float) -> tuple[int, int]:
    ref_top, cand_top = reference.argmax(-1), candidate.argmax(-1)
    agree = int((ref_top == cand_top).sum())
    # the eager logit of the class the candidate chose, against the eager top logit
    margin = reference.gather(-1, ref_top[:, None]) - reference.gather(-1, cand_top[:, None])
    errors = int((margin.squeeze(-1) > tolerance).sum())
    return agree, errors


def _logits(model: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(model(batch)).float().cpu().reshape(batch.shape[0], -1)


class _Float64Twin:
    """The eager model's float64 copy, made on first use (only where a float32 candidate misses)."""

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor]):
        self.model = model
        self.twin = None

    def available(self) -> bool:
        parameter = next(self.model.parameters(), None) if isinstance(self.model, nn.Module) else None
        return parameter is not None and parameter.dtype == torch.float32

    def relative_error(self, batch: torch.Tensor, expected: torch.Tensor) -> float:
        """max |float32 eager - float64 eager| on `batch`, relative to the float64 logits' scale."""
        if self.twin is None:
            self.twin = copy.deepcopy(self.model).double()
        exact = self.twin(batch.double()).cpu().reshape(batch.shape[0], -1)
        return float((expected.double() - exact).abs().max() / exact.abs().max().clamp_min(1e-30))


@torch.no_grad()
def compare(reference: Callable[[torch.Tensor], torch.Tensor],
            candidate: Callable[[torch.Tensor], torch.Tensor], inputs: dict[str, torch.Tensor],
            rtol: float = FP32_RTOL, top1_margin: float | None = None) -> Verification:
    """Run both on every input set and compare their logits (float32 on the CPU).

    `reference` is the eager model; for a float32 comparison that misses `rtol` it is also run in float64
    (see the module's docstring). `top1_margin`: the near-tie margin (relative to the logit scale) for the
    top-1 rule where it is not `rtol` (int8: logits are not gated, only the top-1, with `rtol` infinite).
    """
    comparisons = []
    float64 = _Float64Twin(reference)
    for name, batch in inputs.items():
        expected = _logits(reference, batch)
        actual = _logits(candidate, batch)
        if actual.shape != expected.shape:
            raise VerificationError(f"{name}: output shape {tuple(actual.shape)} differs from the eager "
                                    f"model's {tuple(expected.shape)}")
        diff = float((actual - expected).abs().max())
        scale = float(expected.abs().max()) or 1.0
        tolerance, float32_error = rtol, None
        if diff > rtol * scale and rtol <= FP32_RTOL and float64.available():
            float32_error = float64.relative_error(batch, expected)
            tolerance = max(rtol, FLOAT32_MARGIN * float32_error)
        margin = tolerance if top1_margin is None else top1_margin
        agree, errors = _top1_errors(expected, actual, margin * scale)
        comparisons.append(Comparison(name, batch.shape[0], diff, diff / scale, agree, errors, tolerance,
                                      float32_error))
    return Verification(tuple(comparisons), rtol, top1_margin)
