"""Test probes of the training loop, off unless their environment variable is set (the elastic-resume tests
set them in the processes they launch; nothing else does):

- `VISIONZOO_TEST_SAMPLE_LOG=FOLDER`: each rank appends a line `epoch step index...` per micro-batch it
  trains on to `FOLDER/rank-R.txt` (step: the updates made before it), so a test can check which samples an
  interrupted and resumed epoch saw.
- `VISIONZOO_TEST_FAULT=RANK:STEP:MARKER`: rank RANK kills itself (SIGKILL) right after update STEP and its
  checkpoint, if the file MARKER does not exist yet; it creates MARKER first, so a restarted group runs on.
"""

from __future__ import annotations

import os
import signal
from functools import cache
from pathlib import Path

import torch

SAMPLE_LOG = "VISIONZOO_TEST_SAMPLE_LOG"
FAULT = "VISIONZOO_TEST_FAULT"


@cache
def _sample_log() -> str | None:
    return os.environ.get(SAMPLE_LOG)


def record_batch(rank: int, epoch: int, step: int, indices: torch.Tensor) -> None:
    """Log the dataset indices of a micro-batch (with `VISIONZOO_TEST_SAMPLE_LOG`)."""
    folder = _sample_log()
    if folder is None:
        return
    with open(Path(folder) / f"rank-{rank}.txt", "a") as log:
        log.write(" ".join(map(str, [epoch, step, *indices.tolist()])) + "\n")


def fault_point(rank: int, step: int) -> None:
    """Kill this process once at the update `VISIONZOO_TEST_FAULT` names (see the module docstring)."""
    spec = os.environ.get(FAULT)
    if spec is None:
        return
    fault_rank, fault_step, marker = spec.split(":", 2)
    if (rank, step) != (int(fault_rank), int(fault_step)) or os.path.exists(marker):
        return
    Path(marker).touch()
    os.kill(os.getpid(), signal.SIGKILL)
