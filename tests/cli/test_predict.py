"""`visionzoo predict`: top-K classes per image, as text or JSON; one-line errors."""

import json

import torch
from PIL import Image

import visionzoo
from tests.images import write_image
from visionzoo.cli.main import main
from visionzoo.data import create_transform, resolve_data_config


def test_json_lists_topk_per_image(capsys, tmp_path, checkpoint):
    images = [write_image(tmp_path / "a.png", (90, 60)), write_image(tmp_path / "b.jpg", (50, 70), mode="L")]
    assert main(["predict", *map(str, images), "--model", "test_vit", "--checkpoint", str(checkpoint),
                 "--topk", "3", "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    assert [p["image"] for p in predictions] == [str(p) for p in images]
    for prediction in predictions:
        top = prediction["topk"]
        assert len(top) == 3 and set(top[0]) == {"index", "label", "prob"}
        assert top[0]["prob"] >= top[1]["prob"] >= top[2]["prob"] > 0
        assert top[0]["label"] == visionzoo.data.imagenet_class_names()[top[0]["index"]]


def test_text_output_matches_the_model(capsys, tmp_path, checkpoint):
    image = write_image(tmp_path / "a.png", (90, 60))
    assert main(["predict", str(image), "--model", "test_vit", "--checkpoint", str(checkpoint),
                 "--topk", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(image) and len(lines) == 3
    model = visionzoo.create_model("test_vit", checkpoint_path=checkpoint).eval()
    with torch.no_grad():
        best = model(create_transform(resolve_data_config(model))(Image.open(image))[None]).argmax().item()
    assert lines[1].endswith(f"{visionzoo.data.imagenet_class_names()[best]} ({best})")


def test_bad_images_are_one_line_errors(capsys, tmp_path, checkpoint):
    (tmp_path / "empty.jpg").write_bytes(b"")
    cases = ((tmp_path / "missing.png", "does not exist"), (tmp_path / "empty.jpg", "cannot read image"))
    for path, message in cases:
        assert main(["predict", str(path), "--model", "test_vit", "--checkpoint", str(checkpoint)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("visionzoo predict: error: ") and message in err


def test_pretrained_or_checkpoint_is_required(capsys, tmp_path):
    image = write_image(tmp_path / "a.png")
    assert main(["predict", str(image), "--model", "test_vit"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give the weights of test_vit: --pretrained" in err
