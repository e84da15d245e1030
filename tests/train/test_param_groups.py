"""Weight decay only on weights of linear maps; layer-wise lr decay from each family's `depth_groups`."""

import re

import pytest
import torch

import visionzoo
from visionzoo.registry import get_architecture
from visionzoo.train.param_groups import decays, depth_levels, param_groups


def _one_arch_per_family() -> list[str]:
    chosen = {}
    for name in visionzoo.list_models():
        chosen.setdefault(get_architecture(name).model_cls, name)
    return sorted(chosen.values())


def test_no_decay_on_norms_biases_tokens_and_position_embeddings():
    model = visionzoo.create_model("test_vit", num_classes=10)
    names = {name for group in param_groups(model, 0.05) if group["weight_decay"] == 0
             for name, p in model.named_parameters() if any(p is q for q in group["params"])}
    expected = {"cls_token", "pos_embed", "norm.weight", "norm.bias", "head.bias", "blocks.0.attn.qkv.bias"}
    assert expected <= names
    assert "blocks.0.attn.qkv.weight" not in names and "head.weight" not in names
    assert decays("patch_embed.proj.weight", torch.nn.Parameter(torch.zeros(4, 3, 2, 2)))
    assert not decays("blocks.0.ls1.gamma", torch.nn.Parameter(torch.zeros(4)))


@pytest.mark.parametrize("arch", _one_arch_per_family())
def test_every_family_declares_its_depth_levels(arch):
    """Stem first, then blocks in order, the classifier alone at the top; every other parameter matched."""
    with torch.device("meta"):
        model = visionzoo.create_model(arch)
    levels, count = depth_levels(model)
    names = list(levels)
    classifier = model.classifier_module if hasattr(model, "classifier_module") else "head"
    head = [n for n in names if levels[n] == count - 1]
    assert any(n.startswith(classifier + ".") for n in head), head
    assert count >= 4, "stem, at least two blocks, head"
    stem = [n for n in names if levels[n] == 0]
    assert stem and names.index(stem[0]) == 0  # the first parameter is the stem's
    # levels never go down along the module order, except the head's own modules (norm, pooling) that may sit
    # anywhere; and two blocks never share a level
    body = [levels[n] for n in names if levels[n] < count - 1]
    assert body == sorted(body)
    patterns = [re.compile(p) for p in type(model).depth_groups]
    unmatched = [n for n in names if not any(p.match(n) for p in patterns)]
    assert all(levels[n] == count - 1 for n in unmatched)


def test_layer_decay_scales():
    model = visionzoo.create_model("test_vit", num_classes=10)  # 6 blocks: stem, 6 blocks, head = 8 levels
    groups = param_groups(model, 0.05, layer_decay=0.5)
    scales = sorted({g["lr_scale"] for g in groups})
    assert scales == pytest.approx([0.5 ** k for k in range(7, -1, -1)])
    head = next(g for g in groups if any(p is model.head.weight for p in g["params"]))
    assert head["lr_scale"] == 1.0
    stem = next(g for g in groups if any(p is model.cls_token for p in g["params"]))
    assert stem["lr_scale"] == pytest.approx(0.5 ** 7) and stem["weight_decay"] == 0


def test_layer_decay_needs_declared_levels():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="does not declare depth_groups.*layer_decay"):
        param_groups(model, 0.05, layer_decay=0.7)
