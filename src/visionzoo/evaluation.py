"""Top-1/top-5 evaluation of a model on a loader, on one process or across a `torch.distributed` group.

Each rank keeps one record per sample (index, correct@1, correct@5, loss); the records are gathered and
reduced on every rank. Counts are integers and the loss is summed with `math.fsum` (exactly rounded, so
independent of the order), so the result does not depend on how the samples were spread over ranks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .data.config import DataConfig
from .data.transforms import normalize_batch
from .errors import UserError
from .runtime import LOW_PRECISIONS, precision_dtype


@dataclass
class EvalResult:
    """Counts over the evaluated samples; unreadable images are left out of `count`, listed in
    `failures`."""

    count: int = 0
    correct1: int = 0
    correct5: int = 0
    loss_sum: float = 0.0
    seconds: float = 0.0
    failures: list[tuple[int, str]] = field(default_factory=list)  # (dataset index, error)

    @property
    def top1(self) -> float:
        return 100.0 * self.correct1 / self.count if self.count else float("nan")

    @property
    def top5(self) -> float:
        return 100.0 * self.correct5 / self.count if self.count else float("nan")

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count if self.count else float("nan")

    @property
    def images_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class _Records:
    """Per-sample outcomes on one rank, kept until the ranks' records are merged."""

    indices: list[int] = field(default_factory=list)
    correct1: list[bool] = field(default_factory=list)
    correct5: list[bool] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0


def _topk_correct(logits: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == targets[:, None]).any(dim=1)


@torch.inference_mode()
def evaluate(model: nn.Module, loader, config: DataConfig, device: torch.device, amp: str | None = None,
             channels_last: bool = False, on_batch: Callable[[int, int, int], None] | None = None,
             on_failure: Callable[[int, str], None] | None = None) -> EvalResult:
    """Top-1/top-5 accuracy and cross-entropy of `model` on the `Batch`es of `loader`, merged over all ranks.

    Args:
        config: the data config whose mean/std normalise the uint8 batches (on `device`).
        amp: 'bf16' or 'fp16' autocast for the forward pass; None computes in float32.
        on_batch: called after each batch with (images evaluated, of them correct at top-1, images skipped).
        on_failure: called for each unreadable image with (dataset index, error); may raise to stop.
    """
    if amp is not None and amp not in LOW_PRECISIONS:
        raise UserError(f"amp must be one of {', '.join(LOW_PRECISIONS)}, got {amp!r}")
    amp_dtype = precision_dtype(amp or "fp32")
    model.eval()
    records = _Records()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    start = time.perf_counter()
    for batch in loader:
        for index, error in batch.failures:
            records.failures.append((index, error))
            if on_failure is not None:
                on_failure(index, error)
        if batch.images is None:
            if on_batch is not None:
                on_batch(0, 0, len(batch.failures))
            continue
        images = normalize_batch(batch.images.to(device, non_blocking=True), config)
        images = images.contiguous(memory_format=memory_format)
        targets = batch.targets.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp is not None):
            logits = model(images)
        logits = logits.float()
        top1 = _topk_correct(logits, targets, 1)
        top5 = _topk_correct(logits, targets, 5)
        losses = F.cross_entropy(logits, targets, reduction="none").double()
        records.indices += batch.indices.tolist()
        records.correct1 += top1.tolist()
        records.correct5 += top5.tolist()
        records.losses += losses.tolist()
        if on_batch is not None:
            on_batch(len(targets), int(top1.sum()), len(batch.failures))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    records.seconds = time.perf_counter() - start
    return _merge(_gather(records))


def _gather(records: _Records) -> list[_Records]:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [records]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, records)
    return gathered


def _merge(parts: list[_Records]) -> EvalResult:
    seen: set[int] = set()
    result = EvalResult()
    losses = []
    for part in parts:
        overlap = seen.intersection(part.indices)
        if overlap:
            raise RuntimeError(f"samples {sorted(overlap)[:5]} were evaluated on more than one rank")
        seen.update(part.indices)
        result.count += len(part.indices)
        result.correct1 += sum(part.correct1)
        result.correct5 += sum(part.correct5)
        losses += part.losses
        result.failures += part.failures
    result.loss_sum = math.fsum(losses)
    result.failures.sort()
    # Images per second of the whole group: every rank ran at the same time, the slowest one set the pace.
    result.seconds = max(part.seconds for part in parts)
    return result
