"""Shortcut downsampling by average pooling, as in ResNet-D.

He et al. 2018, "Bag of Tricks for Image Classification with Convolutional Neural Networks"
(arXiv 1812.01187), Fig. 2c: a strided 1x1 conv on the shortcut reads one pixel in four; pooling 2x2 first
lets every pixel count.
"""

from __future__ import annotations

from torch import nn


def shortcut_avg_pool(stride: int) -> nn.Module:
    """The pooling before a ResNet-D shortcut's 1x1 conv: 2x2 average at `stride`, identity at stride 1."""
    if stride == 1:
        return nn.Identity()
    # ceil_mode keeps ceil(size / stride) outputs on odd sizes, as the strided conv of the main branch does;
    # count_include_pad=False averages the last, partial window over the pixels it really has.
    return nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
