"""Parameter groups: no weight decay on norms, biases, tokens and position embeddings; layer-wise lr decay.

Layer-wise decay gives the head the full learning rate and each level below it `layer_decay` times the
rate of the level above. Each model class declares its levels as data, `depth_groups`: regular
expressions over parameter names in input-to-output order (the stem first). A parameter's level is
decided by the first pattern that matches it and the numbers that pattern captures (block or stage
indices), so `r"^blocks\\.(\\d+)"` makes one level per block. Parameters no pattern matches (the head)
form the last level.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from torch import nn

from ..errors import ConfigError
from ..models.base import ClassifierModel

# Tensors that are not weights of a linear map: decaying them towards zero only hurts (the reference
# recipes leave them out). 1-d tensors are norms' scales and biases; tokens and position embeddings are
# recognised by name.
_NO_DECAY_NAME = re.compile(r"(^|\.)(\w*_token|\w*token|pos_embed\w*)$")


def decays(name: str, param: nn.Parameter) -> bool:
    """Whether weight decay applies to this parameter."""
    return param.ndim > 1 and not _NO_DECAY_NAME.search(name)


def depth_levels(model: nn.Module) -> tuple[dict[str, int], int]:
    """Each trainable parameter's depth level (0: the input side) and the number of levels.

    Raises ConfigError (a ValueError) if the model is not a visionzoo model declaring `depth_groups`.
    """
    patterns = model.depth_groups if isinstance(model, ClassifierModel) else ()
    if not patterns:
        raise ConfigError(f"{type(model).__name__} does not declare depth_groups, so {{layer_decay}} cannot "
                          "group its parameters; train without {layer_decay}")
    compiled = [re.compile(p) for p in patterns]
    keys: dict[str, tuple] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        for rank, pattern in enumerate(compiled):
            match = pattern.match(name)
            if match:
                keys[name] = (rank, *(int(g) for g in match.groups() if g is not None))
                break
    order = {key: level for level, key in enumerate(sorted(set(keys.values())))}
    head = len(order)
    levels = {name: order[keys[name]] if name in keys else head
              for name, param in model.named_parameters() if param.requires_grad}
    return levels, head + 1


def _trainable(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    return ((n, p) for n, p in model.named_parameters() if p.requires_grad)


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float | None = None) -> list[dict]:
    """Optimiser parameter groups of `model`.

    Each group has `params`, `weight_decay` (0 for norms, biases, tokens, position embeddings) and
    `lr_scale` (1, or layer_decay ** (levels above it) with `layer_decay`), and `name` for logs.
    """
    if layer_decay is None:
        levels, count = {}, 1
    else:
        levels, count = depth_levels(model)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in _trainable(model):
        level = levels.get(name, 0)
        decay = decays(name, param)
        key = (level, decay)
        if key not in groups:
            scale = 1.0 if layer_decay is None else layer_decay ** (count - 1 - level)
            groups[key] = {"name": f"level{level}_{'decay' if decay else 'no_decay'}", "params": [],
                           "weight_decay": weight_decay if decay else 0.0, "lr_scale": scale}
        groups[key]["params"].append(param)
    return [groups[key] for key in sorted(groups)]
