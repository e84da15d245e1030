"""Names, tags, wildcard listing and suggestions."""

import pytest

import visionzoo
from visionzoo.registry import split_name


def test_split_name():
    assert split_name("vit_betwixt_patch16_reg4_gap_256.sbb_in1k") == ("vit_betwixt_patch16_reg4_gap_256", "sbb_in1k")
    assert split_name("test_vit") == ("test_vit", None)


def test_list_models_wildcards_and_excludes():
    vits = visionzoo.list_models("vit_*")
    assert "vit_so400m_patch16_siglip_256" in vits and "test_vit" not in vits
    assert visionzoo.list_models(["test_*", "vit_so400m*"], exclude_filters="*gap*") == [
        n for n in visionzoo.list_models() if (n.startswith("test_") or n.startswith("vit_so400m")) and "gap" not in n]
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
    assert cfg.page[0].top1 == 89.42  # the hand-copied page's figure, kept beside the measured one


def test_i18n_correction_is_recorded():
    cfg = visionzoo.get_pretrained_cfg("vit_so400m_patch16_siglip_256.webli_i18n")
    assert cfg.page[0].page_name == "vit_so400m_patch14_siglip_256.webli (i18n)"


def test_unknown_names_suggest_close_matches():
    with pytest.raises(visionzoo.UnknownModelError, match="did you mean vit_betwixt_patch16_reg4_gap_256"):
        visionzoo.create_model("vit_betwixt_patch16_reg4_gap_265")
    with pytest.raises(visionzoo.UnknownModelError, match="no pretrained tag 'sbb_in1kk'; did you mean sbb_in1k"):
        visionzoo.get_pretrained_cfg("vit_betwixt_patch16_reg4_gap_256.sbb_in1kk")


def test_unknown_option_is_an_error():
    with pytest.raises(TypeError, match="no option 'emebd_dim'"):
        visionzoo.create_model("test_vit", emebd_dim=32)
