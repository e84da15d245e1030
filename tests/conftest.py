"""Shared fixtures: no test reaches the network."""

import os

import pytest
import torch

from tests.digits import write_digits

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # one thread per worker: the workers share the cores


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """An empty, offline Hugging Face home for this test."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """(train folder, val folder) of the digits as 32x32 RGB PNGs."""
    return write_digits(tmp_path_factory.mktemp("digits"))
