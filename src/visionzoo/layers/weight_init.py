"""Weight initialisation shared by the families that train from scratch the ViT way."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def init_trunc_normal(model: nn.Module, std: float = 0.02,
                      layers: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)) -> None:
    """Truncated-normal weights and zero biases for every module of `model` of the types `layers`.

    Every other leaf module with a `reset_parameters` (norms, layer scales) goes back to its own default, so
    that the call re-initialises the whole model. Parameters held outside leaf modules (position embeddings,
    tokens, bare scales) are left to the caller.
    """
    for module in model.modules():
        if isinstance(module, layers):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif hasattr(module, "reset_parameters") and next(module.children(), None) is None:
            module.reset_parameters()
