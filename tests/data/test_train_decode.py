"""The fast training input (`create_train_transform(..., encoded=True)`): the crop drawn from the header,
JPEGs decoded at the scale the crop needs, the work on uint8, RandAugment on arrays through OpenCV.
Its output must follow the plain PIL path's distribution: crop scale and aspect, pixel statistics."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from visionzoo.data.array_augment import GEOMETRIC_OPS, apply_op_array
from visionzoo.data.auto_augment import apply_op
from visionzoo.data.datasets import create_dataset
from visionzoo.data.train_decode import EncodedTrainTransform, crop_box, dct_reduction
from visionzoo.data.train_options import TrainAugmentation
from visionzoo.data.train_transforms import create_train_transform

MNV4 = TrainAugmentation(aa="rand-m8-inc1-mstd1.0")  # the e2400 recipe's per-image augmentation


def _jpeg(image: Image.Image, size: tuple[int, int], quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").resize(size, Image.BICUBIC).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo_jpegs():
    """Real photos as JPEGs at ImageNet-like sizes."""
    import skimage.data

    photos = [Image.fromarray(getattr(skimage.data, name)()) for name in ("astronaut", "chelsea", "coffee")]
    return [_jpeg(photo, size) for photo in photos for size in ((500, 375), (375, 500))]


def _log_aspect_and_fraction(boxes, height, width):
    boxes = np.array(boxes, dtype=np.float64)
    return np.log(boxes[:, 3] / boxes[:, 2]), boxes[:, 2] * boxes[:, 3] / (height * width)


def test_the_crop_box_follows_torchvisions_random_resized_crop():
    from torchvision import transforms

    torch.manual_seed(0)
    height, width, draws = 375, 500, 4000
    ours = [crop_box(height, width, (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(draws)]
    shape = torch.empty(()).expand(3, height, width)
    theirs = [transforms.RandomResizedCrop.get_params(shape, [0.08, 1.0], [3 / 4, 4 / 3])
              for _ in range(draws)]
    for mine, reference in zip(_log_aspect_and_fraction(ours, height, width),
                               _log_aspect_and_fraction(theirs, height, width), strict=True):
        # standard errors of the means and stds are below 0.005 at 4000 draws
        assert abs(mine.mean() - reference.mean()) < 0.02 and abs(mine.std() - reference.std()) < 0.02
    tops, lefts = np.array(ours)[:, 0], np.array(ours)[:, 1]
    assert all(0 <= top <= height - h and 0 <= left <= width - w for top, left, h, w in ours)
    assert tops.std() > 20 and lefts.std() > 20  # positions drawn over the free range
    # impossible aspects fall back to the centre crop of the nearest allowed one, as torchvision does
    assert crop_box(100, 400, (1.0, 1.0), (1.0, 1.0)) == (0, 150, 100, 100)


def test_the_reduced_scale_decode_is_chosen_from_the_crop_and_keeps_the_output_size():
    assert dct_reduction((0, 0, 1200, 1600), (224, 224)) == 4
    assert dct_reduction((0, 0, 447, 1600), (224, 224)) == 1  # half of 447 is below 224
    assert dct_reduction((0, 0, 1800, 1800), (224, 224)) == 8
    assert dct_reduction((0, 0, 500, 500), (224, 224)) == 2


def _whole_image(size):
    # scale 1 and the image's own aspect: the crop is the whole image, so the output is a plain resize
    return EncodedTrainTransform(size, (1.0, 1.0), (4 / 3, 4 / 3), "bicubic", [], form="tensor")


def test_a_whole_image_crop_is_the_pil_resize_of_it(photo_jpegs):
    data = photo_jpegs[0]  # 500x375: decoded whole, resized by torch
    out = _whole_image((96, 128)).read(data).numpy().transpose(1, 2, 0).astype(np.float64)
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((128, 96), Image.BICUBIC))
    assert out.shape == reference.shape
    assert np.abs(out - reference).mean() < 1.0


def test_a_large_jpeg_is_decoded_reduced_and_stays_close_to_the_full_decode(photo_jpegs):
    import skimage.data

    data = _jpeg(Image.fromarray(skimage.data.astronaut()), (1600, 1200))
    out = _whole_image((224, 299)).read(data).numpy().transpose(1, 2, 0).astype(np.float64)
    full = Image.open(io.BytesIO(data)).convert("RGB").resize((299, 224), Image.BICUBIC)
    assert np.abs(out - np.asarray(full)).mean() < 3.0  # the DCT's 1/4 scale against a bicubic downsizing


def _pixel_stats(outputs: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    stacked = torch.stack(outputs).double()
    return stacked.mean(dim=(0, 2, 3)).numpy(), stacked.std(dim=(0, 2, 3)).numpy()


@pytest.mark.parametrize("options", [TrainAugmentation(), MNV4], ids=["crop-flip", "mnv4-randaugment"])
def test_the_fast_path_has_the_plain_paths_pixel_statistics(photo_jpegs, options):
    size = 112
    plain = create_train_transform(size, options, normalize=False, interpolation="bicubic")
    fast = create_train_transform(size, options, normalize=False, interpolation="bicubic", encoded=True)
    assert isinstance(fast, EncodedTrainTransform)
    torch.manual_seed(0)
    samples = 40
    plain_out = [plain(Image.open(io.BytesIO(data)).convert("RGB")) for data in photo_jpegs for _ in
                 range(samples)]
    fast_out = [fast(fast.read(data)) for data in photo_jpegs for _ in range(samples)]
    assert fast_out[0].dtype == torch.uint8 and fast_out[0].shape == (3, size, size)
    (plain_mean, plain_std), (fast_mean, fast_std) = _pixel_stats(plain_out), _pixel_stats(fast_out)
    # 240 random crops a side: the means of the two samples agree to a few levels of 255
    assert np.abs(plain_mean - fast_mean).max() < 4.0, (plain_mean, fast_mean)
    assert np.abs(plain_std - fast_std).max() < 4.0, (plain_std, fast_std)
    # the images vary as much: the per-image means spread alike
    spread = [torch.stack([o.double().mean() for o in outs]).std().item() for outs in (plain_out, fast_out)]
    assert abs(spread[0] - spread[1]) < 0.25 * spread[0]


OP_ARGUMENTS = {"Rotate": 21.0, "ShearX": 0.22, "ShearY": -0.18, "TranslateXRel": 0.3, "TranslateYRel": -0.25,
                "AutoContrast": None, "Equalize": None, "Invert": None, "PosterizeIncreasing": 2,
                "Posterize": 0, "SolarizeIncreasing": 100, "SolarizeAdd": 60, "ColorIncreasing": 0.7,
                "Color": 0.4, "ContrastIncreasing": -0.6, "BrightnessIncreasing": 0.5, "Brightness": 0.3,
                "SharpnessIncreasing": 0.8, "Sharpness": 1.9}


@pytest.mark.parametrize("name", list(OP_ARGUMENTS))
def test_the_array_ops_are_pillows(photo_jpegs, name):
    image = Image.open(io.BytesIO(photo_jpegs[0])).convert("RGB").resize((160, 120))
    ours = apply_op_array(np.asarray(image), name, OP_ARGUMENTS[name], "bicubic", (124, 116, 104))
    reference = np.asarray(apply_op(image, name, OP_ARGUMENTS[name], "bicubic", (124, 116, 104)))
    difference = np.abs(ours.astype(np.float64) - reference)
    assert ours.dtype == np.uint8 and ours.shape == reference.shape
    if name in GEOMETRIC_OPS:  # other kernels and edges; a misplaced pixel grid would be tens of levels
        assert difference.mean() < 1.5 and (difference > 32).mean() < 0.01
    else:  # the same formulas: at most float rounding
        assert difference.max() <= 1, name


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_geometric_array_ops_take_the_interpolation(photo_jpegs, interpolation):
    image = Image.open(io.BytesIO(photo_jpegs[0])).convert("RGB").resize((160, 120))
    ours = apply_op_array(np.asarray(image), "Rotate", 17.0, interpolation, (124, 116, 104))
    reference = np.asarray(apply_op(image, "Rotate", 17.0, interpolation, (124, 116, 104)))
    assert np.abs(ours.astype(np.float64) - reference).mean() < 1.5


def test_without_opencv_randaugment_runs_on_pil_images(monkeypatch):
    from visionzoo.data import train_transforms

    assert create_train_transform(64, MNV4, normalize=False, encoded=True).form == "array"
    monkeypatch.setattr(train_transforms, "opencv", lambda: None)
    assert create_train_transform(64, MNV4, normalize=False, encoded=True).form == "pil"
    assert create_train_transform(64, TrainAugmentation(), normalize=False, encoded=True).form == "tensor"


def test_a_dataset_hands_the_fast_transform_its_bytes_and_reports_unreadable_files(tmp_path, photo_jpegs):
    folder = tmp_path / "n01440764"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(photo_jpegs[0])
    (folder / "cut.jpg").write_bytes(photo_jpegs[0][:300])  # truncated
    (folder / "noise.jpg").write_bytes(b"not an image at all")
    Image.open(io.BytesIO(photo_jpegs[0])).convert("L").save(folder / "gray.png")
    Image.open(io.BytesIO(photo_jpegs[0])).convert("CMYK").save(folder / "cmyk.jpg")
    transform = create_train_transform(64, MNV4, normalize=False, encoded=True)
    dataset = create_dataset(tmp_path, transform=transform)
    samples = {dataset.name(i).rsplit("/", 1)[-1]: dataset[i] for i in range(len(dataset))}
    for good in ("photo.jpg", "gray.png", "cmyk.jpg"):
        assert samples[good].error is None and samples[good].image.shape == (3, 64, 64), good
    for bad in ("cut.jpg", "noise.jpg"):
        assert samples[bad].image is None and samples[bad].error, bad
    assert math.isclose(float(samples["gray.png"].image.double().std(dim=0).mean()), 0.0)  # gray stays gray
