"""Where and in what precision a model runs: device and precision names, parsed once for library and CLI.

torch is imported inside the functions, not at the top: the command line reads `PRECISIONS` and `DEVICES`
to build its argument parser, which must start without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    import torch

# precision name -> torch dtype name. fp32 is full precision; bf16/fp16 are either a cast (benchmark
# inference) or autocast over fp32 weights (evaluation, training steps).
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
LOW_PRECISIONS = ("bf16", "fp16")
DEVICES = ("cpu", "cuda")


def precision_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a precision name ('fp32', 'bf16', 'fp16'); UserError for another name."""
    import torch

    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return getattr(torch, PRECISIONS[precision])


def resolve_device(name: str | None = None, local_rank: int = 0) -> torch.device:
    """The device to run on: 'cpu', 'cuda' or 'cuda:N'; None means cuda if there is one, else cpu.

    A bare 'cuda' means this process's GPU (`local_rank` under torchrun). Raises UserError for an unknown
    name, or cuda on a machine without it.
    """
    import torch

    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use cpu or cuda[:N]") from None
    if device.type not in DEVICES:
        raise UserError(f"device {name!r}: only cpu and cuda are supported")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} was asked for, but torch sees no CUDA device; use cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device
