"""Losses on soft targets: the cross-entropy that mixup/cutmix targets need, and the binary cross-entropy of
the "ResNet strikes back" recipes (https://arxiv.org/abs/2110.00476, `bce_loss`, `bce_target_thresh`).

Both take logits (B, K) and either class indices (B,) or soft targets (B, K), so they plug in after a
`visionzoo.data.mixup.BatchMixer` or without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import check_smoothing


def _check_index_targets(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"targets must be class indices (B,) or soft targets (B, K) for logits "
                         f"{tuple(logits.shape)}, got {tuple(targets.shape)}")


def _soft_targets(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    if targets.shape == logits.shape:
        return targets.to(logits.dtype)
    _check_index_targets(logits, targets)
    num_classes = logits.shape[-1]
    off = smoothing / num_classes
    return torch.full_like(logits, off).scatter_(1, targets.long().view(-1, 1), 1.0 - smoothing + off)


class SoftTargetCrossEntropy(nn.Module):
    """Mean over the batch of -sum_k target_k log softmax(logits)_k.

    Class-index targets are one-hot encoded first, with `smoothing` (soft targets are used as they are:
    `BatchMixer` already folded the smoothing in).
    """

    def __init__(self, smoothing: float = 0.0):
        super().__init__()
        self.smoothing = check_smoothing(smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.shape == logits.shape:  # torch's cross-entropy takes class probabilities as they are
            return F.cross_entropy(logits, targets.to(logits.dtype))
        _check_index_targets(logits, targets)
        return F.cross_entropy(logits, targets.long(), label_smoothing=self.smoothing)


class BinaryCrossEntropy(nn.Module):
    """Per-class binary cross-entropy with logits, on one-hot or mixed targets.

    Args:
        smoothing: label smoothing of class-index targets (soft targets come smoothed already).
        target_threshold: targets above it become 1, the rest 0 (`bce_target_thresh`; the RSB recipes use 0.2,
            so both classes of a mixup pair count as present).
        sum_classes: sum over classes before the batch mean (`bce_sum`), rather than the mean over both.
        pos_weight: weight of the positive term, one value or one per class.
    """

    def __init__(self, smoothing: float = 0.0, target_threshold: float | None = None,
                 sum_classes: bool = False, pos_weight: float | torch.Tensor | None = None):
        super().__init__()
        self.smoothing = check_smoothing(smoothing)
        self.target_threshold = target_threshold
        self.sum_classes = sum_classes
        self.register_buffer("pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        soft = _soft_targets(logits, targets, self.smoothing)
        if self.target_threshold is not None:
            soft = soft.gt(self.target_threshold).to(soft.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, soft, pos_weight=self.pos_weight,
                                                  reduction="none" if self.sum_classes else "mean")
        return loss.sum(-1).mean() if self.sum_classes else loss


def create_loss(options: dict) -> nn.Module:
    """The training loss a recipe's options ask for: `bce_loss` (with `bce_target_thresh`, `bce_sum`,
    `smoothing`) or soft-target cross-entropy with `smoothing` (used with or without mixup/cutmix: the
    smoothing of mixed targets is already folded in by the mixer, so it applies to index targets only)."""
    smoothing = options.get("smoothing") or 0.0
    if options.get("bce_loss"):
        return BinaryCrossEntropy(smoothing, target_threshold=options.get("bce_target_thresh"),
                                  sum_classes=bool(options.get("bce_sum")))
    return SoftTargetCrossEntropy(smoothing)
