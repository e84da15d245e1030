"""Shared fixtures: no test reaches the network."""

import os

import pytest
import torch

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
