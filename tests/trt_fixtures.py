"""Bundles carrying what every TensorRT route needs, made here with real tools (onnxruntime's
quantizer and float16 converter), for the TensorRT tests that run on the stand-ins.

- ``model.fp16.onnx``: float16 inside, uint8 in and float32 out (``keep_io_types``);
- ``model.int8.onnx``: Q/DQ as TensorRT parses it (INT8 weights and activations, symmetric,
  biases left in float: ``QuantizeBias: False``), or with ``int32_bias=True`` the
  onnxruntime default whose INT32 bias DequantizeLinear TensorRT refuses;
- ``calibration.cache``: a TensorRT calibration cache (header of TensorRT 8.6.1, as one made on
  another machine would have).

``add_model`` adds a file to a bundle's meta the way a bundle with that entry is written
(``models[precision]`` and its checksum), whether or not write_bundle knows the entry yet.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Optional

import numpy as np

from edge_fixtures import tiny_pose_onnx
from openpose_plus.edge.bundle import load_bundle, sha256_file, write_bundle

__all__ = ["fp16_onnx", "qdq_onnx", "dynamic_batch_onnx", "add_model", "make_trt_bundle", "CACHE_8601"]

CACHE_8601 = b"TRT-8601-EntropyCalibration2\nx_nchw: 3c010a14\nc1: 3d8f5c29\n"


def fp16_onnx(model: bytes, keep_io_types: bool = True) -> bytes:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(onnx.load_model_from_string(model), keep_io_types=keep_io_types)
    return half.SerializeToString()


def qdq_onnx(model: bytes, work: str, int32_bias: bool = False, width: int = 96, height: int = 64) -> bytes:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    src, dst = os.path.join(work, "fp32.onnx"), os.path.join(work, "qdq.onnx")
    with open(src, "wb") as f:
        f.write(model)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter([{"image": rng.integers(0, 256, (1, height, width, 3), np.uint8)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    extra = {"ActivationSymmetric": True, "WeightSymmetric": True}
    if not int32_bias:
        extra["QuantizeBias"] = False
    quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=True, extra_options=extra)
    with open(dst, "rb") as f:
        return f.read()


def dynamic_batch_onnx(model: bytes) -> bytes:
    """The same network with a symbolic batch dimension on its input and outputs."""
    import onnx

    m = onnx.load_model_from_string(model)
    for vi in list(m.graph.input) + list(m.graph.output):
        dim = vi.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "batch"
    return m.SerializeToString()


def add_model(bundle_dir: str, precision: str, data: bytes, name: Optional[str] = None) -> None:
    """Put ``data`` in the bundle as ``models[precision]`` with its checksum in meta.json."""
    name = name or "model.%s.onnx" % precision
    with open(os.path.join(bundle_dir, name), "wb") as f:
        f.write(data)
    meta_path = os.path.join(bundle_dir, "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    meta["models"][precision] = name
    full = os.path.join(bundle_dir, name)
    meta["files"][name] = {"sha256": sha256_file(full), "size": os.path.getsize(full)}
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)


def make_trt_bundle(directory: str, name: str = "bundle", fp16: bool = True, int8: bool = True,
                    int32_bias: bool = False, cache: Optional[bytes] = CACHE_8601, dynamic: bool = False,
                    fp16_keep_io: bool = True, output_names=("heatmaps", "pafs")):
    """A loaded bundle (96x64, stride 8) with the requested extras."""
    model = tiny_pose_onnx(96, 64, output_names=output_names)
    if dynamic:
        model = dynamic_batch_onnx(model)
    work = os.path.join(directory, name + "-work")
    os.makedirs(work, exist_ok=True)
    path = write_bundle(os.path.join(directory, name), model, input_size=(96, 64), stride=8,
                        mean=(127.5,) * 3, std=(127.5,) * 3, output_names=tuple(output_names),
                        int8_model=qdq_onnx(model, work, int32_bias) if int8 else None, calibration_cache=cache)
    if fp16:
        add_model(path, "fp16", fp16_onnx(model, keep_io_types=fp16_keep_io))
    shutil.rmtree(work, ignore_errors=True)
    return load_bundle(path)
