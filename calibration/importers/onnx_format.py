"""An ONNX file as its project exports it (Lightweight OpenPose's convert_to_onnx.py,
trt_pose's export_for_isaac.py, anyone's ``torch.onnx.export``)."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

from .facts import ImportRefused, NetworkFacts

__all__ = ["load"]


def load(paths: Sequence[str], facts: NetworkFacts) -> Tuple[object, NetworkFacts, Dict[str, str]]:
    """``(ModelProto, facts of that graph, tool versions)`` of one ``.onnx`` file."""
    import onnx

    if len(paths) != 1:
        raise ImportRefused("an ONNX network is one .onnx file, got %d files" % len(paths))
    try:
        model = onnx.load(paths[0])
    except Exception as exc:  # DecodeError, OSError, external data not found...
        raise ImportRefused("%s is not a readable ONNX model: %s" % (paths[0], str(exc).strip()[:300] or type(exc).__name__)) from None
    if not model.graph.node:
        raise ImportRefused("%s holds no graph" % paths[0])
    return model, facts, {"onnx": onnx.__version__}
