"""A run's weights as model folders (best/, last/, epoch-NNN/), and the class list they carry.

The classes of a run come from its training data: a head kept from the weights it starts from keeps their
classes (the data is matched to them by name), a new head takes the data's own (class folder names,
labels.csv names, a Hugging Face ClassLabel's names). Validation data is matched to that list by name, and
every folder the run writes records it with the trained size and preprocessing in its config.json, so that
`predict`, `validate`, `export` and `publish` read the model as it was trained.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from ..data import DataConfig, ImageDataset, ModelClasses
from ..data.label_spaces import model_label_ids, model_label_names
from ..model_folder import WEIGHTS_FILE
from ..publish import model_config, write_config
from .checkpoint import save_model_file


def training_classes(model: nn.Module) -> ModelClasses:
    """What the training labels are matched against: the classes of the model's head where it knows them
    (kept from its tag or folder), else the data's own (a new head)."""
    names = model_label_ids(model.pretrained_cfg)
    return ModelClasses(model.num_classes, names, from_data=names is None,
                        hint="to train a new head on the data's own classes, give --num-classes")


def run_model_config(model: nn.Module, data_config: DataConfig, label_names: tuple[str, ...] | None,
                     from_published: bool) -> dict:
    """The config.json of the run's folders: the model at its trained size and preprocessing, with the
    class names of its training data (and their readable names where they are the model's own). The source
    tag and its licence are kept only for a run that started from published weights (`from_published`)."""
    descriptions = None
    if label_names is not None and label_names == model_label_ids(model.pretrained_cfg):
        readable = model_label_names(model.pretrained_cfg)
        descriptions = readable if readable != label_names else None
    document = model_config(model, data_config, label_names, descriptions)
    if not from_published:
        for key in ("tag", "license"):
            document["pretrained_cfg"].pop(key, None)
    return document


def data_sha256(dataset: ImageDataset) -> str:
    """sha256 of the training data's file list with its labels (paths relative to the data folder), the
    identity of the data a run was trained on."""
    files = getattr(dataset, "files", None)
    keys = files if files is not None else [os.path.basename(dataset.name(i)) for i in range(len(dataset))]
    text = "\n".join(f"{key}\t{label}" for key, label in zip(keys, dataset.labels, strict=True))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_weights_folder(folder: Path, state_dict: dict[str, torch.Tensor], config: dict,
                        metadata: dict[str, str]) -> None:
    """model.safetensors (metadata with the class names, for a copy of the file alone), then config.json:
    the folder is complete once its config.json is there."""
    names = config.get("label_names")
    meta = {**metadata, "label_names": json.dumps(names)} if names else metadata
    save_model_file(folder / WEIGHTS_FILE, state_dict, meta)
    write_config(folder, config)
