"""Fixtures of the training tests: the training command run in a subprocess (the digits data set is a
fixture of tests/conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.digits import DIGIT_NAMES, write_digits


@pytest.fixture(scope="session")
def named_digits(tmp_path_factory):
    """(train folder, val folder) of the digits as 32x32 RGB PNGs, in folders named 'zero'..'nine'."""
    return write_digits(tmp_path_factory.mktemp("named_digits"), names=DIGIT_NAMES)


def run_cli(args: list[str], env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`python -m visionzoo ARGS` in a fresh process, with this checkout's sources first on the path."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    full_env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "visionzoo", *args], env=full_env, capture_output=True,
                          text=True, **kwargs)
