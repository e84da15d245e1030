"""Data: preprocessing configs and transforms, datasets (webdataset shards included, in `shards/`), loaders,
ImageNet-1k class info, and the training input (`train_options`: the augmentation and mixing options;
`train_transforms`: the one training transform and the batch transform; `samplers`: the sample order of an
epoch and per-sample seeds).

    from visionzoo.data import resolve_data_config, create_transform
    config = resolve_data_config(model)                  # the preprocessing the model's weights expect
    tensor = create_transform(config)(PIL.Image.open(path))

The names below are loaded on first use: `visionzoo.data.imagenet` (constants) is read by the tag data
without loading torchvision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:
    from ..errors import DataError
    from .config import DataConfig, resolve_data_config
    from .datasets import create_dataset
    from .image_dataset import ImageDataset, Sample
    from .imagenet import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        imagenet_class_names,
        imagenet_synset_to_index,
        imagenet_synsets,
    )
    from .labels import ModelClasses
    from .loader import Batch, create_loader
    from .shards.dataset import ShardDataset
    from .shards.writer import write_shards
    from .transforms import create_transform, normalize_batch

# public name -> the module that defines it
_EXPORTS = {
    "IMAGENET_MEAN": "visionzoo.data.imagenet",
    "IMAGENET_STD": "visionzoo.data.imagenet",
    "Batch": "visionzoo.data.loader",
    "DataConfig": "visionzoo.data.config",
    "DataError": "visionzoo.errors",
    "ImageDataset": "visionzoo.data.image_dataset",
    "ModelClasses": "visionzoo.data.labels",
    "Sample": "visionzoo.data.image_dataset",
    "ShardDataset": "visionzoo.data.shards.dataset",
    "create_dataset": "visionzoo.data.datasets",
    "create_loader": "visionzoo.data.loader",
    "create_transform": "visionzoo.data.transforms",
    "imagenet_class_names": "visionzoo.data.imagenet",
    "imagenet_synset_to_index": "visionzoo.data.imagenet",
    "imagenet_synsets": "visionzoo.data.imagenet",
    "normalize_batch": "visionzoo.data.transforms",
    "resolve_data_config": "visionzoo.data.config",
    "write_shards": "visionzoo.data.shards.writer",
}
__all__ = [
    "Batch",
    "DataConfig",
    "DataError",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageDataset",
    "ModelClasses",
    "Sample",
    "ShardDataset",
    "create_dataset",
    "create_loader",
    "create_transform",
    "imagenet_class_names",
    "imagenet_synset_to_index",
    "imagenet_synsets",
    "normalize_batch",
    "resolve_data_config",
    "write_shards",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
