"""Training and fine-tuning: the loop (one process or a torchrun group), optimisers torch lacks, schedules,
EMA, checkpoints that resume to the exact bit. `visionzoo train` is a thin command line over `train`.

    from visionzoo.train import TrainConfig, train
    train(TrainConfig(model="efficientnet_lite0", pretrained=True, num_classes=10, data="photos/train",
                      val_data="photos/val", output="runs/lite0", lr=0.01, epochs=5))

To read training: `config.py` (every option, in groups), `resolve.py` (recipe < file < options),
`build.py` (a run's parts from its config), `run.py` (the parts), `loop.py` (the epochs), `engine.py`
(`train`: resume, processes, outputs).

Names are imported lazily, so reading `TrainConfig` (the command line's parser does) costs no torch import.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "ConfigError": "config", "read_config_file": "config",
    "resolve_config": "resolve",
    "train": "engine", "TrainResult": "engine",
    "ResumeError": "checkpoint",
    "Schedule": "schedule", "scaled_lr": "schedule",
    "create_optimizer": "optim", "Lamb": "optim", "RMSpropTF": "optim",
    "param_groups": "param_groups", "depth_levels": "param_groups",
    "ModelEma": "ema",
    "LabelSmoothingCrossEntropy": "losses", "create_loss": "losses",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'visionzoo.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
