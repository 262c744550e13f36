"""The shipped demo bundle (``models/demo/``) carries what every TensorRT route needs, in a form its parser takes.

No machine here has TensorRT: the import check (edge/backends/onnx_rules.py) stands for its
parser, for every generation a Jetson may run (8.5 to 11.x).
"""
from __future__ import annotations

import pathlib

import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto  # noqa: E402

from openpose_plus.edge.backends.calibration_cache import DEFAULT_TRT_VERSION, cache_header, parse_cache  # noqa: E402
from openpose_plus.edge.backends.onnx_rules import ALL_GENERATIONS, check_model  # noqa: E402
from openpose_plus.edge.bundle import load_bundle  # noqa: E402

DEMO = pathlib.Path(__file__).resolve().parent.parent / "models" / "demo"
pytestmark = pytest.mark.skipif(not (DEMO / "meta.json").is_file(), reason="no shipped bundle at models/demo/")


def test_every_model_of_the_shipped_bundle_passes_the_tensorrt_import_check():
    b = load_bundle(str(DEMO))
    assert set(b.models) == {"fp32", "fp16", "int8"}
    for precision in ("fp32", "fp16", "int8"):
        assert check_model(b.model_path(precision), ALL_GENERATIONS) == [], precision
    q = onnx.load(b.model_path("int8"))
    inits = {i.name: i for i in q.graph.initializer}
    dq_inputs = [n.input[0] for n in q.graph.node if n.op_type == "DequantizeLinear"]
    assert dq_inputs and not [i for i in dq_inputs if i in inits and inits[i].data_type == TensorProto.INT32]
    cal = b.meta["extra"]["calibration"]["int8"]
    assert cal["status"] == "ok" and cal["biases"].startswith("float") and cal["import_check"].startswith("passed")


def test_the_fp16_model_is_float16_inside_and_keeps_the_bundle_interface():
    b = load_bundle(str(DEMO))
    half = onnx.load(b.model_path("fp16"))
    assert [i.type.tensor_type.elem_type for i in half.graph.input] == [TensorProto.UINT8]
    assert [o.type.tensor_type.elem_type for o in half.graph.output] == [TensorProto.FLOAT] * 2
    weights = [i for i in half.graph.initializer if len(i.dims) == 4]
    assert weights and all(w.data_type == TensorProto.FLOAT16 for w in weights)
    assert b.meta["extra"]["calibration"]["fp16"]["onnx"] == "model.fp16.onnx"
    acc = b.accuracy
    assert abs(acc["fp32"]["AP"] - acc["fp16"]["AP"]) * 100 <= 1.0
    assert (acc["fp32"]["AP"] - acc["int8"]["AP"]) * 100 <= 1.0


def test_the_calibration_cache_names_the_default_tensorrt_and_parses():
    b = load_bundle(str(DEMO))
    header, scales = parse_cache(open(b.calibration_cache_path).read())
    assert header == cache_header(DEFAULT_TRT_VERSION) and len(scales) > 20
