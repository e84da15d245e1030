"""The one training transform: PIL image -> augmented tensor, as `TrainAugmentation` says.

Its defaults are the basic random-resized crop and horizontal flip. Order (the recipes'): random-resized
crop (scale, ratio, interpolation incl. 'random'), flips, then either RandAugment (`aa`) or colour jitter
(jitter is off when RandAugment is on, as in the recipes), grayscale and blur with their probabilities, to
tensor, normalise, random erasing. The crop, flips, jitter, grayscale and blur are torchvision's;
RandAugment and erasing are ours (see their modules for why).

With `encoded=True` the same augmentation starts from the stored bytes and works on uint8 (the training
loader's path, `train_decode.py`), faster and with the same distribution.

With `normalize=False` the transform stops at a uint8 tensor (for the loader's device-side normalisation,
`visionzoo.data.normalize_batch`) and random erasing is left to the batch: `create_batch_transform` erases,
then mixes (`MixupOptions`), the normalised batch on the device.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..image_inputs import IMAGENET_MEAN, IMAGENET_STD, size_pair
from .array_augment import ArrayFlip, apply_op_array, opencv
from .auto_augment import RandAugment
from .config import DEFAULT_INTERPOLATION
from .mixup import BatchMixer
from .random_erasing import RandomErasing
from .train_decode import EncodedTrainTransform
from .train_options import TRAIN_INTERPOLATIONS, MixupOptions, TrainAugmentation
from .transforms import PILToUint8Tensor, ToRGB, _interpolation_mode

__all__ = ["TRAIN_INTERPOLATIONS", "BatchTransform", "RandomResizedCropRandomInterpolation",
           "TrainAugmentation", "create_batch_erasing", "create_batch_transform", "create_train_transform"]


class RandomResizedCropRandomInterpolation:
    """torchvision's RandomResizedCrop, with bilinear or bicubic drawn per image (the recipes' 'random')."""

    def __init__(self, size: tuple[int, int], scale: tuple[float, float], ratio: tuple[float, float]):
        from torchvision import transforms

        self.crops = [transforms.RandomResizedCrop(list(size), scale=scale, ratio=ratio,
                                                   interpolation=_interpolation_mode(mode))
                      for mode in ("bilinear", "bicubic")]

    def __call__(self, img):
        return self.crops[int(torch.randint(2, ()))](img)

    def __repr__(self) -> str:
        return f"RandomResizedCropRandomInterpolation({self.crops[0].size}, scale={self.crops[0].scale})"


def create_train_transform(img_size: tuple[int, int] | int,
                           options: TrainAugmentation | Mapping | None = None,
                           mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                           normalize: bool = True, interpolation: str = DEFAULT_INTERPOLATION,
                           encoded: bool = False):
    """The training transform for `options` at `img_size` (the train crop): PIL image -> (3, H, W) tensor.

    Args:
        options: a `TrainAugmentation`, or a mapping with its fields (e.g. a recipe's options; other keys are
            ignored); None: the defaults, a random-resized crop and a horizontal flip.
        normalize: float output normalised with mean/std, followed by random erasing; False: uint8 output,
            no erasing (apply `create_batch_erasing(options)` to the normalised batch instead).
        interpolation: the crop's, where `options.train_interpolation` does not say (the model's).
        encoded: the same augmentation from the encoded image (`train_decode.EncodedTrainTransform`, which a
            dataset hands its stored bytes): the crop drawn first, a JPEG decoded at the scale the crop
            needs, the rest on uint8 tensors or, with OpenCV, arrays; uint8 output only (`normalize` False).
    """
    from torchvision import transforms

    options = TrainAugmentation.of(options)
    size = size_pair(img_size)
    interpolation = options.train_interpolation or interpolation
    if encoded:
        if normalize:
            raise ValueError("the encoded training transform gives uint8 tensors; pass normalize=False")
        steps = _after_crop(options, mean, interpolation)
        flips = (transforms.RandomHorizontalFlip, transforms.RandomVerticalFlip)
        form = "pil"
        if all(isinstance(step, flips) for step in steps):  # tensors all the way
            form = "tensor"
        elif opencv() is not None and all(isinstance(step, (*flips, RandAugment)) for step in steps):
            form, steps = "array", [_on_arrays(step) for step in steps]
        return EncodedTrainTransform(size, options.scale, options.ratio, interpolation, steps, form)
    steps: list = [ToRGB()]
    if interpolation == "random":
        steps.append(RandomResizedCropRandomInterpolation(size, options.scale, options.ratio))
    else:
        steps.append(transforms.RandomResizedCrop(list(size), scale=options.scale, ratio=options.ratio,
                                                  interpolation=_interpolation_mode(interpolation)))
    steps += _after_crop(options, mean, interpolation)
    if normalize:
        steps += [transforms.ToTensor(), transforms.Normalize(mean=torch.tensor(mean), std=torch.tensor(std))]
        erasing = create_batch_erasing(options)
        if erasing is not None:
            steps.append(erasing)
    else:
        steps.append(PILToUint8Tensor())
    return transforms.Compose(steps)


def _after_crop(options: TrainAugmentation, mean: tuple[float, ...], interpolation: str) -> list:
    """The steps after the crop, in the recipes' order, on PIL images (the flips on tensors too)."""
    from torchvision import transforms

    steps: list = []
    if options.hflip > 0:
        steps.append(transforms.RandomHorizontalFlip(options.hflip))
    if options.vflip > 0:
        steps.append(transforms.RandomVerticalFlip(options.vflip))
    if options.aa:
        fill = tuple(min(255, round(255 * m)) for m in mean)
        # RandAugment's geometric ops take the crop's interpolation where they have it
        steps.append(RandAugment(options.aa, fill=fill, interpolation=interpolation
                                 if interpolation in TRAIN_INTERPOLATIONS else "bilinear"))
    elif options.color_jitter:
        jitter = transforms.ColorJitter(*(float(options.color_jitter),) * 3)
        steps.append(jitter if options.color_jitter_prob is None
                     else transforms.RandomApply([jitter], p=options.color_jitter_prob))
    if options.grayscale_prob:
        steps.append(transforms.RandomGrayscale(p=options.grayscale_prob))
    if options.gaussian_blur_prob:
        steps.append(transforms.RandomApply([transforms.GaussianBlur(kernel_size=23)],
                                            p=options.gaussian_blur_prob))
    return steps


def _on_arrays(step):
    """A flip or RandAugment step of `_after_crop` for (H, W, 3) arrays (`array_augment.py`)."""
    from torchvision import transforms

    if isinstance(step, RandAugment):
        return RandAugment(step.spec, step.fill, step.interpolation, apply=apply_op_array)
    return ArrayFlip(step.p, 1 if isinstance(step, transforms.RandomHorizontalFlip) else 0)


def create_batch_erasing(options: TrainAugmentation | Mapping) -> RandomErasing | None:
    """Random erasing for normalised images or batches as `options` set it; None when `reprob` is 0."""
    options = TrainAugmentation.of(options)
    if not options.reprob:
        return None
    return RandomErasing(options.reprob, mode=options.remode, max_count=options.recount)


class BatchTransform:
    """Random erasing, then mixup/cutmix, of a normalised batch on the device: `(images, targets, epoch=)
    -> (images, targets)`, the targets then class probabilities. Its randomness is the training RNG's,
    which checkpoints save, so a resumed run draws the same."""

    def __init__(self, erasing: RandomErasing | None, mixer: BatchMixer | None):
        self.erasing, self.mixer = erasing, mixer

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, epoch: int = 0):
        if self.erasing is not None:
            images = self.erasing(images)
        if self.mixer is not None:
            self.mixer.set_epoch(epoch)
            images, targets = self.mixer(images, targets)
        return images, targets


def create_batch_transform(augment: TrainAugmentation, mixing: MixupOptions, num_classes: int,
                           smoothing: float = 0.0) -> BatchTransform | None:
    """The erasing (`augment.reprob`) and mixing (`mixing`, with the loss's label `smoothing` folded into
    the mixed targets) of normalised batches; None where neither is on."""
    erasing = create_batch_erasing(augment)
    mixer = BatchMixer(mixing, num_classes, smoothing) if mixing.active else None
    return BatchTransform(erasing, mixer) if erasing is not None or mixer is not None else None
