"""Random erasing (Zhong et al., https://arxiv.org/abs/1708.04896) as the recipes use it: `reprob`, `remode`,
`recount`.

Ours rather than torchvision's `RandomErasing`: the recipes erase up to `recount` boxes per image (the count
drawn per image, each box's area divided by it) and have a per-box random colour mode ('rand'); torchvision
erases one box. The box geometry is the same: area a uniform fraction of [0.02, 1/3] of the image, aspect
ratio log-uniform in [0.3, 1/0.3], up to 10 attempts to fit. It runs on normalised tensors, so 'const'
fills with 0 (the mean colour) and the random modes with standard-normal values.
"""

from __future__ import annotations

import math

import torch

from .train_options import ERASE_MODES


class RandomErasing:
    """Erase random boxes of a normalised (C, H, W) image or of each image of a (B, C, H, W) batch.

    Args:
        probability: chance that an image is erased at all (`reprob`).
        mode: 'const' (zeros), 'rand' (one normal colour per box) or 'pixel' (normal noise per pixel).
        max_count: boxes per erased image are drawn uniformly from 1..max_count (`recount`).
    """

    def __init__(self, probability: float = 0.5, mode: str = "pixel", max_count: int = 1,
                 min_area: float = 0.02, max_area: float = 1 / 3, min_aspect: float = 0.3):
        if not 0 <= probability <= 1:
            raise ValueError(f"random erasing probability must be in [0, 1], got {probability}")
        if mode not in ERASE_MODES:
            raise ValueError(f"random erasing mode must be one of {', '.join(ERASE_MODES)}, got {mode!r}")
        if max_count < 1:
            raise ValueError(f"random erasing count must be at least 1, got {max_count}")
        self.probability = probability
        self.mode = mode
        self.max_count = max_count
        self.min_area, self.max_area = min_area, max_area
        self.log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))

    def _fill(self, shape: tuple[int, int, int], like: torch.Tensor) -> torch.Tensor:
        if self.mode == "pixel":
            return torch.randn(shape).to(like)
        if self.mode == "rand":
            return torch.randn(shape[0], 1, 1).to(like).expand(shape)
        return torch.zeros(shape[0], 1, 1, dtype=like.dtype, device=like.device).expand(shape)

    def erase_(self, img: torch.Tensor) -> torch.Tensor:
        """Erase boxes of one (C, H, W) image in place; returns it."""
        if float(torch.rand(())) >= self.probability:
            return img
        channels, height, width = img.shape
        count = int(torch.randint(1, self.max_count + 1, ()))
        for _ in range(count):
            for _attempt in range(10):
                area = float(torch.empty(()).uniform_(self.min_area, self.max_area)) * height * width / count
                aspect = math.exp(float(torch.empty(()).uniform_(*self.log_aspect)))
                box_h, box_w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
                if box_h < height and box_w < width:
                    top = int(torch.randint(0, height - box_h + 1, ()))
                    left = int(torch.randint(0, width - box_w + 1, ()))
                    img[:, top:top + box_h, left:left + box_w] = self._fill((channels, box_h, box_w), img)
                    break
        return img

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not images.is_floating_point():
            raise TypeError("random erasing works on normalised float images; apply it after normalisation")
        if images.dim() == 3:
            return self.erase_(images)
        for image in images:
            self.erase_(image)
        return images

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.probability}, mode={self.mode}, max_count={self.max_count})"
