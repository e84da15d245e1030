"""Training losses. A loss is any callable `(logits, targets) -> scalar tensor`; the engine takes one as its
`criterion` argument, so soft-target and BCE losses plug in without changing the loop."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def check_smoothing(smoothing: float) -> float:
    """`smoothing` if it is a label-smoothing factor in [0, 1), else a ValueError saying so."""
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    return smoothing


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross-entropy against targets that put `1 - smoothing` on the label and spread `smoothing` evenly
    over all classes. Targets are class indices, or class probabilities (B, C) such as mixed batches give."""

    def __init__(self, smoothing: float = 0.0):
        super().__init__()
        self.smoothing = check_smoothing(smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.smoothing)

    def extra_repr(self) -> str:
        return f"smoothing={self.smoothing}"
