"""What TensorRT's ONNX parser would refuse, read from the graph alone: a check that runs anywhere.

No machine that writes a bundle has TensorRT, so export, import and calibrate cannot ask
the parser. These rules are the parser's refusals that can be read from the graph itself
(onnx-tensorrt's importers and operator table for each generation), each violation naming
the node, so a graph that would fail on the device is refused where it is made:

``opset``
    The default-domain opset is one the generation parses: 8.5/8.6 up to 17 (from 7), 10.x
    9-20, 11.x 9-25; Q/DQ nodes need 10, per-axis scales 13. A node of another domain
    (``com.microsoft``...) is no ONNX op TensorRT knows.
``input``
    Every graph input has a static shape, except a dynamic batch (dimension 0) where the
    builder gives it an optimization profile (``batch_profile=True``).
``dq-type``
    A DequantizeLinear reads INT8 (8.x), INT8/FP8/INT4 (10.x), also FP4 (11.x): never INT32
    (onnxruntime quantises biases to INT32 unless ``QuantizeBias`` is off:
    onnx-tensorrt#850, TensorRT#4542), never UINT8 (asymmetric activations).
``pairing``
    A QuantizeLinear's output feeds DequantizeLinear nodes only and is no graph output; a
    DequantizeLinear reads a constant (quantised weights) or a QuantizeLinear's output.
``scale``
    Constant, floating (FP32 on 8.x; FP32/FP16/BF16 from 10.x), non-empty, every value
    positive and finite; a per-channel scale has one value per channel of its axis; 8.x
    quantises activations per tensor only.
``zero-point``
    Present on 8.x (its parser wants three inputs), constant, all zero (TensorRT is
    symmetric only), of the quantised type, as many values as the scale.
``resize``
    A Resize gives ``scales`` or ``sizes``, not both (ONNX itself forbids it; the FP16
    converter once wrote such nodes).

What cannot be read from a graph (kernel availability, memory, a layer TensorRT cannot
fuse) is found only by building on the device (``openpose-plus build-engine``).
``onnx`` is imported when a check runs, so the device can import this module without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = ["Generation", "GENERATIONS", "ALL_GENERATIONS", "Violation", "TrtImportError", "check_model",
           "require_importable", "generation_of"]


@dataclass(frozen=True)
class Generation:
    """What one TensorRT generation's ONNX parser accepts, as far as these rules go."""

    name: str
    jetpack: str
    min_opset: int
    max_opset: int
    dq_types: Tuple[str, ...]        # TensorProto type names a DequantizeLinear may read
    scale_types: Tuple[str, ...]
    zero_point_required: bool
    per_axis_activations: bool


GENERATIONS: Dict[str, Generation] = {
    "8.5": Generation("8.5", "5.1.x", 7, 17, ("INT8",), ("FLOAT",), True, False),
    "8.6": Generation("8.6", "6.0", 7, 17, ("INT8",), ("FLOAT",), True, False),
    "10": Generation("10", "6.1, 6.2, 7.0, 7.1", 9, 20, ("INT8", "FLOAT8E4M3FN", "INT4"),
                     ("FLOAT", "FLOAT16", "BFLOAT16"), False, True),
    "11": Generation("11", "7.2.2+", 9, 25, ("INT8", "FLOAT8E4M3FN", "INT4", "FLOAT4E2M1"),
                     ("FLOAT", "FLOAT16", "BFLOAT16"), False, True),
}
# Every generation a bundle may meet on a Jetson, JetPack 5 to JetPack 7.2.
ALL_GENERATIONS: Tuple[str, ...] = tuple(GENERATIONS)


def generation_of(trt_version: str) -> Generation:
    """The rules for a TensorRT version string (``tensorrt.__version__``)."""
    parts = str(trt_version).split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except ValueError:
        raise ValueError("cannot read a TensorRT version from %r" % (trt_version,)) from None
    if major == 8:
        return GENERATIONS["8.6" if minor >= 6 else "8.5"]
    if str(major) in GENERATIONS:
        return GENERATIONS[str(major)]
    raise ValueError("TensorRT %s is not a generation this project serves (8.5 to 11.x)" % trt_version)


@dataclass(frozen=True)
class Violation:
    rule: str
    node: str            # node name (or the graph input's name for ``input``)
    op_type: str
    message: str
    generations: Tuple[str, ...]

    def __str__(self) -> str:
        where = "%s %r" % (self.op_type, self.node) if self.op_type else repr(self.node)
        return "[%s] %s: %s (TensorRT %s)" % (self.rule, where, self.message, ", ".join(self.generations))


class TrtImportError(ValueError):
    """A graph TensorRT's ONNX parser would refuse; ``violations`` names each node and rule."""

    def __init__(self, where: str, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        shown = "\n  ".join(str(v) for v in self.violations[:12])
        more = "\n  ... and %d more" % (len(self.violations) - 12) if len(self.violations) > 12 else ""
        super().__init__("%s would not import into TensorRT (%d problem%s):\n  %s%s"
                         % (where, len(self.violations), "" if len(self.violations) == 1 else "s", shown, more))


# -- reading the graph ------------------------------------------------------------------------

class _Graph:
    """Constants, producers and consumers of one ONNX graph, read once."""

    def __init__(self, model) -> None:
        from onnx import TensorProto, numpy_helper

        self.TensorProto = TensorProto
        self.graph = model.graph
        self.constants = {i.name: i for i in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = attr.t
        self.to_array = numpy_helper.to_array
        self.producer = {o: n for n in self.graph.node for o in n.output if o}
        self.consumers: Dict[str, List[object]] = {}
        for n in self.graph.node:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in self.graph.output}

    def type_name(self, elem_type: int) -> str:
        return self.TensorProto.DataType.Name(elem_type)

    def array(self, name: str):
        return self.to_array(self.constants[name])


def _name(node, index: int) -> str:
    return node.name or "#%d" % index


def _opset(model) -> Optional[int]:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else None


def _attr(node, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            from onnx import helper

            return helper.get_attribute_value(a)
    return default


class _Checker:
    def __init__(self, model, generations: Sequence[str], batch_profile: bool) -> None:
        unknown = [g for g in generations if g not in GENERATIONS]
        if unknown or not generations:
            raise ValueError("unknown TensorRT generation(s) %s (known: %s)"
                             % (", ".join(unknown) or "none given", ", ".join(GENERATIONS)))
        self.model = model
        self.gens = [GENERATIONS[g] for g in generations]
        self.batch_profile = batch_profile
        self.g = _Graph(model)
        self.found: List[Violation] = []

    def add(self, rule: str, node: str, op_type: str, message: str, gens: Iterable[Generation]) -> None:
        names = tuple(g.name for g in gens)
        if names:
            self.found.append(Violation(rule, node, op_type, message, names))

    def where(self, pred) -> List[Generation]:
        return [g for g in self.gens if pred(g)]

    # -- rules --------------------------------------------------------------------------------

    def opset(self) -> None:
        opset = _opset(self.model)
        if opset is None:
            self.add("opset", "<model>", "", "no default-domain opset is declared", self.gens)
            return
        self.add("opset", "<model>", "", "opset %d is outside what the parser reads" % opset,
                 self.where(lambda g: not g.min_opset <= opset <= g.max_opset))
        for i, node in enumerate(self.g.graph.node):
            if node.domain not in ("", "ai.onnx"):
                self.add("opset", _name(node, i), node.op_type,
                         "domain %r is not ONNX's: TensorRT's parser knows only the default domain" % node.domain,
                         self.gens)
            elif node.op_type in ("QuantizeLinear", "DequantizeLinear") and opset < 10:
                self.add("opset", _name(node, i), node.op_type, "Q/DQ nodes need opset 10 (have %d)" % opset,
                         self.gens)

    def inputs(self) -> None:
        for vi in self.g.graph.input:
            if vi.name in self.g.constants:
                continue  # an initializer listed as an input (IR < 4 style)
            shape = vi.type.tensor_type.shape
            if not vi.type.tensor_type.HasField("shape"):
                self.add("input", vi.name, "", "no shape: TensorRT needs a static shape or a batch profile", self.gens)
                continue
            dynamic = [k for k, d in enumerate(shape.dim) if not d.HasField("dim_value") or d.dim_value <= 0]
            if not dynamic or (dynamic == [0] and self.batch_profile):
                continue
            dims = ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim)
            why = ("a dynamic batch needs an optimization profile, and none is made for it" if dynamic == [0] else
                   "dynamic dimension(s) %s: only the batch (0) may be dynamic, with a profile"
                   % ", ".join(str(k) for k in dynamic if k))
            self.add("input", vi.name, "", "shape [%s]: %s" % (dims, why), self.gens)

    def resize(self) -> None:
        for i, node in enumerate(self.g.graph.node):
            if node.op_type != "Resize" or len(node.input) < 4:
                continue
            scales, sizes = node.input[2], node.input[3]
            if scales and sizes and not self._empty(scales) and not self._empty(sizes):
                self.add("resize", _name(node, i), node.op_type,
                         "gives both scales (%s) and sizes (%s)" % (scales, sizes), self.gens)

    def _empty(self, name: str) -> bool:
        return name in self.g.constants and 0 in self.g.constants[name].dims

    def qdq(self) -> None:
        opset = _opset(self.model) or 0
        for i, node in enumerate(self.g.graph.node):
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or node.domain not in ("", "ai.onnx"):
                continue
            name = _name(node, i)
            if node.op_type == "QuantizeLinear":
                self._pairing_q(node, name)
                qtype = self._q_output_type(node)
            else:
                qtype = self._dq_input_type(node, name)
                if qtype is not None:
                    hint = (": a quantised bias? quantise with QuantizeBias off (biases stay float)"
                            if qtype == "INT32" else ": asymmetric (uint8) quantisation; TensorRT is symmetric int8"
                            if qtype == "UINT8" else "")
                    self.add("dq-type", name, node.op_type, "dequantizes %s%s" % (qtype, hint),
                             self.where(lambda g: qtype not in g.dq_types))
            self._scale(node, name, opset)
            self._zero_point(node, name, qtype)

    def _pairing_q(self, node, name: str) -> None:
        out = node.output[0] if node.output else ""
        users = self.g.consumers.get(out, [])
        bad = sorted({u.op_type for u in users if u.op_type != "DequantizeLinear"})
        if bad or out in self.g.outputs or not users:
            why = ("feeds %s, not a DequantizeLinear" % ", ".join(bad) if bad else
                   "is a graph output" if out in self.g.outputs else "feeds nothing")
            self.add("pairing", name, node.op_type, "its output %s %s: TensorRT pairs every Q with a DQ" % (out, why),
                     self.gens)

    def _q_output_type(self, node) -> Optional[str]:
        if len(node.input) > 2 and node.input[2] in self.g.constants:
            return self.g.type_name(self.g.constants[node.input[2]].data_type)
        out_type = _attr(node, "output_dtype", 0)
        return self.g.type_name(out_type) if out_type else None  # no zero point: see _zero_point

    def _dq_input_type(self, node, name: str) -> Optional[str]:
        src = node.input[0]
        if src in self.g.constants:
            return self.g.type_name(self.g.constants[src].data_type)
        producer = self.g.producer.get(src)
        if producer is not None and producer.op_type == "QuantizeLinear":
            return self._q_output_type(producer)
        self.add("pairing", name, node.op_type,
                 "reads %s, which is neither a constant nor a QuantizeLinear's output" % src, self.gens)
        return None

    def _scale(self, node, name: str, opset: int) -> None:
        import numpy as np

        if len(node.input) < 2 or node.input[1] not in self.g.constants:
            self.add("scale", name, node.op_type, "its scale is not a constant", self.gens)
            return
        tensor = self.g.constants[node.input[1]]
        stype = self.g.type_name(tensor.data_type)
        self.add("scale", name, node.op_type, "scale is %s" % stype, self.where(lambda g: stype not in g.scale_types))
        values = np.asarray(self.g.array(node.input[1]), np.float64).ravel()
        if values.size == 0:
            self.add("scale", name, node.op_type, "scale has no values", self.gens)
            return
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            self.add("scale", name, node.op_type, "%d scale value%s not positive and finite (e.g. %r)"
                     % (int(bad.sum()), "s are" if bad.sum() > 1 else " is", float(values[bad][0])), self.gens)
        if values.size > 1:
            self._per_axis(node, name, values.size, opset)

    def _per_axis(self, node, name: str, count: int, opset: int) -> None:
        if opset < 13:
            self.add("opset", name, node.op_type, "per-axis scales need opset 13 (have %d)" % opset, self.gens)
        data = node.input[0]
        if data in self.g.constants:
            dims = list(self.g.constants[data].dims)
            axis = int(_attr(node, "axis", 1))
            axis = axis + len(dims) if axis < 0 else axis
            if not 0 <= axis < len(dims) or dims[axis] != count:
                self.add("scale", name, node.op_type, "%d scales for axis %d of a %s tensor"
                         % (count, axis, "x".join(map(str, dims)) or "scalar"), self.gens)
        elif node.op_type == "QuantizeLinear":
            self.add("scale", name, node.op_type, "per-channel quantisation of an activation (%s)" % data,
                     self.where(lambda g: not g.per_axis_activations))

    def _zero_point(self, node, name: str, qtype: Optional[str]) -> None:
        import numpy as np

        if len(node.input) < 3 or not node.input[2]:
            self.add("zero-point", name, node.op_type, "has no zero point: this parser wants all three inputs",
                     self.where(lambda g: g.zero_point_required))
            return
        if node.input[2] not in self.g.constants:
            self.add("zero-point", name, node.op_type, "its zero point is not a constant", self.gens)
            return
        tensor = self.g.constants[node.input[2]]
        values = np.asarray(self.g.array(node.input[2])).astype(np.float64).ravel()
        if values.size and np.any(values != 0):
            self.add("zero-point", name, node.op_type, "zero point is not 0 (TensorRT quantises symmetrically)",
                     self.gens)
        if node.op_type == "DequantizeLinear" and node.input[0] in self.g.constants:
            data_type = self.g.type_name(self.g.constants[node.input[0]].data_type)
            zp_type = self.g.type_name(tensor.data_type)
            if zp_type != data_type:
                self.add("zero-point", name, node.op_type, "zero point is %s, the data %s" % (zp_type, data_type),
                         self.gens)
        if len(node.input) > 1 and node.input[1] in self.g.constants:
            n_scale = int(np.prod(self.g.constants[node.input[1]].dims or [1]))
            n_zero = int(np.prod(tensor.dims or [1]))
            if n_scale != n_zero:
                self.add("zero-point", name, node.op_type, "%d zero points for %d scales" % (n_zero, n_scale),
                         self.gens)


def _load(model):
    import onnx

    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        return onnx.load(str(model))
    return model


def check_model(model, generations: Sequence[str] = ALL_GENERATIONS,
                batch_profile: bool = False) -> List[Violation]:
    """Every rule broken by ``model`` (a path, serialized bytes or ModelProto) for ``generations``.

    ``batch_profile``: the builder makes an optimization profile for a dynamic batch
    dimension, so a dynamic dimension 0 is allowed (no other dynamic dimension ever is).
    """
    checker = _Checker(_load(model), list(generations), batch_profile)
    checker.opset()
    checker.inputs()
    checker.resize()
    checker.qdq()
    return checker.found


def require_importable(model, where: str, generations: Sequence[str] = ALL_GENERATIONS,
                       batch_profile: bool = False) -> None:
    """Raise :class:`TrtImportError` (naming each node and rule) unless ``model`` passes every rule."""
    found = check_model(model, generations, batch_profile)
    if found:
        raise TrtImportError(where, found)

