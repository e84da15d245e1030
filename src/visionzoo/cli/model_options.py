"""Options shared by the commands that run a model: which model, which weights, which device."""

from __future__ import annotations

import argparse

import torch
from torch import nn


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model NAME[.TAG] (--pretrained | --checkpoint PATH) [--device cpu|cuda]."""
    parser.add_argument("--model", required=True, metavar="NAME[.TAG]",
                        help="architecture, optionally with its pretrained tag (a bare name means its default tag)")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--pretrained", action="store_true",
                         help="the tag's published weights (Hugging Face cache, or downloaded)")
    weights.add_argument("--checkpoint", metavar="PATH", help="weights from a local .safetensors/.pth file")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="where the model runs (default: cuda if available, else cpu)")


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """The device to run on; raises UserError for cuda on a machine without it."""
    from .main import UserError

    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for, but no CUDA device is available; use --device cpu")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def load_model(args: argparse.Namespace, img_size: int | None = None) -> nn.Module:
    """The model of --model with the weights of --pretrained/--checkpoint, in eval mode, on the CPU.

    `img_size` is passed on to fixed-size models only (their position embedding is resampled on load).
    """
    from .. import create_model

    kwargs = {"img_size": img_size} if img_size is not None else {}
    return create_model(args.model, pretrained=args.pretrained, checkpoint_path=args.checkpoint, **kwargs).eval()


def weights_label(args: argparse.Namespace) -> str:
    """What the weights are, for result rows: 'pretrained' or the checkpoint path."""
    return "pretrained" if args.pretrained else str(args.checkpoint)
