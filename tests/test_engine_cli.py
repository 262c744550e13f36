"""``openpose-plus build-engine``: everything around TensorRT, on a machine without it.

The builder itself (edge/backends/trt_build.py) and the engine cache's keys, checksums and rebuild
decisions are tested in test_engine_cache.py; here: the command's argument handling, the
bundle check before anything else, the INT8 route it takes, and the clear exit where
TensorRT is absent.
"""
from __future__ import annotations

import importlib.util
import json
import os

import cv2
import numpy as np
import pytest

from edge_fixtures import make_bundle
from openpose_plus.edge.bundle import write_bundle
from openpose_plus.commands import main

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
no_trt = pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here: the command would really build")


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path)


def _plan(err):
    return json.loads(err[err.index("{"): err.rindex("}") + 1])


@no_trt
def test_absent_tensorrt_is_a_clear_exit_2(bundle, tmp_path, capsys):
    rc = main(["build-engine", bundle, "--precision", "fp16", "--workspace", "256", "--cache", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "TensorRT is not installed" in err and "JetPack" in err
    plan = _plan(err)
    assert plan["precision"] == "fp16" and plan["workspace_mb"] == 256 and plan["onnx"].endswith("model.onnx")
    assert not (tmp_path / "c").exists()  # nothing written when nothing was built


@pytest.mark.parametrize("argv, message", [
    (["--precision", "fp32", "--dla", "0"], "DLA runs fp16 or int8"),
    (["--precision", "fp16", "--dla", "-1"], "DLA core must be 0 or more"),
    (["--precision", "int8"], "run `openpose-plus calibrate` first"),
    (["--workspace", "0"], "workspace must be a positive"),
    (["--no-gpu-fallback"], "only means something with --dla"),
])
def test_bad_options_are_named_before_tensorrt_is_needed(bundle, capsys, argv, message):
    assert main(["build-engine", bundle] + argv) == 1
    assert message in capsys.readouterr().err


def test_unusable_bundles_and_arguments(bundle, tmp_path, capsys):
    assert main(["build-engine", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with open(os.path.join(bundle, "model.onnx"), "r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01")
    assert main(["build-engine", bundle]) == 1
    assert "model.onnx checksum mismatch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["build-engine", bundle, "--precision", "fp64"])
    assert exc.value.code == 2


@no_trt
def test_int8_takes_the_qdq_model_else_the_calibration_cache(tmp_path, capsys):
    images = tmp_path / "calib"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / ("%d.png" % i)), np.random.default_rng(i).integers(0, 256, (64, 96, 3), np.uint8))
    qdq = make_bundle(tmp_path, name="qdq")
    assert main(["calibrate", qdq, "--images", str(images), "--precision", "int8", "--num-images", "3",
                 "--method", "minmax", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["build-engine", qdq, "--precision", "int8", "--dla", "1"]) == 2
    plan = _plan(capsys.readouterr().err)
    assert plan["int8"] == "explicit: QDQ model model.int8.onnx" and plan["onnx"].endswith("model.int8.onnx")
    assert plan["dla_core"] == 1
    # A bundle with only a cache builds INT8 from the FP32 graph (implicit quantisation).
    cache_only = write_bundle(str(tmp_path / "cache_only"), os.path.join(qdq, "model.onnx"), input_size=(96, 64),
                              stride=8, mean=(127.5,) * 3, std=(127.5,) * 3,
                              calibration_cache=os.path.join(qdq, "calibration.cache"))
    assert main(["build-engine", cache_only, "--precision", "int8"]) == 2
    plan = _plan(capsys.readouterr().err)
    assert plan["int8"].startswith("implicit") and plan["onnx"].endswith("model.onnx")
