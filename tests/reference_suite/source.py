"""Fetch the reference's `tests/test_models.py` (timm 1.0.31 sdist); point its model-API imports at our shim.

The file is not vendored: it is downloaded once with pip into a cache directory (the suite's one use of the
network) and rewritten in memory. `VISIONZOO_REFERENCE_SUITE_CACHE` moves the cache (default
`~/.cache/visionzoo/reference-suite`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "1.0.31"
MEMBER = f"timm-{VERSION}/tests/test_models.py"
# The one line of the suite that names the model API; everything else it imports stays the reference's.
ORIGINAL_IMPORT = ("from timm import list_models, list_pretrained, create_model, set_scriptable, "
                   "get_pretrained_cfg_value")
SHIM_IMPORT = ("from timm import set_scriptable\n"
               "from tests.reference_suite.shim import list_models, list_pretrained, create_model, "
               "get_pretrained_cfg_value")


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "visionzoo" / "reference-suite"
    return Path(os.environ.get("VISIONZOO_REFERENCE_SUITE_CACHE", default))


def reference_test_file() -> Path:
    """Path of the cached `test_models.py`, downloading the sdist with pip on first use.

    Raises:
        RuntimeError: pip could not download the sdist (no network and no cache), with pip's output.
    """
    target = cache_dir() / f"timm-{VERSION}-test_models.py"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   f"timm=={VERSION}", "--dest", tmp, "--quiet"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"could not download the timm {VERSION} sdist (needs the package index once; "
                               "or set VISIONZOO_REFERENCE_SUITE_CACHE to a filled cache): "
                               f"{done.stderr[-500:]}")
        with tarfile.open(Path(tmp) / f"timm-{VERSION}.tar.gz") as sdist:
            data = sdist.extractfile(MEMBER).read()
        partial = Path(tmp) / "test_models.py"
        partial.write_bytes(data)
        os.replace(partial, target)  # atomic: parallel workers never read half a file
    return target


def shimmed_source(path: Path) -> str:
    """The suite's text with its model-API import pointed at the shim; fails if the line is not found once."""
    text = path.read_text(encoding="utf-8")
    if text.count(ORIGINAL_IMPORT) != 1:
        raise RuntimeError(f"{path} does not contain the expected import line once: {ORIGINAL_IMPORT!r}")
    return text.replace(ORIGINAL_IMPORT, SHIM_IMPORT)
