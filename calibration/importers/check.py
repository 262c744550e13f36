"""The import's checks: the wrapped graph is sound, runs, and computes what the network does.

:func:`check_graph` is the one place a graph is judged before a bundle is written; the
importer calls it on every graph it wraps. Today it runs onnx's checker (well-formed ONNX at
its operator set, every node's inputs defined) and makes an onnxruntime CPU session from it
(every op has a kernel at these types and shapes). :func:`compare` then runs the network once,
as published, and the wrapped graph once on the same picture, and refuses the import when the
bundle's maps are not the network's maps.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from .facts import ImportRefused, NetworkFacts
from .wrap import HEATMAPS, INPUT, PAFS, OutputPlan, expected_maps, network_input

__all__ = ["check_graph", "run_once", "check_image", "compare", "TOLERANCE"]

TOLERANCE = 1e-4  # relative to the largest map value: the same float32 arithmetic in both


def _session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # The graph as written: no fusion that could hide (or cause) a difference.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors are many kinds; the message names the node
        raise ImportRefused("onnxruntime cannot load the graph: %s" % _first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def check_graph(model) -> None:
    """Refuse a graph that is not sound ONNX or that onnxruntime cannot load (see the module doc)."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ImportRefused("the wrapped graph is not valid ONNX: %s" % _first_line(exc)) from None
    _session(model)


def run_once(model, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Every graph output of one onnxruntime run (CPU, no graph optimisation)."""
    session = _session(model)
    names = [o.name for o in session.get_outputs()]
    try:
        values = session.run(names, feeds)
    except Exception as exc:
        raise ImportRefused("onnxruntime could not run the network: %s" % _first_line(exc)) from None
    return dict(zip(names, values))


def check_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """The picture both runs see: people drawn by the synthetic renderer, uint8 RGB."""
    from openpose_plus.edge.synthetic.scene import render_scene

    return render_scene(np.random.default_rng(seed), width, height, 2)[0]


def network_feed(model, name: str, image: np.ndarray, facts: NetworkFacts) -> Dict[str, np.ndarray]:
    from onnx import TensorProto

    x = network_input(image, facts)
    elem = next(i.type.tensor_type.elem_type for i in model.graph.input if i.name == name)
    return {name: x.astype(np.float16) if elem == TensorProto.FLOAT16 else x}


def compare(wrapped, raw_outputs: Dict[str, np.ndarray], plan: OutputPlan, image: np.ndarray) -> Tuple[float, float]:
    """Max abs difference (heatmaps, pafs) of the wrapped graph's maps from the network's own,
    relative to the largest value; refuses non-finite maps or a difference over :data:`TOLERANCE`."""
    for name, value in raw_outputs.items():
        if name in (plan.heat_source, plan.paf_source) and not np.isfinite(value).all():
            raise ImportRefused("the network's output %r holds NaN or infinity on a plain picture; "
                                "its weights or normalisation are wrong" % name)
    want = expected_maps(raw_outputs, plan)
    got = run_once(wrapped, {INPUT: np.ascontiguousarray(image, np.uint8)[None]})
    diffs = []
    for name, ref in zip((HEATMAPS, PAFS), want):
        out = got[name]
        if out.shape != ref.shape:
            raise ImportRefused("the wrapped graph's %s are %s, expected %s" % (name, out.shape, ref.shape))
        scale = max(1.0, float(np.max(np.abs(ref))))
        diff = float(np.max(np.abs(out - ref))) / scale
        if not diff <= TOLERANCE:
            raise ImportRefused("the wrapped graph's %s differ from the network's by %.3g (relative; tolerance %.0e)"
                                % (name, diff, TOLERANCE))
        diffs.append(diff)
    return diffs[0], diffs[1]
