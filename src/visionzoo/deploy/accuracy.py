"""Accuracy of a deployed model next to its eager model on the same labelled images, and their agreement.

Both run on the same loader in the same order, so the top-1 agreement (the share of images whose prediction
is unchanged) is counted image by image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..data.config import DataConfig
from ..data.datasets import create_dataset
from ..data.label_spaces import model_label_ids
from ..data.labels import ModelClasses
from ..data.loader import create_loader, subset_indices
from ..data.transforms import create_transform
from ..errors import DataError
from ..evaluation import EvalResult, evaluate

Run = Callable[[torch.Tensor], torch.Tensor]


class PredictionRecorder:
    """Wraps a model or an artifact's callable for `evaluate`: returns its float32 logits on the CPU and
    keeps each batch's top-1."""

    def __init__(self, run: Run):
        self.run = run
        self.top1: list[torch.Tensor] = []

    def eval(self) -> PredictionRecorder:
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.as_tensor(self.run(x)).float().cpu()
        self.top1.append(logits.argmax(-1))
        return logits

    def predictions(self) -> torch.Tensor:
        return torch.cat(self.top1) if self.top1 else torch.zeros(0, dtype=torch.long)


def fit_batch(run: Run, batch_size: int | None) -> Run:
    """`run` for any batch size: for an artifact of fixed batch `batch_size`, each batch is cut or padded."""
    if batch_size is None:
        return run

    def run_fixed(x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for start in range(0, x.shape[0], batch_size):
            part = x[start:start + batch_size]
            count = part.shape[0]
            if count < batch_size:  # pad by repeating: the extra rows are dropped
                part = part[torch.arange(batch_size) % count]
            outputs.append(torch.as_tensor(run(part))[:count])
        return torch.cat(outputs)

    return run_fixed


def model_classes(model: torch.nn.Module) -> ModelClasses:
    """The classes a labelled set's labels are matched against for `model`: its own ids (a fine-tune's
    class names, its tag's synsets) where they travel with it, else by its class count."""
    cfg = getattr(model, "pretrained_cfg", None)
    ids = model_label_ids(cfg) if cfg is not None else None
    if ids is not None and len(ids) == model.num_classes:
        return ModelClasses(model.num_classes, ids)
    return ModelClasses.default(model.num_classes)


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """% of equal entries of two prediction vectors."""
    if a.shape != b.shape:
        raise ValueError(f"prediction counts differ: {a.shape[0]} and {b.shape[0]}")
    return 100.0 * float((a == b).double().mean()) if a.numel() else float("nan")


@dataclass(frozen=True)
class PairedResult:
    """The reference's and the candidate's results on the same images, and their top-1 agreement (%)."""

    reference: EvalResult
    candidate: EvalResult
    agreement: float


def evaluate_artifact(run: Run, data: str | os.PathLike, config: DataConfig, classes: ModelClasses,
                      batch_size: int = 32, limit: int | None = None, labels_file: str | None = None,
                      workers: int = 0) -> tuple[EvalResult, torch.Tensor]:
    """Top-1/top-5/loss of `run` (preprocessed batch -> logits) on the labelled set, and its predictions."""
    dataset = create_dataset(data, labels_file=labels_file, classes=classes)
    indices = subset_indices(len(dataset), limit)
    loader = create_loader(dataset.with_transform(create_transform(config, normalize=False)), batch_size,
                           workers, indices, 0, 1)
    recorder = PredictionRecorder(run)
    result = evaluate(recorder, loader, config, torch.device("cpu"))
    if result.count == 0:
        raise DataError(f"no image in {data} could be read")
    return result, recorder.predictions()


def evaluate_pair(reference: Run, candidate: Run, data: str | os.PathLike, config: DataConfig,
                  classes: ModelClasses, batch_size: int = 32, limit: int | None = None,
                  labels_file: str | None = None) -> PairedResult:
    """Both models on the same images (same order): their results and their top-1 agreement."""
    args = (data, config, classes, batch_size, limit, labels_file)
    first, first_top1 = evaluate_artifact(reference, *args)
    second, second_top1 = evaluate_artifact(candidate, *args)
    return PairedResult(first, second, agreement(first_top1, second_top1))
