"""A run's parts built from its config: here, that an option reaches the part it acts on."""

import torch

from visionzoo.cli.main import build_parser
from visionzoo.runtime import DistributedContext
from visionzoo.train import TrainConfig, resolve_config
from visionzoo.train.build import build_data, build_model


def test_crop_pct_sets_the_crop_of_the_validation_images(digits, tmp_path):
    options = dict(model="test_vit", num_classes=10, img_size=32, data=str(digits[0]),
                   val_data=str(digits[1]), output=str(tmp_path), workers=0)
    context, device = DistributedContext(), torch.device("cpu")
    model = build_model(TrainConfig(**options), context, device)
    tag = build_data(TrainConfig(**options), context, device, model).data_config.crop_pct
    data = build_data(TrainConfig(**options, crop_pct=0.5), context, device, model)
    assert data.data_config.crop_pct == 0.5 != tag
    resize, crop = data.val_loader.dataset.transform.transforms[1:3]
    assert tuple(resize.size) == (64, 64) and tuple(crop.size) == (32, 32)  # the crop keeps half a side
    # the flag, and a recipe that states it
    assert build_parser().parse_args(["train", "--crop-pct", "0.9"]).crop_pct == 0.9
    assert resolve_config(recipe="vit_betwixt_patch16_reg4_gap_256.sbb_in1k").inputs.crop_pct == 0.95
