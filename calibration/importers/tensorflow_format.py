"""A TensorFlow frozen graph (a ``GraphDef`` with its weights as constants, as tf-pose-estimation
publishes ``graph_opt.pb``), converted with tf2onnx. TensorFlow and tf2onnx are the host's
(``pip install 'openpose-plus[train]'``) and are imported only here, when such a graph is imported."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from .facts import ImportRefused, NetworkFacts

__all__ = ["load", "OPSET"]

OPSET = 13  # the bundle's opset (see host_training/export.py for why 13)


def _tensor(name: str) -> str:
    return name if ":" in name else name + ":0"


def _ends(graph_def) -> Tuple[List[str], List[str]]:
    """(placeholders, nodes whose output nothing reads): what the user may mean as input and output."""
    used = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
    skip = {"Const", "NoOp", "Assert", "Identity"}
    return ([n.name for n in graph_def.node if n.op == "Placeholder"],
            [n.name for n in graph_def.node if n.name not in used and n.op not in skip])


def load(paths: Sequence[str], facts: NetworkFacts) -> Tuple[object, NetworkFacts, Dict[str, str]]:
    """``(ModelProto, facts of the converted graph, tool versions)`` of one frozen ``.pb``.

    The converted graph keeps TensorFlow's tensor names (``image:0``); an NHWC output is asked
    of tf2onnx in NCHW, so its own optimiser folds the layout change into the network instead
    of leaving a Transpose at each end.
    """
    if len(paths) != 1:
        raise ImportRefused("a TensorFlow frozen graph is one .pb file, got %d files" % len(paths))
    if facts.input_size is None:
        raise ImportRefused("a TensorFlow graph has no fixed input size: give the size to import it at (--size WxH)")
    if not facts.input_name or not facts.outputs:
        raise ImportRefused("a TensorFlow graph needs its input and output tensors named (--input-name, --outputs)")
    import tensorflow as tf
    import tf2onnx

    graph_def = tf.compat.v1.GraphDef()
    try:
        with open(paths[0], "rb") as f:
            graph_def.ParseFromString(f.read())
    except OSError as exc:
        raise ImportRefused("%s: cannot read: %s" % (paths[0], exc.strerror or exc)) from None
    except Exception as exc:  # DecodeError
        raise ImportRefused("%s is not a frozen TensorFlow graph (GraphDef): %s" % (paths[0], exc)) from None
    nodes = {n.name for n in graph_def.node}
    placeholders, ends = _ends(graph_def)
    if not nodes:
        raise ImportRefused("%s holds no graph" % paths[0])
    inp = _tensor(facts.input_name)
    outs = [_tensor(o) for o in facts.outputs]
    if inp.split(":")[0] not in nodes:
        raise ImportRefused("the graph has no tensor %r (its placeholders: %s)" % (inp, ", ".join(placeholders) or "none"))
    for o in outs:
        if o.split(":")[0] not in nodes:
            raise ImportRefused("the graph has no tensor %r (nodes nothing reads: %s)" % (o, ", ".join(ends[:8]) or "none"))
    width, height = facts.input_size
    shape = [1, height, width, 3] if facts.input_layout == "NHWC" else [1, 3, height, width]
    nchw_out = facts.output_layout == "NHWC"
    try:
        model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=[inp], output_names=outs, opset=OPSET,
                                                  shape_override={inp: shape},
                                                  outputs_as_nchw=outs if nchw_out else None)
    except Exception as exc:  # tf2onnx raises many kinds; the message is what matters
        raise ImportRefused("tf2onnx could not convert %s (opset %d): %s: %s"
                            % (paths[0], OPSET, type(exc).__name__, str(exc).strip()[:300])) from None
    converted = facts.replace(input_name=inp, outputs=tuple(outs), output_layout="NCHW")
    return model, converted, {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__}
