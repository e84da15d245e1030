"""Exponential moving average of a model's weights, evaluated beside the model."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """A copy of the model whose floating-point tensors follow the trained ones:
    `ema = decay * ema + (1 - decay) * model` after every update; integer buffers are copied.

    With `warmup`, the decay at update `step` is `min(decay, 1 - (1 + step / gamma) ** -power)`, so early
    averages are not dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False, gamma: float = 1.0,
                 power: float = 2 / 3):
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay, self.warmup, self.gamma, self.power = decay, warmup, gamma, power

    def decay_at(self, step: int) -> float:
        """The decay used for the update made after optimiser step `step` (counting from 1)."""
        if not self.warmup:
            return self.decay
        return min(self.decay, max(0.0, 1 - (1 + step / self.gamma) ** -self.power))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = 1 - self.decay_at(step)
        ours = list(self.module.state_dict().values())
        theirs = list(model.state_dict().values())
        floats = [(a, b) for a, b in zip(ours, theirs, strict=True) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], weight)
        for a, b in zip(ours, theirs, strict=True):
            if not a.is_floating_point():
                a.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
