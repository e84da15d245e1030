"""Which items of the reference suite run: those on our architectures, TorchScript and Hub tests aside."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from tests.reference_suite.shim import is_our_model

# Out of scope, by test function, with the reason.
OUT_OF_SCOPE = {
    "test_model_inference": "downloads the Hub's test tensors and weights (network)",
    "test_model_load_pretrained": "downloads pretrained weights from the Hub (network)",
    "test_model_features_pretrained": "downloads pretrained weights from the Hub (network)",
}
TORCHSCRIPT = "needs TorchScript, which visionzoo does not support (deprecated in torch; see torch.export)"
NOT_OURS = "builds a model visionzoo does not register (or one over 100M parameters)"
# The suite marks its groups; registered here so pytest does not warn about them. `timeout` needs the
# pytest-timeout plugin, which the suite treats as optional.
SUITE_MARKERS = ("base", "cfg", "cfg_nonstd", "forward", "backward", "features", "fxforward", "fxbackward",
                 "torchscript", "timeout")

_deselected: Counter = Counter()

# Opt-in: it downloads the reference's sdist once (the one network access of the tests) and builds hundreds of
# models (about half an hour on 2 cores), more than the default suite's time budget; run it with
# VISIONZOO_REFERENCE_SUITE=1 python -m pytest tests/reference_suite
if os.environ.get("VISIONZOO_REFERENCE_SUITE") != "1":
    collect_ignore = ["test_reference_models.py"]


def pytest_configure(config):
    for marker in SUITE_MARKERS:
        config.addinivalue_line("markers", f"{marker}: a group of the reference's model test-suite")
    config.addinivalue_line("markers", "reference_suite: an item of the reference's model test-suite")


def _reason(item) -> str | None:
    name = item.originalname
    if name in OUT_OF_SCOPE:
        return OUT_OF_SCOPE[name]
    if "torchscript" in name or item.get_closest_marker("torchscript"):
        return TORCHSCRIPT
    model_name = getattr(item, "callspec", None) and item.callspec.params.get("model_name")
    if not isinstance(model_name, str) or not is_our_model(model_name):
        return NOT_OURS
    return None


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        reason = _reason(item) if item.module.__name__.endswith("test_reference_models") else None
        if reason is None:
            keep.append(item)
            if item.module.__name__.endswith("test_reference_models"):
                # hundreds of model builds: heavy (still run in CI), and selectable as a group
                item.add_marker(pytest.mark.heavy)
                item.add_marker(pytest.mark.reference_suite)
        else:
            drop.append(item)
            _deselected[reason] += 1
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter):
    for reason, count in sorted(_deselected.items()):
        terminalreporter.write_line(f"reference suite: {count} deselected, {reason}")
