"""Weight loading without network: Hugging Face cache layouts, local files, adaptation, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import visionzoo
from visionzoo.models.vit import VisionTransformer
from visionzoo.weights import CheckpointError, adapt_in_chans

NAME = "test_vit.r160_in1k"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def source_model():
    torch.manual_seed(0)
    return visionzoo.create_model(NAME).eval()


@pytest.fixture
def safetensors_file(tmp_path, source_model):
    path = tmp_path / "model.safetensors"
    save_file(source_model.state_dict(), path)
    return path


def _write_hf_cache(hub_dir: Path, repo_id: str, state_dict: dict) -> None:
    """The layout huggingface_hub keeps: refs/main names the snapshot that holds the file."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub_dir / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file(state_dict, snapshot / "model.safetensors")


def _run_python(code: str, env_extra: dict) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"), **env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_pretrained_loads_from_offline_hf_cache(tmp_path, source_model):
    home = tmp_path / "hf_home"
    _write_hf_cache(home / "hub", f"timm/{NAME}", source_model.state_dict())
    expected = tmp_path / "expected.safetensors"
    save_file(source_model.state_dict(), expected)
    code = (
        "import json, visionzoo, torch\n"
        "from safetensors.torch import load_file\n"
        f"model = visionzoo.create_model({NAME!r}, pretrained=True)\n"
        f"expected = load_file({str(expected)!r})\n"
        "same = all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())\n"
        "print(json.dumps({'same': same, 'keys': len(expected) == len(model.state_dict())}))\n"
    )
    result = _run_python(code, {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"same": True, "keys": True}


def test_offline_and_not_cached_says_how_to_fetch(tmp_path):
    code = f"import visionzoo\nvisionzoo.create_model({NAME!r}, pretrained=True)\n"
    result = _run_python(code, {"HF_HOME": str(tmp_path / "empty_home"), "HF_HUB_OFFLINE": "1"})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "CheckpointError" in last and f"hf download timm/{NAME}" in last and "checkpoint_path" in last


def test_loading_does_not_pay_for_random_init(monkeypatch, safetensors_file):
    def fail(self):
        raise AssertionError("init_weights ran although weights are loaded")

    monkeypatch.setattr(VisionTransformer, "init_weights", fail)
    model = visionzoo.create_model(NAME, checkpoint_path=safetensors_file)
    assert not any(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("suffix, wrap", [
    (".pth", lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}}),
    (".pt", lambda sd: {"model": sd, "epoch": 3}),
    (".bin", lambda sd: sd),
    (".pth", lambda sd: {"state_dict_ema": sd, "state_dict": {}}),
])
def test_torch_checkpoints_unwrap_containers(tmp_path, source_model, suffix, wrap):
    path = tmp_path / f"checkpoint{suffix}"
    torch.save(wrap(source_model.state_dict()), path)
    model = visionzoo.create_model(NAME, checkpoint_path=path)
    for key, value in source_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


class _Payload:
    pass


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _Payload()}, path)
    with pytest.raises(CheckpointError, match="holds pickled Python objects") as info:
        visionzoo.create_model(NAME, checkpoint_path=path)
    message = str(info.value)
    assert "\n" not in message and "will not execute it" in message and "safetensors" in message
    assert "weights_only=True" not in message and "Re-running" not in message  # not torch's own hint


def test_truncated_file_gives_one_line_error(tmp_path, safetensors_file):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(safetensors_file.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as info:
        visionzoo.create_model(NAME, checkpoint_path=truncated)
    assert "\n" not in str(info.value)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        visionzoo.create_model(NAME, checkpoint_path=tmp_path / "nope.safetensors")
    odd = tmp_path / "weights.npz"
    odd.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unsupported checkpoint type"):
        visionzoo.create_model(NAME, checkpoint_path=odd)


def test_wrong_keys_are_listed(tmp_path, source_model):
    state = dict(source_model.state_dict())
    state["blocks.0.attn.qkv.weight_renamed"] = state.pop("blocks.0.attn.qkv.weight")
    path = tmp_path / "renamed.safetensors"
    save_file(state, path)
    with pytest.raises(CheckpointError) as info:
        visionzoo.create_model(NAME, checkpoint_path=path)
    message = str(info.value)
    assert "missing keys: blocks.0.attn.qkv.weight" in message
    assert "unexpected keys: blocks.0.attn.qkv.weight_renamed" in message


def test_wrong_shapes_are_listed(tmp_path):
    other = visionzoo.create_model("test_vit", embed_dim=32, num_heads=2)
    path = tmp_path / "narrow.safetensors"
    save_file(other.state_dict(), path)
    with pytest.raises(CheckpointError, match=r"shape mismatches: blocks.0.attn.proj.bias: "
                                              r"checkpoint \(32,\) vs model \(64,\)"):
        visionzoo.create_model(NAME, checkpoint_path=path)


def test_other_num_classes_reinitialises_the_classifier(safetensors_file, source_model):
    with pytest.warns(UserWarning, match="initialised afresh for 10"):
        model = visionzoo.create_model(NAME, checkpoint_path=safetensors_file, num_classes=10)
    assert model.head.weight.shape == (10, 64) and torch.isfinite(model.head.weight).all()
    assert torch.equal(model.blocks[0].attn.qkv.weight, source_model.blocks[0].attn.qkv.weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        headless = visionzoo.create_model(NAME, checkpoint_path=safetensors_file, num_classes=0)
    assert headless(torch.randn(1, 3, 160, 160)).shape == (1, 64)


def test_in_chans_adapts_the_first_conv(safetensors_file, source_model):
    rgb = source_model.patch_embed.proj.weight
    gray = visionzoo.create_model(NAME, checkpoint_path=safetensors_file, in_chans=1)
    torch.testing.assert_close(gray.patch_embed.proj.weight, rgb.sum(dim=1, keepdim=True))
    four = visionzoo.create_model(NAME, checkpoint_path=safetensors_file, in_chans=4)
    torch.testing.assert_close(four.patch_embed.proj.weight[:, :3], rgb * 3 / 4)
    torch.testing.assert_close(four.patch_embed.proj.weight[:, 3], rgb[:, 0] * 3 / 4)
    # a constant grey image gives the same first-layer response in RGB and in 1 channel
    assert adapt_in_chans(rgb, 3) is rgb


def test_other_img_size_resamples_position_embedding(safetensors_file):
    model = visionzoo.create_model(NAME, checkpoint_path=safetensors_file, img_size=224).eval()
    assert model.pos_embed.shape == (1, 1 + 14 * 14, 64)  # class token + 14x14 patches
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_fixed_size_model_rejects_other_input_size_clearly():
    model = visionzoo.create_model("vit_betwixt_patch16_reg4_gap_256", depth=1)
    with pytest.raises(ValueError, match="does not match this model's img_size 256x256"):
        model(torch.randn(1, 3, 224, 224))


def test_no_network_is_said_at_once_in_one_line(tmp_path):
    import socket

    with socket.socket() as probe:  # a port on this machine that nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    code = f"import visionzoo\nvisionzoo.create_model({NAME!r}, pretrained=True)\n"
    env = {"HF_HOME": str(tmp_path / "empty_home"), "HF_HUB_OFFLINE": "0",
           "HF_ENDPOINT": f"http://127.0.0.1:{closed}"}
    result = _run_python(code, env)
    assert result.returncode != 0
    assert "Retry" not in result.stderr and "thrown while requesting" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"(no network: 127.0.0.1:{closed} cannot be reached" in last and "HF_HUB_OFFLINE" not in last


def test_non_finite_weights_are_refused_where_loaded(tmp_path, source_model):
    state = {k: v.clone() for k, v in source_model.state_dict().items()}
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key].view(-1)[0] = float("nan")
    path = tmp_path / "diverged.safetensors"
    save_file(state, path)
    expected = f"non-finite weights .* in 1 of {len(state)} tensors, first {key}"
    with pytest.raises(CheckpointError, match=expected):
        visionzoo.create_model(NAME, checkpoint_path=path)
