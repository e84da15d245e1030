"""Writing model folders and publishing them: `save_model_folder`, `publish` (a run or a model, with its
card and measured results) and `push_folder` (to the Hugging Face Hub).

    import visionzoo
    model = visionzoo.create_model("test_byobnet", num_classes=3)
    visionzoo.save_model_folder(model, "my-model", label_names=["cat", "dog", "bird"])
    visionzoo.create_model("my-model", pretrained=True)        # and timm.create_model("local-dir:my-model",
                                                                # pretrained=True) loads it too

The folder's layout is described in `model_folder`. It is written beside its final name and renamed into
place, so an interrupted write never leaves a folder that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from . import __version__
from .data.config import DataConfig, resolve_data_config
from .data.label_spaces import model_label_ids, model_label_names
from .errors import UserError
from .factory import create_model
from .files import write_folder_atomic, write_text_atomic
from .model_card import EvalRow, Provenance, read_results_file, render_card
from .model_folder import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE
from .models.base import ClassifierModel
from .registry import get_architecture, parse_model_name, split_name

# create_model options the config records elsewhere (head size and input channels and size in
# pretrained_cfg), or that only matter while training (dropout)
_NOT_MODEL_ARGS = ("num_classes", "in_chans", "img_size", "drop_rate", "drop_path_rate")
RUN_FOLDERS = ("best", "last")


def _json_value(value, option: str):
    if isinstance(value, tuple | list):
        return [_json_value(v, option) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise UserError(f"option {option}={value!r} cannot be recorded in {CONFIG_FILE} (not a JSON value)")


def _model_args(model: ClassifierModel, architecture: str) -> dict:
    """The model's config fields that differ from its registered architecture's (the options it was
    created with), as the reference's `model_args`."""
    registered = get_architecture(architecture).config
    config = model.config
    args = {f.name: _json_value(getattr(config, f.name), f.name) for f in dataclasses.fields(config)
            if f.name not in _NOT_MODEL_ARGS and getattr(config, f.name) != getattr(registered, f.name)}
    if model.fixed_input_size and config.img_size != registered.img_size:
        # a token model's grid: pretrained_cfg says it only for a strictly fixed size, not a dynamic one
        args["img_size"] = list(model.default_img_size)
    return args


def _check_model(model: nn.Module) -> ClassifierModel:
    if not isinstance(model, ClassifierModel) or model.pretrained_cfg is None:
        raise UserError("save a model made by visionzoo.create_model (a features_only backbone or a model "
                        "built from its class has no complete description)")
    return model


def model_config(model: nn.Module, data_config: DataConfig | None = None,
                 label_names: Sequence[str] | None = None,
                 label_descriptions: Sequence[str] | None = None) -> dict:
    """The config.json document of `model`, in the reference's Hub layout.

    Args:
        data_config: the preprocessing it is used with (default: `resolve_data_config(model)`, its weights'
            at its own size).
        label_names: the ids of its classes in index order (default: its own, or its tag's label space's
            synsets); `label_descriptions` their readable names (default: the label space's names).
    """
    model = _check_model(model)
    cfg = model.pretrained_cfg
    data = data_config or resolve_data_config(model)
    if label_names is None:
        label_names = model_label_ids(cfg)
        readable = model_label_names(cfg)
        label_descriptions = readable if readable != label_names else None
    if label_names is not None and len(label_names) != model.num_classes:
        raise UserError(f"{len(label_names)} label names for a model of {model.num_classes} classes")
    if label_descriptions is not None and (label_names is None
                                           or len(label_descriptions) != len(label_names)):
        raise UserError("give one label description per label name")
    fixed = model.fixed_input_size and not model.dynamic_img_size
    pretrained_cfg = {
        "tag": cfg.tag or None, "custom_load": False, "input_size": list(data.input_size),
        "fixed_input_size": fixed, "interpolation": data.interpolation, "crop_pct": data.crop_pct,
        "crop_mode": data.crop_mode, "mean": list(data.mean), "std": list(data.std),
        "num_classes": model.num_classes,
        "pool_size": None if fixed else list(model.feature_map_size(data.img_size)),
        "first_conv": model.first_conv, "classifier": model.classifier_module, "license": cfg.license or None,
    }
    if cfg.test_input_size is not None and tuple(data.input_size) == cfg.input_size and not fixed:
        pretrained_cfg.update(test_input_size=list(cfg.test_input_size), test_crop_pct=cfg.test_crop_pct)
    document = {"architecture": cfg.architecture, "num_classes": model.num_classes,
                "num_features": model.num_features}
    if getattr(model.config, "global_pool", None):
        document["global_pool"] = model.config.global_pool
    if label_names is not None:
        document["label_names"] = list(label_names)
    if label_descriptions is not None:
        document["label_descriptions"] = dict(zip(label_names, label_descriptions, strict=True))
    model_args = _model_args(model, cfg.architecture)
    if model_args:
        document["model_args"] = model_args
    # the reference keeps pool_size even when null
    document["pretrained_cfg"] = {k: v for k, v in pretrained_cfg.items()
                                  if v is not None or k == "pool_size"}
    return document


def config_text(document: dict) -> str:
    """config.json's text."""
    return json.dumps(document, indent=2) + "\n"


def _save_weights(path: Path, model: nn.Module) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, path, metadata={"format": "pt"})


def save_model_folder(model: nn.Module, path: str | os.PathLike, *, data_config: DataConfig | None = None,
                      label_names: Sequence[str] | None = None,
                      label_descriptions: Sequence[str] | None = None, card: str | None = None,
                      overwrite: bool = False) -> Path:
    """Write `model` as a model folder at `path`: config.json (see `model_config` for the arguments),
    model.safetensors and README.md (`card`, default a card made from the config).

    `visionzoo.create_model(path, pretrained=True)` and the reference's
    `timm.create_model(f"local-dir:{path}", pretrained=True)` load it back. The folder appears whole or not
    at all; an existing `path` is replaced only with `overwrite` (UserError otherwise).
    """
    path = Path(path)
    document = model_config(model, data_config, label_names, label_descriptions)
    if card is None:
        params = sum(p.numel() for p in model.parameters())
        card = render_card(path.name, str(path), document, params, model.pretrained_cfg.license or None, (),
                           (), None)

    def fill(folder: Path) -> None:
        _save_weights(folder / WEIGHTS_FILE, model)
        (folder / CARD_FILE).write_text(card, encoding="utf-8")
        (folder / CONFIG_FILE).write_text(config_text(document), encoding="utf-8")

    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file; give a folder to write the model to")
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; give another folder, or overwrite it (--overwrite)")
    write_folder_atomic(path, fill, overwrite=overwrite)
    return path


def write_config(folder: str | os.PathLike, document: dict) -> None:
    """Write a folder's config.json atomically: a training run writes it after the weights, so its folder
    is complete once config.json is there."""
    write_text_atomic(Path(folder) / CONFIG_FILE, config_text(document))


# ---- publishing ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Published:
    """What `publish` did: the folder written and, if pushed, the repository's URL."""

    folder: Path
    url: str | None = None


def _run_folder(run: Path) -> Path:
    for name in RUN_FOLDERS:
        if (run / name / CONFIG_FILE).is_file():
            return run / name
    wanted = " or ".join(f"{name}/{CONFIG_FILE}" for name in RUN_FOLDERS)
    raise UserError(f"{run} holds no model folder ({wanted}); "
                    "a run of an older visionzoo: publish ARCH --checkpoint with its best/model.safetensors")


def _run_provenance(run: Path) -> Provenance:
    import yaml

    text = (run / "args.yaml").read_text(encoding="utf-8")
    try:
        args = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise UserError(f"{run / 'args.yaml'} is not valid YAML") from None
    start = args.get("checkpoint") or ("its published weights" if args.get("pretrained")
                                       else "random weights")
    return Provenance(
        source=f"visionzoo train run {run}", recipe=args.get("recipe"), command=args.get("command"),
        args_yaml=text, visionzoo_version=args.get("visionzoo_version"),
        torch_version=args.get("torch_version"),
        data=args.get("data"), data_sha256=args.get("data_sha256"),
        started_from=f"{args.get('model')} ({start})" if args.get("model") else None)


def _results_architecture(name: str) -> str | None:
    """The architecture a results file's model name stands for, where it can still be read."""
    if parse_model_name(name)[0] is None:
        return split_name(name)[0]
    try:
        return get_architecture(name).name
    except UserError:
        return None


def publish(source: str, output: str | os.PathLike, *, checkpoint: str | None = None,
            results: Sequence[str | os.PathLike] = (), dataset: str | None = None, license: str | None = None,
            push: str | None = None, overwrite: bool = False) -> Published:
    """Write the model folder of `source` at `output`, with a model card; optionally push it to the Hub.

    Args:
        source: a `visionzoo train` run folder (its best/ weights, else last/), or any model name (an
            'arch.tag' with its published weights, a model folder); `checkpoint` gives other weights for it.
        results: JSON results files of `visionzoo validate` for the card's `model-index`; each must be of
            this model's architecture. `dataset` names their data (default: its folder's name).
        license: the card's licence id (default: the weights' tag's).
        push: 'org/name': upload the folder to that Hub repository (created if need be).
    """
    run = Path(source)
    provenance = None
    if run.is_dir() and (run / "args.yaml").is_file():
        folder = _run_folder(run)
        model = create_model(str(folder), pretrained=checkpoint is None, checkpoint_path=checkpoint)
        provenance = _run_provenance(run)
    else:
        pretrained = checkpoint is None
        model = create_model(source, pretrained=pretrained, checkpoint_path=checkpoint)
        cfg = model.pretrained_cfg
        if parse_model_name(source)[0] is None and pretrained:
            provenance = Provenance(source=f"published weights {cfg.hf_hub_id}")
    model = _check_model(model)
    cfg = model.pretrained_cfg
    rows: list[EvalRow] = []
    for path in results:
        evaluated, file_rows = read_results_file(path, dataset)
        architecture = _results_architecture(evaluated)
        if architecture is not None and architecture != cfg.architecture:
            raise UserError(f"--results {path} measured {evaluated} ({architecture}), not this "
                            f"{cfg.architecture} model")
        rows += file_rows
    output = Path(output)
    document = model_config(model)
    datasets = [d for d in (cfg.label_space, dataset or (rows[0].dataset if rows else None)) if d]
    load_name = f"hf-hub:{push}" if push else f"local-dir:{output}"
    params = sum(p.numel() for p in model.parameters())
    card = render_card(push.split("/")[-1] if push else output.name, load_name, document, params,
                       license or cfg.license or None, list(dict.fromkeys(datasets)), rows, provenance)
    save_model_folder(model, output, card=card, overwrite=overwrite)
    url = push_folder(output, push) if push else None
    return Published(output, url)


def push_folder(folder: str | os.PathLike, repo_id: str) -> str:
    """Upload a model folder to the Hub repository `repo_id` (created if need be) with
    `huggingface_hub.HfApi.upload_folder`; returns the repository's URL. UserError in one line when
    offline, without a token, or when the Hub refuses."""
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HFValidationError

    if constants.is_offline_mode():
        raise UserError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set (unset it on a connected machine); "
                        f"the folder is written at {folder}")
    token = get_token()
    if token is None:
        raise UserError(f"cannot push to {repo_id}: no Hugging Face token; run `hf auth login` or set "
                        f"HF_TOKEN (the folder is written at {folder})")
    api = HfApi(token=token, library_name="visionzoo", library_version=__version__)
    try:
        repo = api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(repo_id=repo.repo_id, folder_path=str(folder),
                          commit_message=f"Upload {Path(folder).name} with visionzoo {__version__}")
    except HFValidationError:
        raise UserError(f"cannot push: {repo_id!r} is not a Hub repository id (org/name)") from None
    except Exception as error:  # the HTTP client's connection errors share no base with the Hub's own
        # (OSErrors): any failure of the upload is one line that names its reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot push to {constants.ENDPOINT}/{repo_id}: {reason} (the folder is written at "
                        f"{folder})") from None
    return str(repo)
