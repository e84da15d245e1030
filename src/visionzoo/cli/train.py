"""`visionzoo train`: train or fine-tune a model on a labelled image set; a thin layer over `visionzoo.train`.

    visionzoo train --model efficientnet_lite0 --pretrained --num-classes 10 --data photos/train \\
        --val-data photos/val --output runs/lite0 --epochs 5 --lr 0.01
    torchrun --nproc-per-node 4 -m visionzoo train ...          # data-parallel, the same outputs
    visionzoo train --resume runs/lite0                          # continue exactly where it stopped
    torchrun --max-restarts 3 ... -m visionzoo train --resume auto ...   # restart a failed group by itself

Every option is a field of `visionzoo.train.TrainConfig`; `--config FILE.yaml|.toml` sets any of them (a
run's own args.yaml works), and flags given on the command line win over the file. `--recipe NAME|ARCH.TAG`
makes a published recipe's hyperparameters the defaults under both (`visionzoo recipes` lists them):

    visionzoo train --recipe mobilenetv4_conv_small.e2400_r224_in1k --data imagenet/train ...

An option whose default is None takes `none` to switch off what a recipe or file set (`--amp none`,
`--ema none`), and a switch takes `--no-...` (`--no-channels-last`).
"""

from __future__ import annotations

import argparse
import shlex

from .options import flag as _flag


def as_flags(text: str) -> str:
    """`text` (a help text of the library) with each option it names as `{field}` written as its flag."""
    from ..errors import name_options

    return name_options(text, _flag)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The flags are made from the TrainConfig fields, so the two cannot drift apart; every default is None
    # here and the config's defaults apply to what neither the command line nor --config sets.
    from ..options import option_fields
    from ..train.config import TrainConfig

    parser.add_argument("--config", metavar="FILE", help="options from a .yaml/.toml file (flags win)")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder (or checkpoint.pt), "
                        "on any number of processes that divides its global batch; auto: the run in "
                        "--output if it has a checkpoint, else start it (for torchrun --max-restarts)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --output")
    for option in option_fields(TrainConfig):
        text = as_flags(option.help)
        if option.kind is bool:
            parser.add_argument(_flag(option.name), action=argparse.BooleanOptionalAction, default=None,
                                help=text)
            continue
        if option.default not in (None, ""):
            text = f"{text} (default {option.default})"
        if option.pair:
            parser.add_argument(_flag(option.name), type=float, nargs=2, metavar=("A", "B"), help=text)
            continue
        convert = {int: int, float: float, str: str}[option.kind]
        choices = option.rule.choices if option.rule is not None and option.rule.choices else None
        if option.optional and option.name != "recipe":  # 'none' switches off what a recipe/file set
            convert = _or_none(convert)
            choices = (*choices, NONE) if choices else None
        parser.add_argument(_flag(option.name), type=convert, choices=choices,
                            metavar=None if choices else option.name.split("_")[-1].upper(), help=text)


class _Unset(str):
    """The value of `--option none`: the option set to None, over a recipe's or config file's value."""


NONE = _Unset("none")


def _or_none(convert):
    def parse(text: str):
        return NONE if text.lower() == "none" else convert(text)

    parse.__name__ = convert.__name__  # argparse names the type in its error message
    return parse


def given_options(args: argparse.Namespace) -> dict:
    """The TrainConfig options set on the command line (`none` still marked, see `_Unset`)."""
    from ..options import option_fields
    from ..train.config import TrainConfig

    values = {}
    for option in option_fields(TrainConfig):
        value = getattr(args, option.name, None)
        if value is not None:
            values[option.name] = tuple(value) if isinstance(value, list) else value
    return values


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
    from ..train import read_config_file, resolve_config, train
    from ..train.engine import AUTO

    given = given_options(args)
    command = command_line(args, given)
    given = {k: None if isinstance(v, _Unset) else v for k, v in given.items()}
    if args.resume and args.resume != AUTO:
        if args.config:
            given = {**read_config_file(args.config), **given}
        result = train(resume=args.resume, resume_overrides=given, command=command)
    else:  # a new run, or `auto`: the run these options describe, resumed if its folder has a checkpoint
        config = resolve_config(args.config, **given)
        result = train(config, resume=args.resume, overwrite=args.overwrite, command=command)
    if not result.main_process:
        return 0
    if result.best_top1 is not None:
        best = result.output / "best" / "model.safetensors"
        print(f"best eval top-1 {result.best_top1:.3f}; weights in {best}")
    else:
        print(f"trained {result.steps} updates; weights in {result.output / 'last' / 'model.safetensors'}")
    return 0
