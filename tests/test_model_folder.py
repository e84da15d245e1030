"""Model folders: written by `save_model_folder`, read back by every name form (a path, local-dir:,
hf-hub: from a Hub cache the test builds), explicit arguments over the folder's, the refusals, and writes
that leave the old folder or the new one, never a torn one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import visionzoo
from tests.images import write_image
from tests.reference import randomise_
from visionzoo import publish as publish_module
from visionzoo.cli.main import main
from visionzoo.data import resolve_data_config
from visionzoo.data.label_spaces import get_label_space, model_label_names
from visionzoo.errors import (
    CheckpointError,
    OptionError,
    OutputError,
    UnknownModelError,
    UserError,
    VisionzooError,
)
from visionzoo.model_folder import parse_config
from visionzoo.publish import model_config

NAMES = ("cat", "dog", "bird")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _model(arch: str = "test_byobnet", **kwargs):
    model = visionzoo.create_model(arch, **kwargs).eval()
    randomise_(model)
    return model


def _equal_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """test_byobnet with a 3-class head for 48 px inputs (its tag's size is 160), saved with class names."""
    model = _model(num_classes=3, img_size=48)
    path = tmp_path_factory.mktemp("folders") / "pets"
    visionzoo.save_model_folder(model, path, label_names=NAMES)
    return path, model


def test_a_saved_folder_has_the_reference_layout(folder):
    path, model = folder
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((path / "config.json").read_text())
    assert list(config) == ["architecture", "num_classes", "num_features", "global_pool", "label_names",
                            "pretrained_cfg"]
    assert (config["architecture"], config["num_classes"], config["num_features"]) == ("test_byobnet", 3, 256)
    assert config["label_names"] == list(NAMES)
    cfg = config["pretrained_cfg"]
    assert cfg["input_size"] == [3, 48, 48] and cfg["num_classes"] == 3 and cfg["tag"] == "r160_in1k"
    assert (cfg["crop_pct"], cfg["interpolation"], cfg["first_conv"], cfg["classifier"]) == \
        (0.95, "bicubic", "stem.conv", "head.fc")
    assert not list(path.parent.glob(".pets*"))  # no temporary folder left beside it


@pytest.mark.parametrize("form", ["path", "local-dir", "relative"])
def test_every_name_form_loads_the_folder(folder, form, monkeypatch):
    path, model = folder
    if form == "relative":
        monkeypatch.chdir(path.parent)
    name = {"path": str(path), "local-dir": f"local-dir:{path}", "relative": path.name}[form]
    loaded = visionzoo.create_model(name, pretrained=True)
    assert _equal_weights(loaded, model)
    cfg = loaded.pretrained_cfg
    assert (loaded.num_classes, cfg.label_names, model_label_names(cfg)) == (3, NAMES, NAMES)
    assert loaded.default_img_size == (48, 48) and resolve_data_config(loaded).img_size == (48, 48)
    # the reference's semantics: without pretrained=True, the folder's model with fresh weights
    fresh = visionzoo.create_model(name)
    assert fresh.num_classes == 3 and not _equal_weights(fresh, model)


def test_explicit_arguments_override_the_folder(folder):
    path, _ = folder
    with pytest.warns(UserWarning, match="initialised afresh for 5"):
        model = visionzoo.create_model(str(path), pretrained=True, num_classes=5, img_size=64)
    assert model.num_classes == 5 and model.pretrained_cfg.label_names is None  # another head's names go
    assert model.default_img_size == (64, 64)
    assert visionzoo.create_model(str(path), global_pool="max").config.global_pool == "max"


def test_a_checkpoint_in_a_folder_brings_the_folder_description(folder, tmp_path):
    path, model = folder
    loaded = visionzoo.create_model("test_byobnet", checkpoint_path=path / "model.safetensors")
    assert loaded.pretrained_cfg.label_names == NAMES and loaded.default_img_size == (48, 48)
    with pytest.raises(CheckpointError, match="says it holds a test_byobnet model, not test_vit"):
        visionzoo.create_model("test_vit", checkpoint_path=path / "model.safetensors")
    # a copy of the file alone keeps the class names it records in its metadata
    lone = tmp_path / "lone.safetensors"
    save_file(model.state_dict(), lone, metadata={"label_names": json.dumps(list(NAMES))})
    assert visionzoo.create_model("test_byobnet", checkpoint_path=lone).pretrained_cfg.label_names == NAMES


def test_a_fixed_size_model_is_built_at_the_folder_size(tmp_path):
    model = _model("test_vit", num_classes=2, img_size=32)
    visionzoo.save_model_folder(model, tmp_path / "vit", label_names=["no", "yes"])
    loaded = visionzoo.create_model(f"local-dir:{tmp_path / 'vit'}", pretrained=True).eval()
    assert loaded.default_img_size == (32, 32) and _equal_weights(loaded, model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def _write(path: Path, config, weights_from=None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    if weights_from is not None:
        save_file(weights_from.state_dict(), path / "model.safetensors")
    return path


GOOD = {"architecture": "test_byobnet", "num_classes": 3, "pretrained_cfg": {"input_size": [3, 48, 48]}}


@pytest.mark.parametrize("config, error, message", [
    ({**GOOD, "architecture": "vit_huge_dragon"}, UnknownModelError,
     "holds a 'vit_huge_dragon' model, an architecture visionzoo does not have"),
    ("{not json", CheckpointError, r"config.json is not valid JSON \(line 1, column 2"),
    ("[1, 2]", CheckpointError, "expected a JSON object, got list"),
    ({"num_classes": 3}, CheckpointError, "has no 'architecture'"),
    ({**GOOD, "label_names": ["a", "b"]}, CheckpointError, "2 label_names for 3 classes"),
    ({**GOOD, "label_names": ["a", "a", "b"]}, CheckpointError, "'a' appears more than once"),
    ({**GOOD, "pretrained_cfg": {"input_size": [48, 48]}}, CheckpointError, "input_size must be"),
    ({**GOOD, "pretrained_cfg": {"interpolation": "sinc"}}, CheckpointError, "interpolation must be one of"),
    ({**GOOD, "pretrained_cfg": {"crop_pct": "full"}}, CheckpointError, "crop_pct must be a number"),
    ({**GOOD, "num_classes": -1}, CheckpointError, "num_classes must be an integer of at least 0"),
    ({**GOOD, "model_args": {"depth_multiplier": 2}}, OptionError,
     "records model_args visionzoo cannot apply: test_byobnet has no option 'depth_multiplier'"),
])
def test_a_bad_folder_is_refused_in_one_line(tmp_path, config, error, message):
    path = _write(tmp_path / "bad", config)
    with pytest.raises(error) as caught:
        visionzoo.create_model(str(path))
    assert "\n" not in str(caught.value) and re.search(message, str(caught.value)), caught.value


def test_missing_folders_files_and_weights_are_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    cases = [
        (str(tmp_path / "empty"), CheckpointError, "holds no config.json, so it is not a model folder"),
        ("runs/nope/best", UnknownModelError, "'runs/nope/best' is neither a registered model nor an exis"),
        ("someone/model", UnknownModelError, "for a Hugging Face Hub repository write hf-hub:someone/model"),
        (f"local-dir:{tmp_path / 'nope'}", UserError, "does not exist"),
        ("local-dir:", UserError, "names nothing after 'local-dir:'"),
    ]
    for name, error, message in cases:
        with pytest.raises(error, match=re.escape(message)):
            visionzoo.create_model(name)
    no_weights = _write(tmp_path / "no_weights", GOOD)
    with pytest.raises(CheckpointError, match="has a config.json but no weights"):
        visionzoo.create_model(str(no_weights), pretrained=True)
    image = write_image(tmp_path / "a.png")
    for args in (["predict", str(image), "--model", str(tmp_path / "empty")],
                 ["validate", "--model", str(no_weights), "--data", str(tmp_path)],
                 ["export", str(tmp_path / "empty"), "--format", "onnx", "--output",
                  str(tmp_path / "x.onnx")],
                 ["benchmark", "--model", str(tmp_path / "empty")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"visionzoo {args[0]}: error: " in err, err


def test_saving_leaves_the_old_folder_or_the_new_one(folder, tmp_path, monkeypatch):
    _, model = folder
    target = tmp_path / "model"
    visionzoo.save_model_folder(model, target, label_names=NAMES)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(UserError, match="already exists; give another folder, or overwrite it"):
        visionzoo.save_model_folder(model, target)

    def fail_half_way(path, _model):
        path.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish_module, "_save_weights", fail_half_way)
    for overwrite in (True, False):
        where = target if overwrite else tmp_path / "new"
        # one line naming the folder (an OutputError is an OSError)
        with pytest.raises(OutputError, match=f"cannot write {where}: no space left on device"):
            visionzoo.save_model_folder(model, where, overwrite=overwrite)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # the old folder, untouched
    assert not (tmp_path / "new").exists()  # and no new folder that looks complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary leftovers either


def test_features_only_backbones_cannot_be_saved(tmp_path):
    backbone = visionzoo.create_model("test_byobnet", features_only=True)
    with pytest.raises(UserError, match="features_only backbone"):
        visionzoo.save_model_folder(backbone, tmp_path / "x")


# ---- the Hub --------------------------------------------------------------------------------------------
def _hub_cache(hub: Path, repo_id: str, files: dict[str, bytes | Path]) -> None:
    """huggingface_hub's cache layout: models--org--name/snapshots/<commit>/..., refs/main -> commit."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, content in files.items():
        (snapshot / name).write_bytes(content.read_bytes() if isinstance(content, Path) else content)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub


def test_hf_hub_names_load_from_the_cache(folder, offline_hub, tmp_path):
    path, model = folder
    _hub_cache(offline_hub, "someone/pets", {"config.json": path / "config.json",
                                              "model.safetensors": path / "model.safetensors"})
    for name in ("hf-hub:someone/pets", f"hf-hub:someone/pets@{COMMIT}", "hf_hub:someone/pets"):
        loaded = visionzoo.create_model(name, pretrained=True)
        assert _equal_weights(loaded, model) and loaded.pretrained_cfg.label_names == NAMES
        assert loaded.pretrained_cfg.hf_hub_id == "someone/pets" and loaded.default_img_size == (48, 48)
    # the reference's save_for_hf writes pytorch_model.bin by default: read without unpickling code
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    _hub_cache(offline_hub, "someone/bin", {"config.json": path / "config.json",
                                             "pytorch_model.bin": tmp_path / "pytorch_model.bin"})
    assert _equal_weights(visionzoo.create_model("hf-hub:someone/bin", pretrained=True), model)
    missing = r"hf-hub:someone/missing: config.json is not in the Hugging Face cache and cannot be downloaded"
    with pytest.raises(CheckpointError, match=missing + r" \(HF_HUB_OFFLINE is set\)"):
        visionzoo.create_model("hf-hub:someone/missing")
    with pytest.raises(UserError, match="is not a Hugging Face Hub repository id"):
        visionzoo.create_model("hf-hub:not/a/repo/id")


def test_hf_hub_folder_in_the_command_line(folder, tmp_path):
    """`predict --model hf-hub:...` in a fresh process with HF_HOME and HF_HUB_OFFLINE=1, as a user runs
    it."""
    import subprocess
    import sys

    path, model = folder
    _hub_cache(tmp_path / "home" / "hub", "someone/pets", {"config.json": path / "config.json",
                                                           "model.safetensors": path / "model.safetensors"})
    image = write_image(tmp_path / "a.png", (60, 50))
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {"PYTHONPATH": src, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "visionzoo", "predict", str(image), "--model",
                           "hf-hub:someone/pets", "--json"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    top = json.loads(done.stdout)[0]["topk"]
    assert [t["label"] for t in top] == [NAMES[t["index"]] for t in top] and len(top) == 3


# ---- label spaces travel with a folder -----------------------------------------------------------------
def test_an_in12k_tag_prints_its_names(tmp_path, capsys):
    name = "mobilenetv4_conv_medium.e180_r384_in12k"
    torch.manual_seed(0)
    model = visionzoo.create_model(name).eval()
    weights = tmp_path / "in12k.safetensors"
    save_file(model.state_dict(), weights)
    image = write_image(tmp_path / "a.png", (400, 380))
    assert main(["predict", str(image), "--model", name, "--checkpoint", str(weights), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["topk"]
    names = get_label_space("imagenet-12k").names()
    assert len(top) == 5 and all(t["label"] == names[t["index"]] for t in top)
    # its folder config names its classes as the reference does: synsets, with their descriptions
    document = model_config(model)
    assert document["label_names"] == list(get_label_space("imagenet-12k").synsets())
    assert list(document["label_descriptions"].values()) == list(names)
    _, cfg, _ = parse_config(json.loads(json.dumps(document)), "config.json")
    assert cfg.label_space == "imagenet-12k" and model_label_names(cfg) == names


def test_a_reference_config_without_names_takes_its_tag_label_space():
    _, cfg, _ = parse_config({"architecture": "test_vit", "num_classes": 1000,
                              "pretrained_cfg": {"tag": "r160_in1k", "input_size": [3, 160, 160]}}, "x")
    assert cfg.label_space == "imagenet-1k" and model_label_names(cfg)[0].startswith("tench")


def test_every_error_here_is_a_visionzoo_error():
    # the command line prints these as one line: anything else would be a traceback
    for error in (CheckpointError, OptionError, UnknownModelError, UserError):
        assert issubclass(error, VisionzooError)


def test_export_and_benchmark_use_the_folder_size(folder, tmp_path, capsys):
    path, _ = folder
    output = tmp_path / "pets.pt2"
    assert main(["export", str(path), "--format", "pt2", "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {output} (pt2, 48x48, batch 1;" in out and "verification ok" in out
    assert main(["benchmark", "--model", f"local-dir:{path}", "--batch-size", "1", "--runs", "1",
                 "--warmup", "0", "--threads", "1"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"local-dir:{path}"))
    assert row.split()[1:3] == ["48", "1"]


def test_conflicting_options_are_refused_in_one_line(folder, tmp_path, capsys):
    path, model = folder
    with pytest.raises(UserError, match="pretrained=True and checkpoint_path both give the weights"):
        visionzoo.create_model(str(path), pretrained=True, checkpoint_path=path / "model.safetensors")
    with pytest.raises(UserError, match="2 label names for a model of 3 classes"):
        visionzoo.save_model_folder(model, tmp_path / "x", label_names=["a", "b"])
    with pytest.raises(UserError, match="give one label description per label name"):
        visionzoo.save_model_folder(model, tmp_path / "x", label_names=NAMES, label_descriptions=["a"])
    assert not (tmp_path / "x").exists()
    image = write_image(tmp_path / "a.png")
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(image), "--model", str(path), "--pretrained", "--checkpoint",
              str(path / "model.safetensors")])
    assert exited.value.code == 2
    assert "argument --checkpoint: not allowed with argument --pretrained" in capsys.readouterr().err
