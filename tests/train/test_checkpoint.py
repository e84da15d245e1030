"""Checkpoint files: no unpickled code, the random states, one-line errors (their atomic writes:
tests/test_files.py)."""

import pytest
import torch

from visionzoo.train.checkpoint import (
    ResumeError,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
)
from visionzoo.train.config import TrainConfig


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
