"""Training checkpoints: atomic writes, model files in safetensors, the whole run state loadable with
`torch.load(..., weights_only=True)` (tensors, numbers, strings, lists and dicts only: nothing is
unpickled as code on resume).

Layout of a run's output folder:
    checkpoint.pt           the training state: model, EMA, optimizer, scaler, counters, RNG states
    last/model.safetensors  the model after the latest checkpoint (and last/ema.safetensors with EMA)
    best/model.safetensors  the best weights by eval top-1, the model's or the EMA's, whichever scored
    epoch-NNN/...           with keep N > 1, the N best epochs' weights
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch

from ..errors import ConfigError
from ..files import atomic_write

STATE_FILE = "checkpoint.pt"
FORMAT_VERSION = 1


class ResumeError(ConfigError):
    """A checkpoint that cannot be resumed from; the message names the file and the mismatch."""


def save_model_file(path: str | os.PathLike, state_dict: dict[str, torch.Tensor],
                    metadata: dict[str, str] | None = None) -> None:
    """A plain `model.safetensors` state dict, as `create_model(..., checkpoint_path=...)` reads it."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


# ---- random states -----------------------------------------------------------------------------------
def rng_state() -> dict:
    """torch (CPU and CUDA), numpy and Python random states, as weights_only-loadable values."""
    import numpy as np

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` recorded."""
    import numpy as np

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- the training state --------------------------------------------------------------------------------
def save_state(folder: str | os.PathLike, state: dict) -> None:
    """Write the training state to `folder/checkpoint.pt` atomically."""
    state = {"format_version": FORMAT_VERSION, **state}
    atomic_write(Path(folder) / STATE_FILE, lambda tmp: torch.save(state, tmp))


def find_state(path: str | os.PathLike) -> Path:
    """The checkpoint file of a run to resume: the file itself or the run folder's `checkpoint.pt`."""
    path = Path(path)
    if path.is_dir():
        path = path / STATE_FILE
    if not path.is_file():
        raise ResumeError(f"no training checkpoint at {path}: {{resume}} takes a run's output folder "
                          f"(holding {STATE_FILE}) or that file")
    return path


def load_state(path: str | os.PathLike) -> dict:
    """Read a training state written by `save_state`, without unpickling code."""
    path = find_state(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, corrupt or foreign: one line naming the file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ResumeError(f"cannot read training checkpoint {path} (corrupt or not a visionzoo checkpoint): "
                          f"{reason}") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION or "config" not in state:
        raise ResumeError(f"{path} is not a visionzoo training checkpoint (format {FORMAT_VERSION})")
    return state
