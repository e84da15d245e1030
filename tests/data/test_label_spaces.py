"""Label spaces ship as data: every tag names one whose size is its head's, and names read back in order."""

from __future__ import annotations

import pytest
import timm.data

import visionzoo
from visionzoo.data.label_spaces import LABEL_SPACES, get_label_space, model_label_names
from visionzoo.errors import UserError


@pytest.mark.parametrize("name", sorted(LABEL_SPACES))
def test_label_space_lists_its_classes_with_names(name):
    space = get_label_space(name)
    assert len(space.synsets()) == len(set(space.synsets())) == space.num_classes
    assert len(space.names()) == space.num_classes and all(space.names())


@pytest.mark.parametrize("name, subset", [("imagenet-1k", "imagenet-1k"), ("imagenet-12k", "imagenet-12k"),
                                          ("imagenet-22k", "imagenet-22k"),
                                          ("imagenet-21k-miil", "imagenet-21k-miil")])
def test_label_space_equals_the_reference_class_order(name, subset):
    info = timm.data.ImageNetInfo(subset)
    assert get_label_space(name).synsets() == tuple(info.label_names())
    assert get_label_space(name).names() == tuple(info.label_descriptions())


def test_every_tag_names_a_label_space_of_its_head_size():
    for name in visionzoo.list_pretrained():
        cfg = visionzoo.get_pretrained_cfg(name)
        if cfg.num_classes == 0:
            assert cfg.label_space is None, name
        else:
            assert get_label_space(cfg.label_space).num_classes == cfg.num_classes, name


def test_in12k_tag_has_names():
    cfg = visionzoo.get_pretrained_cfg("vit_betwixt_patch16_reg4_gap_256.sbb_in12k")
    names = model_label_names(cfg)
    assert len(names) == 11821 and names[0] == get_label_space("imagenet-12k").names()[0]


def test_names_follow_the_head_not_a_guess():
    cfg = visionzoo.get_pretrained_cfg("test_vit")
    assert model_label_names(cfg)[0].startswith("tench")
    assert model_label_names(cfg.__class__(**{**cfg.__dict__, "num_classes": 10})) is None  # a new head
    own = cfg.__class__(**{**cfg.__dict__, "num_classes": 2, "label_names": ("cat", "dog")})
    assert model_label_names(own) == ("cat", "dog")


def test_unknown_label_space_is_one_line():
    with pytest.raises(UserError, match="unknown label space 'imagenet-9k'; known: imagenet-1k"):
        get_label_space("imagenet-9k")
