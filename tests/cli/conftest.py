"""Fixtures shared by the command-line tests."""

import pytest
import torch
from safetensors.torch import save_file

import visionzoo


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A safetensors file of random test_vit weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "test_vit.safetensors"
    save_file(visionzoo.create_model("test_vit").state_dict(), path)
    return path
