"""The verification of a deployed model: its tolerance, and where float32 itself cannot meet it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from visionzoo.deploy.verify import FLOAT32_MARGIN, FP32_RTOL, VerificationError, compare


class _Cancelling(nn.Module):
    """Logits of order 1 computed through a sum of order 1e5: float32 keeps them to ~1e-3 only."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 10)

    def forward(self, x):
        return (self.linear(x) + 1e5) - 1e5


def _inputs():
    return {"random x8": torch.randn(8, 16, generator=torch.Generator().manual_seed(0))}


def test_a_close_candidate_passes_without_a_float64_run():
    model = _Cancelling().eval()
    verification = compare(model, lambda x: model(x) * (1 + 1e-6), _inputs())
    assert verification.passed
    assert verification.comparisons[0].float32_error is None and verification.comparisons[0].rtol == FP32_RTOL


def test_what_float32_cannot_do_is_not_held_against_the_candidate():
    model = _Cancelling().eval()
    exact = model.linear  # the candidate computes the logits without the cancellation: closer to float64
    verification = compare(model, exact, _inputs())
    comparison = verification.comparisons[0]
    assert comparison.rel_diff > FP32_RTOL  # it misses the float32 tolerance against the eager model ...
    assert comparison.float32_error > FP32_RTOL  # ... because the eager model itself is that far from float64
    assert comparison.rtol == pytest.approx(FLOAT32_MARGIN * comparison.float32_error)
    assert verification.passed and "from float64" in verification.lines()[0]


def test_a_candidate_beyond_the_float32_band_fails():
    model = _Cancelling().eval()
    verification = compare(model, lambda x: model.linear(x) + 0.05, _inputs())
    assert not verification.passed
    with pytest.raises(VerificationError, match="the candidate differs from the eager model"):
        verification.check("the candidate")


def test_reduced_precision_keeps_its_own_tolerance():
    model = _Cancelling().eval()
    verification = compare(model, lambda x: model.linear(x) + 0.05, _inputs(), rtol=5e-2)
    assert all(c.float32_error is None for c in verification.comparisons)
