"""Training losses. A loss is any callable `(logits, targets) -> scalar tensor`; `create_loss` makes the one
`LossOptions` asks for, and `train(..., criterion=)` takes any other.

Targets are class indices (B,), or class probabilities (B, K) such as mixed batches give. Cross-entropy with
label smoothing for class indices; for soft targets (mixup/cutmix) the soft-target cross-entropy; and the
binary cross-entropy of the "ResNet strikes back" recipes (https://arxiv.org/abs/2110.00476, `bce_loss`,
`bce_target_thresh`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .config import LossOptions


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


def create_loss(options: LossOptions | Mapping, soft_targets: bool = True) -> nn.Module:
    """The training loss `options` ask for (a `LossOptions`, or a mapping with its fields such as a
    recipe's options): binary cross-entropy with `bce_target_thresh`, `bce_sum` and `smoothing` when
    `bce_loss`; else cross-entropy with label smoothing: `SoftTargetCrossEntropy` where the targets may be
    soft (`soft_targets`: the batches are mixed; the mixer folds the smoothing into mixed targets already),
    `LabelSmoothingCrossEntropy` where they are class indices."""
    options = LossOptions.of(options)
    if options.bce_loss:
        return BinaryCrossEntropy(options.smoothing, target_threshold=options.bce_target_thresh,
                                  sum_classes=options.bce_sum)
    if soft_targets:
        return SoftTargetCrossEntropy(options.smoothing)
    return LabelSmoothingCrossEntropy(options.smoothing)
