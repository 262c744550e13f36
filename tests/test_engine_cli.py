"""``openpose-plus build-engine``: its arguments, the bundle check before anything else, the
route each TensorRT generation takes, the clear exit where TensorRT is absent, and (on the
stand-ins, tests/standins) a build on the device it is told.

The builder itself (edge/backends/trt_build.py) is tested in test_trt_generations.py, the engine
cache's keys, checksums and rebuild decisions in test_engine_cache.py.
"""
from __future__ import annotations

import gc
import importlib.util
import json
import os

import pytest

from edge_fixtures import make_bundle
from trt_fixtures import make_trt_bundle
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
    assert plan["precision"] == "fp16" and plan["workspace_mb"] == 256
    # what each generation would do with this bundle (it has no FP16 ONNX)
    assert plan["routes"]["TensorRT 8.5"] == "model.onnx, weakly typed, flags FP16"
    assert plan["routes"]["TensorRT 10.3"] == "model.onnx, weakly typed, flags FP16"
    assert plan["routes"]["TensorRT 11.4"].startswith("none: TensorRT 11.4.1 builds FP16 only from an FP16 ONNX")
    assert not (tmp_path / "c").exists()  # nothing written when nothing was built


@pytest.mark.parametrize("argv, message", [
    (["--precision", "fp32", "--dla", "0"], "DLA runs fp16 or int8"),
    (["--precision", "fp16", "--dla", "-1"], "DLA core must be 0 or more"),
    (["--precision", "int8"], "run `openpose-plus calibrate` first"),
    (["--workspace", "0"], "workspace must be a positive"),
    (["--no-gpu-fallback"], "only means something with --dla"),
    (["--max-batch", "-1"], "max batch must be 1 or more"),
    (["--device", "-1"], "--device must be 0 or more"),
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
def test_int8_routes_per_generation_where_tensorrt_is_absent(tmp_path, capsys):
    b = make_trt_bundle(str(tmp_path), "full")
    assert main(["build-engine", b.path, "--precision", "int8", "--dla", "1"]) == 2
    plan = _plan(capsys.readouterr().err)
    assert plan["int8"] == "explicit: QDQ model model.int8.onnx" and plan["dla_core"] == 1
    routes = plan["routes"]
    assert routes["TensorRT 8.6"].startswith("model.onnx, weakly typed, flags INT8+FP16+GPU_FALLBACK, "
                                             "calibration cache calibration.cache, DLA core 1")
    assert routes["TensorRT 10.13"].startswith("none: TensorRT 10.13.3 has no DLA support")
    assert routes["TensorRT 11.4"] == "model.int8.onnx, strongly typed, flags GPU_FALLBACK, DLA core 1"


@pytest.fixture
def no_board(monkeypatch, tmp_path):
    from openpose_plus.edge.backends import cuda_device

    monkeypatch.setattr(cuda_device, "DEVICE_TREE_MODEL", str(tmp_path / "no-device-tree"))


@pytest.mark.parametrize("column", ["8.5", "11.4"])
def test_builds_on_the_device_it_is_told(tmp_path, capsys, no_board, column):
    """``--device 1`` builds on device 1 (its context current), keyed by device 1's model."""
    from standins import installed, pycuda_driver

    b = make_trt_bundle(str(tmp_path), "full")
    cache = str(tmp_path / "engines")
    with installed(column, devices=[pycuda_driver.RTX, pycuda_driver.ORIN]) as (trt, cuda):
        assert main(["build-engine", b.path, "--precision", "int8", "--device", "1", "--cache", cache]) == 0
        out, err = capsys.readouterr()
        result = json.loads(out)
        assert trt.STANDIN.builds[-1]["device"] == 1  # built on device 1, not the runtime's default 0
        assert result["key"]["device_model"] == "Orin, 16 SMs, 62841 MiB" and result["built"]
        assert result["route"] == "int8-qdq" and result["tensorrt"] == trt.__version__
        assert "building TensorRT engine: int8" in err and "building TensorRT engine: done after" in err
        assert os.path.exists(result["engine"])
        assert main(["build-engine", b.path, "--precision", "int8", "--device", "1", "--cache", cache]) == 0
        assert json.loads(capsys.readouterr().out)["built"] is False  # cached
        assert main(["build-engine", b.path, "--device", "2", "--cache", cache]) == 1
        assert "CUDA device 2 requested, this machine has 2" in capsys.readouterr().err
        gc.collect()
        world = pycuda_driver.WORLD
        assert world.errors == [] and world.live_contexts() == 0 and world.stack == []


def test_no_route_on_this_generation_is_exit_1(tmp_path, capsys, no_board):
    from standins import installed

    b = make_trt_bundle(str(tmp_path), "plain", fp16=False, int8=False, cache=None)
    with installed("11.4"):
        assert main(["build-engine", b.path, "--precision", "fp16", "--cache", str(tmp_path / "c")]) == 1
    assert "builds FP16 only from an FP16 ONNX" in capsys.readouterr().err
