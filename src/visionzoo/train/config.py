"""The options of a training run, resolved into one frozen dataclass that reads and writes YAML and TOML.

A run is data: `args.yaml` in the output folder holds every field of `TrainConfig` (plus the versions and
the command), and `visionzoo train --config args.yaml` repeats the run. This module imports no torch, so
the command line can read it while parsing.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OPTIMIZERS = ("sgd", "momentum", "adamw", "adam", "rmsproptf", "lamb")  # plus any torch.optim class by name
SCHEDULES = ("cosine", "step", "constant")
AMP_CHOICES = ("bf16", "fp16")
CLIP_MODES = ("norm", "value")
LR_SCALE_RULES = ("linear", "sqrt")
TRAIN_INTERPOLATIONS = ("random", "bilinear", "bicubic", "nearest")  # as data.train_transforms
ERASE_MODES = ("const", "rand", "pixel")  # as data.random_erasing
# The options that switch the train transform to the recipes' (visionzoo.data.train_transforms).
AUGMENTATION_KEYS = ("aa", "vflip", "color_jitter", "color_jitter_prob", "grayscale_prob",
                     "gaussian_blur_prob", "train_interpolation")


class ConfigError(UserError):
    """A training option that cannot be used; the message names the option and what to change."""


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run. Field names are the command-line flags with '_' for '-'."""

    # what to train, on what, and where the run goes
    recipe: str | None = None  # a recipe name or arch.tag: its hyperparameters are the defaults (CLI)
    model: str = ""
    pretrained: bool = False
    checkpoint: str | None = None  # initial weights (a model file, not a run to resume)
    data: str = ""
    val_data: str | None = None
    output: str = ""
    num_classes: int | None = None  # default: the tag's classes
    img_size: int | None = None  # train and eval size; default the tag's
    # the basic train transform (the recipes' augmentations plug in through the engine's train_transform)
    scale: tuple[float, float] = (0.08, 1.0)  # random-resized crop: fraction of the image area
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # random-resized crop: aspect ratio range
    hflip: float = 0.5  # horizontal flip probability
    # the recipes' augmentation (all off by default; any set -> visionzoo.data.train_transforms)
    aa: str | None = None  # RandAugment string, e.g. rand-m9-mstd0.5-inc1
    vflip: float = 0.0
    color_jitter: float | None = None  # brightness/contrast/saturation strength (inactive with --aa)
    color_jitter_prob: float | None = None
    grayscale_prob: float = 0.0
    gaussian_blur_prob: float = 0.0
    train_interpolation: str | None = None  # random | bilinear | bicubic | nearest; default the model's
    reprob: float = 0.0  # random erasing, on the normalised batch
    remode: str = "pixel"
    recount: int = 1
    # batch mixing, repeated augmentation and the soft-target losses
    mixup: float = 0.0  # Beta alpha; 0: off
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    mixup_off_epoch: int = 0  # 0: never switched off
    aug_repeats: float = 0.0  # > 1: each image that many times per epoch (repeated augmentation)
    bce_loss: bool = False
    bce_target_thresh: float | None = None
    bce_sum: bool = False
    # length and batch
    epochs: int = 10
    batch_size: int = 64  # per process; the global batch is batch_size * processes * grad_accum
    grad_accum: int = 1
    # optimiser
    opt: str = "sgd"
    lr: float | None = None  # default: lr_base scaled to the global batch, else 0.1 (SGD-like) / 1e-3
    lr_base: float | None = None
    lr_base_size: int = 256
    lr_base_scale: str | None = None  # linear | sqrt; default by optimiser (sqrt for Adam-like and LAMB)
    momentum: float = 0.9
    opt_eps: float | None = None
    opt_betas: tuple[float, float] | None = None
    weight_decay: float = 1e-4
    layer_decay: float | None = None
    clip_grad: float | None = None
    clip_mode: str = "norm"
    # schedule, in epochs; the learning rate is a pure function of the update step
    sched: str = "cosine"
    warmup_epochs: float = 0.0
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    cooldown_epochs: float = 0.0
    decay_epochs: float = 30.0  # step schedule: multiply by decay_rate every decay_epochs
    decay_rate: float = 0.1
    # regularisation
    smoothing: float = 0.1
    drop: float | None = None
    drop_path: float | None = None
    ema: float | None = None  # decay of the weights' exponential moving average; None: no EMA
    ema_warmup: bool = False  # decay = min(ema, 1 - (1 + step / ema_warmup_gamma) ** -ema_warmup_power)
    ema_warmup_gamma: float = 1.0
    ema_warmup_power: float = 2 / 3
    # precision, speed, processes
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    device: str | None = None  # cpu | cuda; default cuda if available
    workers: int | None = None
    deterministic: bool = False  # torch.use_deterministic_algorithms, for bit-identical reruns
    seed: int = 0
    # checkpoints and logging
    checkpoint_every: int | None = None  # also write the training checkpoint every N updates
    keep: int = 1  # best model files kept
    log_every: int = 50  # updates between log lines when not on a terminal

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, "epochs", "at least 1"),
            (self.batch_size >= 1, "batch_size", "at least 1"),
            (self.grad_accum >= 1, "grad_accum", "at least 1"),
            (self.lr is None or self.lr > 0, "lr", "positive"),
            (self.lr_base is None or self.lr_base > 0, "lr_base", "positive"),
            (self.lr_base_size >= 1, "lr_base_size", "at least 1"),
            (self.lr_base_scale in (None, *LR_SCALE_RULES), "lr_base_scale", " or ".join(LR_SCALE_RULES)),
            (self.weight_decay >= 0, "weight_decay", "0 or more"),
            (self.layer_decay is None or 0 < self.layer_decay <= 1, "layer_decay", "in (0, 1]"),
            (self.clip_grad is None or self.clip_grad > 0, "clip_grad", "positive"),
            (self.clip_mode in CLIP_MODES, "clip_mode", " or ".join(CLIP_MODES)),
            (self.sched in SCHEDULES, "sched", " or ".join(SCHEDULES)),
            (self.warmup_epochs >= 0 and self.cooldown_epochs >= 0, "warmup_epochs/cooldown_epochs",
             "0 or more"),
            (self.warmup_epochs + self.cooldown_epochs <= self.epochs, "warmup_epochs + cooldown_epochs",
             f"at most epochs ({self.epochs})"),
            (self.decay_epochs > 0, "decay_epochs", "positive"),
            (0 <= self.smoothing < 1, "smoothing", "in [0, 1)"),
            (self.ema is None or 0 < self.ema < 1, "ema", "in (0, 1)"),
            (self.amp in (None, *AMP_CHOICES), "amp", " or ".join(AMP_CHOICES)),
            (self.device in (None, "cpu", "cuda"), "device", "cpu or cuda"),
            (self.workers is None or self.workers >= 0, "workers", "0 or more"),
            (self.checkpoint_every is None or self.checkpoint_every >= 1, "checkpoint_every", "at least 1"),
            (self.keep >= 1, "keep", "at least 1"),
            (self.log_every >= 1, "log_every", "at least 1"),
            (self.num_classes is None or self.num_classes >= 1, "num_classes", "at least 1"),
            (self.img_size is None or self.img_size >= 1, "img_size", "positive"),
            (0 < self.scale[0] <= self.scale[1] <= 1, "scale", "two fractions 0 < min <= max <= 1"),
            (0 < self.ratio[0] <= self.ratio[1], "ratio", "two aspect ratios 0 < min <= max"),
            (0 <= self.hflip <= 1, "hflip", "a probability in [0, 1]"),
            (all(0 <= p <= 1 for p in (self.vflip, self.grayscale_prob, self.gaussian_blur_prob, self.reprob,
                                        self.mixup_prob, self.mixup_switch_prob)),
             "vflip/grayscale_prob/gaussian_blur_prob/reprob/mixup_prob/mixup_switch_prob",
             "probabilities in [0, 1]"),
            (self.color_jitter_prob is None or 0 <= self.color_jitter_prob <= 1, "color_jitter_prob",
             "a probability in [0, 1]"),
            (self.train_interpolation in (None, *TRAIN_INTERPOLATIONS), "train_interpolation",
             " or ".join(TRAIN_INTERPOLATIONS)),
            (self.remode in ERASE_MODES, "remode", " or ".join(ERASE_MODES)),
            (self.recount >= 1, "recount", "at least 1"),
            (self.mixup >= 0 and self.cutmix >= 0, "mixup/cutmix", "0 (off) or a positive Beta alpha"),
            (self.mixup_off_epoch >= 0, "mixup_off_epoch", "0 (never) or a positive epoch"),
            (self.aug_repeats == 0 or self.aug_repeats >= 1, "aug_repeats", "0 (off) or at least 1"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ConfigError(f"--{name.replace('_', '-')} must be {rule}")
        if self.pretrained and self.checkpoint:
            raise ConfigError("--pretrained and --checkpoint both give initial weights; choose one")

    # ---- conversion -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every field, as plain YAML/JSON values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> TrainConfig:
        """A config from `values` (missing fields take their defaults); ConfigError names an unknown key."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown option {', '.join(map(repr, unknown))}")
        values = dict(values)
        for key in ("opt_betas", "scale", "ratio"):
            if values.get(key) is not None:
                if len(values[key]) != 2:
                    raise ConfigError(f"{where}: {key} takes two numbers, got {values[key]!r}")
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_yaml(self, extra: dict | None = None) -> str:
        """YAML text of every field, then the `extra` keys (versions, command) under their own names."""
        import yaml

        document = self.to_dict()
        if extra:
            document.update(extra)
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=None)

    def to_toml(self) -> str:
        """TOML text of every field that is set (TOML has no null: unset fields are left out)."""
        lines = []
        for key, value in self.to_dict().items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def read_config_file(path: str | Path) -> dict:
    """The options in a .yaml/.yml/.toml file, as a dict (keys not yet checked; see TrainConfig.from_dict).

    Keys of an `args.yaml` that are not options (versions, command) are dropped, so a run's own record
    can be passed back with --config.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        elif path.suffix == ".toml":
            values = tomllib.loads(text)
        else:
            raise ConfigError(f"config file {path} must end in .yaml, .yml or .toml")
    except ConfigError:
        raise
    except Exception as error:  # a syntax error: one line naming the file
        raise ConfigError(f"cannot read config file {path}: {str(error).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return {k.replace("-", "_"): v for k, v in values.items() if k not in RECORD_KEYS}


RECORD_KEYS = ("visionzoo_version", "torch_version", "command", "world_size", "global_batch", "lr_note",
               "data_sha256")
