"""A run's options from their sources, weakest first: a recipe, a config file, the options given.

    from visionzoo.train import resolve_config, train
    config = resolve_config(recipe="mobilenetv4_conv_small.e2400_r224_in1k", model="test_efficientnet",
                            data="photos/train", output="runs/small", ema=None)
    train(config)

The command line is this function with the flags as options (`visionzoo train --config FILE --recipe NAME`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..recipes import RecipeError, get_recipe
from .config import TrainConfig, read_config_file


def resolve_config(file: str | Path | None = None, recipe: str | None = None, **options: Any) -> TrainConfig:
    """The config of a run: the hyperparameters of `recipe` (or of the file's `recipe`) as defaults, under
    the options in `file` (.yaml/.toml, a run's args.yaml too), under `options` (flat option names; None sets
    an option to None, over the file and the recipe).

    Raises ConfigError for an unknown option or a value out of range, RecipeError for an unknown recipe.
    """
    values = {**(read_config_file(file) if file is not None else {}), **options}
    if recipe is not None:
        values["recipe"] = recipe
    if values.get("recipe"):
        values = {**recipe_options(values["recipe"], values), **values}
    return TrainConfig.from_dict(values, where=str(file) if file is not None else "options")


def recipe_options(name: str, given: dict | None = None) -> dict:
    """The options recipe `name` (a recipe or an arch.tag) gives, for the `given` options to override: its
    hyperparameters (an lr at the recipe's batch as lr_base, which the run rescales to its global batch),
    and for an arch.tag the model, or for a fine-tune tag its parent tag with pretrained weights (unless
    `given` names another model or a checkpoint).

    Raises RecipeError for an unknown name, or a recipe of fine-tunes named without the tag it trains.
    """
    given = given or {}
    recipe = get_recipe(name)
    options = recipe.train_options()
    if "." in name:
        parent = recipe.parent(name)
        options["model"] = parent or name
        if parent and "model" not in given and not given.get("checkpoint"):
            options["pretrained"] = True  # a fine-tune starts from its parent tag's published weights
    else:
        tuned = [tag for tag in recipe.tags if recipe.parent(tag)]
        if tuned:
            raise RecipeError(f"recipe {name} fine-tunes other tags' weights; name the tag it trains as the "
                              f"recipe, e.g. {tuned[0]}, so that the run starts from that tag's parent "
                              "weights")
    return options
