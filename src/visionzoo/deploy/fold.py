"""Fold eval-mode BatchNorm into the convolution that feeds it.

In eval mode a BatchNorm is an affine map per channel, so `bn(conv(x))` equals one conv with rescaled weights
and a bias. Which conv feeds which norm is read from the data flow, not from module names: one forward pass
records every conv's output and every norm's input, and counts how often each conv output is used. A pair is
folded only where the norm's input *is* the conv's output and nothing else reads it (an in-place op in
between, or a second reader such as a shortcut, would see the unfolded values), and both modules run once.
This covers every family's conv/BN pairs (ConvNormAct, the mobile blocks, ResNet, ByobNet, the MobileNetV4
MQA key/value branch) without a list of layouts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..layers.conv_norm_act import BatchNormAct2d


@dataclass(frozen=True)
class ConvBnPair:
    """A conv whose output only feeds the BatchNorm `bn` (qualified module names)."""

    conv: str
    bn: str


class _UseCounter(TorchFunctionMode):
    """Counts the torch calls that take a watched tensor and return a tensor (metadata reads do not count).

    A watched tensor is kept alive by the caller from the moment it is watched, so its id is not reused.
    """

    def __init__(self):
        super().__init__()
        self.uses: Counter[int] = Counter()
        self.watched: set[int] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if any(isinstance(leaf, torch.Tensor) for leaf in tree_flatten(result)[0]):
            for leaf in tree_flatten((args, kwargs))[0]:
                if isinstance(leaf, torch.Tensor) and id(leaf) in self.watched:
                    self.uses[id(leaf)] += 1
        return result


def _replacement_for(bn: nn.Module) -> nn.Module | None:
    """What stands in for a folded norm: nothing, or the activation a norm-with-activation applied after it."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    if type(bn) is BatchNormAct2d:
        return bn.act
    return None  # a subclass whose forward we do not know


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and _replacement_for(bn) is not None and not bn.training
            and bn.running_mean is not None and bn.running_var is not None
            and conv.out_channels == bn.num_features)


@torch.no_grad()
def find_conv_bn_pairs(model: nn.Module, example_input: torch.Tensor) -> list[ConvBnPair]:
    """The conv -> BatchNorm pairs of `model` (in eval mode) that can be folded, found by running `example_input`."""
    if model.training:
        raise ValueError("BatchNorm folds only in eval mode: call model.eval() first")
    conv_outputs: dict[str, list[torch.Tensor]] = {}
    bn_inputs: dict[str, list[torch.Tensor]] = {}
    counter = _UseCounter()

    def record_output(name: str, output: torch.Tensor) -> None:
        conv_outputs.setdefault(name, []).append(output)
        counter.watched.add(id(output))

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(
                lambda m, args, out, name=name: record_output(name, out)))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_pre_hook(
                lambda m, args, name=name: bn_inputs.setdefault(name, []).append(args[0])))
    try:
        with counter:
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    # conv outputs stay referenced in `conv_outputs`, so their ids are unique over the pass
    producer = {id(outs[0]): name for name, outs in conv_outputs.items() if len(outs) == 1}
    pairs = []
    for bn_name, inputs in bn_inputs.items():
        conv_name = producer.get(id(inputs[0])) if len(inputs) == 1 else None
        if conv_name is None or counter.uses[id(inputs[0])] != 1:
            continue
        if _foldable(model.get_submodule(conv_name), model.get_submodule(bn_name)):
            pairs.append(ConvBnPair(conv_name, bn_name))
    return pairs


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Rescale `conv` in place so that it computes `bn(conv(x))` (eval-mode statistics); gives it a bias."""
    weight = conv.weight.double()
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    shift = -bn.running_mean.double() * scale
    if bn.weight is not None:
        scale = scale * bn.weight.double()
        shift = shift * bn.weight.double() + bn.bias.double()
    bias = conv.bias.double() * scale + shift if conv.bias is not None else shift
    conv.weight.copy_((weight * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype))
    conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)


def fold_batch_norms(model: nn.Module, example_input: torch.Tensor) -> list[ConvBnPair]:
    """Fold every foldable BatchNorm of `model` (eval mode) into its conv, in place; returns the pairs folded.

    Each folded norm is replaced by nothing (`nn.Identity`), or by its activation where it carried one
    (`BatchNormAct2d`). The model keeps its interface; its state_dict loses the norms' entries.
    """
    pairs = find_conv_bn_pairs(model, example_input)
    for pair in pairs:
        bn = model.get_submodule(pair.bn)
        fold_conv_bn(model.get_submodule(pair.conv), bn)
        parent_name, _, child = pair.bn.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, _replacement_for(bn))
    return pairs
