"""Deployment: optimise a model for inference, export it (ONNX, torch.export, AOTInductor), verify both.

    model = visionzoo.optimize_for_inference(visionzoo.create_model("resnet50d", pretrained=True))
"""

from .fold import fold_batch_norms, fold_layer_scales
from .hardware import CpuInfo, cpu_info, native_bf16
from .linear import OneDnnLinear, onednn_linear_is_faster, use_onednn_linear
from .optimize import (
    OptimizedModel,
    compile_frozen,
    fix_input_size,
    inference_dtype,
    optimize_for_inference,
    prefers_channels_last,
    to_channels_last,
)
from .verify import Verification, VerificationError, compare, verification_inputs

__all__ = [
    "CpuInfo",
    "OneDnnLinear",
    "OptimizedModel",
    "Verification",
    "VerificationError",
    "compare",
    "compile_frozen",
    "cpu_info",
    "fix_input_size",
    "fold_batch_norms",
    "fold_layer_scales",
    "inference_dtype",
    "native_bf16",
    "onednn_linear_is_faster",
    "optimize_for_inference",
    "prefers_channels_last",
    "to_channels_last",
    "use_onednn_linear",
    "verification_inputs",
]
