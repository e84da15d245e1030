"""A user's ordinary mistakes on the command line: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

from tests.images import write_image
from visionzoo.cli.main import main


def test_validate_with_bad_labels_files_is_one_line_exit_2(tmp_path, capsys, checkpoint):
    flat = tmp_path / "flat"
    image = write_image(flat / "a.jpg")
    cases = [(image, "is an image; the labels file lists 'filename,label' lines"),
             (flat / "latin.csv", "is not UTF-8 text")]
    (flat / "latin.csv").write_bytes("a.jpg,caf\xe9\n".encode("latin-1"))
    for labels, message in cases:
        code = main(["validate", "--model", "test_vit", "--checkpoint", str(checkpoint), "--data", str(flat),
                     "--labels", str(labels), "--workers", "0"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
