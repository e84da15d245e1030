"""The learning rate as a pure function of the step, and its scaling with the global batch."""

import math

import pytest

from visionzoo.train.schedule import Schedule, lr_scale_rule, scaled_lr


def test_warmup_cosine_min_lr_and_cooldown():
    s = Schedule(lr=1.0, total_steps=110, warmup_steps=10, warmup_lr=0.1, min_lr=0.01, cooldown_steps=20)
    assert s(0) == pytest.approx(0.1)
    assert s(5) == pytest.approx(0.55)  # linear warmup from warmup_lr
    assert s(10) == pytest.approx(1.0)  # the peak where warmup ends
    assert s(10 + 40) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 40 / 80)))
    assert s(89) > 0.01 and s(90) == s(109) == 0.01  # cooldown at min_lr
    assert len(s.curve()) == 110
    assert s(37) == Schedule(lr=1.0, total_steps=110, warmup_steps=10, warmup_lr=0.1, min_lr=0.01,
                             cooldown_steps=20)(37)  # no state: the same step gives the same lr


def test_step_and_constant():
    s = Schedule(lr=0.1, total_steps=100, sched="step", decay_steps=30, decay_rate=0.1, min_lr=1e-4)
    assert [s(0), s(29), s(30), s(60), s(95)] == pytest.approx([0.1, 0.1, 0.01, 1e-3, 1e-4])
    c = Schedule(lr=0.3, total_steps=10, sched="constant", warmup_steps=2)
    assert [c(0), c(1), c(2), c(9)] == pytest.approx([0.0, 0.15, 0.3, 0.3])


def test_bad_schedule():
    with pytest.raises(ValueError, match="sched must be"):
        Schedule(lr=0.1, total_steps=10, sched="poly")
    with pytest.raises(ValueError, match="exceed"):
        Schedule(lr=0.1, total_steps=10, warmup_steps=8, cooldown_steps=3)


def test_lr_scaling_rules():
    assert lr_scale_rule("sgd") == lr_scale_rule("rmsproptf") == "linear"
    assert lr_scale_rule("adamw") == lr_scale_rule("lamb") == "sqrt"
    assert scaled_lr(0.1, 1024, 256, "linear") == pytest.approx(0.4)
    assert scaled_lr(2e-3, 1024, 4096, "sqrt") == pytest.approx(1e-3)


def test_resolved_lr_follows_the_global_batch():
    from visionzoo.train.build import resolve_lr
    from visionzoo.train.config import TrainConfig

    lr, note = resolve_lr(TrainConfig(opt="sgd", lr_base=0.1, lr_base_size=256), global_batch=1024)
    assert lr == pytest.approx(0.4) and "linear" in note and "1024" in note
    lr, note = resolve_lr(TrainConfig(opt="adamw", lr_base=2e-3, lr_base_size=4096), global_batch=1024)
    assert lr == pytest.approx(1e-3) and "sqrt" in note
    assert resolve_lr(TrainConfig(opt="adamw", lr_base=2e-3, lr_base_scale="linear", lr_base_size=4096),
                      global_batch=1024)[0] == pytest.approx(5e-4)
    assert resolve_lr(TrainConfig(lr=0.3), global_batch=1024) == (0.3, "lr as given")
