"""A model's batch dimension: what a bundle says about it, and how a graph gets one.

meta.json's ``batch`` says how many images the model takes in one call::

    "batch": {"size": 4, "dynamic": false}   # exactly 4 images per call
    "batch": {"size": 8, "dynamic": true}    # 1..any; 8 is what it was checked at and
                                             # the TensorRT profile's optimum by default

A bundle without it takes one image per call (every bundle written before batching). A
runtime that batches streams asks the backend for buffers of ``size`` frames (dynamic: of as
many as it wants) and runs the first ``n`` of them; a fixed batch always runs all of them.

The host half (``export`` and ``import`` call it; it imports ``onnx``, which the device never
needs): :func:`with_batch` gives a batch-1 graph a dynamic or fixed batch dimension, and
:func:`check_batch` runs the result on several different images at once against the batch-1
graph on each alone, so a graph that hard-codes batch 1 inside (a Reshape to ``[1, ...]``, as
converters like to write) is refused with the reason, not shipped.
"""
from __future__ import annotations

from typing import List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["BatchSpec", "ONE", "parse_batch", "batch_of_meta", "with_batch", "check_batch", "BatchError",
           "DEFAULT_DYNAMIC_SIZE", "CHECK_TOLERANCE", "batched_model"]

DEFAULT_DYNAMIC_SIZE = 8
CHECK_TOLERANCE = 1e-4  # relative to the largest map value: the same float32 arithmetic, batched


class BatchError(ValueError):
    """A batch that cannot be: a bad spec, or a graph that does not run several images at once."""


class BatchSpec(NamedTuple):
    size: int       # fixed: the images per call; dynamic: the checked size and TensorRT's optimum
    dynamic: bool

    def describe(self) -> str:
        return "dynamic (checked at %d)" % self.size if self.dynamic else "fixed %d" % self.size

    def to_meta(self) -> dict:
        return {"size": int(self.size), "dynamic": bool(self.dynamic)}

    def buffers_for(self, requested: int = 0) -> int:
        """Frames per buffer set: a fixed batch its own size; a dynamic one ``requested``
        (its own size when 0)."""
        if not self.dynamic:
            return self.size
        return int(requested) if requested and requested > 0 else self.size


ONE = BatchSpec(1, False)


def parse_batch(text: Union[str, int]) -> BatchSpec:
    """``N`` (fixed), ``dynamic`` or ``dynamic:N`` (checked at N, default 8); BatchError otherwise."""
    raw = str(text).strip().lower()
    head, _, tail = raw.partition(":")
    try:
        if head == "dynamic":
            size = int(tail) if tail else DEFAULT_DYNAMIC_SIZE
            dynamic = True
        elif not tail:
            size, dynamic = int(head), False
        else:
            raise ValueError
    except ValueError:
        raise BatchError("a batch is N, dynamic or dynamic:N, got %r" % (text,)) from None
    if not 1 <= size <= 1024:
        raise BatchError("a batch size must be 1..1024, got %d" % size)
    return BatchSpec(size, dynamic)


def batch_of_meta(meta: Mapping[str, object]) -> BatchSpec:
    """The :class:`BatchSpec` of a meta.json (one image per call where it says nothing);
    BatchError naming the field when it is malformed."""
    raw = meta.get("batch")
    if raw is None:
        return ONE
    if not isinstance(raw, Mapping):
        raise BatchError("meta.json: 'batch' should be a table {size, dynamic}, got %r" % (raw,))
    size, dynamic = raw.get("size"), raw.get("dynamic", False)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1024:
        raise BatchError("meta.json: batch size should be an integer 1..1024, got %r" % (size,))
    if not isinstance(dynamic, bool):
        raise BatchError("meta.json: batch dynamic should be true or false, got %r" % (dynamic,))
    return BatchSpec(size, dynamic)


# -- the host half: a graph with a batch dimension ---------------------------------------------

def _graph_io(model) -> list:
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    return [vi for vi in graph.input if vi.name not in inits] + list(graph.output)


def with_batch(model_bytes: bytes, spec: BatchSpec) -> bytes:
    """``model_bytes`` (a graph at batch 1) with its inputs' and outputs' first dimension made
    ``spec``'s: the symbolic ``batch`` when dynamic, else the fixed size. The shapes inferred
    inside are dropped (onnxruntime and TensorRT infer them again)."""
    import onnx

    model = onnx.ModelProto.FromString(model_bytes)
    for vi in _graph_io(model):
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            raise BatchError("graph tensor %r has no shape to give a batch dimension" % vi.name)
        first = dims[0]
        if first.HasField("dim_value") and first.dim_value not in (1, spec.size):
            raise BatchError("graph tensor %r has batch %d; expected a batch-1 graph" % (vi.name, first.dim_value))
        first.ClearField("dim_value")
        first.ClearField("dim_param")
        if spec.dynamic:
            first.dim_param = "batch"
        else:
            first.dim_value = spec.size
    del model.graph.value_info[:]
    return model.SerializeToString()


def _batch_one_reshapes(model) -> List[str]:
    """Reshape nodes whose target shape is a constant starting with 1: the usual way a
    converter hard-codes batch 1 inside a graph."""
    from onnx import numpy_helper

    consts = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = attr.t
    out = []
    for node in model.graph.node:
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in consts:
            shape = numpy_helper.to_array(consts[node.input[1]]).reshape(-1)
            if shape.size and int(shape[0]) == 1:
                out.append("%s (to %s)" % (node.name or node.output[0], list(map(int, shape))))
    return out


def _session(model_bytes: bytes):
    from .backends.onnxruntime_backend import CPU, open_session

    # the graph as written: no fusion that could hide (or cause) a difference
    return open_session(model_bytes, providers=CPU, optimization="disable")


def check_batch(batched: bytes, single: bytes, input_name: str, images: Sequence[np.ndarray],
                spec: BatchSpec, tolerance: float = CHECK_TOLERANCE) -> float:
    """Run ``batched`` on several different images at once (2 for a dynamic batch, ``size`` for
    a fixed one) and ``single`` (its batch-1 graph) on each alone; the largest difference of any
    output, relative to its largest value. BatchError, with the reason, when the batched graph
    does not run or its frames are not each image's own maps (a graph that mixes the batch)."""
    import onnx

    count = 2 if spec.dynamic else spec.size
    if not images:
        raise BatchError("no images to check the batch on")
    stack = np.stack([np.asarray(images[i % len(images)], np.uint8) for i in range(count)])
    if count > 1 and len(images) == 1:
        stack[1:] = stack[1:][..., ::-1]  # different pictures, or a mixed batch goes unseen
    one = _session(single)
    names = [o.name for o in one.get_outputs()]
    want = [one.run(names, {input_name: stack[i:i + 1]}) for i in range(count)]
    hint = _batch_one_reshapes(onnx.ModelProto.FromString(batched))
    where = (": %s hard-code%s batch 1" % (", ".join(hint), "s" if len(hint) == 1 else "")) if hint else ""
    try:
        got = _session(batched).run(names, {input_name: stack})
    except Exception as exc:  # onnxruntime's own error kinds; the message names the node
        text = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
        raise BatchError("the graph does not run %d images at once%s (onnxruntime: %s); export or import it "
                         "at batch 1, or fix the graph's Reshape to keep the batch (0 or -1)"
                         % (count, where, text)) from None
    worst = 0.0
    for k, name in enumerate(names):
        for i in range(count):
            ref, out = want[i][k][0], got[k][i]
            if out.shape != ref.shape:
                raise BatchError("output %r of frame %d at batch %d is %s, alone it is %s%s"
                                 % (name, i, count, out.shape, ref.shape, where))
            scale = max(1.0, float(np.max(np.abs(ref))))
            diff = float(np.max(np.abs(out - ref))) / scale
            if not diff <= tolerance:
                raise BatchError("output %r of frame %d differs at batch %d from the same image alone by %.3g "
                                 "(relative; tolerance %.0e): the graph mixes the frames of a batch%s"
                                 % (name, i, count, diff, tolerance, where))
            worst = max(worst, diff)
    return worst


def batched_model(single: bytes, spec: BatchSpec, input_name: str, images: Sequence[np.ndarray],
                  tolerance: float = CHECK_TOLERANCE) -> Tuple[bytes, Optional[float]]:
    """``single`` with ``spec``'s batch, checked (:func:`check_batch`); ``(bytes, max diff)``.
    Batch 1 fixed is ``single`` itself, unchecked (``None``)."""
    if spec == ONE:
        return single, None
    batched = with_batch(single, spec)
    return batched, check_batch(batched, single, input_name, images, spec, tolerance)
