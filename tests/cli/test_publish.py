"""`visionzoo publish`: the model folder and its card (the Hub's front matter, parsed back: valid YAML, the
`model-index` schema, results equal to the validate files'), the refusals, and `--push` without network or
token (one line) and with a stand-in Hub client (the folder uploaded, the URL printed)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import visionzoo
from tests.images import synset_folder
from visionzoo.cli.main import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def evaluated(checkpoint, tmp_path_factory):
    """A validate results file of test_vit (random weights) on two ImageNet classes, at two sizes."""
    root = tmp_path_factory.mktemp("publish")
    data = synset_folder(root / "val", ["n01440764", "n02123045"], per_class=2)
    results = root / "val.json"
    assert main(["validate", "--model", "test_vit", "--checkpoint", str(checkpoint), "--data", str(data),
                 "--img-size", "64", "160", "--workers", "0", "--results-file", str(results)]) == 0
    return results


def _front_matter(card: Path) -> dict:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_card_front_matter_is_the_hubs_with_the_validate_results(checkpoint, evaluated, tmp_path):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    output = tmp_path / "model"
    assert main(["publish", "test_vit.r160_in1k", "--checkpoint", str(checkpoint), "--output", str(output),
                 "--results", str(evaluated), "--dataset", "imagenet-1k-subset"]) == 0
    meta = _front_matter(output / "README.md")
    assert (meta["library_name"], meta["license"], meta["pipeline_tag"]) == \
        ("timm", "apache-2.0", "image-classification")
    assert "visionzoo" in meta["tags"] and meta["datasets"] == ["imagenet-1k", "imagenet-1k-subset"]
    (entry,) = meta["model-index"]
    assert entry["name"] == "model"
    for result in entry["results"]:  # the Hub's schema: task.type, dataset.type/name, metrics[].type/value
        assert result["task"]["type"] == "image-classification"
        assert result["dataset"]["type"] == result["dataset"]["name"] == "imagenet-1k-subset"
        assert all({"type", "value"} <= set(metric) for metric in result["metrics"])
    name, results = model_index_to_eval_results(meta["model-index"])
    rows = json.loads(evaluated.read_text())["results"]
    measured = [(r.metric_args["img_size"], r.metric_type, r.metric_value) for r in results]
    assert measured == [(row["img_size"], kind, row[key]) for row in rows
                        for kind, key in (("accuracy", "top1"), ("top_5_accuracy", "top5"))]
    assert ModelCard.load(output / "README.md").data.model_name == name == "model"
    # the folder itself: the tag's ImageNet classes named as the reference names them
    config = json.loads((output / "config.json").read_text())
    assert config["label_names"][0] == "n01440764"
    assert config["label_descriptions"]["n01440764"].startswith("tench")
    assert visionzoo.create_model(str(output), pretrained=True).pretrained_cfg.label_space == "imagenet-1k"


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing.json", "--results .*missing.json does not exist"),
    (lambda tmp: _write(tmp / "val.csv", "model,top1\n"), "give the .json file of `visionzoo validate"),
    (lambda tmp: _write(tmp / "other.json", json.dumps({"model": "test_byobnet", "data": "x", "results": [
        {"img_size": 1, "crop_pct": 1, "interpolation": "bicubic", "top1": 1, "top5": 1, "count": 1}]})),
     r"measured test_byobnet \(test_byobnet\), not this test_vit model"),
    (lambda tmp: _write(tmp / "broken.json", "{"), "is not a results file of `visionzoo validate`"),
])
def test_results_that_are_not_this_models_are_refused(checkpoint, tmp_path, capsys, make, message):
    import re

    results = make(tmp_path)
    assert main(["publish", "test_vit", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "out"),
                 "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "out").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_an_existing_output_is_kept_unless_overwrite(checkpoint, tmp_path, capsys):
    output = tmp_path / "model"
    args = ["publish", "test_vit", "--checkpoint", str(checkpoint), "--output", str(output)]
    assert main(args) == 0
    card = (output / "README.md").read_text()
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--license", "mit"]) == 0
    assert _front_matter(output / "README.md")["license"] == "mit"
    assert card != (output / "README.md").read_text()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("env, message", [
    ({"HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_test"}, "cannot push to me/pets: HF_HUB_OFFLINE is set"),
    ({"HF_HUB_OFFLINE": "0"}, "cannot push to me/pets: no Hugging Face token; run `hf auth login`"),
    ({"HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_test", "HF_ENDPOINT": "http://127.0.0.1:{port}"},
     "cannot push to http://127.0.0.1:{port}/me/pets: .*(refused|connect)"),
])
def test_push_without_network_or_token_is_one_line(checkpoint, tmp_path, env, message):
    import re

    port = _closed_port()
    env = {k: v.format(port=port) for k, v in env.items()}
    source = tmp_path / "source"
    visionzoo.save_model_folder(visionzoo.create_model("test_vit", checkpoint_path=checkpoint), source)
    home = tmp_path / "home"  # no stored token
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": SRC, "HF_HOME": str(home),
                "OMP_NUM_THREADS": "1", **env}
    done = subprocess.run([sys.executable, "-m", "visionzoo", "publish", str(source), "--output",
                           str(tmp_path / "out"), "--push", "me/pets"], env=full_env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count("\n") == 1 and re.search(message.format(port=port), done.stderr), done.stderr
    assert f"the folder is written at {tmp_path / 'out'}" in done.stderr
    assert (tmp_path / "out" / "config.json").is_file()


def test_push_uploads_the_folder_and_prints_the_url(checkpoint, tmp_path, monkeypatch, capsys):
    import huggingface_hub
    from huggingface_hub import constants

    calls = []

    class StandInApi:  # the Hub's client, recording what it was asked
        def __init__(self, token=None, **kwargs):
            calls.append(("token", token))

        def create_repo(self, repo_id, exist_ok=False):
            calls.append(("create_repo", repo_id, exist_ok))
            return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

        def upload_folder(self, repo_id, folder_path, commit_message):
            calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))

    monkeypatch.setattr(huggingface_hub, "HfApi", StandInApi)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    output = tmp_path / "out"
    assert main(["publish", "test_vit", "--checkpoint", str(checkpoint), "--output", str(output),
                 "--push", "me/pets"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {output}", "pushed to https://huggingface.co/me/pets"]
    assert calls == [("token", "hf_test"), ("create_repo", "me/pets", True),
                     ("upload_folder", "me/pets", ["README.md", "config.json", "model.safetensors"])]
    assert "visionzoo.create_model('hf-hub:me/pets', pretrained=True)" in (output / "README.md").read_text()


def test_a_published_tag_cites_its_source_weights(checkpoint, tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = tmp_path / "hub" / "models--timm--test_vit.r160_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(checkpoint.read_bytes())
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["publish", "test_vit.r160_in1k", "--output", str(tmp_path / "out")]) == 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert "- **Source:** published weights timm/test_vit.r160_in1k" in card
    assert _front_matter(tmp_path / "out" / "README.md")["license"] == "apache-2.0"
    published = visionzoo.create_model(str(tmp_path / "out"), pretrained=True).state_dict()
    original = visionzoo.create_model("test_vit", checkpoint_path=checkpoint).state_dict()
    assert all(torch.equal(published[k], v) for k, v in original.items())
