"""Recipes as data: every published tag resolves to a recipe or a stated reason, and every recipe is valid."""

from __future__ import annotations

import pytest

import visionzoo
from visionzoo.cli.main import main
from visionzoo.data.auto_augment import parse_rand_augment
from visionzoo.data.train_transforms import TrainAugmentation
from visionzoo.recipes import (
    FIELDS,
    RECORD_ONLY,
    NoRecipe,
    Recipe,
    RecipeError,
    get_recipe,
    list_no_recipes,
    list_recipes,
    resolve_tag,
    to_yaml,
)

TAGS = visionzoo.list_pretrained()


def test_every_tag_resolves_to_exactly_one_recipe_or_reason():
    claimed: dict[str, list[str]] = {}
    for recipe in list_recipes():
        for tag in recipe.tags:
            claimed.setdefault(tag, []).append(recipe.name)
    for tag, _record in list_no_recipes():
        claimed.setdefault(tag, []).append("no_recipe")
    assert not [tag for tag, owners in claimed.items() if len(owners) > 1], "a tag is claimed twice"
    assert sorted(set(claimed) - set(TAGS)) == [], "recipe data names tags that do not exist"
    missing = sorted(set(TAGS) - set(claimed))
    assert missing == [], f"tags with neither a recipe nor a reason: {missing}"
    for tag in TAGS:
        found = resolve_tag(tag)
        assert isinstance(found, (Recipe, NoRecipe))
        if isinstance(found, NoRecipe):
            assert len(found.reason) > 20


@pytest.mark.parametrize("recipe", list_recipes(), ids=lambda r: r.name)
def test_recipe_is_well_formed(recipe):
    assert recipe.source.startswith("https://")
    assert all(url.startswith("https://") for url in recipe.cite.values())
    options = recipe.options()
    assert set(options) <= set(FIELDS)
    for key in list(recipe.inferred) + list(recipe.unverified):
        assert recipe.why[key], f"{key} has no reason"
    if "aa" in options:  # every recipe's RandAugment string parses and round-trips
        spec = parse_rand_augment(options["aa"])
        assert parse_rand_augment(spec.format()) == spec
    TrainAugmentation.from_options(options)  # the augmentation fields build a valid transform config
    for tag in recipe.tags:
        parent = recipe.parent(tag)
        if parent is not None:
            assert parent in TAGS, f"{tag}: parent {parent} is not a published tag"


@pytest.mark.parametrize("tag", [t for t in TAGS if isinstance(resolve_tag(t), Recipe)])
def test_resolved_tag_yaml_is_the_train_config(tag):
    yaml = pytest.importorskip("yaml")
    recipe = resolve_tag(tag)
    assert recipe.tags == (tag,)
    assert recipe.options()["num_classes"] == visionzoo.get_pretrained_cfg(tag).num_classes
    loaded = yaml.safe_load(to_yaml(recipe)) or {}
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.train_options().items()}
    assert loaded == expected
    assert not set(loaded) & set(RECORD_ONLY)


def test_tag_name_fields_and_fine_tune_parents():
    small = resolve_tag("mobilenetv4_conv_small.e2400_r224_in1k")
    assert (small.options()["epochs"], small.options()["img_size"]) == (2400, 224)
    assert small.provenance("epochs") == "inferred" and small.provenance("opt") == "stated"
    assert small.provenance("lr") == "unknown" and small.family == "mnv4_small_in1k"
    fine_tune = resolve_tag("mobilenetv4_conv_aa_large.e230_r448_in12k_ft_in1k")
    assert fine_tune.parent(fine_tune.tags[0]) == "mobilenetv4_conv_aa_large.e230_r384_in12k"
    assert "epochs" not in fine_tune.options()  # e230 is the parent's pretraining, not the fine-tune
    vit = "vit_betwixt_patch16_reg4_gap_256.sbb2_e200"
    assert resolve_tag(f"{vit}_in12k_ft_in1k").parents == {f"{vit}_in12k_ft_in1k": f"{vit}_in12k"}
    published = get_recipe("efficientnet_b0.ra_in1k")
    assert published.status == "published" and published.options()["lr"] == 0.048
    # lr at the recipe's global batch becomes lr_base, for the train command to rescale to its own batch
    assert published.train_options()["lr_base"] == 0.048 and published.train_options()["lr_base_size"] == 768
    assert "lr" not in published.train_options() and "global_batch_size" not in published.train_options()


def test_unknown_names_and_missing_recipes_give_clear_errors():
    with pytest.raises(RecipeError, match="did you mean"):
        get_recipe("mobilenetv4_conv_small.e2400_r224_in1")
    with pytest.raises(RecipeError, match="no public recipe: ported weights"):
        get_recipe("resnet50d.gluon_in1k")


def test_cli_lists_and_shows(capsys):
    assert main(["recipes"]) == 0
    listing = capsys.readouterr().out
    assert all(recipe.name in listing for recipe in list_recipes())
    assert main(["recipes", "resnet50d*"]) == 0
    listing = capsys.readouterr().out
    assert "rsb_a1" in listing and "resnet50d.gluon_in1k" in listing and "GluonCV" in listing
    assert main(["recipes", "mobilenetv4_conv_small.e2400_r224_in1k", "--show"]) == 0
    shown = capsys.readouterr().out
    assert "opt: \"adamw\"  # stated" in shown and "epochs: 2400  # inferred" in shown
    assert main(["recipes", "mambaout_kobe.in1k", "--show"]) == 0
    assert "no public recipe" in capsys.readouterr().out
    assert main(["recipes", "nothing_like_it", "--show"]) == 2
    assert "no recipe or tag named" in capsys.readouterr().err
    assert main(["recipes", "--show"]) == 2
