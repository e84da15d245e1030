"""Names, tags, wildcard listing and suggestions."""

import pytest
import torch

import visionzoo
from visionzoo.errors import UserError
from visionzoo.registry import resolve_models, split_name


def test_split_name():
    assert split_name("vit_betwixt_patch16_reg4_gap_256.sbb_in1k") == ("vit_betwixt_patch16_reg4_gap_256",
                                                                        "sbb_in1k")
    assert split_name("test_vit") == ("test_vit", None)


def test_list_models_wildcards_and_excludes():
    vits = visionzoo.list_models("vit_*")
    assert "vit_so400m_patch16_siglip_256" in vits and "test_vit" not in vits
    assert visionzoo.list_models(["test_*", "vit_so400m*"], exclude_filters="*gap*") == [
        n for n in visionzoo.list_models()
        if (n.startswith("test_") or n.startswith("vit_so400m")) and "gap" not in n]
    assert visionzoo.list_models("no_such_*") == []


def test_list_pretrained_gives_arch_dot_tag():
    names = visionzoo.list_pretrained("vit_so400m_patch16_siglip_256*")
    assert names == ["vit_so400m_patch16_siglip_256.v2_webli", "vit_so400m_patch16_siglip_256.webli_i18n"]
    assert visionzoo.list_models("test_vit*", pretrained=True) == ["test_vit.r160_in1k"]


def test_is_model():
    assert visionzoo.is_model("test_vit") and visionzoo.is_model("test_vit.r160_in1k")
    assert not visionzoo.is_model("vit_huge_patch99")


def test_bare_arch_resolves_to_first_listed_tag():
    cfg = visionzoo.get_pretrained_cfg("vit_so400m_patch14_siglip_378")
    assert cfg.tag == "v2_webli" and cfg.num_classes == 0
    assert visionzoo.create_model("test_vit").pretrained_cfg.tag == "r160_in1k"


def test_pretrained_cfg_carries_reported_results():
    cfg = visionzoo.get_pretrained_cfg("vit_so400m_patch14_siglip_378.webli_ft_in1k")
    assert cfg.hf_hub_id == "timm/vit_so400m_patch14_siglip_378.webli_ft_in1k"
    assert [(r.img_size, r.top1, r.top5) for r in cfg.results] == [(378, 89.41, 98.854)]


def test_the_tag_record_takes_architecture_facts_from_the_model():
    cfg = visionzoo.get_pretrained_cfg("mobilenetv4_conv_small.e2400_r224_in1k")
    with torch.device("meta"):
        model = visionzoo.create_model("mobilenetv4_conv_small")
    facts = (cfg.first_conv, cfg.classifier, cfg.fixed_input_size)
    assert facts == (model.first_conv, model.classifier_module, False)
    assert cfg.pool_size == model.feature_map_size(224) == (7, 7)
    assert visionzoo.get_pretrained_cfg("test_vit").pool_size is None  # tokens, no final map


def test_tag_data_holds_only_facts_about_the_weights():
    from importlib import resources

    import tomllib

    architecture_facts = {"first_conv", "classifier", "pool_size", "fixed_input_size"}
    for path in resources.files("visionzoo.pretrained").iterdir():
        if path.name.endswith(".toml"):
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            for entry in [data.get("defaults", {}), *data["tag"]]:
                assert not architecture_facts & set(entry), path.name
                # the page figures are report data; mean/std are named once (`normalization`)
                assert "page" not in entry and "mean" not in entry, path.name


def test_unknown_names_suggest_close_matches():
    with pytest.raises(visionzoo.UnknownModelError, match="did you mean vit_betwixt_patch16_reg4_gap_256"):
        visionzoo.create_model("vit_betwixt_patch16_reg4_gap_265")
    with pytest.raises(visionzoo.UnknownModelError,
                       match="no pretrained tag 'sbb_in1kk'; did you mean sbb_in1k"):
        visionzoo.get_pretrained_cfg("vit_betwixt_patch16_reg4_gap_256.sbb_in1kk")


def test_unknown_option_is_an_error():
    with pytest.raises(TypeError, match="no option 'emebd_dim'"):
        visionzoo.create_model("test_vit", emebd_dim=32)


@pytest.mark.parametrize("arguments, message", [
    (dict(pretrained=True, checkpoint_path="w.safetensors"), "pretrained=True and checkpoint_path= both"),
    (dict(num_classes=-1), "num_classes must be 0 .* got -1"),
    (dict(num_classes=2.5), "num_classes must be 0 .* got 2.5"),
    (dict(in_chans=0), "in_chans must be 1 or more, got 0"),
    (dict(img_size=-3), r"img_size must be a positive int or \(height, width\), got -3"),
    (dict(img_size=(160, 0)), r"got \(160, 0\)"),
    (dict(img_size=(1, 2, 3)), r"got \(1, 2, 3\)"),
    (dict(drop_rate=1.0), r"drop_rate must be in \[0, 1\), got 1.0"),
    (dict(drop_path_rate=-0.1), r"drop_path_rate must be in \[0, 1\), got -0.1"),
])
def test_arguments_that_would_build_a_broken_model_are_refused(arguments, message):
    with pytest.raises(UserError, match=message):
        visionzoo.create_model("test_vit", **arguments)


def test_resolve_models_takes_names_and_wildcards_in_order_without_repeats():
    assert resolve_models(["test_vit", "vit_betwixt_*", "test_v?t"]) == [
        "test_vit", "vit_betwixt_patch16_reg4_gap_256", "vit_betwixt_patch16_reg4_gap_384"]
    assert resolve_models(["test_vit.r160_in1k"]) == ["test_vit.r160_in1k"]
    with pytest.raises(visionzoo.UnknownModelError, match="did you mean"):
        resolve_models(["test_vitt"])
    with pytest.raises(visionzoo.UnknownModelError, match="no pretrained tag"):
        resolve_models(["test_vit.nope"])
    with pytest.raises(ValueError, match="no model matches"):
        resolve_models(["nothing_like_this_*"])

