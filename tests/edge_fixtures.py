"""Small real pose models and bundles for tests (and for anyone else's tests).

``tiny_pose_onnx`` builds, with ``onnx.helper``, a real network shaped like the exported
ones: uint8 NHWC RGB input, the normalisation and the NHWC->NCHW transpose inside the
graph, a few strided convolutions down to stride 8, then a heatmap head (K+1 channels,
sigmoid) and a PAF head (2L channels, tanh), both NCHW. Weights are seeded random, so
outputs are deterministic but not meaningful; ``make_bundle`` writes it as a real bundle
through :func:`openpose_plus.edge.bundle.write_bundle`.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from openpose_plus.edge.bundle import write_bundle
from openpose_plus.edge.skeleton import COCO18, Skeleton

__all__ = ["tiny_pose_onnx", "make_bundle"]


def tiny_pose_onnx(width: int = 96, height: int = 64, skeleton: Skeleton = COCO18, channels: int = 8,
                   seed: int = 0, opset: int = 13, input_name: str = "image",
                   output_names: Tuple[str, str] = ("heatmaps", "pafs"),
                   mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), depth: int = 0,
                   heat_bias: float = 0.0) -> bytes:
    """A serialized ONNX pose model; ``depth`` extra stride-1 convs make the network heavier,
    a negative ``heat_bias`` makes the heatmaps sparse like a trained model's (few peaks)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if width % 8 or height % 8:
        raise ValueError("tiny model input must be a multiple of 8, got %dx%d" % (width, height))
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def conv(x, cin, cout, k, stride, name, act="Relu", bias=0.0):
        w = rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)).astype(np.float32)
        b = (rng.normal(0, 0.1, cout) + bias).astype(np.float32)
        const(name + "_w", w)
        const(name + "_b", b)
        nodes.append(helper.make_node("Conv", [x, name + "_w", name + "_b"], [name + "_c"],
                                      kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4))
        if act:
            nodes.append(helper.make_node(act, [name + "_c"], [name]))
            return name
        return name + "_c"

    nodes.append(helper.make_node("Cast", [input_name], ["x_f"], to=TensorProto.FLOAT))
    const("mean", np.asarray(mean, np.float32).reshape(1, 1, 1, 3))
    const("std", np.asarray(std, np.float32).reshape(1, 1, 1, 3))
    nodes.append(helper.make_node("Sub", ["x_f", "mean"], ["x_c"]))
    nodes.append(helper.make_node("Div", ["x_c", "std"], ["x_n"]))
    nodes.append(helper.make_node("Transpose", ["x_n"], ["x_nchw"], perm=[0, 3, 1, 2]))
    x = conv("x_nchw", 3, channels, 3, 2, "c1")
    x = conv(x, channels, channels, 3, 2, "c2")
    x = conv(x, channels, channels, 3, 2, "c3")
    for i in range(depth):
        x = conv(x, channels, channels, 3, 1, "d%d" % i)
    hm = conv(x, channels, skeleton.num_heatmaps, 1, 1, "hm", act=None, bias=heat_bias)
    nodes.append(helper.make_node("Sigmoid", [hm], [output_names[0]]))
    pf = conv(x, channels, skeleton.num_pafs, 1, 1, "pf", act=None)
    nodes.append(helper.make_node("Tanh", [pf], [output_names[1]]))
    h8, w8 = height // 8, width // 8
    graph = helper.make_graph(
        nodes, "tiny_pose",
        [helper.make_tensor_value_info(input_name, TensorProto.UINT8, [1, height, width, 3])],
        [helper.make_tensor_value_info(output_names[0], TensorProto.FLOAT, [1, skeleton.num_heatmaps, h8, w8]),
         helper.make_tensor_value_info(output_names[1], TensorProto.FLOAT, [1, skeleton.num_pafs, h8, w8])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # readable by older onnxruntime builds (JetPack 5 ships 1.1x)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_bundle(directory, width: int = 96, height: int = 64, skeleton: Skeleton = COCO18,
                tar: bool = False, seed: int = 0, channels: int = 8, depth: int = 0,
                accuracy: Optional[dict] = None, name: str = "bundle", heat_bias: float = 0.0) -> str:
    """Write a real bundle with the tiny model under ``directory``; returns its path."""
    model = tiny_pose_onnx(width, height, skeleton, channels=channels, seed=seed, depth=depth, heat_bias=heat_bias)
    return write_bundle(os.path.join(os.fspath(directory), name), model, input_size=(width, height),
                        stride=8, skeleton=skeleton, mean=(127.5,) * 3, std=(127.5,) * 3,
                        training_config={"MODEL": {"name": "tiny"}, "seed": seed},
                        accuracy=accuracy if accuracy is not None else {"fp32": {"ap": 0.0}}, tar=tar)
