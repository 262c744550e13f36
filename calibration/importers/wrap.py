"""A network's ONNX graph put behind the bundle's contract.

In front of the network: ``image`` (uint8, ``(1, H, W, 3)``, RGB) -> Cast -> channel flip (a
BGR network) -> ``(x - mean) / std`` -> Transpose (an NCHW network) -> the network's input.
Behind it: the heatmap and PAF channels picked out of the network's output(s) (a Slice where
they are one run, a Gather where they must be reordered into a built-in skeleton's PAF table),
Transpose (an NHWC network), a background channel added where the network has none, and the
two named ``heatmaps`` and ``pafs``, NCHW float32. Whatever else the graph computes (earlier
stages' outputs, trt_pose's max-pooled heatmaps) is pruned.

:func:`plan_outputs` decides all that from the facts and the output shapes of one run of the
network; it refuses, saying why, when shapes or channels do not add up. :func:`wrap` builds the
graph; :func:`network_input` and :func:`expected_maps` do the same two steps in numpy, so the
check can hold the wrapped graph against the network it wraps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .facts import ImportRefused, NetworkFacts

__all__ = ["INPUT", "HEATMAPS", "PAFS", "MIN_OPSET", "OutputPlan", "prepare", "plan_outputs", "wrap",
           "network_input", "expected_maps", "opset_of"]

INPUT, HEATMAPS, PAFS = "image", "heatmaps", "pafs"
# Per-channel QuantizeLinear (the INT8 bundle) needs 13; TensorRT 8.5 parses up to 17.
MIN_OPSET = 13
_PREFIX = "opp_import/"


def opset_of(model) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise ImportRefused("the graph declares no ONNX operator set")


def _dims(value_info) -> List[object]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def _rename(graph, old: str, new: str) -> None:
    """Every use of tensor ``old`` in ``graph`` (and the graphs nested in its nodes) is ``new``."""
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _rename(sub, old, new)
    for coll in (graph.input, graph.output, graph.value_info):
        for vi in coll:
            if vi.name == old:
                vi.name = new
    for init in graph.initializer:
        if init.name == old:
            init.name = new


def _tensor_names(graph) -> set:
    names = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def prepare(model, facts: NetworkFacts) -> Tuple[object, str, Tuple[int, int], Dict[str, str]]:
    """The graph ready to wrap: opset at least 13, the one input picked and fixed at the import
    size, names the bundle uses (``image``, ``heatmaps``, ``pafs``) moved out of the way.

    Returns ``(model, network input name, (width, height), renamed {old: new})``.
    """
    import onnx

    opset = opset_of(model)
    if opset < MIN_OPSET:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as exc:  # the converter raises many kinds; its message says which op
            raise ImportRefused("the graph is opset %d and could not be raised to %d (the INT8 bundle needs it): %s"
                                % (opset, MIN_OPSET, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)) from None
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())  # ours to change
    graph = model.graph
    renamed: Dict[str, str] = {}
    taken = _tensor_names(graph)
    for name in (INPUT, HEATMAPS, PAFS):
        if name in taken:
            new = name + "__net"
            _rename(graph, name, new)
            renamed[name] = new
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    want = renamed.get(facts.input_name, facts.input_name) if facts.input_name else None
    if want is not None:
        chosen = [i for i in inputs if i.name == want]
        if not chosen:
            raise ImportRefused("the graph has no input %r (its inputs: %s)"
                                % (facts.input_name, ", ".join(i.name for i in inputs) or "none"))
    elif len(inputs) != 1:
        raise ImportRefused("the graph has %d inputs (%s); a pose network reads one image: name it with --input-name"
                            % (len(inputs), ", ".join(i.name for i in inputs)))
    else:
        chosen = inputs
    inp = chosen[0]
    others = [i.name for i in inputs if i is not inp]
    if others:
        raise ImportRefused("the graph reads %s besides its image; a pose network reads one input" % ", ".join(others))
    dims = _dims(inp)
    if len(dims) != 4:
        raise ImportRefused("input %r has %d dimensions %s; a pose network reads (1, 3, H, W) or (1, H, W, 3)"
                            % (inp.name, len(dims), dims))
    c_axis, h_axis, w_axis = (1, 2, 3) if facts.input_layout == "NCHW" else (3, 1, 2)
    if isinstance(dims[c_axis], int) and dims[c_axis] != 3:
        raise ImportRefused("input %r is %s: in %s its channel axis holds %s, not 3 (is it %s?)"
                            % (inp.name, dims, facts.input_layout, dims[c_axis],
                               "NHWC" if facts.input_layout == "NCHW" else "NCHW"))
    if isinstance(dims[0], int) and dims[0] != 1:
        raise ImportRefused("input %r has batch %s; the bundle runs one image at a time" % (inp.name, dims[0]))
    fixed = [dims[h_axis], dims[w_axis]]
    static = all(isinstance(v, int) and v > 0 for v in fixed)
    if facts.input_size is not None:
        width, height = facts.input_size
        if static and (fixed[0], fixed[1]) != (height, width):
            raise ImportRefused("the graph's input is fixed at %dx%d (width x height); it cannot be imported at %dx%d "
                                "(import it at its own size, or export it again at this one)"
                                % (fixed[1], fixed[0], width, height))
    elif static:
        height, width = int(fixed[0]), int(fixed[1])
    else:
        raise ImportRefused("the graph's input %r has no fixed size (%s): give the size to import it at (--size WxH)"
                            % (inp.name, dims))
    shape = [1, 3, height, width] if facts.input_layout == "NCHW" else [1, height, width, 3]
    for d, v in zip(inp.type.tensor_type.shape.dim, shape):
        d.ClearField("dim_param")
        d.dim_value = v
    return model, inp.name, (width, height), renamed


@dataclass
class OutputPlan:
    """Where the bundle's two outputs come from in the network's output(s)."""

    heat_source: str
    heat_channels: List[int]       # source channels, in bundle order (parts, then background if the network has one)
    paf_source: str
    paf_channels: List[int]        # source channel of each bundle PAF channel
    layout: str                    # the sources' layout
    add_background: bool
    stride: int
    map_size: Tuple[int, int]      # (width, height) of the maps
    source_channels: Dict[str, int]


def _channels_and_size(name: str, shape: Sequence[int], layout: str) -> Tuple[int, int, int]:
    if len(shape) != 4 or shape[0] != 1:
        raise ImportRefused("output %r is %s; a pose network writes (1, C, h, w) or (1, h, w, C)" % (name, list(shape)))
    return (shape[1], shape[2], shape[3]) if layout == "NCHW" else (shape[3], shape[1], shape[2])


def plan_outputs(facts: NetworkFacts, shapes: Dict[str, Tuple[int, ...]], graph_outputs: Sequence[str],
                 input_size: Tuple[int, int]) -> OutputPlan:
    """Which tensor and channels become ``heatmaps`` and ``pafs``, checked against the skeleton.

    ``shapes`` are the output shapes of one run of the network at ``input_size``.
    """
    sk = facts.skeleton
    nh, npaf = facts.num_heatmaps, sk.num_pafs
    need = "%d heatmaps (%d parts%s) and %d PAF channels (%d limbs)" % (
        nh, sk.num_parts, " + background" if facts.background else ", no background", npaf, sk.num_limbs)
    names = list(facts.outputs) or list(graph_outputs)
    for n in names:
        if n not in shapes:
            raise ImportRefused("the graph has no output %r (its outputs: %s)" % (n, ", ".join(graph_outputs)))
    info = {n: _channels_and_size(n, shapes[n], facts.output_layout) for n in names}
    if len(names) == 1:
        (name,) = names
        c = info[name][0]
        if c != nh + npaf:
            raise ImportRefused("output %r has %d channels in %s; skeleton %r needs %s = %d"
                                % (name, c, facts.output_layout, sk.name, need, nh + npaf))
        heat_off, paf_off = (0, nh) if facts.concat_order == "heatmaps,pafs" else (npaf, 0)
        heat, paf = name, name
    elif len(names) == 2:
        heat, paf = names
        if info[heat][0] != nh or info[paf][0] != npaf:
            swapped = info[heat][0] == npaf and info[paf][0] == nh
            raise ImportRefused("outputs %r and %r have %d and %d channels in %s; skeleton %r needs %s%s"
                                % (heat, paf, info[heat][0], info[paf][0], facts.output_layout, sk.name, need,
                                   " (swapped? name the heatmaps first)" if swapped else ""))
        heat_off = paf_off = 0
    else:
        raise ImportRefused("the graph has %d outputs (%s): name the heatmaps and PAFs (or their one concatenated "
                            "tensor) with --outputs" % (len(names), ", ".join(names)))
    sizes = {(h, w) for _, h, w in info.values()}
    if len(sizes) != 1:
        raise ImportRefused("heatmaps and PAFs have different map sizes: %s" % sorted(sizes))
    (mh, mw), = sizes
    width, height = input_size
    if facts.stride is not None:
        stride = int(facts.stride)
        if (mw * stride, mh * stride) != (width, height):
            raise ImportRefused("the maps are %dx%d for a %dx%d input; at stride %d they would be %gx%g "
                                "(is the stride, the layout %s or the size right?)"
                                % (mw, mh, width, height, stride, width / stride, height / stride, facts.output_layout))
    else:
        if mw <= 0 or width % mw or height % mh or width // mw != height // mh:
            raise ImportRefused("the maps are %dx%d for a %dx%d input: no whole stride (is the layout %s right?)"
                                % (mw, mh, width, height, facts.output_layout))
        stride = width // mw
    target = facts.bundle_skeleton().paf_channels
    net = facts.network_paf_table()
    paf_index = [0] * npaf
    for (tx, ty), (nx, ny) in zip(target, net):
        paf_index[tx], paf_index[ty] = paf_off + nx, paf_off + ny
    return OutputPlan(heat, list(range(heat_off, heat_off + nh)), paf, paf_index, facts.output_layout,
                      not facts.background, stride, (mw, mh), {n: info[n][0] for n in names})


# -- the graph ------------------------------------------------------------------------------------

class _Builder:
    def __init__(self, graph, opset: int) -> None:
        self.graph, self.opset, self.nodes, self.inits, self.n = graph, opset, [], [], 0

    def name(self, hint: str) -> str:
        self.n += 1
        return "%s%s_%d" % (_PREFIX, hint, self.n)

    def const(self, hint: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], out: Optional[str] = None, **attrs) -> str:
        from onnx import helper

        out = out or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=self.name(op_type), **attrs))
        return out

    def channels(self, src: str, index: List[int], total: int, axis: int, hint: str) -> str:
        """``src`` restricted to channels ``index`` along ``axis``: nothing, a Slice or a Gather."""
        if index == list(range(total)):
            return src
        start = index[0]
        if index == list(range(start, start + len(index))):
            return self.op("Slice", [src, self.const(hint + "_starts", np.array([start], np.int64)),
                                     self.const(hint + "_ends", np.array([start + len(index)], np.int64)),
                                     self.const(hint + "_axes", np.array([axis], np.int64))])
        return self.op("Gather", [src, self.const(hint + "_index", np.array(index, np.int64))], axis=axis)

    def reduce_max_channels(self, src: str) -> str:
        if self.opset >= 18:  # axes became an input
            return self.op("ReduceMax", [src, self.const("axes", np.array([1], np.int64))], keepdims=1)
        return self.op("ReduceMax", [src], axes=[1], keepdims=1)


def wrap(model, network_input: str, input_size: Tuple[int, int], facts: NetworkFacts, plan: OutputPlan):
    """The bundle's graph: ``image`` uint8 NHWC RGB in, ``heatmaps`` / ``pafs`` NCHW float32 out."""
    from onnx import TensorProto, helper

    graph = model.graph
    width, height = input_size
    b = _Builder(graph, opset_of(model))
    net_in = next(i for i in graph.input if i.name == network_input)
    elem = net_in.type.tensor_type.elem_type
    if elem not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        raise ImportRefused("the network's input %r is %s; the importer feeds float32 or float16"
                            % (network_input, TensorProto.DataType.Name(elem)))
    # -- in front: uint8 RGB NHWC -> what the network reads
    x = b.op("Cast", [INPUT], to=TensorProto.FLOAT)
    if facts.color == "BGR":
        x = b.op("Gather", [x, b.const("bgr", np.array([2, 1, 0], np.int64))], axis=3)
    if any(facts.mean):
        x = b.op("Sub", [x, b.const("mean", np.array(facts.mean, np.float32))])
    if any(s != 1.0 for s in facts.std):
        x = b.op("Div", [x, b.const("std", np.array(facts.std, np.float32))])
    if elem == TensorProto.FLOAT16:
        x = b.op("Cast", [x], to=TensorProto.FLOAT16)
    if facts.input_layout == "NCHW":
        b.op("Transpose", [x], network_input, perm=[0, 3, 1, 2])
    else:
        b.op("Identity", [x], network_input)
    front = list(b.nodes)
    b.nodes = []
    # -- behind: the network's output(s) -> heatmaps, pafs
    axis = 1 if plan.layout == "NCHW" else 3
    nh_bundle = facts.skeleton.num_heatmaps
    mw, mh = plan.map_size
    out_types = {o.name: o.type.tensor_type.elem_type for o in graph.output}
    for src, index, final, hint in ((plan.heat_source, plan.heat_channels, HEATMAPS, "heatmaps"),
                                    (plan.paf_source, plan.paf_channels, PAFS, "pafs")):
        t = b.channels(src, index, plan.source_channels[src], axis, hint)
        if plan.layout == "NHWC":
            t = b.op("Transpose", [t], perm=[0, 3, 1, 2])
        if out_types.get(src, TensorProto.FLOAT) != TensorProto.FLOAT:
            t = b.op("Cast", [t], to=TensorProto.FLOAT)
        if final == HEATMAPS and plan.add_background:
            # OpenPose's background target: 1 where no part is; the grouping never reads it.
            peak = b.reduce_max_channels(t)
            bg = b.op("Max", [b.op("Sub", [b.const("one", np.array(1.0, np.float32)), peak]),
                              b.const("zero", np.array(0.0, np.float32))])
            t = b.op("Concat", [t, bg], axis=1)
        if t == src:  # the network's own tensor is already the output: carry it under the bundle's name
            _rename(graph, src, final)
            for node in b.nodes:
                node.input[:] = [final if n == src else n for n in node.input]
        elif b.nodes and b.nodes[-1].output[0] == t:
            b.nodes[-1].output[0] = final
        else:
            b.op("Identity", [t], final)
    back = list(b.nodes)
    nodes = front + list(graph.node) + back
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(b.inits)
    # -- the interface
    keep = [i for i in graph.input if i.name != network_input]
    del graph.input[:]
    graph.input.extend([helper.make_tensor_value_info(INPUT, TensorProto.UINT8, [1, height, width, 3])] + keep)
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info(HEATMAPS, TensorProto.FLOAT, [1, nh_bundle, mh, mw]),
                         helper.make_tensor_value_info(PAFS, TensorProto.FLOAT, [1, facts.skeleton.num_pafs, mh, mw])])
    _prune(graph)
    # Older onnxruntime builds (JetPack 5 ships 1.1x) read IR version 8 at most, as export writes.
    if opset_of(model) <= 17:
        model.ir_version = min(model.ir_version, 8)
    return model


def _prune(graph) -> None:
    """Drop the nodes, initializers and value_info nothing the two outputs need uses."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(n for n in node.input if n)
            for attr in node.attribute:  # tensors read inside subgraphs (If, Loop) count as read
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    for n in sub.node:
                        needed.update(n.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    extra_inputs = [i for i in graph.input if i.name == INPUT or i.name in needed]
    del graph.input[:]
    graph.input.extend(extra_inputs)
    vis = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(vis)


# -- the same two steps in numpy (the check's reference) ----------------------------------------

def network_input(image: np.ndarray, facts: NetworkFacts) -> np.ndarray:
    """What the wrapped graph hands the network for a uint8 RGB ``(H, W, 3)`` image."""
    x = image.astype(np.float32)[None]
    if facts.color == "BGR":
        x = x[..., ::-1]
    x = (x - np.array(facts.mean, np.float32)) / np.array(facts.std, np.float32)
    if facts.input_layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, np.float32)


def expected_maps(outputs: Dict[str, np.ndarray], plan: OutputPlan) -> Tuple[np.ndarray, np.ndarray]:
    """The bundle's ``heatmaps`` and ``pafs`` from the network's own outputs, as :func:`wrap` makes them."""
    axis = 1 if plan.layout == "NCHW" else 3
    maps = []
    for src, index in ((plan.heat_source, plan.heat_channels), (plan.paf_source, plan.paf_channels)):
        t = np.take(np.asarray(outputs[src], np.float32), index, axis=axis)
        if plan.layout == "NHWC":
            t = t.transpose(0, 3, 1, 2)
        maps.append(t)
    heat, paf = maps
    if plan.add_background:
        heat = np.concatenate([heat, np.maximum(1.0 - heat.max(axis=1, keepdims=True), 0.0)], axis=1)
    return np.ascontiguousarray(heat), np.ascontiguousarray(paf)
