"""Messages name what the caller wrote: the library the Python argument or field (`checkpoint_path`,
`lr_base`), the command line its flag (`--checkpoint`, `--lr-base`), through one mapping for every command
(`visionzoo.cli.options.flag`); no library message tells a Python caller about a flag."""

import ast
import pickle
import re
from pathlib import Path

import pytest

from visionzoo.cli.main import main
from visionzoo.cli.options import flag
from visionzoo.errors import CheckpointError, ConfigError, OutputError, UserError

SRC = Path(__file__).resolve().parents[1] / "src" / "visionzoo"


@pytest.mark.parametrize("name, expected", [
    ("lr_base", "--lr-base"), ("checkpoint_path", "--checkpoint"), ("labels_file", "--labels"),
    ("img_sizes", "--img-size"), ("drop_path_rate", "--drop-path"), ("strict=True", "--strict"),
    ("plots=False", "--no-plots"), ("pretrained=True", "--pretrained"),
])
def test_one_mapping_from_argument_to_flag(name, expected):
    assert flag(name) == expected


def test_an_error_names_arguments_for_python_and_flags_for_the_command_line():
    error = UserError("{pretrained=True} and {checkpoint_path} both give the weights; set {img_size}")
    assert str(error) == "pretrained=True and checkpoint_path both give the weights; set img_size"
    assert error.naming(flag) == "--pretrained and --checkpoint both give the weights; set --img-size"
    # braces that are not a name stay as they are
    assert str(UserError("labels {'a': 1} and {0}")) == "labels {'a': 1} and {0}"


@pytest.mark.parametrize("kind", [UserError, ConfigError, CheckpointError, OutputError])
def test_an_error_sent_to_another_process_keeps_its_names(kind):
    error = pickle.loads(pickle.dumps(kind("{output} x is in use")))
    assert type(error) is kind and str(error) == "output x is in use"
    assert error.naming(flag) == "--output x is in use"


def _raised_strings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for part in ast.walk(node.exc):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    yield node.lineno, part.value


def test_no_library_message_names_a_flag():
    """Outside cli/, an error names `{argument}`; a flag only inside a quoted command (`visionzoo validate
    --results-file`)."""
    found = []
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts:
            continue
        for line, text in _raised_strings(ast.parse(path.read_text())):
            if re.search(r"(?<![\w-])--[a-z]", re.sub(r"`[^`]*`", "", text)):
                found.append(f"{path.relative_to(SRC)}:{line}: {text!r}")
    assert not found, "\n".join(found)


def test_the_command_line_names_the_flag_the_library_names_the_argument(hf_home, tmp_path, capsys):
    """Weights not in the cache, offline: the library says checkpoint_path, `predict` says --checkpoint."""
    import visionzoo
    from tests.images import write_image

    with pytest.raises(CheckpointError, match=r"or pass checkpoint_path <your copy of "):
        visionzoo.create_model("test_vit.r160_in1k", pretrained=True)
    image = write_image(tmp_path / "a.png")
    assert main(["predict", str(image), "--model", "test_vit.r160_in1k", "--pretrained"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "or pass --checkpoint <your copy of " in err, err
    assert "checkpoint_path" not in err


def test_the_readme_has_the_section_the_messages_point_to():
    from visionzoo.errors import REFUSALS

    readme = (SRC.parents[1] / "README.md").read_text()
    anchor = REFUSALS.split("#")[1]
    heading = next(line for line in readme.splitlines() if line.startswith("## What visionzoo refuses"))
    # GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes
    assert re.sub(r"[^\w\- ]", "", heading[3:].lower()).replace(" ", "-") == anchor
    assert f"]({'#' + anchor})" in readme  # and the README links to it itself
