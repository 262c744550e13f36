"""INT8: activation ranges from representative images, a QDQ ONNX, and a TensorRT cache.

Calibration runs once (onnxruntime's calibrators: entropy, percentile or minmax) and its
ranges are kept as onnxruntime's JSON calibration cache; every quantisation after that
(the full model, and each trial of the sensitive-layer search) reuses them, so the QDQ
model and the TensorRT cache come from the same ranges.

The FP32 graph is first prepared (batch norms folded into the convolutions, nodes named).
Quantisation by default is what TensorRT's explicit INT8 accepts (form ``tensorrt``): QDQ
format, symmetric int8 for weights (per output channel) and activations (zero point 0,
range +-amax, scale amax/127), Relu/Clip kept as nodes (TensorRT fuses them itself). The
``onnxruntime`` form (uint8 activations) is faster on onnxruntime's CPU; see _form_options.
The layers that write the graph's outputs always stay in FP32: the maps the grouper reads
keep their full resolution.

The TensorRT calibration cache (for implicit-INT8 builds) is TensorRT's text format::

    TRT-8601-EntropyCalibration2
    tensor_name: 3c8f5c29

one line per activation tensor: the scale ``amax / 127`` as the big-endian hex of its
float32 bits. The header always names ``EntropyCalibration2``, whatever the method: the
device replays the cache through an ``IInt8EntropyCalibrator2`` (edge/backends/trt_build.py) and
TensorRT ignores a cache whose header names another calibrator. Tensors left out of the
cache (layers kept in higher precision) are built by TensorRT in FP16/FP32.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import struct
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["METHODS", "FORMS", "prepare", "output_nodes", "quantize", "calibrate", "activation_amax", "qdq_activation_scales",
           "trt_version_code", "trt_cache_text", "parse_trt_cache", "write_trt_cache", "quantized_nodes"]

METHODS = ("entropy", "percentile", "minmax")
QMAX = 127.0  # symmetric int8: [-127, 127]


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    table = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
             "minmax": CalibrationMethod.MinMax}
    if name not in table:
        raise ValueError("calibration method must be one of %s, got %r" % (", ".join(METHODS), name))
    return table[name]


FORMS = ("tensorrt", "onnxruntime")


def _form_options(form: str):
    """(activation type, extra options) of a QDQ form.

    ``tensorrt``: symmetric int8 activations (zero point 0: all TensorRT accepts), Relu kept
    as a node (a symmetric range cannot stand in for it). ``onnxruntime``: uint8 activations
    with a zero point, so a Relu is folded into the range and onnxruntime's CPU fuses every
    DQ-Conv-Q into one QLinearConv (about 1.6x faster than the tensorrt form there); TensorRT
    cannot build it, so such a bundle's TensorRT engines use the calibration cache.
    """
    from onnxruntime.quantization import QuantType

    if form not in FORMS:
        raise ValueError("INT8 form must be one of %s, got %r" % (", ".join(FORMS), form))
    symmetric = form == "tensorrt"
    return (QuantType.QInt8 if symmetric else QuantType.QUInt8), {
        "ActivationSymmetric": symmetric,
        "WeightSymmetric": True,
        "QDQKeepRemovableActivations": symmetric,
        "CalibPercentile": 99.999,
    }


def prepare(fp32_path: str, out_path: str) -> str:
    """The FP32 graph made ready to quantise: batch norms folded, every node uniquely named.

    onnxruntime's basic optimisations (constant folding, Conv+Mul/Add fusion; standard ONNX
    ops only) fold the batch norms tf2onnx leaves as Mul/Add into the convolutions, as its
    quantisation pre-processing would: otherwise each gets its own Q/DQ pair, costing
    accuracy and (on the CPU) speed. Names matter because layers are kept in FP32 by name.
    """
    import onnx

    from openpose_plus.edge.backends.onnxruntime_backend import CPU, open_session

    open_session(fp32_path, providers=CPU, optimization="basic", save_optimized=out_path)
    model = onnx.load(out_path)
    # onnxruntime lists its own domains when it saves; keep only those a node uses, since
    # TensorRT's parser should see the plain ONNX graph it was exported as.
    used = {n.domain for n in model.graph.node} | {"", "ai.onnx"}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    seen = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = "%s_%d" % (node.op_type, i)
        seen.add(node.name)
    onnx.save(model, out_path)
    return out_path


def output_nodes(fp32_path: str) -> List[str]:
    """Nodes that write the graph's outputs: the maps the grouper reads keep full precision."""
    import onnx

    graph = onnx.load(fp32_path).graph
    outs = {o.name for o in graph.output}
    return [n.name for n in graph.node if set(n.output) & outs]


@contextlib.contextmanager
def _quiet_root_logger():
    # onnxruntime.quantization logs "consider pre-processing" on the root logger every call.
    # Its calibrators also print their progress to stdout, where a report may be going.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def quantize(fp32_path: str, out_path: str, ranges_path: str, method: str, reader=None,
             nodes_to_exclude: Sequence[str] = (), nodes_to_quantize: Optional[Sequence[str]] = None,
             per_channel: bool = True, form: str = "tensorrt") -> str:
    """The QDQ model of ``fp32_path`` at ``out_path``.

    With ``reader`` and no ``ranges_path`` file yet, calibrates and saves the ranges there;
    otherwise reuses the saved ranges (no inference at all).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    activation_type, extra = _form_options(form)

    if reader is None and not os.path.isfile(ranges_path):
        raise FileNotFoundError("no calibration ranges at %s and no images to calibrate on" % ranges_path)
    exclude = list(dict.fromkeys(list(nodes_to_exclude) + output_nodes(fp32_path)))
    with _quiet_root_logger():
            quantize_static(fp32_path, out_path, calibration_data_reader=reader, quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=activation_type, weight_type=QuantType.QInt8,
                        nodes_to_exclude=exclude,
                        nodes_to_quantize=list(nodes_to_quantize) if nodes_to_quantize is not None else None,
                        calibrate_method=_method(method), extra_options=extra,
                        calibration_cache_path=ranges_path)
    return out_path


def calibrate(fp32_path: str, out_path: str, ranges_path: str, method: str, reader,
              per_channel: bool = True, form: str = "tensorrt") -> str:
    """Calibrate on ``reader``'s images (ranges saved at ``ranges_path``) and write the full QDQ model."""
    if os.path.exists(ranges_path):
        os.unlink(ranges_path)  # stale ranges from another run must not be reused
    return quantize(fp32_path, out_path, ranges_path, method, reader=reader, per_channel=per_channel, form=form)


def activation_amax(ranges_path: str) -> Dict[str, float]:
    """``tensor -> amax`` (max of |lowest|, |highest|, as symmetric quantisation uses) of the saved ranges."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    data = load_tensors_data(ranges_path)
    out = {}
    for name in data:
        lo, hi = data[name].range_value
        amax = float(max(abs(float(np.min(lo))), abs(float(np.max(hi)))))
        if math.isfinite(amax):
            out[name] = amax
    return out


def qdq_activation_scales(model_path_or_proto) -> Dict[str, float]:
    """``tensor -> scale`` of every activation (not initializer) a QuantizeLinear reads in a QDQ model."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(model_path_or_proto) if isinstance(model_path_or_proto, str) else model_path_or_proto
    inits = {i.name: i for i in model.graph.initializer}
    consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    scales = {}
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits:
            continue
        s = node.input[1]
        if s in inits:
            value = numpy_helper.to_array(inits[s])
        elif s in consts:
            value = numpy_helper.to_array(consts[s].attribute[0].t)
        else:
            continue
        if value.size == 1:
            scales[node.input[0]] = float(value.reshape(()))
    return scales


def quantized_nodes(fp32_path: str, qdq_path: str) -> List[str]:
    """Names of the FP32 graph's nodes that read or write a quantised activation in the QDQ model."""
    import onnx

    scales = qdq_activation_scales(qdq_path)
    out = []
    for node in onnx.load(fp32_path).graph.node:
        if node.op_type in _CANDIDATE_OPS and (set(node.input) | set(node.output)) & set(scales):
            out.append(node.name)
    return out


_CANDIDATE_OPS = frozenset(("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Concat", "MaxPool",
                            "AveragePool", "Resize", "Relu", "Clip"))


def _tensor_names(path: str) -> set:
    import onnx

    graph = onnx.load(path).graph
    return {t for n in graph.node for t in list(n.input) + list(n.output)} | {i.name for i in graph.input}


def _original_name(name: str) -> str:
    # onnxruntime renames a quantised graph output's producer tensor "<output>_QuantizeLinear_Input";
    # TensorRT parses the FP32 graph, where it is "<output>".
    suffix = "_QuantizeLinear_Input"
    return name[: -len(suffix)] if name.endswith(suffix) else name


def trt_version_code(version: str) -> int:
    """TensorRT's NV_TENSORRT_VERSION of ``"8.6.1"`` (8601) or ``"10.3.0"`` (100300), as its cache headers use."""
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)*", str(version).strip())
    if not m:
        raise ValueError("TensorRT version must look like 8.6.1, got %r" % (version,))
    major, minor, patch = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def _hex(scale: float) -> str:
    return struct.pack(">f", scale).hex()


def trt_cache_text(scales: Dict[str, float], trt_version: str = "8.6.1") -> str:
    """TensorRT calibration cache text for ``tensor -> scale``."""
    lines = ["TRT-%d-EntropyCalibration2" % trt_version_code(trt_version)]
    for name in sorted(scales):
        scale = float(np.float32(scales[name]))
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError("tensor %r has no usable scale (%r)" % (name, scale))
        if "\n" in name:
            raise ValueError("tensor name %r cannot be written in a TensorRT cache" % name)
        lines.append("%s: %s" % (name, _hex(scale)))
    return "\n".join(lines) + "\n"


def parse_trt_cache(text: str) -> Tuple[str, Dict[str, float]]:
    """(header, tensor -> scale) of a TensorRT calibration cache; ValueError on anything malformed."""
    lines = text.splitlines()
    if not lines or not re.fullmatch(r"TRT-\d+-\w+", lines[0]):
        raise ValueError("not a TensorRT calibration cache: header is %r" % (lines[0] if lines else ""))
    scales = {}
    for n, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(": ")
        if not sep or not name or not re.fullmatch(r"[0-9a-f]{8}", value):
            raise ValueError("line %d of the calibration cache is not 'name: hex-float': %r" % (n, line))
        if name in scales:
            raise ValueError("tensor %r appears twice in the calibration cache" % name)
        scales[name] = struct.unpack(">f", bytes.fromhex(value))[0]
    return lines[0], scales


def write_trt_cache(ranges_path: str, qdq_path: str, out_path: str, trt_version: str = "8.6.1",
                    graph_path: Optional[str] = None, form: str = "tensorrt") -> Dict[str, object]:
    """The TensorRT cache of the saved ranges, for the tensors the QDQ model quantises.

    Scale = amax / 127 from the ranges. In the ``tensorrt`` form, where onnxruntime gave a
    tensor another scale (it gives a Conv's output its Relu's range, and shares scales across
    some ops' inputs), the QDQ model's scale wins, so explicit and implicit INT8 engines
    quantise alike. ``graph_path`` (the FP32 graph TensorRT will parse) limits the cache to
    tensors that exist there. Returns a summary (header, tensors, scales taken from the QDQ).
    """
    amax = activation_amax(ranges_path)
    qdq = {_original_name(k): v for k, v in qdq_activation_scales(qdq_path).items()}
    known = _tensor_names(graph_path) if graph_path else None
    scales, overridden = {}, []
    for name, q in qdq.items():
        if known is not None and name not in known:
            continue
        from_ranges = amax.get(name, 0.0) / QMAX
        if from_ranges > 0 and (form != "tensorrt" or abs(from_ranges - q) <= 1e-6 * max(q, 1e-30)):
            scales[name] = from_ranges
        elif form == "tensorrt":
            scales[name] = q
            overridden.append(name)
    text = trt_cache_text(scales, trt_version)
    tmp = out_path + ".partial"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out_path)
    return {"header": text.split("\n", 1)[0], "tensors": len(scales), "scales_from_qdq": overridden}


