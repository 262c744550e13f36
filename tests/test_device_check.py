"""``openpose-plus check-device``: where TensorRT or a GPU is absent (this machine), for real; the
rest (each precision built, its maps compared with onnxruntime's, frames timed through the
pipeline, the zero-copy verdict, the report) on the TensorRT, pycuda and jetson_utils stand-ins
(tests/standins: those libraries need a Jetson)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from standins import installed, jetson_utils_standin
from trt_fixtures import make_trt_bundle
from openpose_plus.commands import main
from openpose_plus.edge import device_check as dc
from openpose_plus.edge import environment as env


@pytest.fixture(autouse=True)
def no_board(monkeypatch, tmp_path):
    """The stand-in devices are the machine: the test host's own device tree is not read."""
    from openpose_plus.edge.backends import cuda_device

    monkeypatch.setattr(cuda_device, "DEVICE_TREE_MODEL", str(tmp_path / "no-device-tree"))


@pytest.fixture
def gpu_here(monkeypatch):
    monkeypatch.setattr(env, "gpu_devices", lambda: ["/dev/nvhost-gpu"])


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("dc"))
    return {"full": make_trt_bundle(d, "full"), "plain": make_trt_bundle(d, "plain", fp16=False, int8=False, cache=None)}


def _options(tmp_path, **kw):
    kw.setdefault("frames", 6)
    kw.setdefault("compare_frames", 2)
    return dc.CheckOptions(cache_dir=str(tmp_path / "engines"), **kw)


# -- no TensorRT, no GPU: for real -------------------------------------------------------------------------
def test_without_tensorrt_it_says_so_and_exits_2(bundles, tmp_path, capsys):
    if env.probe_module("tensorrt").ok:  # pragma: no cover - never on a test machine
        pytest.skip("TensorRT is installed here")
    report_path = tmp_path / "r.json"
    assert main(["check-device", bundles["plain"].path, "--report", str(report_path)]) == 2
    out = capsys.readouterr()
    assert "tensorrt cannot run here: missing: tensorrt, pycuda" in out.err and "run this on the device" in out.err
    assert "machine:" in out.out and "TensorRT absent" in out.out
    report = json.loads(report_path.read_text())
    assert report["ok"] is False and report["precisions"] == {} and "missing: tensorrt" in report["reason"]
    assert report["machine"]["libraries"]["tensorrt"] is None and report["machine"]["libraries"]["onnxruntime"]


def test_with_tensorrt_but_no_gpu_it_says_so(bundles, tmp_path):
    if env.gpu_devices():  # pragma: no cover - a GPU machine
        pytest.skip("this machine has an NVIDIA GPU")
    with installed("10.3"):
        report = dc.check_device(bundles["plain"].path, _options(tmp_path))
    assert report["reason"] == "tensorrt cannot run here: no NVIDIA GPU device node" and not report["precisions"]


# -- the device side on the stand-ins -------------------------------------------------------------------------
ROUTES = {"8.6": {"fp32": "fp32", "fp16": "fp16-flag", "int8": "int8-qdq"},
          "11.4": {"fp32": "fp32", "fp16": "fp16-onnx", "int8": "int8-qdq"}}


@pytest.mark.parametrize("column", sorted(ROUTES))
def test_each_precision_is_built_compared_and_timed(bundles, gpu_here, tmp_path, column):
    lines = []
    with installed(column) as (trt, _):
        report = dc.check_device(bundles["full"].path, _options(tmp_path), say=lines.append)
        again = dc.check_device(bundles["full"].path, _options(tmp_path, precisions=["fp16"]))
    assert report["ok"] and report["reason"] is None, report["reason"]
    assert list(report["precisions"]) == ["fp32", "fp16", "int8"]
    assert report["machine"]["libraries"]["tensorrt"] == trt.__version__
    for p, r in report["precisions"].items():
        assert r["ok"] and r["route"] == ROUTES[column][p] and r["engine"] == "built"
        assert r["pipeline"]["frames"] == 6 and r["pipeline"]["fps"] > 0 and r["pipeline"]["workers"] == 1
        assert set(r["pipeline"]["stage_fps"]) == {"capture", "preprocess", "infer", "group", "track", "sinks"}
        assert r["zero_copy"]["network_io"] is True and r["zero_copy"]["capture"] is None
        assert r["zero_copy"]["frame_path"] is True  # synthetic frames in host memory, network I/O mapped
        assert r["maps"]["frames"] == 2 and r["maps"]["reference"] == "onnxruntime fp32 (model.onnx)"
    maps = {p: r["maps"] for p, r in report["precisions"].items()}
    assert maps["fp32"]["heatmaps"]["max_abs"] <= 1e-6 and maps["fp32"]["pafs"]["max_abs"] <= 1e-6
    for p in ("fp16", "int8"):  # a lower precision costs something, not much
        worst = max(maps[p]["heatmaps"]["max_abs"], maps[p]["pafs"]["max_abs"])
        assert worst < 0.5, (p, maps[p])
        # the stand-in runs the graph the route builds from: the fp16 flag's is the fp32 graph
        assert (worst > 0) == (ROUTES[column][p] != "fp16-flag"), (p, maps[p])
        assert maps[p]["heatmaps"]["mean_abs"] <= maps[p]["heatmaps"]["max_abs"]
    assert lines[0].startswith("machine: ") and any("maps vs onnxruntime fp32" in l for l in lines)
    assert list(again["precisions"]) == ["fp16"] and again["precisions"]["fp16"]["engine"] == "cached"
    path = tmp_path / "report.json"
    dc.write_report(report, str(path))
    assert json.loads(path.read_text())["precisions"]["int8"]["route"] == "int8-qdq"


def test_a_precision_that_cannot_be_built_fails_alone(bundles, gpu_here, tmp_path):
    with installed("11.4"):
        report = dc.check_device(bundles["plain"].path, _options(tmp_path))
    fp32, fp16 = report["precisions"]["fp32"], report["precisions"]["fp16"]
    assert fp32["ok"] and not fp16["ok"] and report["ok"] is False and report["reason"] == "failed: fp16"
    assert "FP16 only from an FP16 ONNX" in fp16["error"] and "pipeline" not in fp16
    assert "FAILED" in dc.describe_precision(fp16)


def test_fp32_maps_that_disagree_with_onnxruntime_fail(bundles, gpu_here, tmp_path, monkeypatch):
    from openpose_plus.edge.backends.tensorrt_backend import TensorRTBackend

    real = TensorRTBackend.infer

    def off(self, buffers):
        real(self, buffers)
        buffers.heatmaps += 0.01  # an engine that computes something else

    with installed("10.3"):
        monkeypatch.setattr(TensorRTBackend, "infer", off)
        report = dc.check_device(bundles["plain"].path, _options(tmp_path, precisions=["fp32"]))
    r = report["precisions"]["fp32"]
    assert not r["ok"] and "differ from onnxruntime's by up to 0.01" in r["error"]
    assert abs(r["maps"]["heatmaps"]["max_abs"] - 0.01) < 1e-6 and r["maps"]["pafs"]["max_abs"] <= 1e-6


def test_a_camera_through_jetson_utils_is_zero_copy_end_to_end(bundles, gpu_here, tmp_path, monkeypatch):
    ju = jetson_utils_standin.fresh()
    monkeypatch.setitem(sys.modules, "jetson_utils", ju)
    ju.WORLD.plug("csi://0")
    with installed("10.3"):
        report = dc.check_device(bundles["plain"].path,
                                 _options(tmp_path, precisions=["fp32"], source="csi://0?width=160&height=120"))
    r = report["precisions"]["fp32"]
    assert r["ok"], r.get("error")
    assert r["zero_copy"]["capture"] is True and r["zero_copy"]["frame_path"] is True
    assert "jetson_utils frames in mapped memory" in r["zero_copy"]["capture_detail"]
    assert report["machine"]["libraries"]["jetson_utils"] == "stand-in"
    assert r["pipeline"]["frames"] == 6 and r["pipeline"]["capture_drops"] == 0  # a camera waits: N frames measured


def test_the_command_prints_what_it_found_and_writes_the_report(bundles, gpu_here, tmp_path, capsys):
    path = tmp_path / "device-check.json"
    with installed("10.13"):
        rc = main(["check-device", bundles["full"].path, "--frames", "4", "--compare-frames", "1",
                   "--cache", str(tmp_path / "engines"), "--report", str(path)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    text = out.out
    for want in ("machine: ", "fp32  engine built in", "int8  engine built in", "route int8-qdq (model.int8.onnx",
                 "maps vs onnxruntime fp32 (model.onnx), 1 frames", "pipeline, 4 frames", "zero-copy: yes",
                 "ok: every precision built, agreed with onnxruntime and ran"):
        assert want in text, (want, text)
    assert "building TensorRT engine" in out.err  # the builder's progress, while it runs
    assert json.loads(path.read_text())["ok"] is True


def test_bad_options_are_named(bundles, tmp_path, capsys):
    assert main(["check-device", bundles["plain"].path, "--frames", "0", "--report", str(tmp_path / "r")]) == 1
    assert "at least 1" in capsys.readouterr().err
    assert main(["check-device", str(tmp_path / "nope"), "--report", str(tmp_path / "r")]) == 1


def test_map_errors():
    a = np.zeros((1, 2, 3, 3), np.float32)
    b = a.copy()
    b[0, 1, 2, 2] = 0.5
    assert dc.map_errors(b, a) == {"max_abs": 0.5, "mean_abs": 0.5 / 18}
