"""Model folders: a model that describes itself, in the layout the reference and the Hugging Face Hub share.

    my-model/
      config.json         architecture, num_classes, num_features, global_pool, label_names,
                          label_descriptions, model_args, pretrained_cfg {input_size, crop_pct, crop_mode,
                          interpolation, mean, std, tag, ...}
      model.safetensors   the state dict
      README.md           the model card (written by `visionzoo publish`; not needed to load)

This module reads such a folder (a local one, or a Hub repository through `huggingface_hub`) into a typed
record; `registry` resolves model names to it and `factory.create_model` builds the model. The facts of the
format come from the reference's `save_for_hf` / `load_model_config_from_path` (timm 1.0.31): a legacy
config without `pretrained_cfg` keeps those fields at its top level; the top-level `num_classes`,
`label_names` and `label_descriptions` win over those inside `pretrained_cfg`; `model_args` are keyword
arguments of the model's constructor, recorded because the config alone does not say them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .data.config import (
    CROP_MODES,
    DEFAULT_CROP_MODE,
    DEFAULT_CROP_PCT,
    DEFAULT_INTERPOLATION,
    INTERPOLATIONS,
)
from .data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from .data.label_spaces import find_label_space, get_label_space
from .errors import CheckpointError, UserError
from .pretrained_cfg import PretrainedCfg, all_pretrained_cfgs
from .weights import endpoint_unreachable

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# The reference's save_for_hf writes pytorch_model.bin unless asked for safetensors; it is read with
# weights_only=True like any torch file.
WEIGHTS_FILES = (WEIGHTS_FILE, "pytorch_model.bin")
CARD_FILE = "README.md"
LOCAL_DIR, HF_HUB = "local-dir", "hf-hub"
SOURCES = (LOCAL_DIR, HF_HUB)
DEFAULT_INPUT_SIZE = (3, 224, 224)


@dataclass(frozen=True)
class ModelFolder:
    """A model folder as read from its config.json.

    `pretrained_cfg` describes the weights in visionzoo's record (its architecture facts, first conv,
    classifier, fixed input size and pool size, are left for the registry to fill in from the model class).
    `model_args` are the constructor options the folder records beyond its pretrained_cfg.
    """

    name: str  # as the caller gave it: 'local-dir:PATH', 'hf-hub:org/name', or a folder path
    source: str  # 'local-dir' or 'hf-hub'
    location: str  # the folder's path, or the Hub repository id
    revision: str | None  # the Hub revision asked for (None: main)
    path: Path  # the local folder holding config.json (for the Hub: the cached snapshot)
    architecture: str
    pretrained_cfg: PretrainedCfg
    model_args: dict[str, Any] = field(default_factory=dict, compare=False)

    def weights_file(self) -> Path:
        """The folder's weights (model.safetensors, else the reference's pytorch_model.bin), downloaded
        from the Hub if need be; CheckpointError if it has none."""
        if self.source == HF_HUB:
            return _hub_file(self.location, self.revision, WEIGHTS_FILES)
        for name in WEIGHTS_FILES:
            if (self.path / name).is_file():
                return self.path / name
        raise CheckpointError(f"model folder {self.path} has a {CONFIG_FILE} but no weights "
                              f"({' or '.join(WEIGHTS_FILES)})")


def read_model_folder(name: str, source: str, location: str) -> ModelFolder:
    """Read the model folder `location` (a path for 'local-dir', 'org/name[@revision]' for 'hf-hub').

    Raises CheckpointError for a folder without a readable, well-formed config.json (the message names the
    file and the field), UserError for a path or repository id that cannot name a folder.
    """
    if source == HF_HUB:
        repo, _, revision = location.partition("@")
        revision = revision or None
        config_path = _hub_file(repo, revision, (CONFIG_FILE,))
        folder = config_path.parent
        where = f"hf-hub:{location}"
        hub_id, location = repo, repo
    else:
        folder = Path(location).expanduser()
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise UserError(f"model folder {folder} {what}: a model folder holds {CONFIG_FILE} and "
                            f"{WEIGHTS_FILE}")
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise CheckpointError(
                f"{folder} holds no {CONFIG_FILE}, so it is not a model folder (one is written by `visionzoo "
                f"train`, `visionzoo publish`, visionzoo.save_model_folder or the reference's save_for_hf)")
        revision, hub_id, where = None, "", str(config_path)
    stat = config_path.stat()
    architecture, cfg, model_args = _parsed_config(str(config_path), stat.st_mtime_ns, stat.st_size, where,
                                                   hub_id)
    return ModelFolder(name=name, source=source, location=location, revision=revision, path=folder,
                       architecture=architecture, pretrained_cfg=cfg, model_args=dict(model_args))


@cache
def _parsed_config(path: str, mtime_ns: int, size: int, where: str,
                   hub_id: str) -> tuple[str, PretrainedCfg, tuple]:
    # Cached by the file's identity: a command builds its model several times (on meta, per size).
    try:
        text = Path(path).read_text(encoding="utf-8")
        config = json.loads(text)
    except UnicodeDecodeError:
        raise CheckpointError(f"{where} is not UTF-8 text, so it is not a model config") from None
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{where} is not valid JSON (line {error.lineno}, column {error.colno}: "
                              f"{error.msg})") from None
    architecture, cfg, model_args = parse_config(config, where, hub_id)
    return architecture, cfg, tuple(model_args.items())


def _fail(where: str, message: str) -> CheckpointError:
    return CheckpointError(f"{where}: {message}")


def _int(value: Any, where: str, key: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"{key} must be an integer of at least {minimum}, got {value!r}")
    return value


def _floats(value: Any, where: str, key: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or not value or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise _fail(where, f"{key} must be a list of numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _input_size(value: Any, where: str, key: str) -> tuple[int, int, int]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise _fail(where, f"{key} must be [channels, height, width], got {value!r}")
    return tuple(_int(v, where, key, minimum=1) for v in value)


def _crop_fraction(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 4:
        raise _fail(where, f"{key} must be a number in (0, 4], got {value!r}")
    return float(value)


def _choice(value: Any, where: str, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(where, f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _label_names(value: Any, num_classes: int, where: str) -> tuple[str, ...]:
    """The reference's label_names: a list by class index, or {index: name} with gaps (filled 'class I')."""
    if isinstance(value, dict):
        try:
            by_index = {int(k): v for k, v in value.items()}
        except ValueError:
            raise _fail(where, "label_names as a dict must map class indices to names") from None
        value = [by_index.get(i, f"class {i}") for i in range(num_classes)]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "label_names must be a list of strings, one per class")
    if len(value) != num_classes:
        raise _fail(where, f"{len(value)} label_names for {num_classes} classes; give one name per class")
    if len(set(value)) != len(value):
        repeated = next(v for v in value if value.count(v) > 1)
        raise _fail(where, f"label_names must be unique, {repeated!r} appears more than once")
    return tuple(value)


def parse_config(config: Any, where: str, hub_id: str = "") -> tuple[str, PretrainedCfg, dict[str, Any]]:
    """(architecture, pretrained cfg, model_args) of a config.json document; CheckpointError naming the
    field for anything that is missing or of the wrong type."""
    if not isinstance(config, dict):
        raise _fail(where, f"expected a JSON object, got {type(config).__name__}")
    if "pretrained_cfg" in config:
        top, values = config, config["pretrained_cfg"]
        if not isinstance(values, dict):
            raise _fail(where, "pretrained_cfg must be a JSON object")
    else:  # the reference's legacy layout: one flat object
        top, values = config, config
    architecture = top.get("architecture")
    if not isinstance(architecture, str) or not architecture:
        raise _fail(where, "has no 'architecture' (the name of the model's architecture, e.g. resnet50d)")
    num_classes = _int(top.get("num_classes", values.get("num_classes", 1000)), where, "num_classes")
    input_size = _input_size(values.get("input_size", DEFAULT_INPUT_SIZE), where, "input_size")
    mean = _floats(values.get("mean", IMAGENET_MEAN), where, "mean")
    std = _floats(values.get("std", IMAGENET_STD), where, "std")
    if len(mean) != input_size[0] or len(std) != input_size[0]:
        raise _fail(where, f"mean and std need {input_size[0]} values (one per input channel)")
    crop_pct = _crop_fraction(values.get("crop_pct", DEFAULT_CROP_PCT), where, "crop_pct")
    test_input_size = values.get("test_input_size")
    test_crop_pct = values.get("test_crop_pct")
    if test_crop_pct is not None:
        test_crop_pct = _crop_fraction(test_crop_pct, where, "test_crop_pct")

    names_value = top.get("label_names", values.get("label_names", values.get("labels")))
    label_names = _label_names(names_value, num_classes, where) if names_value else None
    descriptions_value = top.get("label_descriptions", values.get("label_descriptions"))
    label_descriptions = None
    if descriptions_value and label_names is not None:
        if not isinstance(descriptions_value, dict) or not all(isinstance(v, str)
                                                               for v in descriptions_value.values()):
            raise _fail(where, "label_descriptions must map label names to descriptions")
        label_descriptions = tuple(descriptions_value.get(name, name) for name in label_names)
    tag = values.get("tag") or ""
    label_space = find_label_space(label_names) if label_names is not None else _tag_label_space(
        architecture, tag, num_classes)
    model_args = top.get("model_args") or {}
    if not isinstance(model_args, dict):
        raise _fail(where, "model_args must be a JSON object of the model's options")
    license_ = values.get("license") or ""
    cfg = PretrainedCfg(
        architecture=architecture, tag=str(tag), hf_hub_id=hub_id, num_classes=num_classes,
        input_size=input_size,
        interpolation=_choice(values.get("interpolation", DEFAULT_INTERPOLATION), where, "interpolation",
                              INTERPOLATIONS),
        crop_pct=crop_pct,
        crop_mode=_choice(values.get("crop_mode", DEFAULT_CROP_MODE), where, "crop_mode", CROP_MODES),
        mean=mean, std=std, license=str(license_),
        test_input_size=_input_size(test_input_size, where, "test_input_size") if test_input_size else None,
        test_crop_pct=test_crop_pct,
        label_space=label_space, label_names=label_names, label_descriptions=label_descriptions)
    return architecture, cfg, model_args


def _tag_label_space(architecture: str, tag: str, num_classes: int) -> str | None:
    """A folder without label names whose source tag is a registered one with a label space of its head's
    size (the reference's older Hub configs carry no label names) takes that tag's space."""
    for cfg in all_pretrained_cfgs().get(architecture, ()):
        if cfg.tag == tag and cfg.label_space is not None:
            return cfg.label_space if get_label_space(cfg.label_space).num_classes == num_classes else None
    return None


# ---- the Hub --------------------------------------------------------------------------------------------
def _hub_file(repo: str, revision: str | None, filenames: tuple[str, ...]) -> Path:
    """The first of `filenames` that the Hub repository `repo` has: from the local cache if it is there,
    else downloaded (honours HF_HOME, HF_ENDPOINT and HF_HUB_OFFLINE; an unreachable Hub is found out with
    one connection, not a series of retries). CheckpointError in one line otherwise."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    name = f"hf-hub:{repo}" + (f"@{revision}" if revision else "")
    try:
        for filename in filenames:
            try:
                return Path(hf_hub_download(repo, filename, revision=revision, local_files_only=True))
            except LocalEntryNotFoundError:
                continue
    except HFValidationError:
        raise UserError(f"{name}: {repo!r} is not a Hugging Face Hub repository id (org/name)") from None
    reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else endpoint_unreachable(constants.ENDPOINT)
    if reason is not None:
        raise CheckpointError(
            f"{name}: {filenames[0]} is not in the Hugging Face cache and cannot be downloaded ({reason}); "
            f"run `hf download {repo}` on a connected machine and copy the cache (HF_HOME), or download the "
            "folder and pass its path")
    for filename in filenames:
        try:
            return Path(hf_hub_download(repo, filename, revision=revision))
        except RemoteEntryNotFoundError:
            continue
        except RepositoryNotFoundError:
            raise CheckpointError(f"{name}: no such Hub repository (or it is private or gated: log in with "
                                  "`hf auth login` or set HF_TOKEN)") from None
        except RevisionNotFoundError:
            raise CheckpointError(f"{name}: the repository has no revision {revision!r}") from None
        except Exception as error:  # refused, or the connection dropped: one line that names the repository
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(f"{name}: cannot download {filename}: {reason}") from None
    raise CheckpointError(f"{name} holds no {' or '.join(filenames)}, so it is not a model folder")
