"""The TensorRT import check: graphs built with onnx.helper that break each rule are refused, naming the node.

Each rule is what TensorRT's ONNX parser refuses for a reason readable from the graph
(onnx-tensorrt's importers and operator table per generation); a well-formed Q/DQ graph of
the kind ``calibrate`` writes passes for every generation.
"""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from openpose_plus.edge.backends.onnx_rules import (ALL_GENERATIONS, TrtImportError, check_model,  # noqa: E402
                                                    generation_of, require_importable)


def qdq_graph(opset=13, act_zp=np.int8(0), act_scale=np.float32(0.05), weight=None, w_scale=None, w_zp=None,
              bias_dq=False, q_feeds="dq", dq_reads="q", input_shape=(1, 3, 8, 8), zero_points=True,
              weight_pair=True, extra_nodes=(), extra_inits=(), domain=""):
    """x -> Q -> DQ -> Conv(DQ'd weights) -> y, with knobs that break one rule each."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32) if weight is None else weight
    inits = [numpy_helper.from_array(np.asarray(act_scale), "x_scale"),
             numpy_helper.from_array(np.full(4, 0.01, np.float32) if w_scale is None else w_scale, "w_scale"),
             numpy_helper.from_array(np.zeros(4, np.int8) if w_zp is None else w_zp, "w_zp")]
    if zero_points:
        inits.append(numpy_helper.from_array(np.asarray(act_zp), "x_zp"))
    nodes = []
    qin = ["x", "x_scale"] + (["x_zp"] if zero_points else [])
    nodes.append(helper.make_node("QuantizeLinear", qin, ["x_q"], name="x_quant", domain=domain))
    dq_src = "x_q" if dq_reads == "q" else "x"
    nodes.append(helper.make_node("DequantizeLinear", [dq_src] + qin[1:], ["x_dq"], name="x_dequant"))
    if weight_pair:  # FP32 weights with a Q/DQ pair, as calibrate writes them
        inits.append(numpy_helper.from_array(w, "w"))
        nodes += [helper.make_node("QuantizeLinear", ["w", "w_scale", "w_zp"], ["w_q"], name="w_quant", axis=0),
                  helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w_dq"], name="w_dequant", axis=0)]
    else:  # INT8 initializer, DQ only
        inits.append(numpy_helper.from_array(np.clip(np.round(w / 0.01), -127, 127).astype(np.int8), "w_int8"))
        nodes.append(helper.make_node("DequantizeLinear", ["w_int8", "w_scale", "w_zp"], ["w_dq"], name="w_dequant",
                                      axis=0))
    conv_in = ["x_dq", "w_dq"]
    if bias_dq:  # onnxruntime's default: an INT32 bias behind a DequantizeLinear
        inits += [numpy_helper.from_array(np.arange(4, dtype=np.int32), "b_int32"),
                  numpy_helper.from_array(np.full(4, 0.0005, np.float32), "b_scale"),
                  numpy_helper.from_array(np.zeros(4, np.int32), "b_zp")]
        nodes.append(helper.make_node("DequantizeLinear", ["b_int32", "b_scale", "b_zp"], ["b_dq"], name="bias_dequant",
                                      axis=0))
        conv_in.append("b_dq")
    nodes.append(helper.make_node("Conv", conv_in, ["y"], name="conv", pads=[1, 1, 1, 1]))
    if q_feeds != "dq":  # a Q whose output goes somewhere else than a DQ
        nodes.append(helper.make_node("Relu", ["x_q" if q_feeds == "relu" else "x_q"], ["r"], name="bad_user"))
    nodes += list(extra_nodes)
    inits += list(extra_inits)
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if q_feeds == "output":
        outputs.append(helper.make_tensor_value_info("x_q", TensorProto.INT8, None))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                              outputs, inits)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def rules(model, **kw):
    return {(v.rule, v.node) for v in check_model(model, **kw)}


def test_a_tensorrt_qdq_graph_passes_every_generation():
    model = qdq_graph()
    assert check_model(model) == [] and check_model(model.SerializeToString()) == []
    require_importable(model, "good.onnx")
    assert ALL_GENERATIONS == ("8.5", "8.6", "10", "11")


def test_dq_of_int32_bias_is_refused_naming_the_node():
    found = check_model(qdq_graph(bias_dq=True))
    assert [(v.rule, v.node) for v in found] == [("dq-type", "bias_dequant")]
    assert "INT32" in found[0].message and "QuantizeBias" in found[0].message
    assert found[0].generations == ALL_GENERATIONS
    with pytest.raises(TrtImportError, match=r"(?s)model.int8.onnx would not import.*bias_dequant") as err:
        require_importable(qdq_graph(bias_dq=True), "model.int8.onnx")
    assert len(err.value.violations) == 1


def test_dq_types_follow_the_generation():
    fp8 = getattr(TensorProto, "FLOAT8E4M3FN")
    zp = helper.make_tensor("x_zp", fp8, [], [0.0])
    model = qdq_graph()
    model.graph.initializer.remove(next(i for i in model.graph.initializer if i.name == "x_zp"))
    model.graph.initializer.append(zp)
    found = check_model(model)
    assert {(v.rule, v.node, v.generations) for v in found if v.rule == "dq-type"} == {
        ("dq-type", "x_dequant", ("8.5", "8.6"))}
    assert check_model(model, generations=("10", "11")) == []
    # uint8 (asymmetric, onnxruntime's CPU form) is refused everywhere
    found = check_model(qdq_graph(act_zp=np.uint8(0)))
    assert ("dq-type", "x_dequant") in {(v.rule, v.node) for v in found}
    assert "uint8" in next(v for v in found if v.rule == "dq-type").message


def test_q_dq_pairing():
    assert ("pairing", "x_quant") in rules(qdq_graph(q_feeds="relu"))
    assert ("pairing", "x_quant") in rules(qdq_graph(q_feeds="output"))
    found = check_model(qdq_graph(dq_reads="x"))  # a DQ reading a float activation, no Q
    assert ("pairing", "x_dequant") in {(v.rule, v.node) for v in found}


def test_scales_must_be_positive_finite_float_constants():
    for bad in (np.float32(0.0), np.float32(-0.1), np.float32(np.inf), np.float32(np.nan)):
        assert ("scale", "x_quant") in rules(qdq_graph(act_scale=bad)), bad
    half = check_model(qdq_graph(act_scale=np.float16(0.05)))
    assert {(v.rule, v.generations) for v in half} >= {("scale", ("8.5", "8.6"))}
    assert check_model(qdq_graph(act_scale=np.float16(0.05)), generations=("10", "11")) == []
    # one scale per output channel of the weights, no more, no less
    assert ("scale", "w_quant") in rules(qdq_graph(w_scale=np.full(3, 0.01, np.float32), w_zp=np.zeros(3, np.int8)))
    # a scale computed at run time cannot be checked, and 8.x's parser wants constants
    model = qdq_graph(extra_nodes=[helper.make_node("Identity", ["x_scale_c"], ["x_scale_dyn"], name="dyn")],
                      extra_inits=[numpy_helper.from_array(np.float32(0.05), "x_scale_c")])
    model.graph.node[0].input[1] = "x_scale_dyn"
    assert ("scale", "x_quant") in rules(model)


def test_per_channel_activations_are_refused_on_8x_only():
    model = qdq_graph(act_scale=np.full(3, 0.05, np.float32), act_zp=np.zeros(3, np.int8))
    found = [v for v in check_model(model) if v.node == "x_quant"]
    assert [(v.rule, v.generations) for v in found] == [("scale", ("8.5", "8.6"))]


def test_zero_points_zero_int8_present_on_8x():
    assert ("zero-point", "x_quant") in rules(qdq_graph(act_zp=np.int8(3)))
    assert ("zero-point", "w_quant") in rules(qdq_graph(w_zp=np.array([0, 0, 1, 0], np.int8)))
    found = [v for v in check_model(qdq_graph(zero_points=False)) if v.rule == "zero-point"]
    assert {v.node for v in found} == {"x_quant", "x_dequant"} and all(v.generations == ("8.5", "8.6") for v in found)
    # INT8 weights behind a DQ with an int32 zero point: the types disagree
    assert ("zero-point", "w_dequant") in rules(qdq_graph(weight_pair=False, w_zp=np.zeros(4, np.int32)))
    assert check_model(qdq_graph(weight_pair=False)) == []   # INT8 weights, DQ only: parsed by every generation


def test_opset_and_domains():
    assert ("opset", "<model>") in rules(qdq_graph(opset=18))                 # 8.x parses up to 17
    assert {v.generations for v in check_model(qdq_graph(opset=18))} == {("8.5", "8.6")}
    assert ("opset", "<model>") in rules(qdq_graph(opset=21), generations=("10",))
    assert check_model(qdq_graph(opset=21), generations=("11",)) == []
    found = rules(qdq_graph(opset=12, act_scale=np.float32(0.05)))             # per-axis weights need 13
    assert ("opset", "w_quant") in found
    assert ("opset", "x_quant") in rules(qdq_graph(domain="com.microsoft"))


def test_input_shapes_static_or_a_batch_profile():
    dyn_batch = qdq_graph(input_shape=("N", 3, 8, 8))
    assert ("input", "x") in rules(dyn_batch)
    assert "profile" in check_model(dyn_batch)[0].message
    assert check_model(dyn_batch, batch_profile=True) == []
    dyn_hw = qdq_graph(input_shape=(1, 3, "H", "W"))
    found = check_model(dyn_hw, batch_profile=True)
    assert [(v.rule, v.node) for v in found] == [("input", "x")] and "2, 3" in found[0].message


def test_resize_with_both_scales_and_sizes_is_refused():
    inits = [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             numpy_helper.from_array(np.array([1, 4, 16, 16], np.int64), "sizes"),
             numpy_helper.from_array(np.zeros(0, np.float32), "empty")]
    both = helper.make_node("Resize", ["y", "", "scales", "sizes"], ["up"], name="up_both")
    assert ("resize", "up_both") in rules(qdq_graph(extra_nodes=[both], extra_inits=inits))
    fine = helper.make_node("Resize", ["y", "empty", "empty", "sizes"], ["up"], name="up_sizes")
    assert check_model(qdq_graph(extra_nodes=[fine], extra_inits=inits)) == []


def test_generation_of_a_version_string():
    assert generation_of("8.5.2.2").name == "8.5" and generation_of("8.6.2").name == "8.6"
    assert generation_of("10.13.3.9.post1").name == "10" and generation_of("11.4.0.106").name == "11"
    with pytest.raises(ValueError, match="not a generation"):
        generation_of("7.1.3")
    with pytest.raises(ValueError, match="unknown TensorRT generation"):
        check_model(qdq_graph(), generations=("9",))


def test_export_refuses_a_graph_tensorrt_would_not_import():
    from openpose_plus.host_training.export import ExportError, check_tensorrt_import

    check_tensorrt_import(qdq_graph())
    with pytest.raises(ExportError, match="bias_dequant"):
        check_tensorrt_import(qdq_graph(bias_dq=True))
    with pytest.raises(ExportError, match=r"\[input\] 'x'"):
        check_tensorrt_import(qdq_graph(input_shape=(1, 3, "H", "W")))
