"""Webdataset shards: written from every layout we read and read back as the same dataset (labels, decoded
pixels, order), named as a pattern, a list, a folder or an index, local or over HTTP; bad shards refused in
one line; the remote cache kept under its size limit."""

import json
import shutil
import tarfile

import numpy as np
import pytest

from tests.http_server import serve_folder
from tests.images import image_bytes, synset_folder, write_image, write_tar
from visionzoo.data import DataError, create_dataset, imagenet_synsets
from visionzoo.data.shards import index as shard_index
from visionzoo.data.shards.dataset import shard_dataset
from visionzoo.data.shards.remote import RemoteCache, parse_size
from visionzoo.data.shards.spec import is_shard_spec
from visionzoo.data.shards.writer import write_shards
from visionzoo.errors import OutputError, UserError

NAMES = ["cat", "dog", "fox"]


@pytest.fixture(autouse=True)
def shard_cache(tmp_path, monkeypatch):
    """Each test's own shard cache (never the user's)."""
    monkeypatch.setenv("VISIONZOO_SHARD_CACHE", str(tmp_path / "shard-cache"))
    return tmp_path / "shard-cache"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Class folders of 10 images in JPEG, PNG, WebP and BMP (which shards carry as PNG)."""
    root = synset_folder(tmp_path_factory.mktemp("source") / "train", NAMES, per_class=3)
    write_image(root / "dog" / "odd.bmp", seed=7)
    return root


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory):
    """`folder` as three shards of 4, 4 and 2 samples, with their index."""
    output = tmp_path_factory.mktemp("shards") / "train"
    written = write_shards(folder, output, shard_size=4)
    assert [p.name for p in written.shards] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert (written.samples, written.classes) == (10, tuple(NAMES))
    return output


def assert_same_dataset(expected, got):
    assert len(got) == len(expected) and got.labels == expected.labels
    for i in range(len(expected)):
        a, b = expected[i], got[i]
        assert (a.label, a.error) == (b.label, b.error), i
        if a.image is not None:
            np.testing.assert_array_equal(np.asarray(a.image), np.asarray(b.image), err_msg=f"sample {i}")


def test_the_index_holds_counts_keys_labels_and_class_names(shards):
    document = json.loads((shards / "_index.json").read_text())
    assert document["wids_version"] == 1 and document["classes"] == NAMES
    entries = document["shardlist"]
    assert [e["url"] for e in entries] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert [e["nsamples"] for e in entries] == [4, 4, 2]
    assert entries[0]["keys"] == ["00000000", "00000001", "00000002", "00000003"]
    assert [label for e in entries for label in e["labels"]] == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert all(e["filesize"] == (shards / e["url"]).stat().st_size for e in entries)
    # the webdataset layout, one sample after another; the BMP (sample 6) became a PNG
    with tarfile.open(shards / "shard-000001.tar") as tar:
        assert tar.getnames() == ["00000004.cls", "00000004.jpg", "00000005.cls", "00000005.webp",
                                  "00000006.cls", "00000006.png", "00000007.cls", "00000007.jpg"]
        assert tar.extractfile("00000004.cls").read() == b"1"


@pytest.mark.parametrize("form", ["folder", "pattern", "list", "index"])
def test_shards_read_as_the_same_dataset_as_their_folders(folder, shards, tmp_path, form):
    if form == "folder":
        spec = str(shards)
    elif form == "pattern":
        spec = str(shards / "shard-{000000..000002}.tar")
    elif form == "list":
        spec = tmp_path / "train.txt"
        spec.write_text(f"# the training shards\n{shards.name}/shard-000000.tar\n\n"
                        f"{shards.name}/shard-{{000001..000002}}.tar\n")
        spec = shutil.copy(spec, shards.parent / "train.txt")
    else:
        spec = str(shards / "_index.json")
    expected = create_dataset(folder, num_classes=3)
    dataset = create_dataset(spec, num_classes=3)
    assert_same_dataset(expected, dataset)
    assert dataset.classes == tuple(NAMES)
    assert dataset.name(9) == f"{shards / 'shard-000002.tar'}#00000009"


def test_a_subset_of_the_shards_and_a_transform(folder, shards):
    dataset = create_dataset(str(shards / "shard-{000001..000002}.tar"), num_classes=3)
    assert dataset.labels == create_dataset(folder, num_classes=3).labels[4:]
    sample = dataset.with_transform(lambda image: image.size)[5]
    assert sample.error is None and sample.index == 5 and sample.label == 2 and len(sample.image) == 2


def test_shards_without_an_index_are_scanned_once(folder, shards, tmp_path, shard_cache, monkeypatch):
    bare = tmp_path / "bare"
    bare.mkdir()
    for shard in shards.glob("*.tar"):
        shutil.copy(shard, bare / shard.name)
    dataset = create_dataset(bare, num_classes=3)
    assert_same_dataset(create_dataset(folder, num_classes=3), dataset)
    assert dataset.classes is None  # the names were in the index only
    assert len(list((shard_cache / "index").iterdir())) == 3

    def no_scan(*args):
        raise AssertionError("scanned again")

    monkeypatch.setattr(shard_index, "scan_shard", no_scan)
    assert create_dataset(bare, num_classes=3).labels == dataset.labels  # from the cache
    (bare / "shard-000001.tar").write_bytes((bare / "shard-000001.tar").read_bytes())  # a new modification
    with pytest.raises(AssertionError, match="scanned again"):
        create_dataset(bare, num_classes=3)


def _hf(rows, label_names=None):
    import datasets

    label = datasets.ClassLabel(names=label_names) if label_names else datasets.Value("int64")
    features = datasets.Features({"image": datasets.Image(), "label": label})
    images = [{"bytes": image_bytes(seed=i, fmt="PNG" if i % 2 else "JPEG"), "path": None}
              for i in range(len(rows))]
    return datasets.Dataset.from_dict({"image": images, "label": rows}, features=features)


def _layout(root, layout):
    """(the source path, its model's class count, the class names the index should keep)."""
    if layout == "synset folders":
        synset_folder(root, ["n07920052", "n01440764", "n02123045"], per_class=2)
        return root, 1000, ("n01440764", "n02123045", "n07920052")
    if layout == "index folders":
        synset_folder(root, ["3", "10"], per_class=2)
        return root, 11, ("10", "3")
    if layout == "labels.csv":
        for i in range(4):
            write_image(root / f"{i}.jpg", seed=i)
        (root / "labels.csv").write_text("filename,label\n0.jpg,5\n1.jpg,n02123045\n2.jpg,7\n3.jpg,5\n")
        return root, 1000, ("5", "7", "n02123045")
    if layout == "index labels file":
        for i in range(3):
            write_image(root / f"{i}.png", seed=i)
        (root / "labels.txt").write_text("0.png,2\n1.png,0\n2.png,2\n")
        return root / "labels.txt", 3, None
    if layout == "save_to_disk":
        dataset = _hf([2, 0, 1, 2], label_names=["zebra", "apple", "mango"])
        dataset.save_to_disk(str(root), max_shard_size="2KB")
        return root, 3, ("zebra", "apple", "mango")
    root.mkdir()
    _hf([4, 1, 3]).to_parquet(str(root / "validation-00000.parquet"))
    _hf([0, 2]).to_parquet(str(root / "validation-00001.parquet"))
    return str(root / "validation-*.parquet"), 5, None


@pytest.mark.parametrize("layout", ["synset folders", "index folders", "labels.csv", "index labels file",
                                    "save_to_disk", "parquet"])
def test_every_layout_round_trips_with_its_class_names(tmp_path, layout):
    source, num_classes, classes = _layout(tmp_path / "source", layout)
    written = write_shards(source, tmp_path / "shards", shard_size=2)
    assert written.classes == classes
    assert json.loads((tmp_path / "shards" / "_index.json").read_text())["classes"] == (
        list(classes) if classes else None)
    expected = create_dataset(source, num_classes=num_classes)
    dataset = create_dataset(tmp_path / "shards", num_classes=num_classes)
    assert_same_dataset(expected, dataset)
    if layout == "synset folders":  # the labels are ImageNet indices, so their names are ImageNet's
        assert dataset.labels[:2] == [0, 0] and dataset.classes == imagenet_synsets()


def test_a_shard_that_differs_from_its_index_is_reported(shards, tmp_path):
    shutil.copytree(shards, tmp_path / "train")
    document = json.loads((tmp_path / "train" / "_index.json").read_text())
    document["shardlist"][1]["keys"][2] = "00000099"
    (tmp_path / "train" / "_index.json").write_text(json.dumps(document))
    dataset = create_dataset(tmp_path / "train", num_classes=3)
    assert dataset[0].error is None
    assert dataset[4].error.startswith(f"DataError: shard {tmp_path / 'train' / 'shard-000001.tar'} changed "
                                       "since its index was written (4 samples, the index says 4; sample 2 "
                                       "differs); write the index again")


def test_the_stored_bytes_are_the_source_files(folder, shards):
    dataset = create_dataset(shards, num_classes=3)
    assert dataset.image_bytes(0) == ((folder / "cat" / "img0.jpg").read_bytes(), ".jpg")
    assert dataset.image_bytes(5) == ((folder / "dog" / "img2.webp").read_bytes(), ".webp")


def test_image_formats_keep_and_jpg(folder, shards, tmp_path):
    write_shards(folder, tmp_path / "jpg", shard_size=100, image_format="jpg")
    with tarfile.open(tmp_path / "jpg" / "shard-000000.tar") as tar:
        images = [name for name in tar.getnames() if not name.endswith(".cls")]
        assert {name.rsplit(".", 1)[1] for name in images} == {"jpg"}
        stored = {name: tar.extractfile(name).read() for name in images}
    jpegs = sorted(folder.rglob("*.jpg")) + sorted(folder.rglob("*.JPEG"))
    assert {path.read_bytes() for path in jpegs} <= set(stored.values())  # JPEGs are not re-encoded
    reread = create_dataset(tmp_path / "jpg", num_classes=3)
    original = create_dataset(folder, num_classes=3)
    assert reread.labels == original.labels
    assert all(reread[i].image.size == original[i].image.size for i in range(len(original)))


def test_more_workers_write_the_same_shards(folder, shards, tmp_path):
    write_shards(folder, tmp_path / "train", shard_size=4, workers=2)
    for shard in sorted(shards.glob("*.tar")):
        assert (tmp_path / "train" / shard.name).read_bytes() == shard.read_bytes()
    assert (tmp_path / "train" / "_index.json").read_text() == (shards / "_index.json").read_text()


def test_a_failed_write_leaves_whole_shards_and_no_index(tmp_path):
    source = synset_folder(tmp_path / "source", NAMES, per_class=3)
    (source / "fox" / "zz.bmp").write_bytes(b"not a bitmap")  # the last image: in the third shard
    with pytest.raises(DataError, match=r"zz.bmp is not an image PIL can read"):
        write_shards(source, tmp_path / "out", shard_size=4)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".visionzoo.lock", "shard-000000.tar", "shard-000001.tar"]
    assert len(create_dataset(tmp_path / "out", num_classes=3)) == 8  # the whole shards read


def test_an_output_folder_with_shards_is_refused(folder, shards):
    with pytest.raises(OutputError, match="already holds shards"):
        write_shards(folder, shards)


def _last_member(path):
    with tarfile.open(path) as tar:
        return tar.getmembers()[-1]


@pytest.mark.parametrize("cut", ["half", "end blocks", "in a header"])
def test_a_truncated_shard_is_one_line_error(shards, tmp_path, cut):
    data = (shards / "shard-000000.tar").read_bytes()
    last = _last_member(shards / "shard-000000.tar")
    size = {"half": len(data) // 2, "end blocks": -(-(last.offset_data + last.size) // 512) * 512,
            "in a header": last.offset + 100}[cut]
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "shard-000000.tar").write_bytes(data[:size])
    with pytest.raises(DataError) as error:
        create_dataset(tmp_path / "bare", num_classes=3)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"shard {tmp_path / 'bare' / 'shard-000000.tar'}")
    assert "truncated" in message
    # next to its index, the size the index recorded already tells
    shutil.copytree(shards, tmp_path / "indexed")
    (tmp_path / "indexed" / "shard-000000.tar").write_bytes(data[:size])
    with pytest.raises(DataError, match=f"is {size} bytes but its index says {len(data)}"):
        create_dataset(tmp_path / "indexed", num_classes=3)


JPEG = image_bytes(fmt="JPEG")


@pytest.mark.parametrize("members, message", [
    ([("a.jpg", JPEG)], "shard {shard}: sample a has no label: add a.cls (a class index) or a.json"),
    ([("a.cls", b"0"), ("a.jpg", JPEG), ("b.bmp", JPEG), ("b.cls", b"1")],
     "shard {shard}: sample b has no image in a format shards carry (.jpg, .jpeg, .png, .webp); it has .bmp, "
     ".cls"),
    ([("a.cls", b"zero"), ("a.jpg", JPEG)], "sample a: a.cls holds 'zero', not an integer class index"),
    ([("a.json", b'{"class": 3}'), ("a.jpg", JPEG)], "sample a: a.json has no \"label\" field"),
    ([("a.json", b"{not json"), ("a.jpg", JPEG)], "sample a: a.json is not JSON"),
    ([("a.cls", b"0"), ("a.jpg", JPEG), ("b.cls", b"1"), ("b.jpg", JPEG), ("a.json", b'{"label": 1}'),
      ("a.png", image_bytes())],
     "sample key a appears twice"),
    ([("a.cls", b"7"), ("a.jpg", JPEG)], "sample a: label 7 is outside the model's classes 0..2"),
])
def test_bad_samples_are_one_line_errors_naming_shard_and_key(tmp_path, members, message):
    shard = write_tar(tmp_path / "bad.tar", members)
    with pytest.raises(DataError) as error:
        create_dataset(shard, num_classes=3)
    assert message.format(shard=shard) in str(error.value) and "\n" not in str(error.value)


def test_labels_from_json_and_files_that_are_not_tars(tmp_path):
    shard = write_tar(tmp_path / "json.tar", [("a.jpg", JPEG), ("a.json", b'{"label": "n02123045"}'),
                                         ("b.json", b'{"label": 3}'), ("b.png", image_bytes())])
    assert create_dataset(shard).labels == [281, 3]
    (tmp_path / "page.tar").write_text("<html>Not Found</html>" * 100)
    with pytest.raises(DataError, match="page.tar is not a readable tar file .*; it is damaged or truncated"):
        create_dataset(tmp_path / "page.tar")
    (tmp_path / "empty.tar").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.tar is not a tar file \(0 bytes, less than one tar header\)"):
        create_dataset(tmp_path / "empty.tar")
    with pytest.raises(DataError, match="missing-000001.tar does not exist"):
        create_dataset(str(tmp_path / "missing-{000001..000002}.tar"))


def test_what_counts_as_shards(folder, shards, tmp_path):
    (tmp_path / "labels.txt").write_text("a.jpg,1\n")
    (tmp_path / "list.txt").write_text("a-000000.tar\n")
    assert is_shard_spec(str(shards)) and is_shard_spec(str(tmp_path / "list.txt"))
    assert is_shard_spec("x/train-{000000..000127}.tar") and is_shard_spec("https://host/data/train.txt")
    assert not is_shard_spec(str(folder)) and not is_shard_spec(str(tmp_path / "labels.txt"))
    synset_folder(tmp_path / "val", ["n01440764"], per_class=1)
    (tmp_path / "val" / "ILSVRC2012_img_val.tar").write_bytes(b"")  # the archive the folders came from
    assert not is_shard_spec(str(tmp_path / "val")) and create_dataset(tmp_path / "val").labels == [0]
    with pytest.raises(DataError, match="whose labels are in the shards"):
        create_dataset(shards, labels_file=tmp_path / "labels.txt")


def test_a_wids_descriptor_without_keys_and_labels(folder, shards, tmp_path):
    (tmp_path / "sub").mkdir()
    shutil.copytree(shards, tmp_path / "train", ignore=shutil.ignore_patterns("_index.json"))
    descriptor = {"wids_version": 1, "shardlist": [
        {"url": str(tmp_path / "train" / "shard-000000.tar"), "nsamples": 4},
        {"url": "../train/shard-000001.tar", "nsamples": 4}]}  # relative to the descriptor
    (tmp_path / "sub" / "in1k.json").write_text(json.dumps(descriptor))
    dataset = create_dataset(tmp_path / "sub" / "in1k.json", num_classes=3)
    assert dataset.labels == create_dataset(folder, num_classes=3).labels[:8] and dataset.classes is None
    descriptor["shardlist"][1]["nsamples"] = 5
    (tmp_path / "sub" / "in1k.json").write_text(json.dumps(descriptor))
    with pytest.raises(DataError, match=r"shard-000001.tar holds 4 samples but .*in1k.json says 5; write"):
        create_dataset(tmp_path / "sub" / "in1k.json", num_classes=3)


def test_the_index_is_a_wids_descriptor(shards, tmp_path):
    from wids import ShardListDataset

    dataset = ShardListDataset(str(shards / "_index.json"), cache_dir=str(tmp_path / "wids"),
                               transformations=[lambda sample: sample])
    assert len(dataset) == 10
    assert dataset[5]["__key__"] == "00000005" and dataset[5][".cls"].read() == b"1"


def test_shards_over_http_read_as_the_local_ones(folder, shards, shard_cache):
    expected = create_dataset(folder, num_classes=3)
    with serve_folder(shards.parent) as (base, requests):
        for spec in (f"{base}/train/shard-{{000000..000002}}.tar", f"{base}/train/",
                     f"{base}/train/_index.json"):
            dataset = create_dataset(spec, num_classes=3)
            assert_same_dataset(expected, dataset)
            assert dataset.classes == tuple(NAMES)
            assert dataset.name(0) == f"{base}/train/shard-000000.tar#00000000"
    assert requests.count("/train/shard-000000.tar") == 1  # downloaded once, then read from the cache
    assert sorted(p.name.split("-", 1)[1] for p in shard_cache.iterdir() if p.suffix == ".tar") == [
        "shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]


def test_any_fsspec_url(folder, shards):
    import fsspec

    memory = fsspec.filesystem("memory")
    for path in shards.iterdir():
        if not path.name.startswith("."):
            memory.pipe(f"/vz-test/train/{path.name}", path.read_bytes())
    try:
        dataset = create_dataset("memory://vz-test/train/shard-{000000..000002}.tar", num_classes=3)
        assert_same_dataset(create_dataset(folder, num_classes=3), dataset)
        assert dataset.classes == tuple(NAMES)
        with pytest.raises(DataError, match="read memory://vz-test/train/shard-000007.tar: no such file"):
            create_dataset("memory://vz-test/train/shard-000007.tar", num_classes=3)
    finally:
        memory.rm("/vz-test", recursive=True)


def test_remote_shards_without_an_index_are_scanned(folder, shards, tmp_path):
    for shard in shards.glob("*.tar"):
        (tmp_path / "served").mkdir(exist_ok=True)
        shutil.copy(shard, tmp_path / "served" / shard.name)
    with serve_folder(tmp_path / "served") as (base, _):
        dataset = create_dataset(f"{base}/shard-{{000000..000002}}.tar", num_classes=3)
        assert_same_dataset(create_dataset(folder, num_classes=3), dataset)
        with pytest.raises(DataError, match=r"cannot read http://127.0.0.1:\d+/shard-000006.tar: HTTP 404"):
            create_dataset(f"{base}/shard-{{000006..000007}}.tar", num_classes=3)
    with pytest.raises(DataError, match=r"cannot read http://127.0.0.1:\d+/_index.json: .*refused"):
        create_dataset(f"{base}/shard-000000.tar", num_classes=3)  # the server is gone


def test_the_remote_cache_keeps_under_its_limit(shards, tmp_path, capsys):
    sizes = [(shards / f"shard-00000{i}.tar").stat().st_size for i in range(3)]
    cache = RemoteCache(tmp_path / "cache", limit=sizes[0] + sizes[1] + 100)
    cached = []
    with serve_folder(shards.parent) as (base, requests):
        dataset = shard_dataset(f"{base}/train/shard-{{000000..000002}}.tar", 3, cache=cache)
        assert "do not fit in the shard cache" in capsys.readouterr().err
        for i in (0, 4, 8, 0):
            dataset.close()  # open shards stay readable when evicted; closed, every read goes to the cache
            assert dataset[i].error is None
            cached.append(sorted(p.name.split("-", 1)[1] for p in cache.copies()))
            assert sum(p.stat().st_size for p in cache.copies()) <= cache.limit
    assert cached == [["shard-000000.tar"], ["shard-000000.tar", "shard-000001.tar"],
                      ["shard-000001.tar", "shard-000002.tar"],  # the least recently used went
                      ["shard-000000.tar", "shard-000002.tar"]]
    assert requests.count("/train/shard-000000.tar") == 2  # evicted by the third shard, fetched again


def test_cache_sizes():
    assert parse_size("200G") == 200 * 2**30 and parse_size("512m") == 512 * 2**20
    assert parse_size("1.5T") == int(1.5 * 2**40) and parse_size("1000") == 1000
    assert parse_size("2GiB") == 2**31
    with pytest.raises(UserError, match="'lots' is not a size; give bytes or a size such as 200G"):
        parse_size("lots")
