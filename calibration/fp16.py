"""FP16: a float16 copy of the graph for the CPU accuracy check, and the device's build flag.

The device does not get a float16 ONNX: TensorRT builds FP16 from the FP32 graph with
``BuilderFlag.FP16`` (and keeps layers whose range needs it in FP32). The float16 model made
here is how this CPU machine estimates what that costs: weights and activations in float16,
the uint8 input and the float32 outputs unchanged (``keep_io_types``), so it runs through
the same evaluation as the FP32 model.
"""
from __future__ import annotations

from typing import Dict

__all__ = ["convert_fp16", "FP16_BUILD"]

# What the device needs to know: build from the FP32 graph with this flag.
FP16_BUILD: Dict[str, str] = {"builder_flag": "FP16", "onnx": "fp32 graph (model.onnx)"}


def convert_fp16(fp32_path: str, out_path: str) -> str:
    """Write the float16 version of ``fp32_path`` to ``out_path``; returns ``out_path``."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(fp32_path)
    # keep_io_types: the bundle's interface (uint8 in, float32 maps out) does not change;
    # ORT inserts the casts at the edges. Cast nodes keep their own target types.
    half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    onnx.save(half, out_path)
    return out_path
