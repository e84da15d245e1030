"""`predict`: the top-K classes a model sees in image files, preprocessed as its weights expect, named as
its weights name them (a model folder's label names, or the tag's label space)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from .data.config import DataConfig, resolve_data_config
from .data.label_spaces import model_label_names
from .data.transforms import create_transform, to_rgb
from .errors import UserError


def class_names(model: nn.Module) -> list[str]:
    """The names of the model's classes, in index order: those that travel with its weights (its folder's
    label names, or its tag's label space), else 'class I'."""
    cfg = model.pretrained_cfg
    names = model_label_names(cfg) if cfg is not None else None
    if names is not None and len(names) == model.num_classes:
        return list(names)
    return [f"class {i}" for i in range(model.num_classes)]


def check_images(paths: Sequence[str]) -> None:
    """Raise UserError for the first path that is not a file."""
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise UserError(f"image {missing[0]} does not exist")


def read_image(path: str):
    """The image at `path` as RGB; UserError naming the file if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except FileNotFoundError:
        raise UserError(f"image {path} does not exist") from None
    except Exception as error:  # any decoder failure: name the file and the reason in one line
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"cannot read image {path}: {reason}") from None


@torch.inference_mode()
def predict(model: nn.Module, paths: Sequence[str], topk: int = 5, device: torch.device | None = None,
            batch_size: int = 32) -> list[dict]:
    """Top-`topk` classes of each image: `[{"image": path, "topk": [{"index", "label", "prob"}, ...]}]`.

    Raises UserError for an unreadable image, a `topk` below 1, or a model without a classifier.
    """
    if model.num_classes < 1:
        raise UserError("the model has no classifier (num_classes 0): it makes features, not predictions")
    return predict_with(model, resolve_data_config(model), class_names(model), paths, topk, device,
                        batch_size)


@torch.inference_mode()
def predict_with(model: Callable[[torch.Tensor], torch.Tensor], config: DataConfig, names: Sequence[str],
                 paths: Sequence[str], topk: int = 5, device: torch.device | None = None,
                 batch_size: int = 32) -> list[dict]:
    """`predict` for any callable from a preprocessed batch to logits (an exported model's runner), with
    its preprocessing `config` and class `names`."""
    if topk < 1:
        raise UserError(f"topk must be at least 1, got {topk}")
    device = device or torch.device("cpu")
    transform = create_transform(config)
    k = min(topk, len(names))
    predictions = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        batch = torch.stack([transform(read_image(p)) for p in chunk]).to(device)
        probs = model(batch).float().softmax(dim=-1)
        values, indices = probs.topk(k, dim=-1)
        for path, row_values, row_indices in zip(chunk, values.tolist(), indices.tolist(), strict=True):
            top = [{"index": i, "label": names[i], "prob": p}
                   for i, p in zip(row_indices, row_values, strict=True)]
            predictions.append({"image": path, "topk": top})
    return predictions
