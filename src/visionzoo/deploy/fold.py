"""Fold per-channel affine layers into the linear layer that feeds them: BatchNorm and layer scale.

In eval mode a BatchNorm is an affine map per channel, and a layer scale a per-channel factor, so
`bn(conv(x))` is one conv with rescaled weights and a bias, and `gamma * linear(x)` one linear with rescaled
rows. Which layer feeds which is read from the data flow, not from module names: one forward pass records
every producer's output and every consumer's input, and counts how often each producer output is used. A pair
is folded only where the consumer's input *is* the producer's output and nothing else reads it (an in-place op
in between, or a second reader such as a shortcut, would see the unfolded values), and both modules run once.
This covers every family's conv/BN pairs (ConvNormAct, the mobile blocks, ResNet, ByobNet, the MobileNetV4
MQA key/value branch) and the layer scales after a projection (ViT, Hiera, MobileNetV4) without a list of
layouts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..layers.conv_norm_act import BatchNormAct2d
from ..layers.layer_scale import LayerScale, LayerScale2d


@dataclass(frozen=True)
class FoldPair:
    """A producer (conv or linear) whose output only feeds `consumer` (qualified module names)."""

    producer: str
    consumer: str


class _UseCounter(TorchFunctionMode):
    """Counts the torch calls that take a watched tensor and return a tensor (metadata reads do not count).

    A call that returns its argument itself unchanged (dropout in eval mode) passes it on and is no use; one
    that changes it in place is. A watched
    tensor is kept alive by the caller from the moment it is watched, so its id is not reused.
    """

    def __init__(self):
        super().__init__()
        self.uses: Counter[int] = Counter()
        self.watched: set[int] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        watched = [leaf for leaf in tree_flatten((args, kwargs))[0]
                   if isinstance(leaf, torch.Tensor) and id(leaf) in self.watched]
        versions = [leaf._version for leaf in watched]
        result = func(*args, **(kwargs or {}))
        results = [leaf for leaf in tree_flatten(result)[0] if isinstance(leaf, torch.Tensor)]
        if results:
            for leaf, version in zip(watched, versions, strict=True):
                passed_on = any(r is leaf for r in results) and leaf._version == version  # not in place
                if not passed_on:
                    self.uses[id(leaf)] += 1
        return result


@torch.no_grad()
def find_fold_pairs(model: nn.Module, example_input: torch.Tensor, producer_types: tuple[type, ...],
                    consumer_types: tuple[type, ...]) -> list[FoldPair]:
    """(producer, consumer) module pairs where the consumer alone reads the producer's output, in one pass."""
    if model.training:
        raise ValueError("folding needs eval mode (running statistics, no dropout): call model.eval() first")
    outputs: dict[str, list[torch.Tensor]] = {}
    inputs: dict[str, list[torch.Tensor]] = {}
    counter = _UseCounter()

    def record_output(name: str, output: torch.Tensor) -> None:
        outputs.setdefault(name, []).append(output)
        counter.watched.add(id(output))

    handles = []
    for name, module in model.named_modules():
        if type(module) in producer_types:
            handles.append(module.register_forward_hook(
                lambda m, args, out, name=name: record_output(name, out)))
        elif type(module) in consumer_types:
            handles.append(module.register_forward_pre_hook(
                lambda m, args, name=name: inputs.setdefault(name, []).append(args[0])))
    try:
        with counter:
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    # the outputs stay referenced in `outputs`, so their ids are unique over the pass
    producer_of = {id(outs[0]): name for name, outs in outputs.items() if len(outs) == 1}
    pairs = []
    for consumer, seen in inputs.items():
        producer = producer_of.get(id(seen[0])) if len(seen) == 1 else None
        if producer is not None and counter.uses[id(seen[0])] == 1:
            pairs.append(FoldPair(producer, consumer))
    return pairs


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


@torch.no_grad()
def _scale_rows(layer: nn.Conv2d | nn.Linear, scale: torch.Tensor, shift: torch.Tensor | None = None) -> None:
    """layer(x) * scale + shift, computed in float64 and stored back in the layer's weight and bias."""
    weight = layer.weight.double()
    bias = layer.bias.double() * scale if layer.bias is not None else torch.zeros_like(scale)
    if shift is not None:
        bias = bias + shift
    view = (-1,) + (1,) * (weight.ndim - 1)
    layer.weight.copy_((weight * scale.view(view)).to(layer.weight.dtype))
    layer.bias = nn.Parameter(bias.to(layer.weight.dtype), requires_grad=layer.weight.requires_grad)


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Rescale `conv` in place so that it computes `bn(conv(x))` (eval-mode statistics); gives it a bias."""
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    shift = -bn.running_mean.double() * scale
    if bn.weight is not None:
        scale = scale * bn.weight.double()
        shift = shift * bn.weight.double() + bn.bias.double()
    _scale_rows(conv, scale, shift)


def _norm_replacement(bn: nn.Module) -> nn.Module:
    """What replaces a folded norm: nothing, or the activation a norm-with-activation applied after it."""
    return bn.act if type(bn) is BatchNormAct2d else nn.Identity()


def fold_batch_norms(model: nn.Module, example_input: torch.Tensor) -> list[FoldPair]:
    """Fold every foldable BatchNorm of `model` (eval mode) into its conv, in place; returns the pairs folded.

    Each folded norm is replaced by nothing (`nn.Identity`), or by its activation where it carried one
    (`BatchNormAct2d`). The model keeps its interface; its state_dict loses the norms' entries.
    """
    pairs = [p for p in find_fold_pairs(model, example_input, (nn.Conv2d,), (nn.BatchNorm2d, BatchNormAct2d))
             if _conv_bn_compatible(model.get_submodule(p.producer), model.get_submodule(p.consumer))]
    for pair in pairs:
        bn = model.get_submodule(pair.consumer)
        fold_conv_bn(model.get_submodule(pair.producer), bn)
        _replace(model, pair.consumer, _norm_replacement(bn))
    return pairs


def _conv_bn_compatible(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> bool:
    return bn.running_mean is not None and bn.running_var is not None and conv.out_channels == bn.num_features


def fold_layer_scales(model: nn.Module, example_input: torch.Tensor) -> list[FoldPair]:
    """Fold every layer scale that directly follows a linear layer or conv into its weights, in place.

    `gamma * linear(x)` becomes a linear layer with rows scaled by gamma; the layer scale is replaced by
    `nn.Identity`. Returns the pairs folded.
    """
    pairs = []
    for pair in find_fold_pairs(model, example_input, (nn.Linear, nn.Conv2d), (LayerScale, LayerScale2d)):
        producer, scale = model.get_submodule(pair.producer), model.get_submodule(pair.consumer)
        # a linear layer's rows are its last (output) dim, LayerScale's; a conv's its channels, LayerScale2d's
        if (type(producer) is nn.Linear) != (type(scale) is LayerScale):
            continue
        if producer.weight.shape[0] != scale.gamma.shape[0]:
            continue
        _scale_rows(producer, scale.gamma.double())
        _replace(model, pair.consumer, nn.Identity())
        pairs.append(pair)
    return pairs
