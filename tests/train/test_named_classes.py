"""A fine-tune that describes itself, end to end on the digits in folders named 'zero'..'nine':

- `train` writes best/ and last/ as model folders (config.json: the trained size and the data's class names);
- `predict --model RUN/best` (no --img-size) prints the folder names and gets the held-out images right;
- `validate` of the trained model matches its own class folders by name, any subset of them too;
- `--val-data` is mapped onto the training classes by name; a class training never saw is a one-line error;
- `publish RUN` writes the folder with a card whose results are the validate file's.
"""

import json
import shutil

import pytest
import torch
import yaml

import visionzoo
from visionzoo.cli.main import main
from visionzoo.train.checkpoint import load_state

from .conftest import DIGIT_NAMES

FINE_TUNE = ["--model", "test_byobnet", "--num-classes", "10", "--img-size", "32", "--batch-size", "32",
             "--opt", "adamw", "--lr", "4e-3", "--weight-decay", "0.05", "--scale", "0.5", "1",
             "--hflip", "0", "--workers", "0", "--warmup-epochs", "0.5", "--seed", "0"]
SORTED_NAMES = sorted(DIGIT_NAMES)  # a new head's classes are the class folders in sorted order


@pytest.fixture(scope="module")
def run(named_digits, tmp_path_factory):
    """test_byobnet trained at 32 px (its tag's size is 160) for 4 epochs: about 97% val top-1."""
    output = tmp_path_factory.mktemp("named") / "run"
    assert main(["train", *FINE_TUNE, "--epochs", "4", "--data", str(named_digits[0]),
                 "--val-data", str(named_digits[1]), "--output", str(output)]) == 0
    return output


def _subset(val, names, root):
    for name in names:
        shutil.copytree(val / name, root / name)
    return root


def test_the_run_writes_model_folders_with_the_data_class_names(run):
    for folder in ("best", "last"):
        config = json.loads((run / folder / "config.json").read_text())
        assert config["architecture"] == "test_byobnet" and config["num_classes"] == 10
        assert config["label_names"] == SORTED_NAMES
        assert config["pretrained_cfg"]["input_size"] == [3, 32, 32]  # the trained size, not the tag's 160
        model = visionzoo.create_model(str(run / folder), pretrained=True)
        assert model.pretrained_cfg.label_names == tuple(SORTED_NAMES) and model.default_img_size == (32, 32)
    assert load_state(run)["label_names"] == tuple(SORTED_NAMES)
    assert len(yaml.safe_load((run / "args.yaml").read_text())["data_sha256"]) == 64


def test_predict_prints_the_folder_names_at_the_trained_size(run, named_digits, capsys):
    held_out = [(name, path) for name in DIGIT_NAMES
                for path in sorted((named_digits[1] / name).iterdir())[:2]]
    assert main(["predict", *[str(p) for _, p in held_out], "--model", str(run / "best"), "--topk", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    predicted = [line.split()[1] for line in lines[1::2]]
    assert set(predicted) <= set(DIGIT_NAMES)
    right = sum(p == name for p, (name, _) in zip(predicted, held_out, strict=True))
    assert right >= 18, list(zip(predicted, held_out, strict=True))  # >= 90% of 20 held-out digits
    # the file alone, named with its architecture, reads its folder's description too (the command)
    first = held_out[16][1]  # an 'eight'
    assert main(["predict", str(first), "--model", "test_byobnet", "--checkpoint",
                 str(run / "best" / "model.safetensors"), "--topk", "1", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["topk"][0]
    assert top["label"] == predicted[16] and top["label"] in DIGIT_NAMES


def test_validate_matches_the_model_classes_by_name(run, named_digits, tmp_path, capsys):
    rows = [line for line in (run / "summary.csv").read_text().splitlines()[1:]]
    best = max(float(r.split(",")[5]) for r in rows)  # eval_top1
    assert main(["validate", "--model", str(run / "best"), "--data", str(named_digits[1]),
                 "--workers", "0"]) == 0
    assert f"@ 32 (crop_pct 0.95, bicubic): top1 {best:.3f}" in capsys.readouterr().out
    # two classes of the ten, which sort to other positions than their classes'
    subset = _subset(named_digits[1], ["two", "seven"], tmp_path / "subset")
    assert main(["validate", "--model", str(run / "best"), "--data", str(subset), "--workers", "0",
                 "--results-file", str(tmp_path / "subset.json")]) == 0
    top1 = json.loads((tmp_path / "subset.json").read_text())["results"][0]["top1"]
    assert top1 >= 90, top1  # by position ('seven' as class 0, 'two' as 1) it would be about 0
    # a labels file of names, and one of indices, say the same
    files = sorted((subset / "two").iterdir())[:3] + sorted((subset / "seven").iterdir())[:3]
    lines = [f"{p.parent.name}/{p.name},{p.parent.name}" for p in files]
    (subset / "labels.csv").write_text("filename,label\n" + "\n".join(lines) + "\n")
    by_index = "\n".join(f"{p.parent.name}/{p.name},{SORTED_NAMES.index(p.parent.name)}" for p in files)
    (tmp_path / "by_index.csv").write_text(by_index + "\n")
    assert main(["validate", "--model", str(run / "best"), "--data", str(subset / "labels.csv"),
                 "--workers", "0", "--results-file", str(tmp_path / "names.json")]) == 0
    assert main(["validate", "--model", str(run / "best"), "--data", str(subset), "--labels",
                 str(tmp_path / "by_index.csv"), "--workers", "0", "--results-file",
                 str(tmp_path / "indices.json")]) == 0
    names, indices = (json.loads((tmp_path / f"{name}.json").read_text())["results"][0]
                      for name in ("names", "indices"))
    assert names["count"] == indices["count"] == 6 and names["top1"] == indices["top1"]


@pytest.mark.parametrize("folders, labels, message", [
    (["two", "ten"], None,
     r"class folder ten: label 'ten' is not one of the model's 10 classes \(eight, five"),
    (["n01440764"], None, "label 'n01440764' is not one of the model's 10 classes"),
    (["two"], "0040.png,eleven\n", r"labels.csv:1: label 'eleven' is not one of the model's 10 classes"),
    (["two"], "0040.png,10\n", r"labels.csv:1: label 10 is outside the model's classes 0..9"),
])
def test_validate_refuses_classes_the_model_does_not_have(run, named_digits, tmp_path, capsys, folders,
                                                          labels, message):
    import re

    data = tmp_path / "data"
    for name in folders:
        source = named_digits[1] / (name if name in DIGIT_NAMES else "two")
        shutil.copytree(source, data / name)
    target = data
    if labels is not None:
        flat = tmp_path / "flat"
        flat.mkdir()
        shutil.copy(next((data / "two").iterdir()), flat / "0040.png")
        (flat / "labels.csv").write_text(labels)
        target = flat
    assert main(["validate", "--model", str(run / "best"), "--data", str(target), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err


def test_val_data_is_mapped_onto_the_training_classes_by_name(run, named_digits, tmp_path, capsys):
    # Continue from the run's weights (its folder names the classes), evaluating on two classes only:
    # they are matched to the run's classes by name, so its accuracy shows.
    subset = _subset(named_digits[1], ["two", "seven"], tmp_path / "val")
    output = tmp_path / "again"
    assert main(["train", "--model", "test_byobnet", "--checkpoint", str(run / "best" / "model.safetensors"),
                 "--lr", "1e-9", "--epochs", "1", "--batch-size", "256", "--workers", "0", "--img-size", "32",
                 "--data", str(named_digits[0]), "--val-data", str(subset), "--output", str(output)]) == 0
    eval_top1 = float((output / "summary.csv").read_text().splitlines()[1].split(",")[5])
    assert eval_top1 >= 90, eval_top1
    assert json.loads((output / "best" / "config.json").read_text())["label_names"] == SORTED_NAMES


@pytest.mark.parametrize("train_folders, num_classes, val_folders, message", [
    (["c0", "c1", "c2"], 3, ["c0", "c9"],
     r"class folder c9: label 'c9' is not one of the model's 3 classes \(c0, c1, c2\)"),
    (["c0", "c1", "c2"], 3, ["0", "c1"], None),  # an index is an index: accepted
    (["c0", "c1", "c2"], 3, ["c2"], None),  # a subset: accepted
    (["3", "5"], 6, ["cat"], "label 'cat' cannot be matched: the model's 6 classes have no names"),
    (["c0", "c1"], 3, ["c0"],
     r"has 2 classes \(c0, c1\), but the model's head has 3; .*--num-classes 2"),
])
def test_val_classes_unknown_to_training_are_one_line_errors(named_digits, tmp_path, capsys, train_folders,
                                                             num_classes, val_folders, message):
    import re

    for split, folders in (("train", train_folders), ("val", val_folders)):
        for index, name in enumerate(folders):
            shutil.copytree(named_digits[1] / DIGIT_NAMES[index], tmp_path / split / name)
    args = ["train", "--model", "test_byobnet", "--num-classes", str(num_classes), "--img-size", "32",
            "--epochs", "1", "--batch-size", "16", "--workers", "0", "--data", str(tmp_path / "train"),
            "--val-data", str(tmp_path / "val"), "--output", str(tmp_path / "run")]
    if message is None:
        assert main(args) == 0
        config = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
        assert config["label_names"] == train_folders
        return
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()  # refused before training


def test_publish_writes_the_folder_and_a_card_with_the_validate_results(run, named_digits, tmp_path, capsys):
    from huggingface_hub import ModelCard

    results = tmp_path / "val.json"
    assert main(["validate", "--model", str(run / "best"), "--data", str(named_digits[1]), "--workers", "0",
                 "--results-file", str(results)]) == 0
    output = tmp_path / "published"
    assert main(["publish", str(run), "--output", str(output), "--results", str(results),
                 "--dataset", "uci-digits"]) == 0
    assert sorted(p.name for p in output.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    published, trained = (json.loads((f / "config.json").read_text()) for f in (output, run / "best"))
    # trained from random weights: no source tag, nor its licence
    assert published == trained and not {"tag", "license"} & set(trained["pretrained_cfg"])
    card = ModelCard.load(output / "README.md")
    row = json.loads(results.read_text())["results"][0]
    (top1, top5) = card.data.eval_results
    assert (top1.metric_type, top1.metric_value, top5.metric_value) == ("accuracy", row["top1"], row["top5"])
    assert top1.dataset_name == "uci-digits" and top1.task_type == "image-classification"
    assert "visionzoo train --model test_byobnet" in card.text and "data_sha256" in card.text
    capsys.readouterr()
    image = next((named_digits[1] / "eight").iterdir())
    assert main(["predict", str(image), "--model", f"local-dir:{output}", "--topk", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] in DIGIT_NAMES
    weights = visionzoo.create_model(str(output), pretrained=True).state_dict()
    original = visionzoo.create_model(str(run / "best"), pretrained=True).state_dict()
    assert all(torch.equal(weights[k], v) for k, v in original.items())
