"""Finding and loading weights: the Hugging Face Hub, local files, safetensors, and adaptation on load."""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path

import torch

from .errors import CheckpointError
from .models.base import ClassifierModel
from .pretrained_cfg import PretrainedCfg

__all__ = ["CheckpointError", "WEIGHTS_FILENAME", "adapt_in_chans", "adapt_state_dict", "download_pretrained",
           "checkpoint_classes", "checkpoint_label_names", "hub_file", "load_into", "read_checkpoint"]

WEIGHTS_FILENAME = "model.safetensors"
_CONTAINER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")


def download_pretrained(cfg: PretrainedCfg) -> Path:
    """Path of the tag's `model.safetensors`, from the local Hugging Face cache or the Hub."""
    return hub_file(cfg.hf_hub_id, WEIGHTS_FILENAME, f"weights of {cfg.name}")


def hub_file(repo_id: str, filename: str, what: str) -> Path:
    """Path of `filename` of the Hub repository `repo_id`, from the local Hugging Face cache or downloaded.

    Honours HF_HOME, HF_ENDPOINT and HF_HUB_OFFLINE. The cache is looked at first; then, before any download,
    one quick connection to the endpoint tells whether there is a network at all, so an offline machine gets
    one CheckpointError at once (naming `what` and how to get the file) rather than a series of retries.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else endpoint_unreachable(constants.ENDPOINT)
    if reason is None:
        try:
            return Path(hf_hub_download(repo_id, filename))
        except Exception as error:  # not found, refused, or the connection dropped: one line naming it
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise CheckpointError(
        f"{what} are not in the Hugging Face cache and cannot be downloaded ({reason}): run "
        f"`hf download {repo_id} {filename}` on a connected machine and copy the cache (HF_HOME), or pass "
        f"checkpoint_path=<your copy of {filename}>")


def endpoint_unreachable(endpoint: str) -> str | None:
    """Why `endpoint` cannot be reached (None: a connection opened), from one connection of a few seconds."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as error:
        return f"no network: {url.hostname}:{port} cannot be reached ({error.strerror or error})"
    return None


def _unwrap(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside a training checkpoint, with DataParallel/DDP 'module.' prefixes removed."""
    while isinstance(checkpoint, dict):
        inner = next((checkpoint[k] for k in _CONTAINER_KEYS if isinstance(checkpoint.get(k), dict)), None)
        if inner is None:
            break
        checkpoint = inner
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors (found {type(checkpoint).__name__})")
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from .safetensors, or a torch file (.pth/.pt/.bin) without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return _unwrap(load_file(path), path)
        if path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
            return _unwrap(torch.load(path, map_location="cpu", weights_only=True), path)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as error:  # weights_only refused an object: the file holds pickled code
        raise CheckpointError(
            f"{path} holds pickled Python objects (code), not only tensors, and visionzoo will not execute "
            "it; if you trust the file, convert it once to safetensors: python -c \"import torch, "
            f"safetensors.torch as s; s.save_file(torch.load('{path}', weights_only=False), "
            f"'{path.with_suffix('.safetensors')}')\" (for a training checkpoint, save its state dict) and "
            "load the .safetensors file") from error
    except Exception as error:  # a truncated or foreign file: one line that names it
        raise CheckpointError(f"cannot read checkpoint {path}: {str(error).splitlines()[0]}") from error
    raise CheckpointError(f"unsupported checkpoint type {path.suffix!r} for {path}; "
                          "use .safetensors (preferred), .pth, .pt or .bin")


def checkpoint_classes(path: str | os.PathLike, classifier: str) -> int | None:
    """The class count of the classifier `classifier` (module path) in the checkpoint at `path`, or None
    if it has none. Safetensors files are read from their header only."""
    path = Path(path)
    key = f"{classifier}.weight"
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import safe_open

        try:
            with safe_open(path, framework="pt") as f:
                return f.get_slice(key).get_shape()[0] if key in f.keys() else None
        except Exception:  # unreadable: read_checkpoint gives the error when the weights are loaded
            return None
    try:
        weight = read_checkpoint(path).get(key)
    except CheckpointError:
        return None
    return None if weight is None else weight.shape[0]


def checkpoint_label_names(path: str | os.PathLike) -> tuple[str, ...] | None:
    """The class names a safetensors file records in its metadata (`label_names`, a JSON list, as
    `visionzoo train` writes it), or None. Read from the header only."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            text = (f.metadata() or {}).get("label_names")
        names = json.loads(text) if text else None
    except Exception:  # unreadable: read_checkpoint gives the error when the weights are loaded
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return tuple(names)


def adapt_in_chans(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """First-conv weight for `in_chans` inputs: 1 channel sums over RGB, N repeats RGB and rescales by 3/N."""
    trained = weight.shape[1]
    if in_chans == trained:
        return weight
    dtype = weight.dtype
    weight = weight.float()
    if in_chans == 1:
        adapted = weight.sum(dim=1, keepdim=True)
    else:
        repeats = -(-in_chans // trained)
        adapted = weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (trained / in_chans)
    return adapted.to(dtype)


def adapt_state_dict(model: ClassifierModel, state_dict: dict[str, torch.Tensor],
                     cfg: PretrainedCfg | None = None) -> tuple[dict[str, torch.Tensor], bool]:
    """Fit a checkpoint to the model: input channels, classifier size, family-specific reshapes.

    The first conv and the classifier are the model's own (`first_conv`, `classifier_module`), so a local
    checkpoint without a tag is adapted the same way; `cfg` only names the weights in the warning.
    Returns the adapted state dict and whether the model's classifier must be initialised afresh (the
    checkpoint has no classifier of the model's size).
    """
    state_dict = dict(state_dict)
    first = f"{model.first_conv}.weight"
    in_chans = model.config.in_chans
    if first in state_dict and state_dict[first].shape[1] != in_chans:
        state_dict[first] = adapt_in_chans(state_dict[first], in_chans)
    classifier = model.classifier_module
    head_keys = [k for k in state_dict if k.rpartition(".")[0] == classifier]
    head_weight = state_dict.get(f"{classifier}.weight")
    trained_classes = head_weight.shape[0] if head_weight is not None else 0
    fresh_classifier = False
    if trained_classes != model.num_classes:
        for key in head_keys:
            del state_dict[key]
        fresh_classifier = model.num_classes > 0
        if fresh_classifier:
            source = cfg.name if cfg is not None else "the checkpoint"
            warnings.warn(f"{source} has a classifier for {trained_classes} classes; "
                          f"'{classifier}' is initialised afresh for {model.num_classes}", stacklevel=3)
    return model.adapt_checkpoint(state_dict), fresh_classifier


def _mismatch_report(expected: dict[str, torch.Tensor], state_dict: dict[str, torch.Tensor],
                     allowed_missing: set[str]) -> str:
    missing = sorted(set(expected) - set(state_dict) - allowed_missing)
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
                    for k in set(expected) & set(state_dict) if state_dict[k].shape != expected[k].shape)
    parts = []
    problems = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
    for title, items in problems:
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items) - 8} more)" if len(items) > 8 else "")
            parts.append(f"{title}: {shown}")
    return "; ".join(parts)


def _check_finite(state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Weights holding NaN or infinity give NaN outputs everywhere: refuse them where they are loaded."""
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{source} holds non-finite weights (NaN or infinity) in {len(bad)} of "
                              f"{len(state_dict)} tensors, first {bad[0]}; a diverged training writes such "
                              "files: use an earlier checkpoint")


def load_into(model: ClassifierModel, state_dict: dict[str, torch.Tensor], cfg: PretrainedCfg | None = None,
              source: str = "checkpoint") -> None:
    """Load an (adapted) state dict into `model`, which may live on the meta device.

    Tensors are assigned, not copied; a classifier left out on purpose is initialised afresh. Anything else
    missing, unexpected or of the wrong shape raises CheckpointError listing it.
    """
    state_dict, fresh_classifier = adapt_state_dict(model, state_dict, cfg)
    classifier = model.get_classifier()
    allowed_missing = {f"{model.classifier_module}.{name}" for name, _ in classifier.named_parameters()} \
        if fresh_classifier else set()
    expected = model.state_dict()
    report = _mismatch_report(expected, state_dict, allowed_missing)
    if report:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {report}")
    converted = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    _check_finite(converted, source)
    model.load_state_dict(converted, strict=False, assign=True)
    if fresh_classifier:
        classifier.to_empty(device="cpu")
        classifier.reset_parameters()
    leftover = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise CheckpointError(f"{source} left tensors uninitialised: {', '.join(leftover[:8])}")
