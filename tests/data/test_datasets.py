"""Datasets: class folders by synset, labels files, Hugging Face on-disk data, unreadable images."""

import pytest
import torch

from tests.images import image_bytes, synset_folder, write_image, write_truncated_jpeg
from visionzoo.data import DataError, create_dataset, imagenet_class_names, imagenet_synsets
from visionzoo.data.datasets import FileListDataset, read_labels_file


def test_imagenet_class_info_ships_with_the_package():
    synsets, names = imagenet_synsets(), imagenet_class_names()
    assert len(synsets) == len(names) == 1000 and list(synsets) == sorted(synsets)
    assert (synsets[0], names[0]) == ("n01440764", "tench, Tinca tinca")
    assert (synsets[281], names[281]) == ("n02123045", "tabby, tabby cat")
    assert names[967] == "espresso"


def test_synset_folders_map_to_imagenet_indices_not_sorted_positions(tmp_path):
    root = synset_folder(tmp_path / "val", ["n07920052", "n01440764", "n02123045"], per_class=2)
    (root / "n01440764" / "notes.txt").write_text("not an image")
    write_image(root / "n02123045" / "deeper" / "x.png")  # images anywhere below the class folder count
    dataset = create_dataset(root)
    assert len(dataset) == 7
    by_folder = {}
    for name, label in zip(dataset.files, dataset.labels, strict=True):
        by_folder.setdefault(name.split("/")[0], set()).add(label)
    assert by_folder == {"n01440764": {0}, "n02123045": {281}, "n07920052": {967}}
    sample = dataset.with_transform(lambda im: torch.tensor(im.size))[0]
    assert sample.error is None and sample.label == 0 and sample.image.shape == (2,)


def test_folder_names_other_than_synsets(tmp_path):
    synset_folder(tmp_path / "ints", ["3", "10"], per_class=1)
    assert sorted(create_dataset(tmp_path / "ints").labels) == [3, 10]
    synset_folder(tmp_path / "names", ["dog", "cat"], per_class=1)
    assert create_dataset(tmp_path / "names", num_classes=2).labels == [0, 1]  # cat, dog: sorted positions
    with pytest.raises(DataError, match="folder cat: label 'cat' is not one of the model's ImageNet-1k cla"):
        create_dataset(tmp_path / "names")
    synset_folder(tmp_path / "other", ["n00000001"], per_class=1)
    with pytest.raises(DataError, match="'n00000001' is not one of the model's ImageNet-1k classes"):
        create_dataset(tmp_path / "other")
    with pytest.raises(DataError, match="n00000001 is an ImageNet synset, but the model's 10 classes are"):
        create_dataset(tmp_path / "other", num_classes=10)
    with pytest.raises(DataError, match="label 10 is outside the model's classes 0..9"):
        create_dataset(tmp_path / "ints", num_classes=10)


def test_labels_file_with_indices_and_synsets(tmp_path):
    for i in range(3):
        write_image(tmp_path / "flat" / f"{i}.jpg", seed=i)
    labels = "filename,label\n0.jpg,5\n# a comment\n\n1.jpg,n02123045\n2.jpg, 7\n"
    (tmp_path / "flat" / "labels.csv").write_text(labels)
    dataset = create_dataset(tmp_path / "flat")
    assert (dataset.files, dataset.labels) == (["0.jpg", "1.jpg", "2.jpg"], [5, 281, 7])
    # the labels file itself, or --labels elsewhere, name the same data
    assert create_dataset(tmp_path / "flat" / "labels.csv").labels == [5, 281, 7]
    (tmp_path / "elsewhere.txt").write_text("2.jpg,1\n")
    assert create_dataset(tmp_path / "flat", labels_file=tmp_path / "elsewhere.txt").files == ["2.jpg"]


def test_labels_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("a.jpg,1\nb.jpg,1000\n")
    with pytest.raises(DataError, match=r"labels.csv:2: label 1000 is outside the model's classes 0..999"):
        read_labels_file(bad, 1000)
    bad.write_text("a.jpg,tabby\n")
    with pytest.raises(DataError, match=r":1: label 'tabby' is not one of the model's ImageNet-1k classes"):
        read_labels_file(bad, 1000)
    bad.write_text("just-a-name\n")
    with pytest.raises(DataError, match=r":1: expected 'filename,label'"):
        read_labels_file(bad, 1000)


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        create_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found in"):
        create_dataset(tmp_path / "empty")
    (tmp_path / "empty_classes" / "n01440764").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found in"):
        create_dataset(tmp_path / "empty_classes")
    write_image(tmp_path / "unlabelled" / "a.jpg")
    with pytest.raises(DataError, match="holds images but no labels"):
        create_dataset(tmp_path / "unlabelled")


def test_unreadable_images_become_samples_with_an_error(tmp_path):
    write_image(tmp_path / "good.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    write_truncated_jpeg(tmp_path / "truncated.jpg")
    (tmp_path / "text.png").write_text("this is not a png")
    files = ["good.png", "empty.jpg", "truncated.jpg", "text.png", "missing.jpg"]
    dataset = FileListDataset(tmp_path, files, [1] * 5, transform=lambda im: torch.zeros(1))
    samples = [dataset[i] for i in range(5)]
    assert samples[0].error is None and samples[0].image is not None
    errors = [s.error for s in samples[1:]]
    assert all(s.image is None for s in samples[1:])
    assert errors[0].startswith("UnidentifiedImageError") and "truncated" in errors[1]
    assert errors[2].startswith("UnidentifiedImageError") and errors[3].startswith("FileNotFoundError")


def _hf_dataset(rows, label_names=None):
    datasets = pytest.importorskip("datasets")
    label = datasets.ClassLabel(names=label_names) if label_names else datasets.Value("int64")
    features = datasets.Features({"image": datasets.Image(), "label": label})
    images = [{"bytes": image_bytes(seed=i), "path": None} for i in range(len(rows))]
    return datasets.Dataset.from_dict({"image": images, "label": rows}, features=features)


def test_hugging_face_save_to_disk_and_parquet_shards(tmp_path):
    dataset = _hf_dataset([0, 281, 967, 5, 6])
    dataset.save_to_disk(str(tmp_path / "saved"), max_shard_size="2KB")
    (tmp_path / "shards").mkdir()
    dataset.select(range(3)).to_parquet(str(tmp_path / "shards" / "validation-00000.parquet"))
    dataset.select(range(3, 5)).to_parquet(str(tmp_path / "shards" / "validation-00001.parquet"))
    saved = create_dataset(tmp_path / "saved")
    assert len(saved.shards) > 1  # several Arrow files, indexed across
    for path in (tmp_path / "saved", tmp_path / "shards", str(tmp_path / "shards" / "validation-*.parquet")):
        loaded = create_dataset(path)
        assert loaded.labels == [0, 281, 967, 5, 6], path
        sample = loaded.with_transform(lambda im: torch.tensor(im.size))[2]
        assert sample.error is None and sample.image.tolist() == [40, 30]
    single = create_dataset(tmp_path / "shards" / "validation-00001.parquet")
    assert single.labels == [5, 6] and single.name(1).endswith("validation-00001.parquet#1")


def test_hugging_face_class_label_synset_names_map_by_synset(tmp_path):
    _hf_dataset([0, 1], label_names=["n07920052", "n02123045"]).save_to_disk(str(tmp_path / "subset"))
    assert create_dataset(tmp_path / "subset").labels == [967, 281]


def test_hugging_face_unlabelled_split_is_an_error(tmp_path):
    _hf_dataset([-1, -1]).to_parquet(str(tmp_path / "test.parquet"))
    with pytest.raises(DataError, match="row 0: label -1 is outside the model's classes"):
        create_dataset(tmp_path / "test.parquet")
