"""CMU OpenPose's Caffe networks (a deploy ``.prototxt`` and its ``.caffemodel``) as ONNX.

The prototxt gives the layers (read by :mod:`.prototxt`), the caffemodel their weights (read by
the project's one caffemodel reader, :mod:`openpose_plus.edge.caffemodel`). The layers CMU's
body networks use are translated one for one: Convolution, ReLU, PReLU (BODY_25), Pooling
(caffe rounds pooled sizes up: ``ceil_mode``), Concat; Eltwise, Dropout and Split too. Any other
layer type is refused by name. In-place layers (``top`` = ``bottom``) get a tensor of their own,
and the blobs nothing reads are the graph's outputs, under their prototxt names (``net_output``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .facts import ImportRefused, NetworkFacts
from .prototxt import Message, PrototxtError, parse

__all__ = ["load", "to_onnx", "OPSET"]

OPSET = 13
# V1 prototxts name layer types by enum.
_V1_TYPES = {"CONVOLUTION": "Convolution", "RELU": "ReLU", "POOLING": "Pooling", "CONCAT": "Concat",
             "ELTWISE": "Eltwise", "DROPOUT": "Dropout", "SPLIT": "Split", "SIGMOID": "Sigmoid", "TANH": "TanH"}


def load(paths: Sequence[str], facts: NetworkFacts) -> Tuple[object, NetworkFacts, Dict[str, str]]:
    """``(ModelProto, facts, tool versions)`` of a ``.prototxt`` and a ``.caffemodel``, in either order."""
    from openpose_plus.edge.caffemodel import CaffeModelError, read_caffemodel

    by_suffix = {Path(p).suffix.lower(): p for p in paths}
    if len(paths) != 2 or set(by_suffix) != {".prototxt", ".caffemodel"}:
        raise ImportRefused("a Caffe network is two files, its .prototxt and its .caffemodel; got %s"
                            % ", ".join(map(str, paths)))
    if facts.input_size is None:
        raise ImportRefused("a Caffe network has no fixed input size: give the size to import it at (--size WxH)")
    proto_path = by_suffix[".prototxt"]
    try:
        net = parse(Path(proto_path).read_text())
    except OSError as exc:
        raise ImportRefused("%s: cannot read: %s" % (proto_path, exc.strerror or exc)) from None
    except (PrototxtError, UnicodeDecodeError) as exc:
        raise ImportRefused("%s: %s" % (proto_path, exc)) from None
    try:
        weights = read_caffemodel(by_suffix[".caffemodel"])
    except CaffeModelError as exc:
        raise ImportRefused(str(exc)) from None
    return to_onnx(net, weights, facts.input_size, proto_path), facts, {}


def _ints(p: Message, name: str, default: int) -> List[int]:
    values = [int(v) for v in p.all(name)]  # type: ignore[arg-type]
    return values or [default]


def _pair(p: Message, name: str, default: int) -> Tuple[int, int]:
    """caffe's ``kernel_size``/``pad``/``stride``/``dilation``: one value, two, or ``name_h``/``name_w``."""
    short = name.replace("_size", "")
    h, w = p.one(short + "_h"), p.one(short + "_w")
    if h is not None or w is not None:
        return int(h if h is not None else default), int(w if w is not None else default)
    values = _ints(p, name, default)
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


class _Graph:
    def __init__(self, where: str, weights: Dict[str, List[np.ndarray]]) -> None:
        self.where, self.weights = where, weights
        self.nodes: list = []
        self.inits: list = []
        self.current: Dict[str, str] = {}   # caffe blob -> its latest ONNX tensor
        self.produced: set = set()
        self.read: set = set()

    def bottom(self, layer: Message, i: int = 0) -> str:
        names = layer.all("bottom")
        if len(names) <= i:
            raise ImportRefused("%s: layer %r has no bottom %d" % (self.where, layer.one("name"), i))
        blob = str(names[i])
        if blob not in self.current:
            raise ImportRefused("%s: layer %r reads blob %r, which no layer before it writes"
                                % (self.where, layer.one("name"), blob))
        self.read.add(self.current[blob])
        return self.current[blob]

    def top(self, layer: Message, i: int = 0) -> str:
        blob = str(layer.all("top")[i])
        name = blob if blob not in self.produced else "%s/%s" % (layer.one("name"), blob)
        while name in self.produced:
            name += "_"
        self.produced.add(name)
        self.current[blob] = name
        return name

    def blobs(self, layer: Message, count: int) -> List[np.ndarray]:
        name = str(layer.one("name"))
        got = self.weights.get(name)
        if got is None:
            raise ImportRefused("%s: layer %r has no weights in the caffemodel (is it the model of this prototxt?)"
                                % (self.where, name))
        if len(got) < count:
            raise ImportRefused("%s: layer %r has %d weight blobs in the caffemodel, expected %d"
                                % (self.where, name, len(got), count))
        return got

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def node(self, op: str, inputs: List[str], outputs: List[str], name: str, **attrs) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))


def _convolution(g: _Graph, layer: Message, name: str) -> None:
    p = layer.one("convolution_param") or Message()
    kh, kw = _pair(p, "kernel_size", 0)
    ph, pw = _pair(p, "pad", 0)
    sh, sw = _pair(p, "stride", 1)
    dh, dw = _pair(p, "dilation", 1)
    group = int(p.one("group", 1))
    bias = bool(p.one("bias_term", True))
    blobs = g.blobs(layer, 2 if bias else 1)
    w = blobs[0]
    n_out = int(p.one("num_output", w.shape[0]))
    if w.ndim != 4 or w.shape[0] != n_out or w.shape[2:] != (kh, kw):
        raise ImportRefused("%s: layer %r is a %dx%d convolution to %d channels, its weights are %s"
                            % (g.where, name, kh, kw, n_out, list(w.shape)))
    inputs = [g.bottom(layer), g.const(name + "/weight", w)]
    if bias:
        inputs.append(g.const(name + "/bias", blobs[1].reshape(-1)))
    g.node("Conv", inputs, [g.top(layer)], name, kernel_shape=[kh, kw], pads=[ph, pw, ph, pw],
           strides=[sh, sw], dilations=[dh, dw], group=group)


def _pooling(g: _Graph, layer: Message, name: str) -> None:
    p = layer.one("pooling_param") or Message()
    kind = str(p.one("pool", "MAX")).upper()
    if kind not in ("MAX", "AVE", "0", "1"):
        raise ImportRefused("%s: layer %r pools by %s; only MAX and AVE are imported" % (g.where, name, kind))
    op_max = kind in ("MAX", "0")
    src = g.bottom(layer)
    if p.one("global_pooling", False):
        g.node("GlobalMaxPool" if op_max else "GlobalAveragePool", [src], [g.top(layer)], name)
        return
    kh, kw = _pair(p, "kernel_size", 0)
    ph, pw = _pair(p, "pad", 0)
    sh, sw = _pair(p, "stride", 1)
    attrs = dict(kernel_shape=[kh, kw], pads=[ph, pw, ph, pw], strides=[sh, sw], ceil_mode=1)
    if not op_max:
        attrs["count_include_pad"] = 1  # caffe divides by the whole window
    g.node("MaxPool" if op_max else "AveragePool", [src], [g.top(layer)], name, **attrs)


def _relu(g: _Graph, layer: Message, name: str) -> None:
    slope = float((layer.one("relu_param") or Message()).one("negative_slope", 0.0))
    src = g.bottom(layer)
    if slope:
        g.node("LeakyRelu", [src], [g.top(layer)], name, alpha=slope)
    else:
        g.node("Relu", [src], [g.top(layer)], name)


def _prelu(g: _Graph, layer: Message, name: str) -> None:
    slope = g.blobs(layer, 1)[0].reshape(-1)
    # ONNX broadcasts from the right: one slope per channel of NCHW is (C, 1, 1).
    g.node("PRelu", [g.bottom(layer), g.const(name + "/slope", slope.reshape(-1, 1, 1))], [g.top(layer)], name)


def _concat(g: _Graph, layer: Message, name: str) -> None:
    p = layer.one("concat_param") or Message()
    axis = int(p.one("axis", p.one("concat_dim", 1)))
    srcs = [g.bottom(layer, i) for i in range(len(layer.all("bottom")))]
    g.node("Concat", srcs, [g.top(layer)], name, axis=axis)


def _eltwise(g: _Graph, layer: Message, name: str) -> None:
    p = layer.one("eltwise_param") or Message()
    op = str(p.one("operation", "SUM")).upper()
    if p.all("coeff") and any(float(c) != 1.0 for c in p.all("coeff")):  # type: ignore[arg-type]
        raise ImportRefused("%s: layer %r weighs its Eltwise inputs; not imported" % (g.where, name))
    ops = {"SUM": "Sum", "1": "Sum", "PROD": "Mul", "0": "Mul", "MAX": "Max", "2": "Max"}
    if op not in ops:
        raise ImportRefused("%s: layer %r: Eltwise %s is not imported" % (g.where, name, op))
    srcs = [g.bottom(layer, i) for i in range(len(layer.all("bottom")))]
    if ops[op] == "Mul" and len(srcs) > 2:
        raise ImportRefused("%s: layer %r multiplies %d blobs; not imported" % (g.where, name, len(srcs)))
    g.node(ops[op], srcs, [g.top(layer)], name)


def _unary(op: str):
    def build(g: _Graph, layer: Message, name: str) -> None:
        g.node(op, [g.bottom(layer)], [g.top(layer)], name)
    return build


def _alias(g: _Graph, layer: Message, name: str) -> None:
    """Dropout (identity at inference) and Split (the same blob under more names)."""
    src = g.bottom(layer)
    for i in range(len(layer.all("top"))):
        g.node("Identity", [src], [g.top(layer, i)], "%s_%d" % (name, i))


_LAYERS = {"Convolution": _convolution, "Pooling": _pooling, "ReLU": _relu, "PReLU": _prelu, "Concat": _concat,
           "Eltwise": _eltwise, "Sigmoid": _unary("Sigmoid"), "TanH": _unary("Tanh"), "Dropout": _alias,
           "Split": _alias}


def _inputs(net: Message, layers: List[Message]) -> List[str]:
    names = [str(n) for n in net.all("input")]
    names += [str(t) for layer in layers if layer.one("type") == "Input" for t in layer.all("top")]
    return names


def _deploy(layer: Message) -> bool:
    """False for a layer that only trains (``include { phase: TRAIN }``)."""
    return not any(str(inc.one("phase", "")).upper() in ("TRAIN", "0") for inc in layer.all("include"))  # type: ignore[union-attr]


def to_onnx(net: Message, weights: Dict[str, List[np.ndarray]], input_size: Tuple[int, int], where: str = "prototxt"):
    """The network of a parsed deploy prototxt with ``weights``, NCHW float input at ``input_size``."""
    from onnx import TensorProto, helper

    layers = [layer for layer in net.all("layer") + net.all("layers") if _deploy(layer)]  # type: ignore[union-attr]
    if not layers:
        raise ImportRefused("%s holds no layers" % where)
    for layer in layers:
        kind = str(layer.one("type", ""))
        layer["type"] = [_V1_TYPES.get(kind, kind)]
    unknown = sorted({str(layer.one("type")) for layer in layers} - set(_LAYERS) - {"Input"})
    if unknown:
        raise ImportRefused("%s uses layer types the importer does not translate: %s" % (where, ", ".join(unknown)))
    inputs = _inputs(net, layers)
    if len(inputs) != 1:
        raise ImportRefused("%s has %d inputs (%s); a pose network reads one image" % (where, len(inputs), ", ".join(inputs)))
    g = _Graph(where, weights)
    g.current[inputs[0]] = inputs[0]
    g.produced.add(inputs[0])
    for layer in layers:
        kind = str(layer.one("type"))
        if kind == "Input":
            continue
        name = str(layer.one("name", "%s_%d" % (kind, len(g.nodes))))
        _LAYERS[kind](g, layer, name)
    outs = [blob for blob, tensor in g.current.items() if tensor not in g.read and blob != inputs[0]]
    for blob in outs:  # the outputs keep their prototxt names
        if g.current[blob] != blob and blob not in g.produced:
            g.node("Identity", [g.current[blob]], [blob], blob + "/output")
            g.current[blob] = blob
    width, height = input_size
    graph = helper.make_graph(g.nodes, str(net.one("name", "caffe")),
                              [helper.make_tensor_value_info(inputs[0], TensorProto.FLOAT, [1, 3, height, width])],
                              [helper.make_tensor_value_info(g.current[b], TensorProto.FLOAT, None) for b in outs],
                              g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="openpose-plus import")
    model.ir_version = 8
    return model
