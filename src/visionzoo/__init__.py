"""visionzoo: image-classification models with their published pretrained weights.

    import visionzoo
    model = visionzoo.create_model("mobilenetv4_conv_small.e2400_r224_in1k", pretrained=True)
    visionzoo.save_model_folder(model, "my-model")     # config.json + model.safetensors + README.md
    model = visionzoo.create_model("my-model", pretrained=True)   # or "local-dir:...", "hf-hub:org/name"

The public names are loaded on first use, so that `import visionzoo` (and with it the `visionzoo` command's
`--help`) does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .deploy import export_model, optimize_for_inference, quantize_model
    from .errors import UnknownModelError
    from .factory import create_model
    from .pretrained_cfg import PretrainedCfg
    from .publish import save_model_folder
    from .registry import get_pretrained_cfg, is_model, list_models, list_pretrained

# public name -> the module that defines it
_EXPORTS = {
    "PretrainedCfg": "visionzoo.pretrained_cfg",
    "UnknownModelError": "visionzoo.errors",
    "create_model": "visionzoo.factory",
    "get_pretrained_cfg": "visionzoo.registry",
    "is_model": "visionzoo.registry",
    "list_models": "visionzoo.registry",
    "list_pretrained": "visionzoo.registry",
    "optimize_for_inference": "visionzoo.deploy",
    "export_model": "visionzoo.deploy",
    "quantize_model": "visionzoo.deploy",
    "save_model_folder": "visionzoo.publish",
}
__all__ = [
    "PretrainedCfg",
    "UnknownModelError",
    "create_model",
    "export_model",
    "get_pretrained_cfg",
    "is_model",
    "list_models",
    "list_pretrained",
    "optimize_for_inference",
    "quantize_model",
    "save_model_folder",
]
__version__ = "0.1.0"


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
