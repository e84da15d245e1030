"""Model folders both ways with the reference (timm, a test-only dependency), one architecture per family,
random weights, a changed head and input size:

- a folder visionzoo writes loads in `timm.create_model("local-dir:PATH", pretrained=True)`;
- a folder the reference's `save_for_hf` writes (a fine-tuned head, its class names) loads in visionzoo;

with equal outputs in float64, the same preprocessing and the same class names.
"""

from __future__ import annotations

import pytest
import torch

import visionzoo
from tests.reference import (
    FLOAT64_TOLERANCE,
    conformance_input_sizes,
    max_relative_error,
    meta_model,
    randomise_,
)

timm = pytest.importorskip("timm")

FAMILY_ARCHS = ["test_vit", "test_byobnet", "test_efficientnet", "convnext_zepto_rms", "mambaout_femto",
                "resnet50d", "hiera_small_abswin_256"]
HEAVY = {"resnet50d", "hiera_small_abswin_256"}  # 25M and 34M parameters
CONV_SIZE = 96  # none of the conv nets' tags is at this size


def _params(names):
    return [pytest.param(n, marks=pytest.mark.heavy) if n in HEAVY else n for n in names]


def _size(arch: str) -> int:
    probe = meta_model(arch)
    return conformance_input_sizes(probe)[0][0] if probe.fixed_input_size else CONV_SIZE


def _assert_same_outputs(ours, reference, size: int) -> None:
    ours.eval().double()
    reference.eval().double()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        error = max_relative_error(ours(x), reference(x))
    assert error < FLOAT64_TOLERANCE, f"logits: {error:.2e}"


@pytest.mark.parametrize("arch", _params(FAMILY_ARCHS))
def test_a_visionzoo_folder_loads_in_the_reference(arch, tmp_path):
    size = _size(arch)
    names = [f"kind {i}" for i in range(7)]
    model = visionzoo.create_model(arch, num_classes=7, img_size=size).eval()
    randomise_(model)
    visionzoo.save_model_folder(model, tmp_path / "folder", label_names=names)
    reference = timm.create_model(f"local-dir:{tmp_path / 'folder'}", pretrained=True)
    cfg = reference.pretrained_cfg
    assert reference.num_classes == 7 and list(cfg["label_names"]) == names
    assert tuple(cfg["input_size"]) == (3, size, size) and cfg["crop_pct"] == model.pretrained_cfg.crop_pct
    assert tuple(timm.data.resolve_data_config({}, model=reference)["input_size"]) == (3, size, size)
    _assert_same_outputs(model, reference, size)


@pytest.mark.parametrize("arch", _params(FAMILY_ARCHS))
def test_a_reference_folder_loads_in_visionzoo(arch, tmp_path):
    size = _size(arch)
    names = [f"kind {i}" for i in range(5)]
    fixed = meta_model(arch).fixed_input_size
    torch.manual_seed(0)
    reference = timm.create_model(arch, num_classes=5, **({"img_size": size} if fixed else {})).eval()
    randomise_(reference)
    # the reference's default writes pytorch_model.bin; half the families use safetensors instead
    safe = FAMILY_ARCHS.index(arch) % 2 == 0
    timm.models.save_for_hf(reference, tmp_path / "folder", model_config={"label_names": names},
                            data_config={"input_size": (3, size, size), "crop_pct": 0.9},
                            safe_serialization=safe)
    assert (tmp_path / "folder" / ("model.safetensors" if safe else "pytorch_model.bin")).is_file()
    ours = visionzoo.create_model(str(tmp_path / "folder"), pretrained=True)
    cfg = ours.pretrained_cfg
    assert ours.num_classes == 5 and cfg.label_names == tuple(names)
    assert cfg.input_size == (3, size, size) and cfg.crop_pct == 0.9
    assert ours.default_img_size == (size, size)
    _assert_same_outputs(ours, reference, size)


def test_a_reference_folder_with_options_visionzoo_names_otherwise_is_refused(tmp_path):
    reference = timm.create_model("resnet50d", num_classes=3, layers=[1, 1, 1, 1])
    timm.models.save_for_hf(reference, tmp_path / "folder", safe_serialization=True)
    with pytest.raises(visionzoo.errors.OptionError, match="records model_args visionzoo cannot apply: "
                                                           "resnet50d has no option 'layers'"):
        visionzoo.create_model(str(tmp_path / "folder"), pretrained=True)


def test_a_reference_folder_of_an_architecture_visionzoo_lacks_is_refused(tmp_path):
    reference = timm.create_model("resnet18", num_classes=3)
    timm.models.save_for_hf(reference, tmp_path / "folder", safe_serialization=True)
    with pytest.raises(visionzoo.UnknownModelError,
                       match="holds a 'resnet18' model, an architecture visionzoo does not have"):
        visionzoo.create_model(f"local-dir:{tmp_path / 'folder'}", pretrained=True)
