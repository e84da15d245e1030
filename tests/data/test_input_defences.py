"""Inputs that must never be silently changed or read twice: 16-bit images, link loops, FIFOs, labels files
that repeat, contradict or are not UTF-8 text."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PIL import Image

from tests.images import synset_folder, write_image
from visionzoo.data import DataError, create_dataset
from visionzoo.data.datasets import read_labels_file
from visionzoo.data.transforms import to_rgb
from visionzoo.prediction import read_image

GRADIENT = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)  # 0 .. 64491


def _sixteen_bit_png(path):
    Image.fromarray(GRADIENT).save(path)
    return path


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    path = _sixteen_bit_png(tmp_path / "deep.png")
    with Image.open(path) as image:
        assert image.mode.startswith("I")
        rgb = np.asarray(to_rgb(image))
    assert rgb.shape == (48, 64, 3)
    np.testing.assert_array_equal(rgb[..., 0], GRADIENT >> 8)
    assert (rgb == 255).mean() < 0.01  # PIL's convert("RGB") saturates 99.6% of these pixels
    np.testing.assert_array_equal(np.asarray(read_image(str(path))), rgb)


def test_16_bit_png_in_a_dataset_reads_as_its_8_bit_scale(tmp_path):
    root = tmp_path / "val"
    (root / "n01440764").mkdir(parents=True)
    _sixteen_bit_png(root / "n01440764" / "deep.png")
    sample = create_dataset(root)[0]
    assert sample.error is None
    np.testing.assert_array_equal(np.asarray(sample.image)[..., 1], GRADIENT >> 8)


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "CMYK"])
def test_eight_bit_modes_convert_as_pil_does(mode):
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    assert np.array_equal(np.asarray(to_rgb(image)), np.asarray(image.convert("RGB")))


def test_float_samples_are_refused_by_name(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.ones((8, 8), dtype=np.float32)).save(path)
    with Image.open(path) as image, pytest.raises(DataError, match="float samples .*no known range"):
        to_rgb(image)
    root = tmp_path / "val" / "n01440764"
    root.mkdir(parents=True)
    os.replace(path, root / "float.tif")
    assert "no known range" in create_dataset(root.parent)[0].error  # counted as unreadable, not clipped


def test_each_image_is_listed_once_whatever_the_links(tmp_path):
    root = synset_folder(tmp_path / "val", ["n01440764", "n02123045"], per_class=2)
    cls = root / "n01440764"
    os.symlink(cls, cls / "loop")  # a link loop: the folder inside itself
    os.symlink(root, cls / "up")  # the whole tree again, inside a class folder
    os.symlink(cls, root / "n02123045" / "twin")  # a link back into the tree: counted where it lives
    first = next(p for p in sorted(cls.iterdir()) if p.is_file())
    os.symlink(first, cls / "again.jpg")  # one file under two names
    outside = synset_folder(tmp_path / "elsewhere", ["extra"], per_class=1) / "extra"
    os.symlink(outside, cls / "kept-on-another-disk")  # a link out of the tree: followed
    os.symlink(outside, cls / "and-again")  # ... once
    dataset = create_dataset(root)
    assert sorted(zip(dataset.labels, dataset.files, strict=True)) == [
        (0, "n01440764/and-again/img0.jpg"), (0, "n01440764/img0.jpg"), (0, "n01440764/img1.png"),
        (281, "n02123045/img0.png"), (281, "n02123045/img1.JPEG")]


def test_two_class_folders_that_are_one_folder_are_refused(tmp_path):
    root = synset_folder(tmp_path / "val", ["n01440764"], per_class=1)
    os.symlink(root / "n01440764", root / "n02123045")
    with pytest.raises(DataError, match="class folders n01440764 and n02123045 .* are the same folder"):
        create_dataset(root)


def test_broken_link_is_an_unreadable_image_not_a_crash(tmp_path):
    root = synset_folder(tmp_path / "val", ["n01440764"], per_class=1)
    os.symlink(tmp_path / "gone.jpg", root / "n01440764" / "broken.jpg")
    dataset = create_dataset(root)
    errors = [dataset[i].error for i in range(len(dataset))]
    assert len(dataset) == 2 and sum(e is not None for e in errors) == 1


def _within(seconds, function):
    """Call `function` in a daemon thread: a blocking read fails the test instead of hanging the suite."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=function()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    return result["value"]


def test_a_fifo_among_the_images_is_not_read(tmp_path):
    root = synset_folder(tmp_path / "val", ["n01440764"], per_class=1)
    os.mkfifo(root / "n01440764" / "pipe.jpg")
    dataset = _within(20, lambda: create_dataset(root))
    assert len(dataset) == 1 and dataset[0].error is None
    flat = tmp_path / "flat"
    write_image(flat / "a.jpg")
    os.mkfifo(flat / "pipe.jpg")
    (flat / "labels.csv").write_text("a.jpg,0\npipe.jpg,1\n")
    listed = create_dataset(flat)
    sample = _within(20, lambda: listed[1])
    assert sample.error is not None and "not a regular file" in sample.error


def test_labels_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("filename,label\r\na.jpg,5\r\nb.jpg,n02123045\r\n".encode("utf-8-sig"))
    assert read_labels_file(path, 1000) == (["a.jpg", "b.jpg"], [5, 281])


def test_repeated_rows_count_once_and_conflicting_rows_are_refused(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("a.jpg,5\nb.jpg,6\na.jpg,5\n ./c.jpg , 7\n")
    assert read_labels_file(path, 1000) == (["a.jpg", "b.jpg", "./c.jpg"], [5, 6, 7])
    path.write_text("a.jpg,5\nb.jpg,6\na.jpg,n01440764\n")
    with pytest.raises(DataError, match=r"labels.csv:3: a.jpg is labelled n01440764 here but 5 on line 1"):
        read_labels_file(path, 1000)


@pytest.mark.parametrize("content, message", [
    ("a.jpg,5\nb\xe9.jpg,6\n".encode("latin-1"), r"is not UTF-8 text \(byte 0xe9 at offset 9\)"),
    (b"\xff\xfea\x00", "is not UTF-8 text"),  # UTF-16, as some editors save
])
def test_labels_file_that_is_not_utf8_is_one_line(tmp_path, content, message):
    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_labels_file(path, 1000)
