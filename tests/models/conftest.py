"""The registered architectures the model tests run over, and which are heavy (one list for every module)."""

from __future__ import annotations

import pytest

import visionzoo
from visionzoo.factory import parameter_count

ARCHS = visionzoo.list_models()
# Models over ~100M parameters take seconds to build (in the reference too): marked, still run in CI.
HEAVY = frozenset(name for name in ARCHS if parameter_count(name) > 100e6)


def arch_params(names=ARCHS) -> list:
    """`names` as pytest params, the heavy ones marked `heavy`."""
    return [pytest.param(n, marks=pytest.mark.heavy) if n in HEAVY else n for n in names]
