"""A run's options from Python: a recipe's as defaults, under a config file, under the options given; a
fine-tune tag starts from its parent's weights; a recipe's lr is rescaled to the run's global batch."""

import math

import pytest

from visionzoo.recipes import RecipeError
from visionzoo.train import TrainConfig, resolve_config
from visionzoo.train.build import resolve_lr

RECIPE = "mobilenetv4_conv_small.e2400_r224_in1k"


def test_the_options_given_win_over_the_file_and_the_file_over_the_recipe(tmp_path):
    (tmp_path / "run.toml").write_text('model = "test_efficientnet"\nweight_decay = 0.5\nepochs = 3\n')
    config = resolve_config(tmp_path / "run.toml", recipe=RECIPE, weight_decay=0.01, ema=None,
                            data="photos", output="run")
    assert config.recipe == RECIPE
    assert (config.optim.opt, config.optim.opt_betas, config.augment.aa) == ("adamw", (0.6, 0.995),
                                                                            "rand-m8-inc1-mstd1.0")
    assert (config.task.model, config.schedule.epochs) == ("test_efficientnet", 3)  # the file's
    assert (config.optim.weight_decay, config.averaging.ema) == (0.01, None)  # given, None included
    assert resolve_config(tmp_path / "run.toml").task.model == "test_efficientnet"
    assert resolve_config(recipe=RECIPE).task.model == RECIPE  # an arch.tag recipe names the model


def test_a_fine_tune_starts_from_its_parent_and_the_recipe_lr_follows_the_batch():
    tune = resolve_config(recipe="vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k")
    assert tune.task.model == "vit_mediumd_patch16_reg4_gap_256.sbb_in12k" and tune.task.pretrained
    assert not resolve_config(recipe="vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k",
                              checkpoint="mine.safetensors").task.pretrained
    config = resolve_config(recipe=RECIPE)
    lr, note = resolve_lr(config, global_batch=1024)
    assert math.isclose(lr, 2e-3 * math.sqrt(1024 / 4096)) and note.startswith(f"recipe {RECIPE}: lr")


def test_unknown_names_are_errors_that_say_where_they_came_from(tmp_path):
    (tmp_path / "run.yaml").write_text("learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"run.yaml: unknown option 'learning_rate'"):
        resolve_config(tmp_path / "run.yaml")
    with pytest.raises(RecipeError, match="no recipe or tag named"):
        resolve_config(recipe="no_such_recipe")
    assert resolve_config() == TrainConfig()
