"""Config round trips, EMA, checkpoint files and the data order: the pieces of the training engine."""

import os

import pytest
import torch

from visionzoo.train.checkpoint import (
    ResumeError,
    atomic_write,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
)
from visionzoo.train.config import ConfigError, TrainConfig, read_config_file
from visionzoo.train.data import EpochBatchSampler, SeededSamples
from visionzoo.train.ema import ModelEma


# ---- config --------------------------------------------------------------------------------------------
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
    with pytest.raises(ConfigError, match="--smoothing must be in"):
        TrainConfig(smoothing=1.5)
    with pytest.raises(ConfigError, match="--warmup-epochs \\+ cooldown-epochs|warmup_epochs"):
        TrainConfig(epochs=2, warmup_epochs=3)
    (tmp_path / "bad.yaml").write_text("lr: [0.1\n")
    with pytest.raises(ConfigError, match="cannot read config file .*bad.yaml"):
        read_config_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="must end in .yaml"):
        (tmp_path / "x.json").write_text("{}")
        read_config_file(tmp_path / "x.json")


# ---- EMA -----------------------------------------------------------------------------------------------
def test_ema_update_and_warmup():
    model = torch.nn.BatchNorm1d(2)
    ema = ModelEma(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(3.0)
    model.num_batches_tracked.fill_(7)
    ema.update(model, step=1)
    assert ema.module.weight.tolist() == pytest.approx([0.9 * 1 + 0.1 * 3] * 2)
    assert ema.module.num_batches_tracked.item() == 7  # integer buffers are copied
    warm = ModelEma(model, decay=0.9999, warmup=True, gamma=1.0, power=0.75)
    assert warm.decay_at(1) == pytest.approx(1 - 2 ** -0.75)
    assert warm.decay_at(10**9) == 0.9999


# ---- checkpoint files ----------------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write(target, lambda tmp: open(tmp, "w").write("old"))

    def half_write(tmp):
        open(tmp, "w").write("half")
        raise KeyboardInterrupt  # a kill while writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_write)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]  # no temporary left behind


def test_state_loads_without_unpickling_code_and_restores_rng(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    state = {"config": TrainConfig().to_dict(), "rng": [rng_state()], "model": {"w": torch.ones(2)}}
    save_state(tmp_path, state)
    expected = (torch.rand(3), random.random(), np.random.rand())
    loaded = load_state(tmp_path)  # torch.load(weights_only=True) inside
    torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    set_rng_state(loaded["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert (random.random(), np.random.rand()) == expected[1:]


def test_corrupt_or_foreign_checkpoints_give_one_line_errors(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ResumeError, match="cannot read training checkpoint .*corrupt"):
        load_state(tmp_path)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ResumeError, match="not a visionzoo training checkpoint"):
        load_state(tmp_path / "other.pt")
    with pytest.raises(ResumeError, match="no training checkpoint at"):
        load_state(tmp_path / "missing")


# ---- data order ----------------------------------------------------------------------------------------
def test_epoch_batches_split_over_ranks_and_resume_mid_epoch():
    single = list(EpochBatchSampler(103, 8, seed=1, epoch=2))
    assert len(single) == 12 and all(len(b) == 8 for b in single)  # the partial batch is dropped
    rank0 = list(EpochBatchSampler(103, 4, seed=1, epoch=2, rank=0, world_size=2))
    rank1 = list(EpochBatchSampler(103, 4, seed=1, epoch=2, rank=1, world_size=2))
    assert [a + b for a, b in zip(rank0, rank1, strict=True)] == single  # the same global batches
    assert list(EpochBatchSampler(103, 8, seed=1, epoch=2, start=5)) == single[5:]
    assert list(EpochBatchSampler(103, 8, seed=1, epoch=3)) != single
    assert {e for batch in single for e, _ in batch} == {2}


class _RandomItem(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, index):
        return torch.rand(2)


@pytest.mark.parametrize("workers", [0, 2])
def test_augmentation_randomness_depends_on_the_sample_not_the_worker(workers):
    data = SeededSamples(_RandomItem(), seed=5)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    loader = torch.utils.data.DataLoader(data, batch_sampler=EpochBatchSampler(16, 4, 5, 0),
                                         num_workers=workers, generator=torch.Generator())
    batches = list(loader)
    assert torch.equal(torch.get_rng_state(), before)  # the training RNG is untouched
    direct = torch.stack([data[(0, i)] for batch in EpochBatchSampler(16, 4, 5, 0) for _, i in batch])
    assert torch.equal(torch.cat(batches), direct)
