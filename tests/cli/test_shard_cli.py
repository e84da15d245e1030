"""`visionzoo shard`, and `visionzoo validate` reading shards over HTTP: the same results as the folder they
came from; bad shards and bad arguments in one line with exit status 2."""

import json

import pytest

from tests.http_server import serve_folder
from tests.images import image_bytes, synset_folder, write_tar, write_truncated_jpeg
from visionzoo.cli.main import main

SYNSETS = ["n01440764", "n02123045", "n07920052"]


@pytest.fixture(autouse=True)
def shard_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONZOO_SHARD_CACHE", str(tmp_path / "shard-cache"))


@pytest.fixture(scope="module")
def val_folder(tmp_path_factory):
    root = synset_folder(tmp_path_factory.mktemp("data") / "val", SYNSETS, per_class=3)
    write_truncated_jpeg(root / "n07920052" / "cut.jpg")  # unreadable in both: skipped and reported in both
    return root


def _run(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_shard_then_validate_over_http_gives_the_folder_results(capsys, tmp_path, checkpoint, val_folder):
    code, out, err = _run(capsys, "shard", val_folder, "--output", tmp_path / "served" / "val",
                          "--shard-size", 4, "--workers", 1)
    assert code == 0, err
    assert out.startswith("wrote 10 samples in 3 shard(s) (")
    assert "/val/shard-{000000..000002}.tar; 3 named classes; index " in out
    assert json.loads((tmp_path / "served" / "val" / "_index.json").read_text())["classes"] == SYNSETS
    validate = ["validate", "--model", "test_vit", "--checkpoint", checkpoint, "--batch-size", 4,
                "--workers", 0, "--img-size", 64]
    code, _, expected_err = _run(capsys, *validate, "--data", val_folder,
                                 "--results-file", tmp_path / "a.json")
    assert code == 0 and "skipped 1 unreadable image(s)" in expected_err
    with serve_folder(tmp_path / "served") as (base, requests):
        code, out, err = _run(capsys, *validate, "--data", f"{base}/val/shard-{{000000..000002}}.tar",
                              "--results-file", tmp_path / "b.json")
    assert code == 0, err

    def figures(results):
        return [{k: v for k, v in row.items() if k not in ("images_per_sec", "data")}
                for row in json.loads(results.read_text())["results"]]

    expected = figures(tmp_path / "a.json")
    assert expected[0]["count"] == 9 and expected[0]["loss"] > 0
    assert figures(tmp_path / "b.json") == expected  # the same top-1, top-5 and loss, to the last bit
    assert "skipped 1 unreadable image(s)" in err
    assert "/val/shard-000001.tar#00000006 (OSError: image file is truncated" in err
    assert sorted(set(requests)) == ["/val/_index.json", "/val/shard-000000.tar", "/val/shard-000001.tar",
                                     "/val/shard-000002.tar"]


@pytest.mark.parametrize("kind, message", [
    ("truncated", "bad.tar is truncated or damaged: its member a.jpg needs"),
    ("missing label", "bad.tar: sample a has no label: add a.cls (a class index) or a.json with a \"label\""),
    ("unknown extension", "bad.tar: sample a has no image in a format shards carry (.jpg, .jpeg, .png, "
                          ".webp); it has .cls, .tiff"),
])
def test_bad_shards_exit_2_with_one_line(capsys, tmp_path, checkpoint, kind, message):
    members = {"truncated": [("a.cls", b"0"), ("a.jpg", image_bytes(fmt="JPEG"))],
               "missing label": [("a.jpg", image_bytes(fmt="JPEG"))],
               "unknown extension": [("a.cls", b"0"), ("a.tiff", image_bytes(fmt="TIFF"))]}[kind]
    shard = write_tar(tmp_path / "bad.tar", members)
    if kind == "truncated":
        shard.write_bytes(shard.read_bytes()[:1800])  # in the image's data
    code, out, err = _run(capsys, "validate", "--model", "test_vit", "--checkpoint", checkpoint,
                          "--data", shard)
    assert code == 2 and out == ""
    assert err.startswith("visionzoo validate: error: shard ") and message in err
    assert err.count("\n") == 1


def test_shard_refuses_in_one_line(capsys, tmp_path, val_folder):
    code, out, err = _run(capsys, "shard", tmp_path / "nothing", "--output", tmp_path / "out")
    assert code == 2 and "data path" in err and "does not exist" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exited:  # argparse's own check
        main(["shard", str(val_folder), "--output", str(tmp_path / "out"), "--shard-size", "0"])
    assert exited.value.code == 2 and "--shard-size: must be a positive integer" in capsys.readouterr().err
    assert _run(capsys, "shard", val_folder, "--output", tmp_path / "out")[0] == 0
    code, out, err = _run(capsys, "shard", val_folder, "--output", tmp_path / "out")
    assert code == 2 and "already holds shards (_index.json); give an empty or new folder" in err
    code, out, err = _run(capsys, "shard", tmp_path / "out", "--output", tmp_path / "again")
    assert code == 2 and "is webdataset shards already" in err and err.count("\n") == 1
