"""`visionzoo train`: train or fine-tune a model on a labelled image set; a thin layer over `visionzoo.train`.

    visionzoo train --model efficientnet_lite0 --pretrained --num-classes 10 --data photos/train \\
        --val-data photos/val --output runs/lite0 --epochs 5 --lr 0.01
    torchrun --nproc-per-node 4 -m visionzoo train ...          # data-parallel, the same outputs
    visionzoo train --resume runs/lite0                          # continue exactly where it stopped

Every option is a field of `visionzoo.train.TrainConfig`; `--config FILE.yaml|.toml` sets any of them (a
run's own args.yaml works), and flags given on the command line win over the file. `--recipe NAME|ARCH.TAG`
makes a published recipe's hyperparameters the defaults under both (`visionzoo recipes` lists them):

    visionzoo train --recipe mobilenetv4_conv_small.e2400_r224_in1k --data imagenet/train ...

An option whose default is None takes `none` to switch off what a recipe or file set (`--amp none`,
`--ema none`), and a switch takes `--no-...` (`--no-channels-last`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex

# Help for the options that need more than their name; the others show their default.
HELP = {
    "recipe": "a recipe name or arch.tag (see `visionzoo recipes`): its hyperparameters become the defaults; "
              "an arch.tag also sets --model (a *_ft_in1k tag: its parent tag, --pretrained)",
    "model": "architecture, optionally with its pretrained tag (a bare name means its default tag)",
    "pretrained": "start from the tag's published weights (with --num-classes: a fresh head)",
    "checkpoint": "start from the weights in a local .safetensors/.pth file",
    "data": "training images: class folders, a folder with labels.csv, a HF save_to_disk folder, parquet, "
            "webdataset shards (a .tar pattern, list file or folder; local or URL)",
    "val_data": "validation images (same layouts), evaluated after every epoch",
    "output": "run folder: args.yaml, summary.csv, curves.png, checkpoint.pt, last/, best/",
    "num_classes": "classifier size (default: the tag's)",
    "img_size": "train and eval input size (default: the tag's)",
    "batch_size": "images per process per micro-batch",
    "lr": "peak learning rate (default: --lr-base scaled to the global batch)",
    "lr_base": "learning rate tuned at --lr-base-size images per batch, scaled to the global batch",
    "lr_base_scale": "linear or sqrt scaling of --lr-base (default: sqrt for Adam-like and LAMB, else "
                     "linear)",
    "opt": "sgd (Nesterov), momentum, adamw, adam, rmsproptf, lamb, or any torch.optim class by name",
    "layer_decay": "layer-wise lr decay: each depth level below the head gets this factor more",
    "clip_grad": "clip gradients to this norm (or value, with --clip-mode value)",
    "ema": "keep an exponential moving average of the weights with this decay (e.g. 0.9998)",
    "ema_warmup": "EMA decay min(--ema, 1 - (1 + step / gamma) ** -power) early on",
    "amp": "autocast dtype (fp16 uses a gradient scaler on CUDA)",
    "workers": "decoding processes per rank (default: the CPUs, shared by the ranks, at most 8)",
    "deterministic": "deterministic algorithms: bit-identical reruns and resumes (on CPU)",
    "checkpoint_every": "also write the training checkpoint every N updates (always at each epoch end)",
    "keep": "how many best epochs' weights to keep (best/ always holds the best)",
    "scale": "random-resized crop: min and max fraction of the image area",
    "ratio": "random-resized crop: min and max aspect ratio",
    "sync_bn": "synchronise batch-norm statistics across processes",
    "aa": "RandAugment string, e.g. rand-m9-mstd0.5-inc1 (magnitude, its noise std, inc1, n ops, mmax, p)",
    "color_jitter": "brightness/contrast/saturation jitter strength (inactive with --aa)",
    "reprob": "random erasing probability (on the normalised batch)",
    "remode": "random erasing fill: pixel noise, one random colour per box, or const (the mean)",
    "recount": "random erasing: up to this many boxes per image",
    "mixup": "mixup Beta alpha (0: off); mixing switches to soft-target cross-entropy",
    "cutmix": "cutmix Beta alpha (0: off)",
    "mixup_prob": "chance that a batch is mixed",
    "mixup_switch_prob": "chance of cutmix rather than mixup when both are on",
    "mixup_off_epoch": "no mixing from this epoch on (0: never switched off)",
    "aug_repeats": "repeated augmentation: each image this many times per epoch (> 1; epoch length kept)",
    "bce_loss": "binary cross-entropy on the (mixed) targets instead of cross-entropy",
    "bce_target_thresh": "BCE: targets above it become 1, the rest 0",
    "bce_sum": "BCE: sum over classes before the batch mean",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The flags are the TrainConfig fields, so the two cannot drift apart; every default is None here and
    # the config's defaults apply to what neither the command line nor --config sets.
    from ..train.config import TrainConfig

    parser.add_argument("--config", metavar="FILE", help="options from a .yaml/.toml file (flags win)")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder (or checkpoint.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --output")
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        kind = str(field.type)
        default = getattr(defaults, field.name)
        text = HELP.get(field.name, "")
        if not kind.startswith("bool"):
            text = f"{text} (default {default})".strip() if default not in (None, "") else text
        if kind.startswith("bool"):
            parser.add_argument(_flag(field.name), action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        elif kind.startswith("tuple"):
            parser.add_argument(_flag(field.name), type=float, nargs=2, metavar=("A", "B"), help=text)
        else:
            base = kind.split("|")[0].strip()
            convert = {"int": int, "float": float, "str": str}[base]
            choices = _choices(field.name)
            if "None" in kind and field.name != "recipe":  # 'none' switches off what a recipe/file set
                convert = _or_none(convert)
                choices = (*choices, NONE) if choices else None
            parser.add_argument(_flag(field.name), type=convert, choices=choices, metavar=None if choices else
                                field.name.split("_")[-1].upper(), help=text)


class _Unset(str):
    """The value of `--option none`: the option set to None, over a recipe's or config file's value."""


NONE = _Unset("none")


def _or_none(convert):
    def parse(text: str):
        return NONE if text.lower() == "none" else convert(text)

    parse.__name__ = convert.__name__  # argparse names the type in its error message
    return parse


def _choices(name: str):
    from ..train import config

    return {"sched": config.SCHEDULES, "amp": config.AMP_CHOICES, "clip_mode": config.CLIP_MODES,
            "lr_base_scale": config.LR_SCALE_RULES, "device": ("cpu", "cuda"),
            "train_interpolation": config.TRAIN_INTERPOLATIONS, "remode": config.ERASE_MODES}.get(name)


def given_options(args: argparse.Namespace) -> dict:
    """The TrainConfig fields set on the command line."""
    from ..train.config import TrainConfig

    values = {}
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return values


def recipe_defaults(name: str, values: dict) -> dict:
    """The options recipe `name` (a recipe or arch.tag) gives, for the other `values` to override: its
    hyperparameters (an lr at the recipe's batch as lr_base, rescaled to the run's global batch), and for
    an arch.tag the model, or for a fine-tune tag its parent tag with --pretrained."""
    from ..errors import UserError
    from ..recipes import RecipeError, get_recipe

    try:
        recipe = get_recipe(name)
    except RecipeError as error:
        raise UserError(str(error)) from None
    defaults = recipe.train_options()
    if "." in name:
        parent = recipe.parent(name)
        defaults["model"] = parent or name
        if parent and "model" not in values and not values.get("checkpoint"):
            defaults["pretrained"] = True  # a fine-tune starts from its parent tag's published weights
    else:
        tuned = [tag for tag in recipe.tags if recipe.parent(tag)]
        if tuned:
            raise UserError(f"recipe {name} fine-tunes other tags' weights; name the tag it trains, e.g. "
                            f"--recipe {tuned[0]}, so that the run starts from that tag's parent weights")
    return defaults


def command_line(args: argparse.Namespace, given: dict) -> str:
    """The command as parsed, for args.yaml (sys.argv is not it when `main` is called from Python)."""
    words = ["visionzoo", "train"]
    for name in ("config", "resume"):
        if getattr(args, name):
            words += [_flag(name), getattr(args, name)]
    if args.overwrite:
        words.append("--overwrite")
    for key, value in given.items():
        if value is True:
            words.append(_flag(key))
        elif value is False:
            words.append("--no-" + _flag(key)[2:])
        else:
            words += [_flag(key), *map(str, value if isinstance(value, tuple) else [value])]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..train import TrainConfig, read_config_file, train
    from ..train.outputs import OutputExistsError

    given = given_options(args)
    command = command_line(args, given)
    try:
        if args.resume:
            if args.config:
                given = {**read_config_file(args.config), **given}
            given = {k: None if isinstance(v, _Unset) else v for k, v in given.items()}
            result = train(resume=args.resume, resume_overrides=given, command=command)
        else:
            values = {**(read_config_file(args.config) if args.config else {}), **given}
            if values.get("recipe"):
                values = {**recipe_defaults(values["recipe"], values), **values}
            values = {k: None if isinstance(v, _Unset) else v for k, v in values.items()}
            config = TrainConfig.from_dict(values, where=args.config or "command line")
            result = train(config, overwrite=args.overwrite, command=command)
    except OutputExistsError as error:
        raise UserError(str(error)) from None
    if not result.main_process:
        return 0
    if result.best_top1 is not None:
        best = result.output / "best" / "model.safetensors"
        print(f"best eval top-1 {result.best_top1:.3f}; weights in {best}")
    else:
        print(f"trained {result.steps} updates; weights in {result.output / 'last' / 'model.safetensors'}")
    return 0
