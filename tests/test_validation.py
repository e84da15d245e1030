"""The library's `validate`: a model on a dataset at its sizes, the rows it returns, the crop of each size,
and the errors it raises before reading weights."""

import json
import sys

import pytest
import torch

from visionzoo.errors import InputSizeError, UserError
from visionzoo.validation import RESULT_FIELDS, ValidationRow, format_row, validate, write_results


def test_each_size_takes_the_crop_its_published_figure_was_measured_with():
    import visionzoo
    from visionzoo.validation import data_config_for_size, evaluation_sizes

    cfg = visionzoo.get_pretrained_cfg("mobilenetv4_conv_small.e2400_r224_in1k")
    with torch.device("meta"):
        model = visionzoo.create_model(cfg.name)
    reported = {r.img_size: r for r in cfg.results}
    assert data_config_for_size(model, 224, None, reported).crop_pct == 0.875
    assert data_config_for_size(model, 256, None, reported).crop_pct == 0.95
    assert data_config_for_size(model, 256, None, {}).crop_pct == 0.95  # the tag's test size and crop
    assert data_config_for_size(model, 288, None, reported).crop_pct == 0.875
    assert data_config_for_size(model, 256, 1.0, reported).crop_pct == 1.0
    assert evaluation_sizes(model, None, use_test_size=False) == [224]
    assert evaluation_sizes(model, None, use_test_size=True) == [256]
    assert evaluation_sizes(model, [256, 224, 256], use_test_size=False) == [256, 224]


def test_progress_is_a_bar_on_a_terminal(monkeypatch):
    import io

    from visionzoo.validation import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = Progress(10, "test_vit @ 160", enabled=True)
    progress.update(4, 2, 1)
    progress.bar.refresh()
    progress.close()
    assert "test_vit @ 160:  50%" in terminal.getvalue() and "5/10" in terminal.getvalue()
    assert "top1 50.00" in terminal.getvalue() and "img/s" in terminal.getvalue()


def test_a_forward_pass_that_fails_at_a_size_becomes_a_one_line_error():
    from visionzoo.validation import check_forward

    class Picky(torch.nn.Module):
        def forward(self, x):
            if x.shape[-1] % 3:
                raise RuntimeError("sizes must be multiples of 3\n(a long traceback-like tail)")
            return x

    check_forward(Picky(), 9, torch.device("cpu"), "picky")
    with pytest.raises(InputSizeError, match=r"^picky cannot take 10x10 inputs "
                                             r"\(sizes must be multiples of 3\); choose another size$"):
        check_forward(Picky(), 10, torch.device("cpu"), "picky")


def test_validate_from_python_returns_the_rows_the_command_writes(checkpoint, val_folder, tmp_path):
    seen = []
    result = validate("test_vit.r160_in1k", val_folder, checkpoint_path=checkpoint, img_sizes=[160, 192],
                      batch_size=3, workers=0, device="cpu", on_row=seen.append)
    assert [row.img_size for row in result.rows] == [160, 192] and list(result.rows) == seen
    first = result.rows[0]
    assert isinstance(first, ValidationRow) and first.count == 12 and first.bad_images == 2
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
