"""The named evaluation sets as data: their label files, the published figures in the tag data traced to the
reference's results rows (tests/data/reference_results), and the label-space refusal."""

import csv
from importlib import resources
from pathlib import Path

import pytest

import visionzoo
from visionzoo.data.eval_sets import (
    EVAL_SETS,
    REAL_IMAGES,
    check_label_space,
    get_eval_set,
    real_labels,
    set_classes,
)
from visionzoo.errors import UserError
from visionzoo.pretrained_cfg import all_pretrained_cfgs

FIXTURES = Path(__file__).parent / "reference_results"


def test_real_labels_are_the_published_lists():
    labels = real_labels()
    assert len(labels) == REAL_IMAGES
    # real.json of google-research/reassessed-imagenet: its first entries, and 3,163 images with no label
    assert labels[:5] == ((), (970, 795), (230, 231), (809,), (516, 850))
    assert labels[16:18] == ((327, 108), (21, 22))
    assert sum(not row for row in labels) == 3163
    assert all(0 <= label < 1000 for row in labels for label in row)


def test_a_and_r_have_their_200_classes():
    a, r = set_classes("imagenet-a"), set_classes("imagenet-r")
    assert len(a) == len(set(a)) == 200 and len(r) == len(set(r)) == 200
    # the first entries of natural-adv-examples' thousand_k_to_200 and imagenet-r's imagenet_r_wnids
    assert a[:4] == (6, 11, 13, 15) and r[:4] == (1, 2, 4, 6)
    assert set(a) != set(r)  # two different lists, not one read twice
    assert set_classes("imagenet-sketch") is None


def test_every_set_with_published_figures_names_its_source_file():
    for record in EVAL_SETS.values():
        data = Path(visionzoo.__file__).parent / "pretrained" / "eval_sets" / f"{record.name}.csv"
        has_figures = data.is_file()
        assert has_figures == (record.reference_results is not None and record.name != "imagenet"), record
        if has_figures:
            assert f"results/{record.reference_results}" in data.read_text(encoding="utf-8").split("\n", 2)[1]
    with pytest.raises(UserError, match="unknown evaluation set 'imagenet-c'; known: imagenet, "):
        get_eval_set("imagenet-c")


def _fixture_rows(eval_set: str) -> list[dict]:
    path = FIXTURES / get_eval_set(eval_set).reference_results
    return list(csv.DictReader(path.open(encoding="utf-8")))


@pytest.mark.parametrize("eval_set", list(s for s in EVAL_SETS if EVAL_SETS[s].reference_results))
def test_published_figures_trace_to_the_reference_rows(eval_set):
    rows = _fixture_rows(eval_set)
    assert len(rows) >= 8
    cfgs = {cfg.name: cfg for by_arch in all_pretrained_cfgs().values() for cfg in by_arch}
    for row in rows:
        published = {r.img_size: r for r in cfgs[row["model"]].results_on(eval_set)}
        figure = published[int(row["img_size"])]
        assert (figure.top1, figure.top5, figure.crop_pct, figure.interpolation) == (
            float(row["top1"]), float(row["top5"]), float(row["crop_pct"]), row["interpolation"]), row


def test_every_published_figure_is_at_a_size_with_an_imagenet_result():
    # the reference measures every set at the sizes of its ImageNet results: a figure at another size, or of
    # a tag with no ImageNet result, would be a copying mistake
    for by_arch in all_pretrained_cfgs().values():
        for cfg in by_arch:
            imagenet = {(r.img_size, r.crop_pct, r.interpolation) for r in cfg.results}
            for figure in cfg.eval_set_results:
                measured = (figure.img_size, figure.crop_pct, figure.interpolation)
                assert measured in imagenet, (cfg.name, figure)
            sets = {r.eval_set for r in cfg.eval_set_results}
            assert sets in (set(), {"imagenet-real", "imagenet-v2", "imagenet-sketch", "imagenet-a",
                                    "imagenet-r"}), cfg.name


def test_named_sets_refuse_a_model_of_another_label_space():
    a = get_eval_set("imagenet-a")
    check_label_space(a, visionzoo.get_pretrained_cfg("resnet50d.ra4_e3600_r224_in1k"), 1000, "resnet50d")
    check_label_space(a, None, 1000, "a checkpoint of no tag")
    in12k = visionzoo.get_pretrained_cfg("vit_betwixt_patch16_reg4_gap_256.sbb_in12k")
    with pytest.raises(UserError, match="outputs 11821 imagenet-12k classes, not the 1000 ImageNet-1k "
                                        "classes imagenet-a is scored on; evaluate a tag fine-tuned on "
                                        "ImageNet-1k"):
        check_label_space(a, in12k, in12k.num_classes, in12k.name)
    in1k = visionzoo.get_pretrained_cfg("resnet50d.ra4_e3600_r224_in1k")
    with pytest.raises(UserError, match="outputs 10 imagenet-1k classes"):  # a checkpoint with a new head
        check_label_space(a, in1k, 10, "resnet50d")


def test_every_published_results_file_names_a_known_eval_set():
    folder = resources.files("visionzoo.pretrained").joinpath("eval_sets")
    named = [p.name.removesuffix(".csv") for p in folder.iterdir() if p.name.endswith(".csv")]
    assert named and all(get_eval_set(name).name == name for name in named)
