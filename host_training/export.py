"""Export: a trained Keras pose network -> a checked model bundle (``model.onnx`` + ``meta.json``).

The ONNX is the device's contract (DESIGN.md, "The model bundle"): one uint8 RGB NHWC input
at the network size, with normalisation inside the graph; the last stage's heatmaps and
PAFs as NCHW float32 outputs named ``heatmaps`` and ``pafs``, with no Transpose left at the
graph's edges (tf2onnx's ``outputs_as_nchw`` folds the layout change into the last
convolutions). Export fails unless onnxruntime reproduces TensorFlow's outputs on the same
images to ``tolerance`` (1e-4 by default).

``batch`` (``--batch``) writes a model that takes several images per call: the graph converted
and compared at batch 1, then its batch dimension made dynamic or N (:mod:`openpose_plus.edge.batch`)
and run on several images at once against each alone; a graph that hard-codes batch 1 is refused
with the reason. meta.json's ``batch`` says which.

Opset 13: TensorRT 8.5 (JetPack 5) parses opsets 7-17 and TensorRT 10.x up to 20; 13 is the
first with per-axis QuantizeLinear/DequantizeLinear, which the INT8 QDQ model needs, and
everything a pose network uses (Conv, depthwise Conv as grouped Conv, Relu, Elu, Add,
Concat, Cast) is in it with no later semantics that either TensorRT would reject.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from openpose_plus.edge.batch import ONE, BatchError, BatchSpec, batched_model
from openpose_plus.edge.bundle import write_bundle
from openpose_plus.edge.skeleton import Skeleton

__all__ = ["ExportError", "ExportResult", "DEFAULT_OPSET", "DEFAULT_TOLERANCE", "OUTPUT_NAMES",
           "normalisation_of", "to_onnx", "edge_transposes", "check_tensorrt_import", "check_images",
           "compare_with_tensorflow",
           "export_model"]

log = logging.getLogger("openpose_plus.export")

DEFAULT_OPSET = 13
DEFAULT_TOLERANCE = 1e-4
INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmaps", "pafs")


class ExportError(ValueError):
    """An export that cannot be trusted (or cannot be done); the message says why."""


@dataclass
class ExportResult:
    bundle: str
    max_abs_diff: Tuple[float, float]   # heatmaps, pafs: onnxruntime vs TensorFlow
    images_checked: int
    opset: int


def normalisation_of(model) -> Tuple[List[float], List[float]]:
    """(mean, std) per channel of the network's in-graph normalisation (``x' = (x - mean) / std``).

    Read from the model's ``normalise`` Rescaling layer (``x * scale + offset``), so the
    bundle says what the graph actually does rather than what a constant elsewhere claims.
    """
    try:
        layer = model.get_layer("normalise")
    except ValueError:
        raise ExportError("the network has no 'normalise' layer; its input normalisation is unknown") from None
    scale = np.broadcast_to(np.asarray(layer.scale, np.float64), (3,))
    offset = np.broadcast_to(np.asarray(layer.offset, np.float64), (3,))
    if np.any(scale == 0):
        raise ExportError("the 'normalise' layer has a zero scale")
    return [float(v) for v in -offset / scale], [float(v) for v in 1.0 / scale]


def to_onnx(inference, height: int, width: int, opset: int = DEFAULT_OPSET):
    """tf2onnx conversion of a two-output (``heatmaps``, ``pafs``) NHWC Keras model to an ONNX ModelProto."""
    import tensorflow as tf
    import tf2onnx

    if list(inference.output_names) != list(OUTPUT_NAMES):
        raise ExportError("the inference model's outputs are %s, expected %s"
                          % (list(inference.output_names), list(OUTPUT_NAMES)))
    spec = (tf.TensorSpec((1, height, width, 3), tf.uint8, name=INPUT_NAME),)
    try:
        proto, _ = tf2onnx.convert.from_keras(inference, input_signature=spec, opset=opset,
                                              outputs_as_nchw=list(OUTPUT_NAMES))
    except Exception as exc:  # tf2onnx raises many kinds; the message is what matters
        raise ExportError("tf2onnx could not convert the network (opset %d): %s: %s"
                          % (opset, type(exc).__name__, exc)) from None
    # Older onnxruntime builds (JetPack 5 ships 1.1x) read IR version 8 at most.
    proto.ir_version = min(proto.ir_version, 8)
    return proto


def edge_transposes(proto) -> List[str]:
    """Transpose nodes that read a graph input or write a graph output (there should be none)."""
    graph = proto.graph
    ins = {i.name for i in graph.input}
    outs = {o.name for o in graph.output}
    return ["%s (%s)" % (n.name, "input" if set(n.input) & ins else "output")
            for n in graph.node if n.op_type == "Transpose" and (set(n.input) & ins or set(n.output) & outs)]


def check_io(proto, height: int, width: int, skeleton: Skeleton, stride: int) -> None:
    """The graph's interface is the bundle's: uint8 (1,H,W,3) in, float NCHW maps out."""
    from onnx import TensorProto

    graph = proto.graph

    def dims(vi):
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]

    if [i.name for i in graph.input] != [INPUT_NAME]:
        raise ExportError("exported graph inputs are %s, expected [%r]" % ([i.name for i in graph.input], INPUT_NAME))
    inp = graph.input[0]
    if inp.type.tensor_type.elem_type != TensorProto.UINT8 or dims(inp) != [1, height, width, 3]:
        raise ExportError("exported input is type %d %s, expected uint8 [1, %d, %d, 3]"
                          % (inp.type.tensor_type.elem_type, dims(inp), height, width))
    want = {"heatmaps": [1, skeleton.num_heatmaps, height // stride, width // stride],
            "pafs": [1, skeleton.num_pafs, height // stride, width // stride]}
    got = {o.name: o for o in graph.output}
    for name, shape in want.items():
        if name not in got:
            raise ExportError("exported graph has no output %r (it has %s)" % (name, sorted(got)))
        if got[name].type.tensor_type.elem_type != TensorProto.FLOAT or dims(got[name]) != shape:
            raise ExportError("exported output %r is %s, expected float NCHW %s" % (name, dims(got[name]), shape))
    bad = edge_transposes(proto)
    if bad:
        raise ExportError("Transpose left at the graph's edges: %s" % ", ".join(bad))


def check_tensorrt_import(proto) -> None:
    """The graph passes the TensorRT import check for every generation a Jetson may run (8.5 to 11.x).

    TensorRT is not on the host; the rules it would refuse a graph for that can be read from
    the graph itself are (:mod:`openpose_plus.edge.backends.onnx_rules`), so a graph that
    would fail on the device fails here, naming the node.
    """
    from openpose_plus.edge.backends.onnx_rules import TrtImportError, require_importable

    try:
        require_importable(proto, "the exported graph")
    except TrtImportError as exc:
        raise ExportError(str(exc)) from None


def check_images(height: int, width: int, count: int = 4, seed: int = 0) -> np.ndarray:
    """Images to compare TensorFlow and onnxruntime on: rendered people, and plain noise.

    Both matter: scenes drive the network like real input; noise covers the full 0-255 range.
    """
    from openpose_plus.edge.synthetic.scene import render_scene

    rng = np.random.default_rng(seed)
    out = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        if i % 2 == 0:
            out[i] = render_scene(rng, width, height, int(rng.integers(1, 4)))[0]
        else:
            out[i] = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return out


def compare_with_tensorflow(inference, onnx_bytes: bytes, images: Iterable[np.ndarray],
                            tolerance: float = DEFAULT_TOLERANCE) -> Tuple[float, float]:
    """Max abs difference (heatmaps, pafs) between onnxruntime on ``onnx_bytes`` and TensorFlow.

    Raises :class:`ExportError` when either exceeds ``tolerance``.
    """
    from openpose_plus.edge.backends.onnxruntime_backend import CPU, open_session

    # Compare the graph as written: no fusions that could hide (or cause) a difference.
    session = open_session(onnx_bytes, providers=CPU, optimization="disable")
    worst = [0.0, 0.0]
    n = 0
    for image in images:
        batch = np.ascontiguousarray(image, np.uint8)[None]
        heat_o, paf_o = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        heat_t, paf_t = inference([batch], training=False)
        for k, (o, t) in enumerate(((heat_o, heat_t), (paf_o, paf_t))):
            t = np.transpose(np.asarray(t), (0, 3, 1, 2))
            if o.shape != t.shape:
                raise ExportError("%s: onnxruntime gives %s, TensorFlow %s" % (OUTPUT_NAMES[k], o.shape, t.shape))
            if not np.isfinite(t).all():
                raise ExportError("%s: TensorFlow's output holds NaN or infinity; the weights are broken"
                                  % OUTPUT_NAMES[k])
            worst[k] = max(worst[k], float(np.max(np.abs(o - t))))
        n += 1
    if n == 0:
        raise ExportError("no images to compare TensorFlow and onnxruntime on")
    if max(worst) > tolerance or not np.isfinite(worst).all():
        raise ExportError("onnxruntime disagrees with TensorFlow: max abs difference heatmaps %.3g, pafs %.3g "
                          "(tolerance %.3g); the export is not trusted" % (worst[0], worst[1], tolerance))
    return worst[0], worst[1]


def export_model(model, out: str, skeleton: Skeleton, *, stride: int = 8, config=None, opset: int = DEFAULT_OPSET,
                 tolerance: float = DEFAULT_TOLERANCE, images: Optional[Sequence[np.ndarray]] = None,
                 num_check_images: int = 4, pad_value: int = 0, tar: bool = False,
                 extra: Optional[dict] = None, batch: BatchSpec = ONE) -> ExportResult:
    """Export ``model`` (a training network, all stages) to a bundle at ``out``.

    ``config`` is the training :class:`~openpose_plus.host_training.config.Config` (its digest
    goes in meta.json) or a digest string. ``images`` (uint8 HxWx3 at the network size)
    default to :func:`check_images`.
    """
    from .models import inference_model

    if opset < 13:
        raise ExportError("opset %d is too old: the INT8 QDQ model needs per-channel QuantizeLinear (opset 13)" % opset)
    shape = model.inputs[0].shape
    height, width = int(shape[1]), int(shape[2])
    if height % stride or width % stride:
        raise ExportError("network input %dx%d is not a multiple of stride %d" % (width, height, stride))
    mean, std = normalisation_of(model)
    if images is None:
        images = check_images(height, width, num_check_images)
    for i, image in enumerate(images):  # checked before the (slow) conversion
        if np.shape(image) != (height, width, 3):
            raise ExportError("check image %d is %s, expected %dx%dx3" % (i, np.shape(image), height, width))
    inference = inference_model(model)
    proto = to_onnx(inference, height, width, opset)
    check_io(proto, height, width, skeleton, stride)
    check_tensorrt_import(proto)
    onnx_bytes = proto.SerializeToString()
    diff = compare_with_tensorflow(inference, onnx_bytes, images, tolerance)
    try:
        onnx_bytes, batch_diff = batched_model(onnx_bytes, batch, INPUT_NAME, list(images))
    except BatchError as exc:
        raise ExportError("batch %s: %s" % (batch.describe(), exc)) from None
    digest = config.digest() if hasattr(config, "digest") else config
    extra_meta = {"export": {"opset": opset, "tool": _tool_versions(), "max_abs_diff_vs_tensorflow":
                             {"heatmaps": diff[0], "pafs": diff[1]}, "images_checked": len(images),
                             "tolerance": tolerance}}
    if batch_diff is not None:
        extra_meta["export"]["batch_check"] = {"batch": batch.describe(), "max_diff_vs_one_at_a_time": batch_diff}
    extra_meta.update(extra or {})
    path = write_bundle(out, onnx_bytes, input_size=(width, height), stride=stride, skeleton=skeleton,
                        input_name=INPUT_NAME, output_names=OUTPUT_NAMES, mean=mean, std=std,
                        pad_value=pad_value, training_config=digest, extra=extra_meta, tar=tar, batch=batch)
    log.info("exported %s: max abs diff to TensorFlow %.2g / %.2g", path, diff[0], diff[1])
    return ExportResult(path, diff, len(images), opset)


def _tool_versions() -> dict:
    import onnx
    import tensorflow as tf
    import tf2onnx

    return {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__}


def default_pad_value(config) -> int:
    """The grey the network saw outside images in training (letterbox pads with it on the device)."""
    aug = getattr(config, "augment", None)
    return int(getattr(aug, "pad_value", 0)) if aug is not None else 0

