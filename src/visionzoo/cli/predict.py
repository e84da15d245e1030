"""`visionzoo predict IMAGE ... --model NAME[.TAG] (--pretrained | --checkpoint PATH)`: top-K classes per image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from .main import UserError
from .model_options import add_model_arguments, load_model, resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format Pillow reads)")
    add_model_arguments(parser)
    parser.add_argument("--topk", type=int, default=5, metavar="K", help="how many classes to show (default 5)")
    parser.add_argument("--json", action="store_true",
                        help='a JSON list: {"image": PATH, "topk": [{"index": I, "label": NAME, "prob": P}, ...]}')


def class_names(num_classes: int) -> list[str]:
    """ImageNet-1k names for a 1000-class head; otherwise 'class I'."""
    from ..data.imagenet import NUM_CLASSES, imagenet_class_names

    if num_classes == NUM_CLASSES:
        return list(imagenet_class_names())
    return [f"class {i}" for i in range(num_classes)]


def read_image(path: str):
    """The image at `path` as RGB; UserError naming the file if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"image {path} does not exist") from None
    except Exception as error:  # any decoder failure: name the file and the reason in one line
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"cannot read image {path}: {reason}") from None


@torch.inference_mode()
def predict(model: torch.nn.Module, paths: list[str], topk: int, device: torch.device,
            batch_size: int = 32) -> list[dict]:
    """Top-`topk` classes of each image, preprocessed as the model's weights expect."""
    from ..data import create_transform, resolve_data_config

    transform = create_transform(resolve_data_config(model))
    names = class_names(model.num_classes)
    k = min(topk, model.num_classes)
    predictions = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        batch = torch.stack([transform(read_image(p)) for p in chunk]).to(device)
        probs = model(batch).float().softmax(dim=-1)
        values, indices = probs.topk(k, dim=-1)
        for path, row_values, row_indices in zip(chunk, values.tolist(), indices.tolist(), strict=True):
            predictions.append({"image": path, "topk": [
                {"index": i, "label": names[i], "prob": p} for i, p in zip(row_indices, row_values, strict=True)]})
    return predictions


def run(args: argparse.Namespace) -> int:
    if args.topk < 1:
        raise UserError(f"--topk must be at least 1, got {args.topk}")
    device = resolve_device(args.device)
    missing = [path for path in args.images if not Path(path).is_file()]
    if missing:  # before loading the weights
        raise UserError(f"image {missing[0]} does not exist")
    model = load_model(args).to(device)
    if model.num_classes < 1:
        raise UserError(f"{args.model} has no classifier (num_classes 0): it makes features, not predictions")
    predictions = predict(model, args.images, args.topk, device)
    if args.json:
        print(json.dumps(predictions, indent=2))
        return 0
    for prediction in predictions:
        print(prediction["image"])
        for item in prediction["topk"]:
            print(f"  {100 * item['prob']:6.2f}%  {item['label']} ({item['index']})")
    return 0
