"""The optimisers torch lacks, each against a step computed by hand; the factory by name."""

import math

import pytest
import torch

from visionzoo.train.optim import Lamb, RMSpropTF, create_optimizer


def _param(values, grad):
    p = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
    p.grad = torch.tensor(grad, dtype=torch.float64)
    return p


def _norm(xs):
    return math.sqrt(sum(x * x for x in xs))


def test_rmsprop_tf_two_steps_by_hand():
    p = _param([1.0, 2.0], [0.5, -1.0])
    opt = RMSpropTF([p], lr=0.1, alpha=0.9, eps=1e-3, momentum=0.9)
    values, grads, lr = [1.0, 2.0], [0.5, -1.0], 0.1
    square = [1.0, 1.0]  # TensorFlow starts the mean square at one
    buf = [0.0, 0.0]
    for _ in range(2):
        opt.step()
        for i in range(2):
            square[i] = 0.9 * square[i] + 0.1 * grads[i] ** 2
            buf[i] = 0.9 * buf[i] + lr * grads[i] / math.sqrt(square[i] + 1e-3)  # eps inside the root
            values[i] -= buf[i]
        assert p.tolist() == pytest.approx(values, rel=1e-12)


def test_rmsprop_tf_differs_from_torch_rmsprop():
    a, b = _param([1.0], [0.5]), _param([1.0], [0.5])
    RMSpropTF([a], lr=0.1, eps=1e-3).step()
    torch.optim.RMSprop([b], lr=0.1, alpha=0.9, eps=1e-3).step()
    assert a.item() == pytest.approx(1.0 - 0.1 * 0.5 / math.sqrt(0.9 + 0.1 * 0.25 + 1e-3))
    assert a.item() != pytest.approx(b.item())


@pytest.mark.parametrize("max_grad_norm", [None, 0.5])
def test_lamb_two_steps_by_hand(max_grad_norm):
    p = _param([1.0, 2.0], [0.5, -1.0])
    q = _param([0.3], [2.0])  # no weight decay: its step is plain Adam (no trust ratio)
    opt = Lamb([{"params": [p]}, {"params": [q], "weight_decay": 0.0}], lr=0.1, betas=(0.9, 0.999),
               eps=1e-6, weight_decay=0.01, max_grad_norm=max_grad_norm)
    ps, qs = [1.0, 2.0], [0.3]
    gp, gq = [0.5, -1.0], [2.0]
    divisor = 1.0
    if max_grad_norm is not None:  # one global norm over all tensors
        divisor = max(1.0, _norm(gp + gq) / max_grad_norm)
    gp, gq = [g / divisor for g in gp], [g / divisor for g in gq]
    m = {"p": [0.0, 0.0], "q": [0.0]}
    v = {"p": [0.0, 0.0], "q": [0.0]}
    for step in (1, 2):
        opt.step()
        for key, values, grads, decay in (("p", ps, gp, 0.01), ("q", qs, gq, 0.0)):
            update = []
            for i, g in enumerate(grads):
                m[key][i] = 0.9 * m[key][i] + 0.1 * g
                v[key][i] = 0.999 * v[key][i] + 0.001 * g * g
                m_hat, v_hat = m[key][i] / (1 - 0.9 ** step), v[key][i] / (1 - 0.999 ** step)
                update.append(m_hat / (math.sqrt(v_hat) + 1e-6) + decay * values[i])
            ratio = _norm(values) / _norm(update) if decay else 1.0
            for i in range(len(values)):
                values[i] -= 0.1 * ratio * update[i]
        assert p.tolist() == pytest.approx(ps, rel=1e-10)
        assert q.tolist() == pytest.approx(qs, rel=1e-10)


def test_factory_names():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = create_optimizer(params, "sgd", lr=0.1)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    assert not create_optimizer(params, "momentum", lr=0.1).defaults["nesterov"]
    assert isinstance(create_optimizer(params, "adamw", lr=1e-3, betas=(0.6, 0.995)), torch.optim.AdamW)
    assert isinstance(create_optimizer(params, "lamb", lr=1e-3), Lamb)
    assert isinstance(create_optimizer(params, "RMSpropTF", lr=1e-3, eps=1e-3), RMSpropTF)
    # anything torch.optim has, by name
    assert isinstance(create_optimizer(params, "adagrad", lr=1e-3), torch.optim.Adagrad)
    with pytest.raises(ValueError, match="unknown optimizer 'adamx'.*adamw"):
        create_optimizer(params, "adamx", lr=1e-3)
