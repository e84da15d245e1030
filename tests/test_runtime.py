"""Device and precision names: parsed once, for the library and the command line."""

import pytest
import torch

from visionzoo.errors import UserError
from visionzoo.runtime import PRECISIONS, precision_dtype, resolve_device


def test_device_names(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="unknown device 'gpu0': use cpu or cuda"):
        resolve_device("gpu0")
    with pytest.raises(UserError, match="only cpu and cuda are supported"):
        resolve_device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA device; use cpu"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None, local_rank=2) == torch.device("cuda", 2)  # a torchrun rank's own GPU
    assert resolve_device("cuda:1", local_rank=2) == torch.device("cuda", 1)


def test_precision_names():
    assert [precision_dtype(p) for p in PRECISIONS] == [torch.float32, torch.bfloat16, torch.float16]
    with pytest.raises(UserError, match="precision must be one of fp32, bf16, fp16, got 'fp8'"):
        precision_dtype("fp8")
