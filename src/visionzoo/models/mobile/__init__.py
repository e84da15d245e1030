"""The mobile family: MobileNetV1/V3/V4, EfficientNet and MobileNet-EdgeTPU-v2, from one block builder.

Papers: Howard et al. 2017, "MobileNets" (arXiv 1704.04861); Howard et al. 2019, "Searching for MobileNetV3"
(arXiv 1905.02244); Qin et al. 2024, "MobileNetV4: Universal Models for the Mobile Ecosystem" (arXiv
2404.10518); Tan & Le 2019, "EfficientNet" (arXiv 1905.11946); Akin et al. 2022, "Searching for Efficient
Neural Architectures for On-Device ML on Edge TPUs" (arXiv 2204.14007). Parameter names follow the published
`timm/` checkpoints (trained by Ross Wightman / timm), so they load as they are. Weights: Apache-2.0 (see each
tag's license).

Layout: `spec.py` the block-row grammar and typed specs, `config.py` the config, `blocks.py` the blocks,
`builder.py` the one builder from specs to stages, `nets.py` the model and the variants.
"""
