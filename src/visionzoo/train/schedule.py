"""The learning rate as a pure function of the update step, and its scaling with the global batch.

A resumed run needs no scheduler state, and a plot of the schedule is `[schedule(s) for s in range(n)]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import ScheduleOptions

# Optimisers whose step size does not grow with the gradient's magnitude take the square-root rule
# (the rule of the reference recipes); the rest scale linearly with the batch.
_SQRT_SCALED = ("adam", "lamb", "ada", "nadam", "radam")


@dataclass(frozen=True)
class Schedule:
    """Warmup, then cosine / step / constant decay to `min_lr`, then `cooldown_steps` at `min_lr`.

    Warmup goes linearly from `warmup_lr` at step 0 towards `lr`, which the decay starts from at
    `warmup_steps`. Steps count optimiser updates.
    """

    lr: float
    total_steps: int
    sched: str = "cosine"
    warmup_steps: int = 0
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    cooldown_steps: int = 0
    decay_steps: int = 1  # step schedule: one decay by decay_rate every decay_steps
    decay_rate: float = 0.1

    def __post_init__(self):
        if self.sched not in ("cosine", "step", "constant"):
            raise ValueError(f"sched must be cosine, step or constant, got {self.sched!r}")
        if self.warmup_steps + self.cooldown_steps > self.total_steps:
            raise ValueError(f"warmup ({self.warmup_steps}) and cooldown ({self.cooldown_steps}) steps "
                             f"exceed the {self.total_steps} steps of the run")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_lr + (self.lr - self.warmup_lr) * step / self.warmup_steps
        if step >= self.total_steps - self.cooldown_steps:
            return self.min_lr
        t = step - self.warmup_steps
        length = self.total_steps - self.warmup_steps - self.cooldown_steps
        if self.sched == "cosine":
            return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * t / length))
        if self.sched == "step":
            return max(self.min_lr, self.lr * self.decay_rate ** (t // self.decay_steps))
        return self.lr

    def curve(self) -> list[float]:
        """The learning rate of every step of the run."""
        return [self(step) for step in range(self.total_steps)]


def create_schedule(options: ScheduleOptions, lr: float, updates_per_epoch: int) -> Schedule:
    """The schedule `options` give in epochs, in update steps of a run with `updates_per_epoch`."""
    def steps(epochs: float) -> int:
        return round(epochs * updates_per_epoch)

    return Schedule(lr=lr, total_steps=updates_per_epoch * options.epochs, sched=options.sched,
                    warmup_steps=steps(options.warmup_epochs), warmup_lr=options.warmup_lr,
                    min_lr=options.min_lr, cooldown_steps=steps(options.cooldown_epochs),
                    decay_steps=max(1, steps(options.decay_epochs)), decay_rate=options.decay_rate)


def lr_scale_rule(opt: str) -> str:
    """'sqrt' for Adam-like optimisers and LAMB, 'linear' for SGD-like ones."""
    return "sqrt" if any(opt.lower().startswith(p) for p in _SQRT_SCALED) else "linear"


def scaled_lr(lr_base: float, global_batch: int, lr_base_size: int, rule: str) -> float:
    """`lr_base` (tuned at batch `lr_base_size`) for `global_batch`: linear or square-root scaling."""
    ratio = global_batch / lr_base_size
    if rule == "linear":
        return lr_base * ratio
    if rule == "sqrt":
        return lr_base * math.sqrt(ratio)
    raise ValueError(f"lr scaling rule must be linear or sqrt, got {rule!r}")
