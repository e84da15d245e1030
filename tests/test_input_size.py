"""Input size is a model concept: every model says what size it expects and which sizes it can take."""

import pytest
import torch

import visionzoo
from visionzoo.data import resolve_data_config
from visionzoo.errors import InputSizeError
from visionzoo.weights import load_into


def _meta(name, **kwargs):
    with torch.device("meta"):
        return visionzoo.create_model(name, **kwargs)


@pytest.mark.parametrize("arch", visionzoo.list_models())
def test_every_model_answers_its_input_size(arch):
    model = _meta(arch)
    height, width = model.default_img_size
    cfg = model.pretrained_cfg
    if cfg is not None:
        assert (height, width) == tuple(cfg.input_size[1:])
    model.check_img_size((height, width))
    with pytest.raises(InputSizeError, match="total stride"):
        model.check_img_size(model.total_stride - 1)
    # img_size is accepted by every architecture: a fixed-size model is built for it, any other takes it as
    # its default size
    larger = height + 2 * model.total_stride
    resized = _meta(arch, img_size=larger)
    assert resized.default_img_size == (larger, larger)
    resized.check_img_size(larger)
    assert resolve_data_config(resized).img_size == (larger, larger)


def test_default_img_size_is_the_tags():  # moved from test_registry.py: the model owns its default size
    assert _meta("test_vit").default_img_size == (160, 160)
    assert _meta("vit_betwixt_patch16_reg4_gap_384").default_img_size == (384, 384)
    assert _meta("test_vit.r160_in1k").default_img_size == (160, 160)


def test_a_fixed_size_model_names_the_sizes_it_can_take():
    model = _meta("vit_betwixt_patch16_reg4_gap_256")
    assert model.fixed_input_size and model.total_stride == 16 and model.default_img_size == (256, 256)
    with pytest.raises(InputSizeError, match=r"multiples of 16, not 250; try 256 or 240"):
        model.check_img_size(250)
    with pytest.raises(InputSizeError, match=r"built for 256x256 inputs, not 320; "
                                             r"create it with img_size=320"):
        model.check_img_size(320)
    _meta("vit_betwixt_patch16_reg4_gap_256", dynamic_img_size=True).check_img_size(320)
    conv = _meta("resnet50d")
    conv.check_img_size(250)  # a conv net takes any size of at least its stride
    assert conv.feature_map_size(250) == (8, 8)


def test_a_checkpoint_without_a_tag_gets_its_first_conv_and_head_adapted():
    torch.manual_seed(0)
    source = visionzoo.create_model("test_vit").state_dict()
    model = _meta("test_vit", in_chans=1, num_classes=10)
    model.pretrained_cfg = None  # a local checkpoint: nothing known of its tag
    with pytest.warns(UserWarning, match="the checkpoint has a classifier for 1000 classes"):
        load_into(model, source)
    first = model.first_conv
    assert first == "patch_embed.proj"
    adapted = source[f"{first}.weight"].sum(1, keepdim=True)
    assert torch.allclose(model.state_dict()[f"{first}.weight"], adapted)
    assert model.get_classifier().weight.shape == (10, model.head_hidden_size)
