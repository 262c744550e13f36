"""Pose networks with random weights, built with ``onnx``: the one builder of test and bench models.

Shaped like an export (``host_training/export.py``): uint8 NHWC RGB input with the
normalisation and the NHWC->NCHW transpose inside the graph, three stride-2 3x3 convolutions
down to stride 8, ``depth`` more 3x3 convolutions there, then a heatmap head (K+1 channels,
sigmoid) and a PAF head (2L channels, tanh), both NCHW. Weights are seeded random: outputs
are deterministic but mean nothing, so timings and plumbing need no trained model.

- ``tests/edge_fixtures.py`` builds its tiny models here (8 channels, 96x64);
- ``bench pipeline demo`` builds a network of realistic cost (:func:`demo_pose_onnx`).

``onnx`` is a host package (the ``train``/``calib`` extras): it is imported only when a model is
built, so the runtime never needs it. The leading underscore keeps this module out of the
``openpose-plus bench`` kinds.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from openpose_plus.edge.skeleton import COCO18, Skeleton

__all__ = ["pose_onnx", "demo_pose_onnx"]


def pose_onnx(width: int, height: int, skeleton: Skeleton = COCO18, widths: Sequence[int] = (8, 8, 8),
              depth: int = 0, seed: int = 0, heat_bias: float = 0.0, opset: int = 13, input_name: str = "image",
              output_names: Tuple[str, str] = ("heatmaps", "pafs"), mean=(127.5, 127.5, 127.5),
              std=(127.5, 127.5, 127.5), name: str = "pose") -> bytes:
    """A serialized ONNX pose network for ``width x height`` input (multiples of 8).

    ``widths`` are the channels of the three stride-2 convolutions; ``depth`` stride-1 ones
    at ``widths[-1]`` channels make it heavier; a negative ``heat_bias`` makes the heatmaps
    sparse like a trained model's (few peaks).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise RuntimeError("building an ONNX pose network needs onnx (pip install onnx): %s" % exc) from None
    if width % 8 or height % 8 or width <= 0 or height <= 0:
        raise ValueError("the network's input must be a positive multiple of 8, got %dx%d" % (width, height))
    if len(widths) != 3:
        raise ValueError("widths: the channels of the three stride-2 convolutions, got %r" % (widths,))
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(key, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), key))

    def conv(x, cin, cout, k, stride, key, act="Relu", bias=0.0):
        # He-initialised weights keep activations in range through any depth.
        const(key + "_w", rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)))
        const(key + "_b", rng.normal(0, 0.1, cout) + bias)
        out = key if act is None else key + "_c"
        nodes.append(helper.make_node("Conv", [x, key + "_w", key + "_b"], [out], kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4))
        if act is not None:
            nodes.append(helper.make_node(act, [out], [key]))
        return key

    const("mean", np.asarray(mean, np.float32).reshape(1, 1, 1, 3))
    const("std", np.asarray(std, np.float32).reshape(1, 1, 1, 3))
    nodes += [helper.make_node("Cast", [input_name], ["x_f"], to=TensorProto.FLOAT),
              helper.make_node("Sub", ["x_f", "mean"], ["x_c"]),
              helper.make_node("Div", ["x_c", "std"], ["x_n"]),
              helper.make_node("Transpose", ["x_n"], ["x_nchw"], perm=[0, 3, 1, 2])]
    x, cin = "x_nchw", 3
    for i, cout in enumerate(widths):
        x, cin = conv(x, cin, cout, 3, 2, "s%d" % (i + 1)), cout
    for i in range(depth):
        x = conv(x, cin, cin, 3, 1, "b%d" % i)
    hm = conv(x, cin, skeleton.num_heatmaps, 1, 1, "hm", act=None, bias=heat_bias)
    pf = conv(x, cin, skeleton.num_pafs, 1, 1, "pf", act=None)
    nodes += [helper.make_node("Sigmoid", [hm], [output_names[0]]), helper.make_node("Tanh", [pf], [output_names[1]])]
    h8, w8 = height // 8, width // 8
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(input_name, TensorProto.UINT8, [1, height, width, 3])],
        [helper.make_tensor_value_info(output_names[0], TensorProto.FLOAT, [1, skeleton.num_heatmaps, h8, w8]),
         helper.make_tensor_value_info(output_names[1], TensorProto.FLOAT, [1, skeleton.num_pafs, h8, w8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # readable by older onnxruntime builds (JetPack 5 ships 1.1x)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def demo_pose_onnx(width: int = 368, height: int = 368, seed: int = 0) -> bytes:
    """A network of realistic cost for ``width x height`` (about 3 GFLOP at 368x368): a
    32-64-128 channel stride-8 backbone, four 3x3 128-channel convolutions at stride 8, heads
    for COCO-18 with heatmaps biased low so peaks are sparse, as a trained model's are."""
    return pose_onnx(width, height, COCO18, widths=(32, 64, 128), depth=4, seed=seed, heat_bias=-4.0, name="demo_pose")
