"""Data for evaluation: preprocessing configs and transforms, datasets, loaders, ImageNet-1k class info.

    from visionzoo.data import resolve_data_config, create_transform
    config = resolve_data_config(model)                  # the preprocessing the model's weights expect
    tensor = create_transform(config)(PIL.Image.open(path))
"""

from .config import DataConfig, resolve_data_config
from .datasets import DataError, ImageDataset, Sample, create_dataset
from .imagenet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    imagenet_class_names,
    imagenet_synset_to_index,
    imagenet_synsets,
)
from .loader import Batch, create_loader
from .transforms import create_transform, normalize_batch

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Batch",
    "DataConfig",
    "DataError",
    "ImageDataset",
    "Sample",
    "create_dataset",
    "create_loader",
    "create_transform",
    "imagenet_class_names",
    "imagenet_synset_to_index",
    "imagenet_synsets",
    "normalize_batch",
    "resolve_data_config",
]
