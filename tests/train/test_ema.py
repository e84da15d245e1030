"""The weights' exponential moving average: the update, integer buffers and the warmup."""

import pytest
import torch

from visionzoo.train.ema import ModelEma


def test_ema_update_and_warmup():
    model = torch.nn.BatchNorm1d(2)
    ema = ModelEma(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(3.0)
    model.num_batches_tracked.fill_(7)
    ema.update(model, step=1)
    assert ema.module.weight.tolist() == pytest.approx([0.9 * 1 + 0.1 * 3] * 2)
    assert ema.module.num_batches_tracked.item() == 7  # integer buffers are copied
    warm = ModelEma(model, decay=0.9999, warmup=True, gamma=1.0, power=0.75)
    assert warm.decay_at(1) == pytest.approx(1 - 2 ** -0.75)
    assert warm.decay_at(10**9) == 0.9999
