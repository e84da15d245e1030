"""`validate --eval-set`: each set's label rule checked exactly with a model whose predictions the test
decides (tests/oracle.py), the refusals of layouts that are not the set's, the published figures, NLL and ECE
against a direct computation, per-class and reference-format files."""

import csv
import json
import math
import re

import numpy as np
import pytest
import torch

from tests import oracle
from tests.oracle import write_coded_image
from visionzoo.cli.main import main
from visionzoo.data.eval_sets import set_classes
from visionzoo.data.imagenet import imagenet_class_names, imagenet_synsets
from visionzoo.errors import DataError, UserError
from visionzoo.evaluation import CALIBRATION_BINS
from visionzoo.validation import validate

MODEL = "test_vit.r160_in1k"  # its published figures: ImageNet-A top-1 2.280 at 160, among others
SIZE = 160  # the size of its published figures


def _logits(*ranked: int, scale: float = 1.0) -> torch.Tensor:
    """1000 logits whose best classes are `ranked`, in that order."""
    logits = torch.zeros(1000)
    for place, label in enumerate(ranked):
        logits[label] = scale * (len(ranked) - place)
    return logits


def _run(folder, eval_set, **options):
    options.setdefault("img_sizes", [SIZE])
    return validate(MODEL, folder, checkpoint_path="unused.safetensors", eval_set=eval_set, workers=0,
                    batch_size=2, device="cpu", **options)


def _val_name(number: int) -> str:
    return f"ILSVRC2012_val_{number:08d}.JPEG"


# ReaL sets of the first val images (src/visionzoo/data/eval_sets/imagenet-real.txt, from real.json):
# 1: none, 2: {970, 795}, 3: {230, 231}, 4: {809}, 5: {516, 850}
REAL_PREDICTIONS = {
    2: _logits(795, 1, 2, 3, 4),  # top-1 is one of its two labels: a hit
    3: _logits(229, 231, 1, 2, 3),  # top-1 misses, the second is a label: a top-5 hit only
    4: _logits(0, 1, 2, 3, 4),  # a miss
    5: _logits(516, 0, 1, 2, 3),  # a hit on the first label
    1: _logits(65),  # no ReaL label: skipped whatever it predicts
}


@pytest.mark.parametrize("layout", ["flat", "class folders"])
def test_real_counts_a_hit_in_the_label_set_and_skips_images_without_one(monkeypatch, tmp_path, layout):
    oracle.install(monkeypatch, REAL_PREDICTIONS)
    for number in REAL_PREDICTIONS:
        folder = tmp_path if layout == "flat" else tmp_path / ("n01751748" if number == 1 else "n09472597")
        write_coded_image(folder / _val_name(number), number, fmt="PNG")
    (row,) = _run(tmp_path, "imagenet-real").rows
    assert (row.count, row.skipped, row.top1, row.top5) == (4, 1, 50.0, 75.0)
    assert row.eval_set == "imagenet-real" and row.reported_top1 is not None  # test_vit has a ReaL figure
    # NLL of a label set: -log of the probability the model gives to the whole set
    expected = []
    for number, labels in ((2, [970, 795]), (3, [230, 231]), (4, [809]), (5, [516, 850])):
        log_probs = torch.log_softmax(REAL_PREDICTIONS[number].double(), 0)
        expected.append(-torch.logsumexp(log_probs[labels], 0).item())
    assert row.loss == pytest.approx(math.fsum(expected) / 4, rel=1e-5)


def test_real_refuses_files_that_are_not_the_val_images(monkeypatch, tmp_path):
    oracle.install(monkeypatch, REAL_PREDICTIONS)
    write_coded_image(tmp_path / _val_name(2), 2, fmt="PNG")
    write_coded_image(tmp_path / "cat.jpg", 3)
    with pytest.raises(DataError, match=r"^imagenet-real expects the ImageNet val images, named "
                                        r"ILSVRC2012_val_NNNNNNNN.JPEG \(00000001..00050000\); "
                                        r"found cat.jpg in .*: use --eval-set imagenet$"):
        _run(tmp_path, "imagenet-real")


def test_per_class_on_real_needs_the_original_classes(monkeypatch, tmp_path):
    oracle.install(monkeypatch, REAL_PREDICTIONS)
    write_coded_image(tmp_path / _val_name(2), 2, fmt="PNG")
    with pytest.raises(DataError, match="per-class counts on imagenet-real need each image's ImageNet class"):
        _run(tmp_path, "imagenet-real", per_class=True)


def test_v2_reads_class_folders_named_by_index(monkeypatch, tmp_path):
    # folders 0, 6, 999: a string sort would put 999 before 6, an index is an index
    oracle.install(monkeypatch, {0: _logits(0), 1: _logits(7, 6), 2: _logits(999), 3: _logits(999, 6)})
    for number, folder in enumerate(["0", "6", "999", "6"]):
        write_coded_image(tmp_path / folder / f"{number}.jpeg", number)
    (row,) = _run(tmp_path, "imagenet-v2").rows
    assert (row.count, row.top1, row.top5) == (4, 50.0, 100.0)


@pytest.mark.parametrize("eval_set", ["imagenet-a", "imagenet-r"])
def test_a_and_r_restrict_the_logits_to_their_classes_unless_told_not_to(monkeypatch, tmp_path, eval_set):
    subset = set_classes(eval_set)
    outside = next(i for i in range(1000) if i not in subset)
    first, second = subset[0], subset[1]
    predictions = {0: _logits(outside, first, scale=2.0),  # restricted: a hit; all classes: top-5 only
                   1: _logits(first, second)}  # a miss either way
    oracle.install(monkeypatch, predictions)
    synsets = imagenet_synsets()
    write_coded_image(tmp_path / synsets[first] / "0.jpg", 0)
    write_coded_image(tmp_path / synsets[second] / "1.jpg", 1)
    (restricted,) = _run(tmp_path, eval_set).rows
    assert (restricted.top1, restricted.top5, restricted.scored_classes) == (50.0, 100.0, 200)
    kept = list(subset)
    nll = [-torch.log_softmax(predictions[0].double()[kept], 0)[0].item(),
           -torch.log_softmax(predictions[1].double()[kept], 0)[1].item()]
    assert restricted.loss == pytest.approx(math.fsum(nll) / 2, rel=1e-5)
    (full,) = _run(tmp_path, eval_set, class_subset=False).rows
    assert (full.top1, full.top5, full.scored_classes) == (0.0, 100.0, None)
    nll = [-torch.log_softmax(predictions[0].double(), 0)[first].item(),
           -torch.log_softmax(predictions[1].double(), 0)[second].item()]
    assert full.loss == pytest.approx(math.fsum(nll) / 2, rel=1e-5)
    assert restricted.reported_top1 is not None and full.reported_top1 is None  # 200-way figures only


def test_nll_and_ece_equal_a_direct_computation(monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    synsets = list(imagenet_synsets())
    labels = rng.integers(0, 1000, 24)
    logits = {}
    for number, label in enumerate(labels):
        row = rng.normal(0.0, 1.0, 1000).astype(np.float32)
        row[label] += rng.uniform(0, 9)  # confidences spread over the bins, about half the images right
        logits[number] = torch.from_numpy(row)
        write_coded_image(tmp_path / synsets[label] / f"{number}.png", number)
    oracle.install(monkeypatch, logits)
    (row,) = _run(tmp_path, "imagenet-sketch").rows

    probs = [torch.softmax(logits[n].double(), 0).numpy() for n in range(len(labels))]
    confidence = np.array([p.max() for p in probs])
    correct = np.array([p.argmax() == label for p, label in zip(probs, labels, strict=True)])
    # away from every bin edge, so that float32 and float64 put each image in the same bin
    assert np.abs(confidence * CALIBRATION_BINS - np.round(confidence * CALIBRATION_BINS)).min() > 1e-4
    nll = [-np.log(p[label]) for p, label in zip(probs, labels, strict=True)]
    assert row.loss == pytest.approx(np.mean(nll), rel=1e-5)
    bins = np.clip(np.ceil(confidence * CALIBRATION_BINS).astype(int) - 1, 0, CALIBRATION_BINS - 1)
    ece = sum(abs(correct[bins == b].sum() - confidence[bins == b].sum()) for b in range(CALIBRATION_BINS))
    assert row.ece == pytest.approx(100 * ece / len(labels), abs=1e-3)
    table = row.calibration
    assert len(table) == CALIBRATION_BINS and sum(b["count"] for b in table) == len(labels)
    assert [b["count"] for b in table] == [int((bins == b).sum()) for b in range(CALIBRATION_BINS)]
    assert (table[0]["lower"], table[-1]["upper"]) == (0.0, 1.0)
    filled = next(b for b in range(CALIBRATION_BINS) if (bins == b).any())
    assert table[filled]["accuracy"] == pytest.approx(100 * correct[bins == filled].mean(), abs=1e-4)
    assert table[filled]["confidence"] == pytest.approx(100 * confidence[bins == filled].mean(), abs=1e-3)
    assert row.top1 == pytest.approx(100 * correct.mean(), abs=1e-4)


def _cli(capsys, *args):
    code = main(["validate", "--model", MODEL, "--checkpoint", "unused.safetensors", "--img-size", str(SIZE),
                 "--workers", "0", "--device", "cpu", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _synset_tree(root, synsets):
    for number, synset in enumerate(synsets):
        write_coded_image(root / synset / f"{number}.jpg", number)
    return root


def _parquet_folder(root):
    root.mkdir()
    (root / "validation-00000-of-00001.parquet").write_bytes(b"")  # refused before it is read
    return root


def _labelled_flat_folder(root):
    write_coded_image(root / "a.jpg", 0)
    (root / "labels.txt").write_text("a.jpg,0\n")
    return root


@pytest.mark.parametrize("eval_set,make,message", [
    ("imagenet-v2", lambda root: _synset_tree(root, ["n01440764"]),
     r"imagenet-v2 expects class folders named 0..999; found synset folders in .*: use --eval-set imagenet"),
    ("imagenet-sketch", lambda root: _synset_tree(root, ["3"]),
     r"imagenet-sketch expects class folders named by synset \(n01440764, ...\); "
     r"found folders named by class index in .*: use --eval-set imagenet-v2"),
    ("imagenet-a", lambda root: _synset_tree(root, ["n01498041", "n01440764"]),
     r"imagenet-a expects only its 200 classes; class folder n01440764 is not one of them \(1 such\): "
     r"use --eval-set imagenet or imagenet-sketch"),
    ("imagenet-v2", lambda root: _synset_tree(root / "imagenetv2-top-images-format-val", ["5"]),
     r"is the folder of ImageNet-V2 \(top images\), not ImageNet-V2 \(matched frequency\): "
     r"use --eval-set imagenet-v2-top-images"),
    ("imagenet-real", lambda root: _parquet_folder(root / "hf"),
     r"imagenet-real expects the ImageNet val image files \(ILSVRC2012_val_00000001.JPEG, ...\); found "
     r"Hugging Face dataset files at .*: unpack the images, or use --eval-set imagenet"),
    ("imagenet-v2", _labelled_flat_folder,
     r"imagenet-v2 expects class folders named 0..999; found no class folders in "),
])
def test_a_layout_that_is_not_the_sets_is_refused_in_one_line(capsys, tmp_path, eval_set, make, message):
    code, out, err = _cli(capsys, "--eval-set", eval_set, "--data", make(tmp_path))
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert re.search(message, err), err


def test_a_labels_file_is_refused_for_a_set_labelled_by_its_folders(capsys, tmp_path):
    data = _synset_tree(tmp_path / "sketch", ["n01440764"])
    (tmp_path / "labels.txt").write_text("0.jpg,0\n")
    code, _, err = _cli(capsys, "--eval-set", "imagenet-sketch", "--data", data, "--labels",
                        tmp_path / "labels.txt")
    assert code == 2 and "imagenet-sketch is labelled by its class folders; drop the labels file" in err


def test_a_model_of_another_label_space_is_refused_before_any_weights_are_read(capsys, tmp_path):
    data = _synset_tree(tmp_path, ["n01498041"])
    code, _, err = _cli(capsys, "--eval-set", "imagenet-a", "--data", data, "--model",
                        "vit_betwixt_patch16_reg4_gap_256.sbb_in12k", "--img-size", "256")
    assert code == 2 and err.count("\n") == 1
    assert ("vit_betwixt_patch16_reg4_gap_256.sbb_in12k outputs 11821 imagenet-12k classes, not the 1000 "
            "ImageNet-1k classes imagenet-a is scored on") in err
    with pytest.raises(UserError, match="outputs 0 classes of its own, not the 1000"):
        validate("vit_so400m_patch14_siglip_378.webli", data, pretrained=True, eval_set="imagenet-a")


def test_the_published_figure_per_class_and_reference_files(monkeypatch, capsys, tmp_path):
    subset = set_classes("imagenet-a")
    oracle.install(monkeypatch,
                   {0: _logits(subset[0]), 1: _logits(subset[0], subset[1]), 2: _logits(subset[1])})
    synsets = list(imagenet_synsets())
    data = tmp_path / "imagenet-a"
    for number, label in enumerate([subset[0], subset[1], subset[1]]):
        write_coded_image(data / synsets[label] / f"{number}.jpg", number)
    (data / "README.txt").write_text("the archive's readme sits next to the class folders\n")
    code, out, err = _cli(capsys, "--eval-set", "imagenet-a", "--data", data,
                          "--per-class", tmp_path / "classes.csv", "--results-file", tmp_path / "ref.csv",
                          "--results-format", "reference")
    assert code == 0, err
    top1 = 200 / 3
    assert out.startswith(f"{MODEL} on imagenet-a (200 classes) @ 160 (crop_pct 0.95, bicubic): "
                          f"top1 {top1:.3f}  top5 100.000  nll ")
    assert f"; reported top1 2.280 ({top1 - 2.28:+.3f}) top5 12.667 ({100 - 12.667:+.3f})" in out
    rows = list(csv.DictReader((tmp_path / "classes.csv").open()))
    assert [(r["class_index"], r["synset"], r["count"], r["top1_correct"], r["top1"]) for r in rows] == [
        (str(subset[0]), synsets[subset[0]], "1", "1", "100.000"),
        (str(subset[1]), synsets[subset[1]], "2", "1", "50.000")]
    assert rows[0]["name"] == imagenet_class_names()[subset[0]]
    (ref,) = list(csv.DictReader((tmp_path / "ref.csv").open()))
    assert list(ref) == ["model", "top1", "top1_err", "top5", "top5_err", "param_count", "img_size",
                         "crop_pct", "interpolation"]
    assert (ref["model"], ref["top1"], ref["top1_err"], ref["img_size"], ref["crop_pct"]) == (
        MODEL, f"{top1:.3f}", f"{100 - top1:.3f}", "160", "0.950")
    assert float(ref["param_count"]) > 0


def test_json_results_carry_the_set_and_the_calibration_table(monkeypatch, capsys, tmp_path):
    oracle.install(monkeypatch, {0: _logits(0), 1: _logits(5)})
    data = tmp_path / "v2"
    write_coded_image(data / "0" / "a.png", 0)
    write_coded_image(data / "1" / "b.png", 1)
    code, _, err = _cli(capsys, "--eval-set", "imagenet-v2", "--data", data, "--results-file",
                        tmp_path / "out.json")
    assert code == 0, err
    document = json.loads((tmp_path / "out.json").read_text())
    (row,) = document["results"]
    assert document["eval_set"] == row["eval_set"] == "imagenet-v2"
    assert row["top1"] == 50.0 and len(row["calibration"]) == CALIBRATION_BINS and row["ece"] >= 0
