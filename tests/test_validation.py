"""`visionzoo.validation.validate` from Python, without the command line: the records the CLI writes."""

import json

import pytest
import torch
from safetensors.torch import save_file

import visionzoo
from tests.images import synset_folder
from visionzoo.errors import InputSizeError, UserError
from visionzoo.validation import RESULT_FIELDS, ValidationRow, format_row, validate, write_results


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "test_vit.safetensors"
    save_file(visionzoo.create_model("test_vit").state_dict(), path)
    return path


@pytest.fixture(scope="module")
def val_folder(tmp_path_factory):
    return synset_folder(tmp_path_factory.mktemp("data") / "val", ["n01440764", "n02123045"], per_class=2)


def test_validate_returns_one_row_per_size_with_the_published_figures(checkpoint, val_folder, tmp_path):
    seen = []
    result = validate("test_vit.r160_in1k", val_folder, checkpoint_path=checkpoint, img_sizes=[160, 192],
                      batch_size=3, workers=0, device="cpu", on_row=seen.append)
    assert [row.img_size for row in result.rows] == [160, 192] and list(result.rows) == seen
    first = result.rows[0]
    assert isinstance(first, ValidationRow) and first.count == 4 and first.bad_images == 0
    assert (first.tag, first.weights, first.crop_pct) == ("r160_in1k", str(checkpoint), 0.95)
    assert first.reported_top1 == 40.982 and first.top1_diff == round(first.top1 - 40.982, 4)
    assert result.rows[1].reported_top1 is None  # no published figure at 192
    assert format_row(first).startswith("test_vit.r160_in1k @ 160 (crop_pct 0.95, bicubic): top1 ")
    path = tmp_path / "results.json"
    write_results(path, result)
    document = json.loads(path.read_text())
    assert document == result.to_dict() and list(document["results"][0]) == list(RESULT_FIELDS)


def test_validate_refuses_what_it_cannot_do_before_reading_weights(val_folder, tmp_path):
    missing = tmp_path / "missing.safetensors"  # never read: the checks come first
    with pytest.raises(InputSizeError, match="test_vit takes input sizes that are multiples of 16, not 150"):
        validate("test_vit", val_folder, checkpoint_path=missing, img_sizes=[150], workers=0, device="cpu")
    with pytest.raises(UserError, match="pretrained=True or checkpoint_path"):
        validate("test_vit", val_folder)
    with pytest.raises(UserError, match="amp must be one of bf16, fp16"):
        validate("test_vit", val_folder, checkpoint_path=missing, amp="fp8")
