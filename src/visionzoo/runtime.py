"""Where and in what precision a model runs: device and precision names, parsed once for library and CLI,
and this process's place in a torchrun launch.

torch is imported inside the functions, not at the top: the command line reads `PRECISIONS` and `DEVICES`
to build its argument parser, which must start without loading torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a `torchrun` launch (world_size 1 when launched alone).

    The global `rank` decides what the process reads and whether it writes (rank 0, the one writer of a run
    folder on a shared filesystem); `local_rank` decides its device, and `local_world_size` (the processes
    on this node) how the node's CPUs are shared.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistributedContext:
    """Join the process group that `torchrun` set up in the environment (gloo on CPU, NCCL on CUDA), on one
    node or several (`--nnodes N --rdzv-backend c10d --rdzv-endpoint HOST:PORT`)."""
    import torch
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    context = DistributedContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")),
                                 int(os.environ.get("LOCAL_WORLD_SIZE", world_size)))
    if device_type == "cuda":
        torch.cuda.set_device(context.local_rank)
    if not dist.is_initialized():
        # torchrun keeps its store across the restarts of a group (--max-restarts), and the workers' keys
        # are not told apart by attempt: a restarted rank would read the address of a peer that died with
        # the last attempt. Each attempt gets its own keys.
        store, _, _ = next(dist.rendezvous("env://", rank=context.rank, world_size=world_size))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo",
                                store=dist.PrefixStore(f"visionzoo/attempt-{attempt}", store),
                                rank=context.rank, world_size=world_size)
    return context


def close_distributed() -> None:
    """Leave the process group, if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # All ranks leave together: a rank that tears down gloo while its peer is still sending can abort
        # ("terminate called without an active exception") after the work is done.
        dist.barrier()
        dist.destroy_process_group()
