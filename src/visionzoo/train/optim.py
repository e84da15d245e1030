"""Optimisers: the two that torch lacks (LAMB, RMSprop in TensorFlow's form) and a factory by name.

`create_optimizer(param_groups, "sgd" | "momentum" | "adamw" | "adam" | "rmsproptf" | "lamb" | <torch.optim
class name>, lr=...)`. Each parameter group may carry an `lr_scale` (layer-wise decay); the training loop
sets `group["lr"] = lr * group["lr_scale"]` at every step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim import Optimizer

from ..errors import ConfigError


def _evaluate_closure(closure):
    """The loss of an optimiser's `closure` (recomputed with gradients on), or None without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class RMSpropTF(Optimizer):
    """RMSprop as TensorFlow 1 computes it, which the EfficientNet/MobileNet `ra` recipes were tuned for.

    It differs from `torch.optim.RMSprop` in three ways: the running mean of squared gradients starts at 1
    (not 0), epsilon is added inside the square root, and the learning rate is applied inside the momentum
    buffer (so a change of lr does not rescale the velocity already built up). Weight decay is L2, added
    to the gradient.

        v = alpha * v + (1 - alpha) * g^2
        buf = momentum * buf + lr * g / sqrt(v + eps)
        p = p - buf
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.9, eps: float = 1e-10,
                 momentum: float = 0.0, weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or momentum < 0 or weight_decay < 0 or not 0 <= alpha < 1:
            raise ValueError(f"invalid RMSpropTF settings: lr={lr} alpha={alpha} eps={eps} "
                             f"momentum={momentum} weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["square_avg"] = torch.ones_like(p)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                state["step"] += 1
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                square_avg = state["square_avg"]
                square_avg.mul_(group["alpha"]).addcmul_(grad, grad, value=1 - group["alpha"])
                denom = square_avg.add(group["eps"]).sqrt_()
                if group["momentum"] > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(group["momentum"]).addcdiv_(grad, denom, value=group["lr"])
                    p.sub_(buf)
                else:
                    p.addcdiv_(grad, denom, value=-group["lr"])
        return loss


class Lamb(Optimizer):
    """LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", arXiv 1904.00962), as the
    "ResNet strikes back" recipes use it.

    An AdamW direction `u = m_hat / (sqrt(v_hat) + eps) + weight_decay * p`, scaled per tensor by the trust
    ratio ||p|| / ||u|| (1 where either norm is 0, and for tensors without weight decay unless
    `always_adapt`), then `p -= lr * ratio * u`. Before the moments are updated, all gradients are scaled
    together so that their global norm is at most `max_grad_norm` (None: no clipping), as in the paper's
    reference implementation.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.01, max_grad_norm: float | None = 1.0,
                 trust_clip: bool = False, always_adapt: bool = False):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Lamb settings: lr={lr} betas={betas} eps={eps} "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      max_grad_norm=max_grad_norm, trust_clip=trust_clip,
                                      always_adapt=always_adapt))

    def _grad_divisor(self) -> torch.Tensor | None:
        max_norm = self.defaults["max_grad_norm"]
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if max_norm is None or not grads:
            return None
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        return (norm / max_norm).clamp(min=1.0)

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        divisor = self._grad_divisor()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if divisor is None else p.grad / divisor
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                step = int(state["step"].item())
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq / (1 - beta2 ** step)).sqrt_().add_(group["eps"])
                update = (exp_avg / (1 - beta1 ** step)).div_(denom)
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                if group["weight_decay"] or group["always_adapt"]:
                    p_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(update)
                    ratio = torch.where((p_norm > 0) & (u_norm > 0), p_norm / u_norm, torch.ones_like(p_norm))
                    if group["trust_clip"]:
                        ratio = ratio.clamp(max=1.0)
                    update.mul_(ratio)
                p.sub_(update, alpha=group["lr"])
        return loss


def _torch_optimizer(name: str) -> type[Optimizer]:
    classes = {n: getattr(torch.optim, n) for n in dir(torch.optim)}
    by_lower = {n.lower(): c for n, c in classes.items()
                if isinstance(c, type) and issubclass(c, Optimizer) and c is not Optimizer}
    if name.lower() not in by_lower:
        known = ", ".join(["sgd", "momentum", "adamw", "rmsproptf", "lamb", *sorted(by_lower)])
        raise ConfigError(f"unknown optimizer {name!r} ({{opt}}); choose one of {known}")
    return by_lower[name.lower()]


def create_optimizer(params: Iterable, opt: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
                     eps: float | None = None, betas: tuple[float, float] | None = None) -> Optimizer:
    """The optimiser `opt` over `params` (tensors or parameter groups).

    'sgd' is SGD with Nesterov momentum, 'momentum' plain heavy-ball SGD; 'adamw'/'adam', 'rmsproptf'
    (momentum, alpha 0.9, eps default 1e-10 as in TensorFlow; the `ra` recipes pass 1e-3), 'lamb';
    any other name is a `torch.optim` class (case-insensitive) given lr and weight_decay.
    `weight_decay` is the default of groups that do not set their own.
    """
    name = opt.lower()
    extra = {}
    if eps is not None:
        extra["eps"] = eps
    if betas is not None:
        extra["betas"] = tuple(betas)
    if name in ("sgd", "momentum"):
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=name == "sgd",
                               weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **extra)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **extra)
    if name == "rmsproptf":
        return RMSpropTF(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **extra)
    if name == "lamb":
        return Lamb(params, lr=lr, weight_decay=weight_decay, **extra)
    return _torch_optimizer(name)(params, lr=lr, weight_decay=weight_decay, **extra)


def check_optimizer(name: str) -> None:
    """ConfigError naming the choices unless `create_optimizer` takes `name`."""
    if name.lower() not in ("sgd", "momentum", "adamw", "adam", "rmsproptf", "lamb"):
        _torch_optimizer(name)


def default_lr(opt: str) -> float:
    """A starting learning rate when neither lr nor lr_base is given (at batch 256)."""
    return 0.1 if opt.lower() in ("sgd", "momentum") else 1e-3
