"""The training input from the encoded image to a uint8 tensor, doing less work than decode-then-augment
for the same augmentation: the training path `build_data` uses (`create_train_transform(...,
encoded=True)`).

- The random-resized crop is drawn first, from the image's size in its header, by torchvision's
  `RandomResizedCrop` rule.
- A JPEG is then decoded at the smallest DCT scale (1/2, 1/4, 1/8: Pillow's `draft`) at which the crop
  box is still at least the output size on both sides, so the resize after it still only shrinks; a crop
  that needs the full resolution is decoded whole by `torchvision.io.decode_jpeg`. Other formats (and JPEGs
  in CMYK or other modes) go through Pillow and `to_rgb` as everywhere else.
- The crop is resized on the uint8 pixels as the decoder leaves them (interleaved), by torch's antialiased
  resampling (Pillow's filters, vectorised).
- The steps after the crop are the PIL path's: flips on the tensor where they are all; flips and
  RandAugment on the resized pixels as an array, by OpenCV, where it is installed (`array_augment.py`:
  the geometric ops several times faster than Pillow's, no PIL image made); otherwise (and with colour
  jitter, grayscale or blur) on a PIL image made from them.

The output follows the PIL path's distribution (`tests/data/test_train_decode.py` compares the crop
statistics and the pixels), not its exact pixels: a reduced-scale decode and torch's resampling round
differently from Pillow's.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .image_dataset import EncodedImageTransform
from .transforms import to_rgb

if TYPE_CHECKING:
    from PIL import Image

DCT_SCALES = (8, 4, 2)  # the JPEG decoder's reductions Pillow's draft offers, largest first
FORMS = ("tensor", "array", "pil")
_TORCH_MODES = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest-exact"}


def crop_box(height: int, width: int, scale: tuple[float, float],
             ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random-resized crop of an image of this size: torchvision's
    `RandomResizedCrop.get_params` rule (up to ten tries of an area fraction uniform in `scale` and a
    log-uniform aspect in `ratio`, else the centre crop of the nearest allowed aspect), with every draw
    taken from torch's generator in one call rather than four calls a try."""
    draws = torch.rand(10, 4, dtype=torch.float64).tolist()
    area = height * width
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for fraction, log_aspect, at_y, at_x in draws:
        target = area * (scale[0] + fraction * (scale[1] - scale[0]))
        aspect = math.exp(log_low + log_aspect * (log_high - log_low))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(at_y * (height - h + 1)), int(at_x * (width - w + 1)), h, w
    aspect = width / height
    if aspect < min(ratio):
        w, h = width, round(width / min(ratio))
    elif aspect > max(ratio):
        w, h = round(height * max(ratio)), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def dct_reduction(box: tuple[int, int, int, int], size: tuple[int, int]) -> int:
    """The largest JPEG DCT reduction (8, 4, 2 or 1) that leaves the crop `box` at least `size` on both
    sides."""
    _, _, box_h, box_w = box
    return next((r for r in DCT_SCALES if box_h // r >= size[0] and box_w // r >= size[1]), 1)


class EncodedTrainTransform(EncodedImageTransform):
    """Encoded image -> random-resized crop at `size` (`read`), then `steps` (flips, RandAugment, ...) and
    a (3, H, W) uint8 tensor (`__call__`).

    Args:
        interpolation: of the crop's resize: 'bilinear', 'bicubic', 'nearest', or 'random' (bilinear or
            bicubic per image, drawn before the crop, as `RandomResizedCropRandomInterpolation` does).
        form: what `steps` take: 'tensor' ((3, H, W) uint8: flips), 'array' ((H, W, 3) uint8:
            `array_augment`'s flips and RandAugment) or 'pil'.
    """

    def __init__(self, size: tuple[int, int], scale: tuple[float, float], ratio: tuple[float, float],
                 interpolation: str, steps: Sequence[Callable], form: str = "pil"):
        self.size, self.scale, self.ratio = tuple(size), tuple(scale), tuple(ratio)
        self.interpolation = interpolation
        self.steps = list(steps)
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
        self.form = form

    def read(self, source: bytes | Image.Image) -> torch.Tensor | np.ndarray | Image.Image:
        from PIL import Image

        mode = self.interpolation
        if mode == "random":
            mode = ("bilinear", "bicubic")[int(torch.randint(2, ()))]
        encoded = isinstance(source, bytes | bytearray | memoryview)
        image = Image.open(io.BytesIO(source)) if encoded else source
        full_h, full_w = image.height, image.width
        top, left, height, width = crop_box(full_h, full_w, self.scale, self.ratio)
        pixels = _decode(image, source if encoded else None, dct_reduction((top, left, height, width),
                                                                           self.size))
        if pixels.shape[:2] != (full_h, full_w):  # decoded reduced: the box in the reduced image's pixels
            scale_y, scale_x = pixels.shape[0] / full_h, pixels.shape[1] / full_w
            bottom, right = round((top + height) * scale_y), round((left + width) * scale_x)
            top, left = round(top * scale_y), round(left * scale_x)
            height, width = max(1, bottom - top), max(1, right - left)
        # uint8 in, uint8 out, pixels interleaved (channels-last, torch's fastest path): the output is the
        # HWC array Pillow takes without a copy; antialiased as Pillow's resize is
        crop = pixels[top:top + height, left:left + width].permute(2, 0, 1).unsqueeze(0)
        crop = crop.contiguous(memory_format=torch.channels_last)
        resized = torch.nn.functional.interpolate(crop, size=self.size, mode=_TORCH_MODES[mode],
                                                  antialias=mode != "nearest")
        if self.form == "tensor":
            return resized[0]
        pixels = resized[0].permute(1, 2, 0).numpy()
        return pixels if self.form == "array" else Image.fromarray(pixels)

    def __call__(self, image: torch.Tensor | np.ndarray | Image.Image) -> torch.Tensor:
        for step in self.steps:
            image = step(image)
        return planar(image)

    def __repr__(self) -> str:
        return (f"EncodedTrainTransform(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"interpolation={self.interpolation}, steps={self.steps}, form={self.form!r})")


def planar(image: torch.Tensor | np.ndarray | Image.Image) -> torch.Tensor:
    """A (3, H, W) tensor, an (H, W, 3) array or a PIL image as a contiguous (3, H, W) uint8 tensor. The
    pixels are interleaved (the resize's channels-last output, the array's, Pillow's): numpy de-interleaves
    them about twice as fast as torch's `contiguous`."""
    if isinstance(image, torch.Tensor):
        return image if image.is_contiguous() else torch.from_numpy(np.ascontiguousarray(image.numpy()))
    return torch.from_numpy(np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1)))


def _decode(image: Image.Image, data: bytes | None, reduction: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB pixels of `image` (opened, not yet decoded; `data`: its bytes where known), at
    1/`reduction` of its size where it is a JPEG the DCT can reduce."""
    jpeg = image.format == "JPEG" and image.mode in ("RGB", "L")
    if jpeg and reduction > 1:
        image.draft("RGB", (math.ceil(image.width / reduction), math.ceil(image.height / reduction)))
    elif jpeg and data is not None:
        import warnings

        from torchvision.io import ImageReadMode, decode_jpeg

        with warnings.catch_warnings():  # deprecated in favour of torchcodec, which torch <= 2.14 lacks
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                               mode=ImageReadMode.RGB).permute(1, 2, 0)
    image.load()
    return torch.from_numpy(np.array(to_rgb(image)))
