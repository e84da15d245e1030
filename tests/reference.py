"""Helpers that compare visionzoo with the reference implementation (timm, a test-only dependency)."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

import visionzoo


def randomise_(model: nn.Module, seed: int = 0) -> None:
    """Perturb every tensor so that no branch hides behind an identity-like init.

    Random init leaves layer-scale gammas near zero, norms at identity and running statistics at (0, 1):
    a wrong block would then still match. Vectors (norm weights, biases, gammas) get +-0.1 noise, other
    parameters 2% noise, running statistics plausible values.
    """
    generator = torch.Generator().manual_seed(seed)

    def noise(t, scale):
        return torch.randn(t.shape, generator=generator, dtype=torch.float32).to(t.dtype) * scale

    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("running_mean") or tensor.ndim <= 1:
                tensor.add_(noise(tensor, 0.1))
            else:
                tensor.add_(noise(tensor, 0.02))


def calibrate_batch_norms_(model: nn.Module, img_size: tuple[int, int], batches: int = 2,
                           batch_size: int = 8, seed: int = 0) -> None:
    """Recompute every BatchNorm's running statistics on random images, as training would have left them.

    `randomise_` draws running statistics without looking at the activations, so a deep net's activations can
    grow layer after layer until float32 rounding alone moves its logits by 1e-3 of their scale (randomised
    MobileNetV3-Large-150d); calibrated, it behaves as trained weights do (~5e-6). For the deployment tests,
    whose tolerance is about float32 rounding.
    """
    generator = torch.Generator().manual_seed(seed)
    images = [torch.randn(batch_size, 3, *img_size, generator=generator) for _ in range(batches)]
    update_bn(images, model)  # leaves the model in the mode it found it in
    model.eval()


def max_relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference|, relative to the reference's largest magnitude."""
    assert ours.shape == reference.shape, f"shape {tuple(ours.shape)} != reference {tuple(reference.shape)}"
    return ((ours.double() - reference.double()).abs().max()
            / reference.double().abs().max().clamp_min(1e-12)).item()


def conformance_input_sizes(model: nn.Module) -> list[tuple[int, int]]:
    """Input sizes to compare at: small for fixed-size models (ViT), the pretrained and an odd size for conv
    nets."""
    if model.fixed_input_size:
        side = 4 * model.feature_info[-1].reduction
        return [(side, side)]
    cfg = model.pretrained_cfg
    default = tuple(cfg.input_size[1:]) if cfg is not None else (224, 224)
    return [default, (225, 193)]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return visionzoo.create_model(name, **kwargs)


# Both sides in float64: what remains is a real difference, not rounding (which deep randomised nets amplify
# and which differs between CPUs), so the bar can be tight and still hold on every machine.
FLOAT64_TOLERANCE = 1e-9
# A float32 result is held to a multiple of the reference's own float32 error on the same input (both against
# the reference in float64), plus a floor of some hundred float32 ulps for inputs where that error is tiny.
FLOAT32_ERROR_FACTOR = 8
FLOAT32_FLOOR = 100 * torch.finfo(torch.float32).eps


def float32_tolerance(reference: nn.Module, x: torch.Tensor, expected64: torch.Tensor) -> float:
    """The tolerance for a float32 result on `x`, from the float32 `reference`'s own error on it."""
    with torch.no_grad():
        own_error = max_relative_error(reference(x), expected64)
    return FLOAT32_ERROR_FACTOR * own_error + FLOAT32_FLOOR


def assert_matches_reference(ours: nn.Module, arch: str, reference_kwargs: dict, sizes: list[tuple[int, int]],
                             **intermediates_kwargs) -> None:
    """Build the reference `arch` with `reference_kwargs`, then `assert_outputs_match`."""
    import timm  # the reference is a test-only dependency; callers importorskip it

    torch.manual_seed(0)
    reference = timm.create_model(arch, **reference_kwargs)
    assert_outputs_match(ours, reference, sizes, **intermediates_kwargs)


def assert_outputs_match(ours: nn.Module, reference: nn.Module, sizes: list[tuple[int, int]],
                         **intermediates_kwargs) -> None:
    """Randomise the reference and load its weights into `ours` strictly; then compare logits and
    `forward_intermediates(**intermediates_kwargs)` in eval mode at each size, both in float64.
    """
    reference.eval()
    randomise_(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.eval().double()
    reference.double()
    for height, width in sizes:
        x = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        with torch.no_grad():
            error = max_relative_error(ours(x), reference(x))
            assert error < FLOAT64_TOLERANCE, f"logits at {height}x{width}: {error:.2e}"
            expected = reference.forward_intermediates(x, intermediates_only=True, **intermediates_kwargs)
            actual = ours.forward_intermediates(x, intermediates_only=True, **intermediates_kwargs)
        assert len(actual) == len(expected)
        for level, (a, e) in enumerate(zip(actual, expected, strict=True)):
            error = max_relative_error(a, e)
            assert error < FLOAT64_TOLERANCE, f"intermediate {level} at {height}x{width}: {error:.2e}"
