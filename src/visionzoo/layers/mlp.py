"""Two-layer perceptron of transformer blocks."""

from __future__ import annotations

import torch
from torch import nn

from .activations import make_activation


class Mlp(nn.Module):
    """fc1 -> activation -> fc2, with optional dropout after each."""

    def __init__(self, dim: int, hidden_dim: int, out_dim: int | None = None, act: str = "gelu",
                 drop: float = 0.0, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = make_activation(act)
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
