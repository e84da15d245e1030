"""The training config: YAML and TOML round trips, and errors that name the option."""

from pathlib import Path

import pytest

from visionzoo.train.config import ConfigError, TrainConfig, read_config_file


def test_config_round_trips_yaml_and_toml(tmp_path):
    config = TrainConfig(model="test_vit", data="d", output="o", opt_betas=(0.6, 0.995), ema=0.9998,
                         scale=(0.5, 1.0), amp="bf16", layer_decay=0.75)
    (tmp_path / "a.yaml").write_text(config.to_yaml({"command": "visionzoo train ...", "world_size": 2}))
    (tmp_path / "a.toml").write_text(config.to_toml())
    assert TrainConfig.from_dict(read_config_file(tmp_path / "a.yaml")) == config
    assert TrainConfig.from_dict(read_config_file(tmp_path / "a.toml")) == config


def test_config_errors_name_the_option(tmp_path):
    with pytest.raises(ConfigError, match="unknown option 'learning_rate'"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ConfigError, match="^smoothing must be in"):
        TrainConfig(smoothing=1.5)
    with pytest.raises(ConfigError, match="--warmup-epochs \\+ cooldown-epochs|warmup_epochs"):
        TrainConfig(epochs=2, warmup_epochs=3)
    (tmp_path / "bad.yaml").write_text("lr: [0.1\n")
    with pytest.raises(ConfigError, match="cannot read config file .*bad.yaml"):
        read_config_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="must end in .yaml"):
        (tmp_path / "x.json").write_text("{}")
        read_config_file(tmp_path / "x.json")


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_record_of_release_0_1_0_still_loads():
    """args.yaml and its TOML form as visionzoo 0.1.0 wrote them (a tiny run with a recipe, see
    fixtures/) read back to the config that run used."""
    record = TrainConfig.from_dict(read_config_file(FIXTURES / "args-0.1.0.yaml"))
    assert TrainConfig.from_dict(read_config_file(FIXTURES / "config-0.1.0.toml")) == record
    expected = TrainConfig(
        recipe="mobilenetv4_conv_small.e2400_r224_in1k", model="test_efficientnet", data="/tmp/i20/small",
        val_data="/tmp/i20/small", output="/tmp/i20/run", num_classes=10, img_size=32, scale=(0.5, 1.0),
        aa="rand-m8-inc1-mstd1.0", reprob=0.25, mixup_off_epoch=1, epochs=1, batch_size=20, opt="adamw",
        lr=0.00013975424859373687, lr_base=0.002, lr_base_size=4096, lr_base_scale="sqrt",
        opt_betas=(0.6, 0.995), weight_decay=0.06, ema=0.9, ema_warmup=True, device="cpu", workers=0)
    assert record == expected


@pytest.mark.parametrize("values, message", [
    ({"lr": "0.1"}, "lr takes a number, got '0.1'"), ({"epochs": 2.5}, "epochs takes a whole number"),
    ({"scale": ["a", 1]}, "scale takes two numbers"),
    ({"channels_last": 1}, "channels_last takes true or false"),
])
def test_a_value_of_the_wrong_type_in_a_file_is_one_error_naming_the_option(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)
