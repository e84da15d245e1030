"""An exported file carries its preprocessing, class names and provenance (ONNX metadata_props, a pt2 extra
file), and `predict` / `validate --model FILE` use them with nothing else given."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from safetensors.torch import save_file

import visionzoo
from visionzoo.cli.main import main
from visionzoo.deploy.export import export_model
from visionzoo.deploy.metadata import METADATA_KEY, ExportMetadata, read_metadata
from visionzoo.deploy.runners import load_runner
from visionzoo.deploy.verify import PHOTOS, photo_batch
from visionzoo.errors import UserError

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return visionzoo.create_model("test_efficientnet").eval()


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_round_trip(model, fmt, tmp_path):
    path = tmp_path / f"m.{fmt}"
    result = export_model(model, path, fmt, img_size=96, dynamic_batch=True)
    meta = read_metadata(path)
    assert meta == result.metadata
    cfg = model.pretrained_cfg
    assert (meta.architecture, meta.source, meta.format, meta.precision) == (
        "test_efficientnet", f"test_efficientnet.{cfg.tag}", fmt, "fp32")
    assert meta.input_size == (3, 96, 96) and meta.batch_size is None
    assert (meta.crop_pct, meta.crop_mode, meta.interpolation) == (cfg.crop_pct, cfg.crop_mode,
                                                                   cfg.interpolation)
    assert meta.mean == cfg.mean and meta.std == cfg.std
    assert meta.num_classes == 1000 and meta.label_names[0] == "tench, Tinca tinca"
    assert meta.quantization is None and meta.visionzoo_version == visionzoo.__version__
    # the artifact preprocesses photos as the model does, and gives its answers
    runner, loaded = load_runner(path)
    photos = photo_batch(model, (96, 96))
    with torch.no_grad():
        expected = model(photos)
    assert loaded == meta and torch.equal(runner(photos).argmax(-1), expected.argmax(-1))
    assert loaded.data_config() == visionzoo.data.resolve_data_config(model, img_size=96)


def test_the_record_is_plain_json_under_one_key(model, tmp_path):
    path = tmp_path / "m.onnx"
    export_model(model, path, img_size=64, verify=False)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    record = json.loads(props[METADATA_KEY])
    assert record["input_size"] == [3, 64, 64] and len(record["label_names"]) == 1000


def test_a_new_head_gets_no_borrowed_names(tmp_path):
    model = visionzoo.create_model("test_efficientnet", num_classes=10).eval()
    export_model(model, tmp_path / "m.onnx", img_size=64, verify=False)
    meta = read_metadata(tmp_path / "m.onnx")
    assert meta.num_classes == 10 and meta.label_names is None


def test_files_without_the_record_are_refused_in_one_line(model, tmp_path):
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(plain), dynamo=True, verbose=False)
    with pytest.raises(UserError, match="holds no visionzoo metadata"):
        read_metadata(plain)
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(UserError, match="is not an ONNX file"):
        read_metadata(tmp_path / "junk.onnx")
    with pytest.raises(UserError, match="does not exist"):
        read_metadata(tmp_path / "missing.pt2")
    with pytest.raises(UserError, match="metadata cannot be read"):
        ExportMetadata.from_json('{"architecture": 1}', "x.onnx")


def test_predict_and_validate_take_the_exported_file_alone(model, tmp_path, capsys):
    checkpoint = tmp_path / "w.safetensors"
    save_file(model.state_dict(), checkpoint)
    path = tmp_path / "m.onnx"
    assert main(["export", "test_efficientnet", "--checkpoint", str(checkpoint), "--format", "onnx",
                 "--output", str(path), "--dynamic-batch"]) == 0
    assert read_metadata(path).source == str(checkpoint)
    capsys.readouterr()
    photo = str(PHOTOS / "chelsea.jpg")
    assert main(["predict", photo, "--model", str(path), "--json", "--topk", "2"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert main(["predict", photo, "--model", "test_efficientnet", "--checkpoint", str(checkpoint),
                 "--json", "--topk", "2"]) == 0
    eager = json.loads(capsys.readouterr().out)
    # the file alone preprocesses and names the classes as the eager model with its weights does
    assert [t["label"] for t in from_file[0]["topk"]] == [t["label"] for t in eager[0]["topk"]]
    assert from_file[0]["topk"][0]["prob"] == pytest.approx(eager[0]["topk"][0]["prob"], rel=1e-3)
    assert main(["predict", photo, "--model", str(path), "--checkpoint", str(checkpoint)]) == 2
    assert "exported file with its weights inside" in capsys.readouterr().err
    assert main(["predict", photo, "--model", "test_efficientnet"]) == 2
    assert "give the weights of test_efficientnet: --pretrained" in capsys.readouterr().err
