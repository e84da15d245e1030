"""Linear layers computed by oneDNN on the CPU, where this CPU runs them faster than torch's default BLAS.

torch runs `F.linear` on the CPU through its BLAS (MKL in the official wheels). oneDNN, also inside every
x86 torch build, generates its matrix kernels for the CPU it finds. How far apart they are depends on the
CPU: on one AMD EPYC with AVX-512 (2 threads) MKL reached 215 GFLOP/s and oneDNN 450 on a ViT MLP's
products (`benchmarks/profile_bound.py` prints both rates). So the choice is measured, once per process and
thread count, not assumed from the vendor: `onednn_linear_is_faster`.
"""

from __future__ import annotations

import functools
import time

import torch
import torch.nn.functional as F
from torch import nn

# a transformer MLP's product (ViT-S/16 at 224: 197 tokens x 2 images, 384 -> 1536)
_PROBE_SHAPE = (394, 384, 1536)
# oneDNN must win by this much to be chosen: within it, timing noise would decide
_MIN_GAIN = 1.1


def onednn_linear_available() -> bool:
    """True where this torch build has oneDNN's linear operator (x86 and Arm builds do)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def _best_seconds(step, runs: int = 5) -> float:
    step()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


@functools.cache
def _measured_faster(threads: int) -> bool:
    rows, inputs, outputs = _PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, inputs, generator=generator)
    weight = torch.randn(outputs, inputs, generator=generator)
    bias = torch.randn(outputs, generator=generator)
    with torch.no_grad():
        blas = _best_seconds(lambda: F.linear(x, weight, bias))
        onednn = _best_seconds(lambda: _onednn_linear(x, weight, bias))
    return blas > _MIN_GAIN * onednn


def onednn_linear_is_faster() -> bool:
    """Whether oneDNN computes a float32 linear layer at least 10% faster than `F.linear` here.

    Measured once per process and thread count (a few milliseconds) on a transformer-sized product.
    """
    return onednn_linear_available() and _measured_faster(torch.get_num_threads())


class OneDnnLinear(nn.Linear):
    """An `nn.Linear` whose product oneDNN computes (same parameters and state-dict keys); inference only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _onednn_linear(x, self.weight, self.bias)


def use_onednn_linear(model: nn.Module) -> nn.Module:
    """Make every float32 CPU `nn.Linear` of `model` a `OneDnnLinear`, in place; returns the model.

    Only plain `nn.Linear` modules change (their class, nothing else); call it after folding, since the
    folds look for `nn.Linear`.
    """
    if not onednn_linear_available():
        raise RuntimeError("this torch build has no oneDNN linear operator")
    for module in model.modules():
        if (type(module) is nn.Linear and module.weight.device.type == "cpu"
                and module.weight.dtype == torch.float32):
            module.__class__ = OneDnnLinear
    return model
