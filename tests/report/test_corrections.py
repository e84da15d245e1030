"""Finding the hand-copied page's wrong figures: rounding, parameter counts, and figures under the wrong
size."""

import pytest

from visionzoo.pretrained_cfg import ReportedResult, all_pretrained_cfgs
from visionzoo.report.corrections import find_corrections, pair_figures, params_agree, within_rounding
from visionzoo.report.figures import PageFigure, load_page_figures
from visionzoo.report.page import load_layout

DECIMALS = {s.key: s.printed_decimals for s in load_layout().sections}


def tag(name):
    arch = name.split(".")[0]
    return next(cfg for cfg in all_pretrained_cfgs()[arch] if cfg.name == name)


def corrections(name, params_m):
    found = find_corrections(tag(name), load_page_figures()[name], params_m, DECIMALS)
    return [(c.figure, c.page, c.correct) for c in found]


def test_rounding_is_the_printed_precision():
    assert within_rounding(85.7344, 85.734, 3) and not within_rounding(81.444, 81.44, 3)
    assert within_rounding(72.816, 72.82, 2) and not within_rounding(73.234, 73.20, 2)


@pytest.mark.parametrize("printed, measured, agrees", [
    ("7.30", 7.304, True), ("2.2", 2.16, True), ("400+", 429.38, True), ("400+", 399.0, False),
    ("7.5", 14.62, False), ("60.40", 60.60, False), ("35.01", 34.36, False),
])
def test_parameter_counts_agree_within_their_rounding(printed, measured, agrees):
    assert params_agree(printed, measured) is agrees


def test_figures_pair_with_the_closest_results_so_a_wrong_size_is_found():
    results = (ReportedResult(224, 76.310, 92.842, 0.95, "bicubic"),
               ReportedResult(256, 77.182, 93.328, 1.0, "bicubic"))
    figures = [PageFigure("s", img_size=320, top1=77.16), PageFigure("s", img_size=256, top1=76.31)]
    assert [(f.img_size, r.img_size) for f, r in pair_figures(figures, results)] == [(320, 256), (256, 224)]


def test_a_tie_keeps_the_printed_size():
    results = (ReportedResult(224, 80.0, 95.0, 0.95, "bicubic"),
               ReportedResult(256, 80.0, 95.0, 1.0, "bicubic"))
    figures = [PageFigure("s", img_size=256, top1=80.0)]
    assert pair_figures(figures, results)[0][1].img_size == 256


def test_the_issues_examples_are_found():
    assert corrections("mobilenetv3_large_150d.ra4_e3600_r256_in1k", 14.62)[0] == ("params (M)", "7.5",
                                                                                     "14.62")
    assert corrections("mobilenetv3_large_100.ra4_e3600_r224_in1k", 5.48) == [
        ("img size of top-1 77.16", "320", "256"),
        ("img size of top-1 76.31", "256", "224"),
        ("top-1 @ 256", "77.16", "77.182"),
    ]
    assert ("img size of top-1 80.406", "224", "240") in corrections("efficientnet_b1.ra4_e3600_r240_in1k",
                                                                      7.79)
    assert ("img size of top-1 77.600", "288", "256") in corrections("mobilenetv1_125.ra4_e3600_r224_in1k",
                                                                      6.27)


def test_a_figure_at_a_size_never_measured_and_a_wrong_name():
    assert corrections("test_vit.r160_in1k", 0.37) == [
        ("img size of top-1 42.000", "192", "not measured (measured at 160)"),
        ("top-1 @ 160", "40.822", "40.982"),
    ]
    assert corrections("vit_so400m_patch16_siglip_256.webli_i18n", 427.89) == [
        ("model name", "vit_so400m_patch14_siglip_256.webli (i18n)",
         "vit_so400m_patch16_siglip_256.webli_i18n")]


def test_figures_that_only_differ_by_rounding_are_not_corrections():
    # hiera's page row printed no image size; its figures match the measured ones
    assert corrections("hiera_small_abswin_256.sbb2_e200_in12k_ft_in1k", 35.01) == []
    assert corrections("vit_betwixt_patch16_reg4_gap_256.sbb2_e200_in12k_ft_in1k", 60.40) == []
