"""A run made from its config on this process, by one small builder per part: `build_model` (the model, its
EMA, DDP, compilation), `build_data` (the datasets, their order, the batch transform), `build_optimisation`
(the loss, the optimiser, the learning rate and its schedule), and `write_record` (args.yaml).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import torch

from .. import __version__
from ..data import ModelClasses, create_dataset, create_loader, create_transform, resolve_data_config
from ..data.loader import default_workers
from ..data.samplers import EpochBatchSampler, RepeatBatchSampler, SeededSamples
from ..data.train_transforms import create_batch_transform, create_train_transform
from ..factory import create_model
from ..files import write_text_atomic
from ..recipes import get_recipe
from ..registry import get_architecture
from ..runtime import DistributedContext, resolve_device
from .config import ConfigError, TrainConfig
from .ema import ModelEma
from .losses import create_loss
from .model_folders import data_sha256, run_model_config, training_classes
from .optim import check_optimizer, create_optimizer, default_lr
from .param_groups import param_groups
from .run import Run, RunData, RunModel, RunOptimisation
from .schedule import create_schedule, lr_scale_rule, scaled_lr


def build_run(config: TrainConfig, context: DistributedContext, train_transform: Callable | None = None,
              batch_transform: Callable | None = None, criterion: Callable | None = None,
              command: str | None = None) -> Run:
    """Build the run's parts on this process (the arguments given replace what the config would build);
    rank 0 writes args.yaml with the config as resolved."""
    check_optimizer(config.optim.opt)
    device = resolve_device(config.runtime.device, context.local_rank)
    if config.runtime.sync_bn and device.type == "cpu" and context.world_size > 1:
        raise ConfigError("{sync_bn} needs CUDA devices (torch's SyncBatchNorm does not run on the CPU); "
                          "train without it")
    if config.runtime.deterministic:
        torch.use_deterministic_algorithms(True)
    _seed_everything(config.runtime.seed)

    model = build_model(config, context, device)
    data = build_data(config, context, device, model, train_transform, batch_transform)
    global_batch = config.inputs.batch_size * context.world_size * config.optim.grad_accum
    optimisation = build_optimisation(config, model, data, global_batch, criterion)
    resolved = config.replace(lr=optimisation.schedule.lr, num_classes=model.num_classes,
                              img_size=data.data_config.img_size[0], device=device.type, workers=data.workers)
    if context.is_main:
        write_record(resolved, command, context.world_size, global_batch, optimisation.lr_note,
                     data_sha256(data.train_set.dataset))
    folder_config = run_model_config(model.core, data.data_config, data.label_names, config.task.pretrained)
    return Run(resolved, context, device, model, data, optimisation, folder_config)


def _seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_model(config: TrainConfig, context: DistributedContext, device: torch.device) -> RunModel:
    """The model with its initial weights on `device` (channels-last, synchronised batch norms), its EMA,
    and what the forward pass runs (DDP over several processes, compiled)."""
    task, options, runtime = config.task, config.network, config.runtime
    architecture = get_architecture(task.model)
    # a fixed-size model is built for the training size; any other takes it from the data config
    fixed = options.img_size is not None and architecture.model_cls.fixed_input_size
    size = {"img_size": options.img_size} if fixed else {}
    # Without num_classes: the classes of the initial weights (the tag's, or the checkpoint file's).
    model = create_model(task.model, pretrained=task.pretrained, checkpoint_path=task.checkpoint,
                         num_classes=options.num_classes, drop_rate=options.drop,
                         drop_path_rate=options.drop_path, **size)
    # Each rank draws its own dropout / drop-path masks; the model was initialised identically on all.
    torch.manual_seed(runtime.seed + context.rank)
    core = model.to(device)
    if runtime.channels_last:
        core = core.to(memory_format=torch.channels_last)
    if runtime.sync_bn and context.world_size > 1:
        core = torch.nn.SyncBatchNorm.convert_sync_batchnorm(core)
    averaging = config.averaging
    ema = None
    if averaging.ema is not None:
        ema = ModelEma(core, averaging.ema, averaging.ema_warmup, averaging.ema_warmup_gamma,
                       averaging.ema_warmup_power)
    ddp = None
    runner = core
    if context.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [device.index] if device.type == "cuda" else None
        ddp = runner = DistributedDataParallel(core, device_ids=device_ids)
    if runtime.compile:
        runner = torch.compile(runner)
    return RunModel(architecture.name, model.num_classes, core, runner, ddp, ema)


def build_data(config: TrainConfig, context: DistributedContext, device: torch.device, model: RunModel,
               train_transform: Callable | None = None, batch_transform: Callable | None = None) -> RunData:
    """The training set (each sample seeded by (seed, epoch, sample)) and its order, the validation loader,
    and the batch transform (erasing, mixing) on the device.

    `train_transform`: DataConfig -> PIL-to-uint8-tensor transform, instead of `config.augment`'s.
    """
    task, inputs, num_classes = config.task, config.inputs, model.num_classes
    # the preprocessing of the model's weights (normalisation, eval crop) at the training size
    data_config = resolve_data_config(model.core, img_size=config.network.img_size, crop_pct=inputs.crop_pct)
    workers = default_workers(context.local_world_size) if inputs.workers is None else inputs.workers
    if train_transform is not None:
        transform = train_transform(data_config)
    else:
        # from the stored bytes: the crop drawn before decoding, the work on uint8 (train_decode.py)
        transform = create_train_transform(data_config.img_size, config.augment, data_config.mean,
                                           data_config.std, normalize=False,
                                           interpolation=data_config.interpolation, encoded=True)
    train_set = create_dataset(task.data, transform=transform, classes=training_classes(model.core))
    world = context.world_size
    if inputs.aug_repeats > 1:
        batches = RepeatBatchSampler.batches_per_epoch(len(train_set), inputs.batch_size, world,
                                                       inputs.aug_repeats)
    else:
        batches = EpochBatchSampler.batches_per_epoch(len(train_set), inputs.batch_size, world)
    accum = config.optim.grad_accum
    if batches // accum < 1:
        global_batch = inputs.batch_size * world * accum
        raise ConfigError(f"{len(train_set)} training images make no full global batch of {global_batch} "
                          f"({{batch_size}} {inputs.batch_size} x {world} process(es) x {{grad_accum}} "
                          f"{accum}); lower {{batch_size}}")
    val_loader = None
    if task.val_data:
        val_set = create_dataset(task.val_data, transform=create_transform(data_config, normalize=False),
                                 classes=ModelClasses(num_classes, train_set.classes))
        val_loader = create_loader(val_set, inputs.batch_size, workers, rank=context.rank, world_size=world,
                                   pin_memory=device.type == "cuda")
    if batch_transform is None:
        batch_transform = create_batch_transform(config.augment, config.mixing, num_classes,
                                                 config.loss.smoothing)
    seed = config.runtime.seed
    return RunData(data_config=data_config, train_set=SeededSamples(train_set, seed),
                   label_names=train_set.classes, val_loader=val_loader,
                   batch_transform=batch_transform, batch_size=inputs.batch_size,
                   micro_batches=batches // accum * accum, aug_repeats=inputs.aug_repeats, workers=workers,
                   seed=seed, context=context, pin_memory=device.type == "cuda")


def build_optimisation(config: TrainConfig, model: RunModel, data: RunData, global_batch: int,
                       criterion: Callable | None = None) -> RunOptimisation:
    """The loss (`criterion`, else the one `config.loss` asks for), the optimiser over the model's parameter
    groups, the learning rate scaled to the global batch and its schedule, the fp16 gradient scaler."""
    options = config.optim
    updates_per_epoch = data.micro_batches // options.grad_accum
    lr, lr_note = resolve_lr(config, global_batch)
    groups = param_groups(model.core, options.weight_decay, options.layer_decay)
    optimizer = create_optimizer(groups, options.opt, lr=lr, weight_decay=options.weight_decay,
                                 momentum=options.momentum, eps=options.opt_eps, betas=options.opt_betas)
    device_type = next(model.core.parameters()).device.type
    scaler = torch.amp.GradScaler("cuda") if config.runtime.amp == "fp16" and device_type == "cuda" else None
    if criterion is None:
        criterion = create_loss(config.loss, soft_targets=config.mixing.active)
    schedule = create_schedule(config.schedule, lr, updates_per_epoch)
    return RunOptimisation(criterion, optimizer, schedule, scaler, lr_note)


def resolve_lr(config: TrainConfig, global_batch: int) -> tuple[float, str]:
    """The peak learning rate and a note saying where it came from."""
    options = config.optim
    if options.lr is not None:
        return options.lr, "lr as given"
    rule = options.lr_base_scale or lr_scale_rule(options.opt)
    base = options.lr_base if options.lr_base is not None else default_lr(options.opt)
    lr = scaled_lr(base, global_batch, options.lr_base_size, rule)
    source = "lr_base" if options.lr_base is not None else f"the default base lr of {options.opt}"
    if config.recipe and options.lr_base is not None:
        if get_recipe(config.recipe).train_options().get("lr_base") == options.lr_base:
            source = f"recipe {config.recipe}: lr"
    return lr, (f"{source} {base:g} at batch {options.lr_base_size}, scaled ({rule}) to the global batch "
                f"{global_batch}: {lr:.6g}")


def write_record(config: TrainConfig, command: str | None, world_size: int, global_batch: int,
                 lr_note: str, data_hash: str) -> None:
    """args.yaml: every resolved option, then the versions, the command, the batch it implies and the
    identity of the training data."""
    extra = {"visionzoo_version": __version__, "torch_version": str(torch.__version__),
             "command": command, "world_size": world_size, "global_batch": global_batch, "lr_note": lr_note,
             "data_sha256": data_hash}
    write_text_atomic(Path(config.task.output) / "args.yaml", config.to_yaml(extra))
