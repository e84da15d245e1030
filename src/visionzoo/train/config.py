"""The options of a training run: typed groups, each field with its default, check and help text, and
{TrainConfig}, the run's config made of them.

A run is data: `args.yaml` in the output folder holds every option of {TrainConfig} by its flat name (plus
the versions and the command), and `visionzoo train --config args.yaml` repeats the run. The command line's
flags, the fields a recipe may give and the YAML/TOML files are all made from the fields here
(`visionzoo.options`); adding an option is adding a field to its group and using it where it acts.

The groups are what the builders take: {TrainAugmentation} the train transform, {MixupOptions} the batch
mixer, {LossOptions} the loss, {OptimOptions} the optimiser, {ScheduleOptions} the schedule, and so on.
This module imports no torch, so the command line can read it while parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..data.train_options import MixupOptions, TrainAugmentation
from ..errors import ConfigError
from ..option_files import read_option_file, toml_text, yaml_text
from ..options import NON_NEGATIVE, POSITIVE, Options, OptionSet, Rule, at_least, one_of, option
from ..runtime import DEVICES, LOW_PRECISIONS

__all__ = ["ConfigError", "EmaOptions", "InputOptions", "LossOptions", "ModelOptions", "OptimOptions",
           "OutputOptions", "RuntimeOptions", "ScheduleOptions", "TaskOptions", "TrainConfig",
           "read_config_file"]

SCHEDULES = ("cosine", "step", "constant")
CLIP_MODES = ("norm", "value")
LR_SCALE_RULES = ("linear", "sqrt")
# Keys of a run's args.yaml that record the run rather than set an option (dropped when it is read back).
RECORD_KEYS = ("visionzoo_version", "torch_version", "command", "world_size", "global_batch", "lr_note",
               "data_sha256")


@dataclass(frozen=True)
class TaskOptions(Options):
    """What the run trains (the model and its initial weights), on which images, and where it writes."""

    model: str = option("", "architecture, optionally with its pretrained tag (a bare name means its default "
                        "tag)")
    pretrained: bool = option(False, "start from the tag's published weights (with {num_classes}: a fresh "
                              "head)")
    checkpoint: str | None = option(None, "start from the weights in a local .safetensors/.pth file (not a "
                                    "run to resume)")
    data: str = option("", "training images: class folders, a folder with labels.csv, a HF save_to_disk "
                       "folder, parquet, webdataset shards (a .tar pattern, list file or folder; local or "
                       "URL)")
    val_data: str | None = option(None, "validation images (same layouts), evaluated after every epoch")
    output: str = option("", "run folder: args.yaml, summary.csv, curves.png, checkpoint.pt, last/, best/")

    def check(self) -> None:
        if self.pretrained and self.checkpoint:
            raise ConfigError("{pretrained} and {checkpoint} both give initial weights; choose one")


@dataclass(frozen=True)
class ModelOptions(Options):
    """How the model is built: its classes, input size and dropouts."""

    num_classes: int | None = option(None, "classifier size (default: the tag's, or the checkpoint's)",
                                     at_least(1), recipe=True)
    img_size: int | None = option(None, "train and eval input size (default: the tag's)", POSITIVE,
                                  recipe=True)
    drop: float | None = option(None, "dropout before the classifier (default: the architecture's)",
                                recipe=True)
    drop_path: float | None = option(None, "stochastic depth rate (default: the architecture's)", recipe=True)


@dataclass(frozen=True)
class InputOptions(Options):
    """How the images reach the model: batches, loading processes, repeats, the validation crop."""

    batch_size: int = option(64, "images per process per micro-batch (the global batch is this x "
                             "processes x {grad_accum})", at_least(1), recipe=True)
    workers: int | None = option(None, "decoding processes per rank (default: the CPUs, shared by the ranks, "
                                 "at most 8)", NON_NEGATIVE)
    aug_repeats: float = option(0.0, "repeated augmentation: each image this many times per epoch (> 1; "
                                "epoch length kept)",
                                Rule("0 (off) or at least 1", lambda value: value == 0 or value >= 1),
                                recipe=True)
    crop_pct: float | None = option(None, "the fraction of the resized validation images the centre crop "
                                    "keeps (default: the tag's)",
                                    Rule("in (0, 1]", lambda value: 0 < value <= 1), recipe=True)


@dataclass(frozen=True)
class LossOptions(Options):
    """The training loss: cross-entropy with label smoothing, or binary cross-entropy."""

    smoothing: float = option(0.1, "label smoothing", Rule("in [0, 1)", lambda value: 0 <= value < 1),
                              recipe=True)
    bce_loss: bool = option(False, "binary cross-entropy on the (mixed) targets instead of cross-entropy",
                            recipe=True)
    bce_target_thresh: float | None = option(None, "BCE: targets above it become 1, the rest 0", recipe=True)
    bce_sum: bool = option(False, "BCE: sum over classes before the batch mean", recipe=True)


@dataclass(frozen=True)
class OptimOptions(Options):
    """The optimiser, its learning rate and what happens to the gradients before a step."""

    opt: str = option("sgd", "sgd (Nesterov), momentum, adamw, adam, rmsproptf, lamb, or any torch.optim "
                      "class by name", recipe=True)
    lr: float | None = option(None, "peak learning rate (default: {lr_base} scaled to the global batch)",
                              POSITIVE, recipe=True)
    lr_base: float | None = option(None, "learning rate tuned at {lr_base_size} images per batch, scaled to "
                                   "the global batch (default: 0.1 for SGD-like optimisers, else 1e-3)",
                                   POSITIVE, recipe=True)
    lr_base_size: int = option(256, "the batch {lr_base} refers to", at_least(1), recipe=True)
    lr_base_scale: str | None = option(None, "linear or sqrt scaling of {lr_base} (default: sqrt for "
                                       "Adam-like and LAMB, else linear)", one_of(*LR_SCALE_RULES),
                                       recipe=True)
    momentum: float = option(0.9, "SGD / RMSprop momentum", recipe=True)
    opt_eps: float | None = option(None, "optimizer epsilon", recipe=True)
    opt_betas: tuple[float, float] | None = option(None, "Adam-family betas", recipe=True)
    weight_decay: float = option(1e-4, "weight decay (never on norms, biases, tokens and position "
                                 "embeddings)", NON_NEGATIVE, recipe=True)
    layer_decay: float | None = option(None, "layer-wise lr decay: each depth level below the head gets this "
                                       "factor more", Rule("in (0, 1]", lambda value: 0 < value <= 1),
                                       recipe=True)
    clip_grad: float | None = option(None, "clip gradients to this norm (or value, with {clip_mode} value)",
                                     POSITIVE, recipe=True)
    clip_mode: str = option("norm", "clip by norm or value", one_of(*CLIP_MODES), recipe=True)
    grad_accum: int = option(1, "micro-batches per update (gradient accumulation)", at_least(1))


@dataclass(frozen=True)
class ScheduleOptions(Options):
    """The length of the run and its learning-rate schedule, in epochs; the learning rate is a pure function
    of the update step."""

    epochs: int = option(10, "training epochs", at_least(1), recipe=True)
    sched: str = option("cosine", "learning-rate schedule", one_of(*SCHEDULES), recipe=True)
    warmup_epochs: float = option(0.0, "warmup length", NON_NEGATIVE, recipe=True)
    warmup_lr: float = option(0.0, "learning rate warmup starts from", recipe=True)
    min_lr: float = option(0.0, "floor of the schedule", recipe=True)
    cooldown_epochs: float = option(0.0, "epochs at {min_lr} after the schedule", NON_NEGATIVE, recipe=True)
    decay_epochs: float = option(30.0, "step schedule: multiply by {decay_rate} every this many epochs",
                                 POSITIVE, recipe=True)
    decay_rate: float = option(0.1, "step schedule factor", recipe=True)

    def check(self) -> None:
        if self.warmup_epochs + self.cooldown_epochs > self.epochs:
            raise ConfigError(f"{{warmup_epochs}} + {{cooldown_epochs}} must be at most {{epochs}} "
                              f"({self.epochs})")


@dataclass(frozen=True)
class EmaOptions(Options):
    """An exponential moving average of the weights, evaluated beside the model."""

    ema: float | None = option(None, "keep an exponential moving average of the weights with this decay "
                               "(e.g. 0.9998)", Rule("in (0, 1)", lambda value: 0 < value < 1), recipe=True)
    ema_warmup: bool = option(False, "EMA decay min({ema}, 1 - (1 + step / gamma) ** -power) early on")
    ema_warmup_gamma: float = option(1.0, "EMA warmup: gamma")
    ema_warmup_power: float = option(2 / 3, "EMA warmup: power")


@dataclass(frozen=True)
class RuntimeOptions(Options):
    """Where and how fast the run computes; none of it changes what is computed (except `deterministic`,
    which makes reruns bit-identical)."""

    amp: str | None = option(None, "autocast dtype (fp16 uses a gradient scaler on CUDA)",
                             one_of(*LOW_PRECISIONS), recipe=True)
    channels_last: bool = option(False, "channels-last memory format", recipe=True)
    compile: bool = option(False, "torch.compile the model")
    sync_bn: bool = option(False, "synchronise batch-norm statistics across processes")
    device: str | None = option(None, "where to train (default: cuda if available)", one_of(*DEVICES))
    deterministic: bool = option(False, "deterministic algorithms: bit-identical reruns and resumes (on CPU)")
    seed: int = option(0, "seed of everything random")


@dataclass(frozen=True)
class OutputOptions(Options):
    """What is written to the run folder, and how often."""

    checkpoint_every: int | None = option(None, "also write the training checkpoint every N updates (always "
                                          "at each epoch end)", at_least(1))
    keep: int = option(1, "how many best epochs' weights to keep (best/ always holds the best)", at_least(1))
    log_every: int = option(50, "updates between log lines when not on a terminal", at_least(1))


@dataclass(frozen=True, init=False)
class TrainConfig(OptionSet):
    """Every option of a training run, in typed groups.

    `TrainConfig(model="efficientnet_lite0", lr=1e-3, ...)` takes the flat option names (those of the
    command line and of args.yaml); each group is read by its field (`config.optim.lr`). `to_dict` and
    `from_dict` give and take the flat names; `visionzoo.train.resolve_config` adds a config file and a
    recipe underneath.
    """

    recipe: str | None = option(None, "a recipe name or arch.tag (see `visionzoo recipes`): its "
                                "hyperparameters become the defaults; an arch.tag also sets {model} (a "
                                "*_ft_in1k tag: its parent tag, {pretrained})")
    task: TaskOptions = field(default_factory=TaskOptions)
    network: ModelOptions = field(default_factory=ModelOptions)
    augment: TrainAugmentation = field(default_factory=TrainAugmentation)
    mixing: MixupOptions = field(default_factory=MixupOptions)
    inputs: InputOptions = field(default_factory=InputOptions)
    loss: LossOptions = field(default_factory=LossOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    averaging: EmaOptions = field(default_factory=EmaOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    outputs: OutputOptions = field(default_factory=OutputOptions)

    def to_yaml(self, extra: dict | None = None) -> str:
        """YAML text of every option, then the `extra` keys (versions, command) under their own names."""
        return yaml_text({**self.to_dict(), **(extra or {})})

    def to_toml(self) -> str:
        """TOML text of every option that is set (TOML has no null: unset options are left out)."""
        return toml_text(self.to_dict())


def read_config_file(path: str | Path) -> dict:
    """The options in a .yaml/.yml/.toml file, as a dict (keys not yet checked; see TrainConfig.from_dict).

    Keys of an `args.yaml` that are not options (versions, command) are dropped, so that a run's own record
    can be read back as its config.
    """
    return {key: value for key, value in read_option_file(path).items() if key not in RECORD_KEYS}
