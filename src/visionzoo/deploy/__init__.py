"""Deployment: optimise a model for inference, export it (ONNX, torch.export, AOTInductor), quantize it to
int8, verify each against the eager model, and run any of them as a backend.

    model = visionzoo.optimize_for_inference(visionzoo.create_model("resnet50d", pretrained=True))
    visionzoo.export_model(model, "resnet50d.onnx")
    visionzoo.quantize_model(model, "resnet50d.int8.onnx", calibration="calib_images/")
"""

from .export import ExportError, ExportResult, export_model
from .fold import fold_batch_norms, fold_layer_scales
from .hardware import CpuInfo, cpu_info, int8_dot_products, native_bf16
from .linear import OneDnnLinear, onednn_linear_is_faster, use_onednn_linear
from .metadata import ExportMetadata, Quantization, read_metadata
from .optimize import (
    OptimizedModel,
    compile_frozen,
    fix_input_size,
    inference_dtype,
    optimize_for_inference,
    prefers_channels_last,
    to_channels_last,
)
from .quantize import AccuracyDrop, QuantizationError, QuantizeResult, quantize_model
from .runners import BACKENDS, Runner, build_runner, load_runner
from .verify import Verification, VerificationError, compare, verification_inputs

__all__ = [
    "BACKENDS",
    "AccuracyDrop",
    "CpuInfo",
    "ExportError",
    "ExportMetadata",
    "ExportResult",
    "Quantization",
    "QuantizationError",
    "QuantizeResult",
    "Runner",
    "build_runner",
    "export_model",
    "int8_dot_products",
    "load_runner",
    "quantize_model",
    "read_metadata",
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
