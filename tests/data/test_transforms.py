"""Preprocessing: pixel-identical to the reference's evaluation transform, for every crop mode and
interpolation, on real photos and synthetic images of every PIL mode and shape."""

import io
import os

import numpy as np
import pytest
import skimage.data
import timm.data
import torch
from PIL import Image

import visionzoo
from visionzoo.data import DataConfig, DataError, create_transform, normalize_batch, resolve_data_config
from visionzoo.data.config import INTERPOLATIONS
from visionzoo.pretrained_cfg import all_pretrained_cfgs

PHOTOS = os.path.dirname(skimage.data.__file__)


def _synthetic(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A noisy gradient image (noise exercises every filter tap; the gradient, the resampling)."""
    rng = np.random.default_rng(seed)
    width, height = size
    ramp = np.linspace(0, 255, width)[None, :, None] * np.linspace(0.2, 1, height)[:, None, None]
    rgb = np.clip(ramp + rng.normal(0, 40, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb)
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    if mode == "RGBA":
        alpha = Image.fromarray(rng.integers(0, 255, (height, width), dtype=np.uint8))
        image.putalpha(alpha)
        return image
    if mode == "I;16":
        return Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).convert("I;16")
    return image.convert(mode)


def _reference(image: Image.Image, config: DataConfig) -> torch.Tensor:
    transform = timm.data.create_transform(
        input_size=config.input_size, interpolation=config.interpolation, crop_pct=config.crop_pct,
        crop_mode=config.crop_mode, mean=config.mean, std=config.std)
    return transform(image.convert("RGB"))  # the reference reads every image as RGB first


def _photo(name: str) -> Image.Image:
    with Image.open(os.path.join(PHOTOS, name)) as image:
        image.load()
        return image


SHAPES = [(451, 300), (300, 451), (256, 256), (97, 61), (300, 29), (24, 24)]


@pytest.mark.parametrize("crop_mode", ["center", "squash", "border"])
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_eval_transform_matches_reference_on_shapes(crop_mode, interpolation):
    config = DataConfig(input_size=(3, 224, 224), interpolation=interpolation, crop_pct=0.875,
                        crop_mode=crop_mode)
    transform = create_transform(config)
    for seed, shape in enumerate(SHAPES):
        image = _synthetic("RGB", shape, seed)
        ours = transform(image)
        assert ours.shape == (3, 224, 224)
        assert torch.equal(ours, _reference(image, config)), (shape, crop_mode, interpolation)


@pytest.mark.parametrize("crop_mode", ["center", "squash", "border"])
@pytest.mark.parametrize("photo", ["chelsea.png", "coffee.png", "rocket.jpg", "camera.png"])
def test_eval_transform_matches_reference_on_photos(photo, crop_mode):
    image = _photo(photo)  # camera.png is grayscale ('L')
    for config in (DataConfig(input_size=(3, 256, 256), crop_pct=0.95, crop_mode=crop_mode),
                   DataConfig(input_size=(3, 224, 224), crop_pct=1.0, interpolation="bilinear",
                              crop_mode=crop_mode, mean=(0.5,) * 3, std=(0.5,) * 3),
                   DataConfig(input_size=(3, 160, 160), crop_pct=1.15, crop_mode=crop_mode)):
        assert torch.equal(create_transform(config)(image), _reference(image, config)), (photo, config)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "YCbCr"])
def test_any_8_bit_pil_mode_becomes_the_reference_rgb(mode):
    image = _synthetic(mode, (123, 87))
    config = DataConfig(input_size=(3, 64, 64))
    ours = create_transform(config)(image)
    assert ours.shape == (3, 64, 64)
    assert torch.equal(ours, _reference(image, config))


def test_deeper_samples_are_scaled_or_refused_where_the_reference_clips():
    # The reference converts with PIL, which clips 16-bit samples at 255 (a normal 16-bit photo turns white):
    # here 16 bits keep their high byte, and samples of unknown range (32-bit int, float) are refused.
    config = DataConfig(input_size=(3, 64, 64))
    eight_bit = _synthetic("L", (123, 87))
    deep = Image.fromarray(np.asarray(eight_bit).astype(np.uint16) * 257)  # the same picture in 16 bits
    assert deep.mode == "I;16"
    assert torch.equal(create_transform(config)(deep), create_transform(config)(eight_bit))
    for mode in ("I", "F"):
        with pytest.raises(DataError, match="no known range"):
            create_transform(config)(_synthetic(mode, (123, 87)))


def test_palette_image_with_transparency_and_cmyk_jpeg_from_bytes():
    palette = _synthetic("P", (90, 70))
    palette.info["transparency"] = 3
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    cmyk = io.BytesIO()
    _synthetic("CMYK", (90, 70)).save(cmyk, format="JPEG")
    config = DataConfig(input_size=(3, 48, 48))
    for data in (buffer, cmyk):
        image = Image.open(io.BytesIO(data.getvalue()))
        assert torch.equal(create_transform(config)(image), _reference(image, config))


def test_non_square_input_size_matches_reference():
    for crop_mode in ("center", "squash", "border"):
        config = DataConfig(input_size=(3, 192, 256), crop_pct=0.9, crop_mode=crop_mode)
        for shape in SHAPES[:4]:
            image = _synthetic("RGB", shape)
            ours = create_transform(config)(image)
            assert ours.shape == (3, 192, 256)
            assert torch.equal(ours, _reference(image, config)), (crop_mode, shape)


def test_uint8_transform_and_batch_normalisation_give_the_same_floats():
    config = DataConfig(input_size=(3, 96, 96), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    images = [_synthetic("RGB", shape, seed) for seed, shape in enumerate(SHAPES)]
    uint8 = torch.stack([create_transform(config, normalize=False)(im) for im in images])
    assert uint8.dtype == torch.uint8
    expected = torch.stack([create_transform(config)(im) for im in images])
    assert torch.equal(normalize_batch(uint8, config), expected)


def test_training_transform_gives_the_input_size():
    config = DataConfig(input_size=(3, 64, 80))
    torch.manual_seed(0)
    out = create_transform(config, training=True)(_synthetic("P", (200, 100)))
    assert out.shape == (3, 64, 80) and out.dtype == torch.float32


def _reference_cfg_dict(name):
    cfg = timm.models.get_pretrained_cfg(name)
    return None if cfg is None else cfg.to_dict()


@pytest.mark.parametrize("use_test_size", [False, True])
def test_resolved_config_matches_reference_for_every_tag(use_test_size):
    compared = 0
    for cfgs in all_pretrained_cfgs().values():
        for cfg in cfgs:
            reference_cfg = _reference_cfg_dict(cfg.name)
            if reference_cfg is None:
                continue
            reference = timm.data.resolve_data_config(pretrained_cfg=reference_cfg,
                                                      use_test_size=use_test_size)
            ours = resolve_data_config(pretrained_cfg=cfg, use_test_size=use_test_size)
            assert ours.to_dict() == {k: tuple(v) if isinstance(v, (list, tuple)) else v
                                      for k, v in reference.items()}, cfg.name
            compared += 1
    assert compared > 50


def test_resolve_from_model_and_overrides():
    model = visionzoo.create_model("test_vit")
    config = resolve_data_config(model)
    reference = timm.data.resolve_data_config(model=timm.create_model("test_vit"))
    assert config.input_size == tuple(reference["input_size"]) == (3, 160, 160)
    assert (config.crop_pct, config.interpolation, config.mean) == (0.95, "bicubic", (0.5, 0.5, 0.5))
    # A fixed-size model built at another size is fed its own size.
    assert resolve_data_config(visionzoo.create_model("test_vit", img_size=192)).img_size == (192, 192)
    overridden = resolve_data_config(model, img_size=224, crop_pct=1.0, crop_mode="squash",
                                     interpolation=None)
    assert (overridden.input_size, overridden.crop_pct, overridden.crop_mode) == ((3, 224, 224), 1.0,
                                                                                  "squash")
    assert overridden.interpolation == "bicubic"  # None means: keep the cfg's
    assert resolve_data_config().to_dict() == DataConfig().to_dict()


def test_bad_config_values_are_errors():
    with pytest.raises(TypeError, match="unknown data config option 'crop'"):
        resolve_data_config(crop=0.9)
    with pytest.raises(ValueError, match="crop_mode must be one of"):
        DataConfig(crop_mode="middle")
    with pytest.raises(ValueError, match="interpolation must be one of"):
        DataConfig(interpolation="cubic")
    with pytest.raises(ValueError, match="crop_pct"):
        DataConfig(crop_pct=0)
