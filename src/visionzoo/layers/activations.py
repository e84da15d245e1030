"""Activation layers by name, so that configs stay plain strings."""

from __future__ import annotations

from functools import partial

from torch import nn

_ACTIVATIONS = {
    "gelu": nn.GELU,
    # SigLIP's image towers were trained with the tanh approximation of GELU.
    "gelu_tanh": partial(nn.GELU, approximate="tanh"),
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "hard_swish": nn.Hardswish,
    "hard_sigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def make_activation(name: str, inplace: bool = False) -> nn.Module:
    """Build the activation called `name`; raises ValueError for an unknown name."""
    try:
        factory = _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}") from None
    if inplace and name in ("relu", "relu6", "silu", "swish", "hard_swish", "hard_sigmoid"):
        return factory(inplace=True)
    return factory()
