"""Multiply-accumulate counts of models, from the operators they run (`torch.utils.flop_counter`).

No hand-written per-layer formulas: the forward pass is run under `FlopCounterMode` on the meta device (no
memory, no arithmetic), so a large model is counted in about a second. MACs = FLOPs / 2.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from .factory import create_model


def count_macs(model: nn.Module, img_size: int, batch_size: int = 1, in_chans: int = 3) -> int:
    """MACs of one forward pass of `model` on a batch of `img_size` x `img_size` images (on the model's
    device).

    The model's `requires_grad` flags are cleared for the count and restored afterwards.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    flags = [p.requires_grad for p in model.parameters()]
    # FlopCounterMode tracks modules with backward hooks on inputs that require grad; a view of a parameter
    # (e.g. the expanded latent query of attention pooling) then needs a grad_fn it does not have under
    # no_grad. With no parameter requiring grad, no hook is registered and no autograd graph is built.
    model.requires_grad_(False)
    try:
        x = torch.zeros(batch_size, in_chans, img_size, img_size, device=device)
        # The fused CPU attention kernel has no FLOP formula (it would count as zero); the math backend runs
        # the same products as matmuls, which are counted, on every device.
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            model(x)
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return counter.get_total_flops() // 2


@cache
def model_macs(name: str, img_size: int) -> int:
    """MACs of `name` ('arch' or 'arch.tag', with that tag's head) on one `img_size` x `img_size` image."""
    try:
        with torch.device("meta"):
            model = create_model(name, img_size=img_size).eval()
        return count_macs(model, img_size)
    except (NotImplementedError, RuntimeError):
        # An operator without a meta kernel: count on real (random) tensors instead, slower but exact.
        return count_macs(create_model(name, img_size=img_size).eval(), img_size)
