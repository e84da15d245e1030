"""visionzoo: image-classification models with their published pretrained weights.

    import visionzoo
    model = visionzoo.create_model("mobilenetv4_conv_small.e2400_r224_in1k", pretrained=True)
"""

from .factory import create_model
from .pretrained_cfg import PretrainedCfg
from .registry import (
    UnknownModelError,
    get_pretrained_cfg,
    is_model,
    list_models,
    list_pretrained,
)

__all__ = [
    "PretrainedCfg",
    "UnknownModelError",
    "create_model",
    "get_pretrained_cfg",
    "is_model",
    "list_models",
    "list_pretrained",
    "optimize_for_inference",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # the deploy package imports the model families: only when it is used, so `import visionzoo` stays fast
    if name == "optimize_for_inference":
        from .deploy import optimize_for_inference

        return optimize_for_inference
    raise AttributeError(f"module 'visionzoo' has no attribute {name!r}")
