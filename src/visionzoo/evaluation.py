"""Top-1/top-5, NLL, calibration and per-class accuracy of a model on a loader, on one process or across a
`torch.distributed` group.

Each rank keeps one record per sample (index, label, correct@1, correct@5, NLL, confidence); the records are
gathered and reduced on every rank. Counts are integers and float sums use `math.fsum` (exactly rounded, so
independent of the order), so the result does not depend on how the samples were spread over ranks.

A `LabelRule` says how a sample's logits are scored: against its one label (ImageNet), against a set of
accepted labels (ImageNet-ReaL), and over all of the model's classes or only some (ImageNet-A/-R).
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

CALIBRATION_BINS = 15  # equal-width confidence bins of the expected calibration error (Guo et al. 2017)


@dataclass(frozen=True)
class LabelRule:
    """How the logits of a sample are scored.

    class_subset: the model classes (ascending) that the softmax, the loss and the top-k see; None: all.
    label_sets: by dataset index, the classes that count as a hit (multi-label, e.g. ReaL); None: the
        sample's own label. The NLL of a label set is -log of the probability the model gives to the set.
    """

    class_subset: tuple[int, ...] | None = None
    label_sets: tuple[tuple[int, ...], ...] | None = None


@dataclass(frozen=True)
class CalibrationBin:
    """One confidence bin: (lower, upper], its samples, and their summed top-1 confidence and hits."""

    lower: float
    upper: float
    count: int
    correct: int
    confidence_sum: float

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.count if self.count else float("nan")

    @property
    def confidence(self) -> float:
        return 100.0 * self.confidence_sum / self.count if self.count else float("nan")


@dataclass(frozen=True)
class ClassCount:
    """Samples of one labelled class (the model's class index) and how many were hit at top-1/top-5."""

    label: int
    count: int
    correct1: int
    correct5: int


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
    bins: tuple[CalibrationBin, ...] = ()
    per_class: tuple[ClassCount, ...] = ()  # by label; samples of an unknown label (< 0) left out

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
    def ece(self) -> float:
        """Expected calibration error (%): the bins' |accuracy - confidence| weighted by their share of
        samples."""
        if not self.count:
            return float("nan")
        gaps = math.fsum(abs(b.correct - b.confidence_sum) for b in self.bins)
        return 100.0 * gaps / self.count

    @property
    def images_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class _Records:
    """Per-sample outcomes on one rank, kept until the ranks' records are merged."""

    indices: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    correct1: list[bool] = field(default_factory=list)
    correct5: list[bool] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Scores:
    correct1: torch.Tensor
    correct5: torch.Tensor
    nll: torch.Tensor  # float64
    confidence: torch.Tensor  # float64: the softmax probability of the top-1 class


def score(logits: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, rule: LabelRule) -> _Scores:
    """Top-1/top-5 hits, NLL and top-1 confidence of a batch of float32 logits under `rule`."""
    accepted = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
    if rule.label_sets is None:
        accepted[torch.arange(len(targets), device=logits.device), targets] = True
    else:  # one indexed assignment for the batch, not one per sample (a kernel launch each on a GPU)
        rows, labels = [], []
        for row, index in enumerate(indices.tolist()):
            rows += [row] * len(rule.label_sets[index])
            labels += rule.label_sets[index]
        accepted[torch.tensor(rows, device=logits.device), torch.tensor(labels, device=logits.device)] = True
    if rule.class_subset is not None:
        kept = torch.tensor(rule.class_subset, device=logits.device)
        logits, accepted = logits[:, kept], accepted[:, kept]
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    hits = accepted.gather(1, top)
    log_probs = F.log_softmax(logits, dim=1)
    # -log P(label set); for one label exactly the cross-entropy (a logsumexp of one finite term is that term)
    nll = -log_probs.masked_fill(~accepted, float("-inf")).logsumexp(dim=1)
    return _Scores(hits[:, 0], hits.any(dim=1), nll.double(), log_probs.max(dim=1).values.double().exp())


@torch.inference_mode()
def evaluate(model: nn.Module, loader, config: DataConfig, device: torch.device, amp: str | None = None,
             channels_last: bool = False, on_batch: Callable[[int, int, int], None] | None = None,
             on_failure: Callable[[int, str], None] | None = None,
             rule: LabelRule = LabelRule()) -> EvalResult:
    """Top-1/top-5 accuracy, NLL, calibration and per-class counts of `model` on the `Batch`es of `loader`,
    merged over all ranks.

    Args:
        rule: how logits are scored against the labels (default: the sample's one label, all classes).
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
        scores = score(logits.float(), targets, batch.indices, rule)
        records.indices += batch.indices.tolist()
        records.labels += batch.targets.tolist()
        records.correct1 += scores.correct1.tolist()
        records.correct5 += scores.correct5.tolist()
        records.losses += scores.nll.tolist()
        records.confidences += scores.confidence.tolist()
        if on_batch is not None:
            on_batch(len(targets), int(scores.correct1.sum()), len(batch.failures))
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


def calibration_bin(confidence: float) -> int:
    """The bin (0..CALIBRATION_BINS - 1) of a confidence in [0, 1]: bin b holds (b/B, (b+1)/B], bin 0
    also 0."""
    return min(CALIBRATION_BINS - 1, max(0, math.ceil(confidence * CALIBRATION_BINS) - 1))


def _calibration(confidences: list[float], correct: list[bool]) -> tuple[CalibrationBin, ...]:
    members: list[list[int]] = [[] for _ in range(CALIBRATION_BINS)]
    for sample, confidence in enumerate(confidences):
        members[calibration_bin(confidence)].append(sample)
    return tuple(CalibrationBin(b / CALIBRATION_BINS, (b + 1) / CALIBRATION_BINS, len(samples),
                                sum(correct[s] for s in samples), math.fsum(confidences[s] for s in samples))
                 for b, samples in enumerate(members))


def _per_class(labels: list[int], correct1: list[bool], correct5: list[bool]) -> tuple[ClassCount, ...]:
    counts: dict[int, list[int]] = {}
    for label, hit1, hit5 in zip(labels, correct1, correct5, strict=True):
        if label >= 0:
            entry = counts.setdefault(label, [0, 0, 0])
            entry[0] += 1
            entry[1] += hit1
            entry[2] += hit5
    return tuple(ClassCount(label, *counts[label]) for label in sorted(counts))


def _merge(parts: list[_Records]) -> EvalResult:
    seen: set[int] = set()
    result = EvalResult()
    merged = _Records()
    for part in parts:
        overlap = seen.intersection(part.indices)
        if overlap:
            raise RuntimeError(f"samples {sorted(overlap)[:5]} were evaluated on more than one rank")
        seen.update(part.indices)
        for name in ("labels", "correct1", "correct5", "losses", "confidences"):
            getattr(merged, name).extend(getattr(part, name))
        result.failures += part.failures
    result.count = len(merged.correct1)
    result.correct1 = sum(merged.correct1)
    result.correct5 = sum(merged.correct5)
    result.loss_sum = math.fsum(merged.losses)
    result.bins = _calibration(merged.confidences, merged.correct1)
    result.per_class = _per_class(merged.labels, merged.correct1, merged.correct5)
    result.failures.sort()
    # Images per second of the whole group: every rank ran at the same time, the slowest one set the pace.
    result.seconds = max(part.seconds for part in parts)
    return result
