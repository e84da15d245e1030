"""`optimize_for_inference`: an inference-only model that computes what the eager model computes, faster.

The steps, each usable alone: `fold_batch_norms` and `fold_layer_scales` (fold.py), `fix_input_size` (the
model's own hook), `use_onednn_linear` (linear.py), `to_channels_last`, `compile_frozen` and
`inference_dtype`. The result is checked against the eager model on real photos and random batches every time
it is made (verify.py).
"""

from __future__ import annotations

import copy
import types
import warnings

import torch
from torch import nn

from ..models.base import ClassifierModel, size_pair
from .fold import fold_batch_norms, fold_layer_scales
from .hardware import native_bf16
from .linear import onednn_linear_is_faster, use_onednn_linear
from .verify import FP32_RTOL, REDUCED_PRECISION_RTOL, compare, verification_inputs

_REDUCED = (torch.bfloat16, torch.float16)


def input_channels(model: nn.Module) -> int:
    """The channels `model` reads: a visionzoo model says; any other module is taken to read RGB."""
    return model.in_chans if isinstance(model, ClassifierModel) else 3


def prefers_channels_last(model: nn.Module) -> bool:
    """True for conv nets: more than one spatial convolution (a ViT's patch embedding does not count)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    return len(convs) > 1


def fix_input_size(model: nn.Module, img_size: int | tuple[int, int]) -> nn.Module:
    """Compute once, in place, what `model` would recompute on every call at `img_size`; returns the model.

    Each family says what that is (`ClassifierModel.fix_input_size`: a dynamic ViT's resampled position
    embedding, Hiera's abswin embedding); other modules are returned unchanged.
    """
    if isinstance(model, ClassifierModel):
        model.fix_input_size(img_size)
    return model


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store the model's 4-d weights channels-last (NHWC), in place: oneDNN's fast layout for convolutions."""
    return model.to(memory_format=torch.channels_last)


def compile_frozen(model: nn.Module) -> nn.Module:
    """`torch.compile` with freezing: the weights become constants that Inductor folds and prepacks.

    Compilation happens on the first call; the result must then run under `torch.no_grad()`.
    """
    _own_forward_code(model)
    return torch.compile(model, options={"freezing": True})


def _own_forward_code(model: nn.Module) -> None:
    """Give `model` a forward whose code object is its own, in place.

    Dynamo keeps compiled graphs per code object, and every visionzoo family runs `ClassifierModel.forward`:
    the ninth model compiled in one process would pass torch._dynamo's recompile limit (8) and run eager
    without compiling (a warning in the log, the speed of eager). Same code, a fresh object: its own cache.
    """
    forward = type(model).forward
    own = types.FunctionType(forward.__code__.replace(), forward.__globals__, forward.__name__,
                             forward.__defaults__, forward.__closure__)
    model.forward = types.MethodType(own, model)


def inference_dtype(dtype: torch.dtype, device: torch.device | str = "cpu") -> torch.dtype:
    """`dtype` if the device computes in it natively, else float32 with a one-line warning.

    CUDA does fp16 and bf16; a CPU does bf16 natively only with AVX-512-BF16/AMX or Arm BF16 (see
    hardware.py), and fp16 not usefully at all.
    """
    if dtype not in _REDUCED or torch.device(device).type == "cuda":
        return dtype
    if dtype == torch.bfloat16 and native_bf16():
        return dtype
    name = str(dtype).removeprefix("torch.")
    warnings.warn(f"this CPU has no native {name} arithmetic (emulation is slower than float32): "
                  "using float32", stacklevel=2)
    return torch.float32


class OptimizedModel(nn.Module):
    """An inference-only wrapper: takes float32 NCHW images of one size, returns float32 logits.

    It converts the input to the model's dtype and memory format and runs without autograd.
    """

    def __init__(self, model: nn.Module, img_size: tuple[int, int], dtype: torch.dtype,
                 memory_format: torch.memory_format):
        super().__init__()
        self.model = model
        self.img_size = img_size
        self.dtype = dtype
        self.memory_format = memory_format
        self.pretrained_cfg = getattr(model, "pretrained_cfg", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"input of {x.shape[-2]}x{x.shape[-1]} pixels; this model was optimised for "
                             f"{self.img_size[0]}x{self.img_size[1]}")
        with torch.no_grad():
            out = self.model(x.to(dtype=self.dtype, memory_format=self.memory_format))
        return out.float()


def optimize_for_inference(model: nn.Module, img_size: int | tuple[int, int] | None = None,
                           dtype: torch.dtype = torch.float32, compile: bool = False,
                           channels_last: bool | None = None, fold: bool = True,
                           onednn_linear: bool | None = None, verify: bool = True) -> OptimizedModel:
    """An optimised, inference-only copy of `model` for inputs of `img_size` (default: its weights' size).

    Args:
        dtype: float32, or bfloat16/float16 where the hardware computes in it natively (else float32, warned).
        compile: also `torch.compile` with freezing (compiles on the first call, here during verification).
        channels_last: NHWC weights and inputs; None: for conv nets only (see `prefers_channels_last`).
        fold: fold BatchNorms and layer scales into the conv or linear layer feeding them.
        onednn_linear: compute float32 linear layers on the CPU with oneDNN (`use_onednn_linear`); None:
            where this CPU runs them faster that way (measured once per process) and `compile` is off
            (Inductor picks its own kernels).
        verify: compare with `model` on real photos and random batches; raise VerificationError beyond
            the tolerance (1e-4 of the logit scale in float32) or on a top-1 change.

    `model` itself is not changed. The result runs on the device `model` is on.
    """
    img_size = model.default_img_size if img_size is None else size_pair(img_size)
    device = next(model.parameters()).device
    dtype = inference_dtype(dtype, device)
    eager = model.eval()
    optimized = copy.deepcopy(eager)
    fix_input_size(optimized, img_size)
    in_chans = input_channels(model)
    if fold:
        example = torch.zeros(1, in_chans, *img_size, device=device)
        fold_batch_norms(optimized, example)
        fold_layer_scales(optimized, example)
    if onednn_linear is None:
        onednn_linear = (not compile and device.type == "cpu" and dtype == torch.float32
                         and onednn_linear_is_faster())
    if onednn_linear:
        use_onednn_linear(optimized)
    if channels_last is None:
        channels_last = prefers_channels_last(optimized)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        to_channels_last(optimized)
    optimized = optimized.to(dtype)
    for parameter in optimized.parameters():
        parameter.requires_grad_(False)
    runner = compile_frozen(optimized) if compile else optimized
    result = OptimizedModel(runner, img_size, dtype, memory_format)
    if verify:
        inputs = {k: v.to(device) for k, v in verification_inputs(model, img_size, in_chans).items()}
        rtol = FP32_RTOL if dtype == torch.float32 else REDUCED_PRECISION_RTOL
        with torch.no_grad():
            compare(eager, result, inputs, rtol).check("the optimised model")
    return result
