"""Shared fixtures: no test reaches the network."""

import os

import pytest
import torch
from safetensors.torch import save_file

import visionzoo
from tests.digits import write_digits
from tests.images import synset_folder, write_truncated_jpeg

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
    """(train folder, val folder) of the digits as 32x32 RGB PNGs, in folders '0'..'9'."""
    return write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A safetensors file of random test_vit weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "test_vit.safetensors"
    save_file(visionzoo.create_model("test_vit").state_dict(), path)
    return path


VAL_SYNSETS = ["n01440764", "n02123045", "n07920052", "n04485082"]


@pytest.fixture(scope="module")
def val_folder(tmp_path_factory):
    """Four synset folders of three images each, plus an empty file and a truncated JPEG."""
    root = synset_folder(tmp_path_factory.mktemp("data") / "val", VAL_SYNSETS, per_class=3)
    (root / "n02123045" / "zero.jpg").write_bytes(b"")
    write_truncated_jpeg(root / "n07920052" / "cut.jpg")
    return root
