"""A model whose every prediction the test decides: each test image is one flat colour that encodes its
number, and the model answers the logits the test gave for that number.

    images = [write_coded_image(folder / "n01498041" / "a.png", 0), ...]
    with oracle(monkeypatch, {0: logits_for_image_0, ...}):
        validate("test_vit.r160_in1k", folder, checkpoint_path=..., eval_set=...)

`validate` still builds the tag's real architecture (its config, size rules, preprocessing); only the forward
pass is replaced, so layout, label rules, metrics and result files are the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

import visionzoo.validation

STEP = 40  # colour levels 0, 40, ..., 240: JPEG and resampling move a flat colour by far less than STEP / 2
LEVELS = 256 // STEP + 1


def code_colour(number: int) -> tuple[int, int, int]:
    if not 0 <= number < LEVELS ** 3:
        raise ValueError(f"image number {number} does not fit in a colour code")
    return (STEP * (number // LEVELS ** 2), STEP * (number // LEVELS % LEVELS), STEP * (number % LEVELS))


def write_coded_image(path: Path, number: int, size: tuple[int, int] = (40, 30),
                      fmt: str | None = None) -> Path:
    """A flat image of the colour of `number` at `path` (format from the suffix unless `fmt`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size[1], size[0], 3), code_colour(number), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


class Oracle(torch.nn.Module):
    """Answers `logits[number]` for an image of `number`'s colour, zeros for any other input."""

    def __init__(self, logits: dict[int, torch.Tensor], num_classes: int, mean, std):
        super().__init__()
        self.logits, self.num_classes = logits, num_classes
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = (images * self.std + self.mean).mean(dim=(2, 3)) * 255  # undo the normalisation
        levels = torch.round(pixels / STEP).long().tolist()
        out = torch.zeros(len(images), self.num_classes)
        for row, (r, g, b) in enumerate(levels):
            number = (r * LEVELS + g) * LEVELS + b
            if number in self.logits:
                out[row] = self.logits[number]
        return out


def install(monkeypatch, logits: dict[int, torch.Tensor]) -> None:
    """Make `validate` build the oracle (with the real model's config and attributes) instead of reading
    weights."""
    real_create = visionzoo.validation.create_model

    def create(name, pretrained=False, checkpoint_path=None, img_size=None, **kwargs):
        model = real_create(name, img_size=img_size, **kwargs)
        if next(model.parameters()).is_meta:
            return model  # the blueprint: structure and config only
        cfg = model.pretrained_cfg
        oracle = Oracle(logits, model.num_classes, cfg.mean, cfg.std)
        model.forward = oracle.forward
        return model

    monkeypatch.setattr(visionzoo.validation, "create_model", create)
