"""Mixup and CutMix on a batch, as the recipes set them (`MixupOptions`: `mixup`, `cutmix`, `mixup_prob`,
`mixup_switch_prob`, `mixup_off_epoch`), with the label smoothing of the loss folded into the soft targets.

Built on torchvision.transforms.v2 `MixUp` and `CutMix`, which draw lambda from Beta(alpha, alpha), mix each
sample with its neighbour in the batch, and (CutMix) correct lambda to the pasted box's true area, as the
recipes' batch mode does. What torchvision leaves out is composed here: the probability of mixing a batch at
all, the switch between the two, label smoothing, and switching mixing off from an epoch on. Smoothing is
folded into the soft targets after mixing: mixing is linear in the targets, so smoothing the mixed one-hot
targets equals mixing the smoothed ones. One difference from the reference: it pairs sample i with i-1
(a roll), the reference with B-1-i (a flip); both pair every sample with one other, so the statistics agree.
"""

from __future__ import annotations

import torch

from .train_options import MixupOptions


def smooth_one_hot(targets: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Class indices (B,) or soft targets (B, K) -> soft targets with `smoothing` spread over all classes."""
    if targets.dim() == 1:
        targets = torch.nn.functional.one_hot(targets, num_classes).float()
    return targets * (1.0 - smoothing) + smoothing / num_classes


class BatchMixer:
    """`(images, targets) -> (images, soft_targets)` for a (B, C, H, W) float batch and (B,) class indices.

    `smoothing` (the loss's label smoothing) is folded into the soft targets. `set_epoch(epoch)` switches
    mixing off from `mixup_off_epoch` on; the targets are then the smoothed one-hot targets. Randomness comes
    from torch's generator.
    """

    def __init__(self, options: MixupOptions, num_classes: int, smoothing: float = 0.0):
        from torchvision.transforms import v2

        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.options = options
        self.num_classes = num_classes
        self.smoothing = smoothing
        self.enabled = options.active
        self._mixup = v2.MixUp(alpha=options.mixup, num_classes=num_classes) if options.mixup > 0 else None
        self._cutmix = (v2.CutMix(alpha=options.cutmix, num_classes=num_classes) if options.cutmix > 0
                        else None)

    def set_epoch(self, epoch: int) -> None:
        """Mixing stays on before `mixup_off_epoch` (when it is set)."""
        off = self.options.mixup_off_epoch
        self.enabled = self.options.active and not (off and epoch >= off)

    def _choose(self):
        if self._mixup is None or self._cutmix is None:
            return self._mixup or self._cutmix
        return self._cutmix if float(torch.rand(())) < self.options.mixup_switch_prob else self._mixup

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[0] != targets.shape[0]:
            raise ValueError(f"batch of {images.shape[0]} images has {targets.shape[0]} targets")
        mixed = False
        if self.enabled and float(torch.rand(())) < self.options.mixup_prob:
            images, targets = self._choose()(images, targets)
            mixed = True
        if not mixed or self.smoothing:
            targets = smooth_one_hot(targets, self.num_classes, self.smoothing)
        return images, targets

    def __repr__(self) -> str:
        return f"BatchMixer({self.options}, num_classes={self.num_classes}, smoothing={self.smoothing})"
