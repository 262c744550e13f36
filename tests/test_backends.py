"""Backends and the estimator on the CPU path: real onnxruntime, real C grouping."""
import importlib.util
import tracemalloc

import numpy as np
import pytest

from edge_fixtures import make_bundle, tiny_pose_onnx
from openpose_plus.commands import info
from openpose_plus.edge.backends import BackendError, availability, create_backend, select
from openpose_plus.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from openpose_plus.edge.bundle import load_bundle, write_bundle
from openpose_plus.edge.estimator import PoseEstimator
from openpose_plus.edge.geometry import Letterbox
from openpose_plus.edge.grouping import Grouper
from openpose_plus.edge.preprocess import FrameError, Preprocessor
from openpose_plus.edge.synthetic.scene import MovingScene
from openpose_plus.edge.skeleton import COCO18, Skeleton

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None and importlib.util.find_spec("pycuda") is not None


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("b")))


def _frame(w=320, h=240, index=3):
    return MovingScene(w, h, 2, seed=1).frame(index)[0]


def test_onnxruntime_writes_into_the_preallocated_outputs(bundle):
    import onnxruntime as ort

    be = OnnxRuntimeBackend(bundle)
    bufs = be.new_buffers()
    addresses = (bufs.heat_ptr, bufs.paf_ptr, bufs.input.ctypes.data)
    Preprocessor(96, 64)(_frame(), bufs.input)
    be.infer(bufs)
    ref = ort.InferenceSession(bundle.model_path(), providers=["CPUExecutionProvider"]).run(
        None, {"image": bufs.input.copy()})
    np.testing.assert_allclose(bufs.heatmaps, ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bufs.pafs, ref[1], rtol=1e-5, atol=1e-6)
    # onnxruntime itself says it wrote where our arrays live, and nothing moved.
    assert be.bound_output_pointers(bufs) == [bufs.heat_ptr, bufs.paf_ptr]
    for _ in range(3):
        be.infer(bufs)
    assert (bufs.heat_ptr, bufs.paf_ptr, bufs.input.ctypes.data) == addresses
    assert be.heatmap_shape == (1, 19, 8, 12) and be.paf_shape == (1, 38, 8, 12)


def test_auto_selection_says_why_and_matches_info(bundle):
    name, why = select("auto")
    statuses = {s.name: s for s in availability()}
    if not HAVE_TRT:
        assert name == "onnxruntime"
        assert "tensorrt" in why and "missing" in why
        assert not statuses["tensorrt"].ok
    facts = {s.name: s for s in info.collect()["backends"]}
    assert {k: (v.ok, v.detail) for k, v in facts.items()} == {k: (v.ok, v.detail) for k, v in statuses.items()}
    be = create_backend(bundle, "auto")
    assert be.name == name and why in be.reason


def test_backend_errors_are_clear(bundle, tmp_path):
    with pytest.raises(BackendError, match="unknown backend 'cuda'"):
        select("cuda")
    with pytest.raises(BackendError, match="fp16 needs the tensorrt backend"):
        OnnxRuntimeBackend(bundle, "fp16")
    with pytest.raises(BackendError, match="no int8"):
        OnnxRuntimeBackend(bundle, "int8")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendError, match="providers CUDAExecutionProvider are not available here"):
            OnnxRuntimeBackend(bundle, providers=["CUDAExecutionProvider"])


def test_backends_register_and_auto_falls_back_past_one_that_fails(bundle, monkeypatch):
    from openpose_plus.edge import backends
    from openpose_plus.edge.environment import Status

    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "BACKENDS", backends.BACKENDS)
    real = select("auto")[0]

    def flaky(bundle, precision, **options):
        raise BackendError("flaky: the device went away")

    def ort_one_thread(bundle, precision, **options):
        return OnnxRuntimeBackend(bundle, precision, threads=1)

    first = backends.BACKENDS[0]
    backends.register_backend(backends.BackendEntry("flaky", lambda: Status("flaky", True, "1.0"),
                                                    ("auto", "fp32", "fp16"), flaky), before=first)
    backends.register_backend(backends.BackendEntry("ort1", lambda: Status("ort1", False, "not for auto"),
                                                    ("auto", "fp32"), ort_one_thread))
    assert backends.BACKENDS[0] == "flaky" and backends.BACKENDS[-1] == "ort1"
    assert [s.name for s in availability()] == list(backends.BACKENDS)
    name, why = select("auto")
    assert name == "flaky" and why.startswith("auto: flaky works (1.0)") and "ort1: not for auto" in why
    # auto: the first choice fails to open, so the next that runs here, at a precision it runs
    be = create_backend(bundle, "auto", "fp16")
    assert be.name == real and "flaky failed (BackendError: flaky: the device went away), so %s" % real in be.reason
    assert be.precision == ("fp16" if real == "tensorrt" else "fp32")
    with pytest.raises(BackendError, match="the device went away"):
        create_backend(bundle, "flaky")  # asked for by name: no fallback
    one = create_backend(bundle, "ort1")  # a backend named explicitly runs even if auto would skip it
    assert one.session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(BackendError, match="choose from auto, flaky, .*ort1"):
        select("cuda")


def test_model_that_disagrees_with_its_meta_is_refused(tmp_path):
    # meta says a 3-part skeleton, the graph outputs COCO-18 channels
    sk = Skeleton("three", ("a", "b", "c"), ((0, 1), (1, 2)))
    path = write_bundle(tmp_path / "bad", tiny_pose_onnx(96, 64, COCO18), input_size=(96, 64), stride=8, skeleton=sk)
    with pytest.raises(BackendError, match="output 'heatmaps' is .*need float"):
        OnnxRuntimeBackend(load_bundle(path))
    path = write_bundle(tmp_path / "bad2", tiny_pose_onnx(96, 64), input_size=(96, 64), stride=8,
                        output_names=("heat", "pafs"))
    with pytest.raises(BackendError, match="has no output 'heat'"):
        OnnxRuntimeBackend(load_bundle(path))
    path = write_bundle(tmp_path / "bad3", tiny_pose_onnx(96, 64), input_size=(128, 64), stride=8)
    with pytest.raises(BackendError, match="input 'image' is"):
        OnnxRuntimeBackend(load_bundle(path))
    path = write_bundle(tmp_path / "bad4", b"not an onnx model", input_size=(96, 64), stride=8)
    with pytest.raises(BackendError, match="cannot load model.onnx"):
        OnnxRuntimeBackend(load_bundle(path))


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here")
def test_tensorrt_asked_for_where_it_is_absent_says_so(bundle):
    with pytest.raises(BackendError, match="TensorRT is not installed here|needs pycuda"):
        create_backend(bundle, "tensorrt")


def test_tensorrt_api_generations():
    from openpose_plus.edge.backends.tensorrt_backend import TensorRTBackend

    assert TensorRTBackend.api_generation("8.5.2.2") == "trt8"
    assert TensorRTBackend.api_generation("8.6.1") == "trt8"
    assert TensorRTBackend.api_generation("10.3.0") == "trt10"
    with pytest.raises(BackendError, match="too old"):
        TensorRTBackend.api_generation("8.4.1")


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_TRT, reason="TensorRT and pycuda are not installed (they come with JetPack)")
def test_tensorrt_matches_onnxruntime(bundle, tmp_path):  # pragma: no cover - GPU machines only
    trt_be = create_backend(bundle, "tensorrt", "fp32", cache_dir=str(tmp_path))
    ort_be = OnnxRuntimeBackend(bundle)
    a, b = trt_be.new_buffers(), ort_be.new_buffers()
    for bufs in (a, b):
        Preprocessor(96, 64)(_frame(), bufs.input)
    trt_be.infer(a)
    ort_be.infer(b)
    np.testing.assert_allclose(a.heatmaps, b.heatmaps, atol=1e-3)
    np.testing.assert_allclose(a.pafs, b.pafs, atol=1e-3)


def test_estimator_equals_the_steps_done_by_hand(bundle):
    import onnxruntime as ort

    est = PoseEstimator(bundle, backend="onnxruntime")
    frame = _frame()
    poses = est.infer(frame)
    lb = Letterbox.fit(320, 240, 96, 64)
    canvas = np.zeros((1, 64, 96, 3), np.uint8)
    Preprocessor(96, 64)(frame, canvas)
    heat, paf = ort.InferenceSession(bundle.model_path(), providers=["CPUExecutionProvider"]).run(None, {"image": canvas})
    ref = Grouper(COCO18, 8, 12).group(heat[0], paf[0]).to_image(lb, 8)
    assert len(ref) > 0
    np.testing.assert_allclose(poses.keypoints, ref.keypoints, atol=1e-3)
    np.testing.assert_allclose(poses.scores, ref.scores, atol=1e-5)
    # image pixels: every found part lies within the frame's letterboxed area
    found = poses.keypoints[poses.keypoints[..., 2] > 0]
    assert (found[:, 0] >= -8).all() and (found[:, 0] <= 328).all()


def test_grouping_reads_the_backend_output_buffer_itself(bundle):
    """Zero copy on the CPU path: the address grouping reads is where onnxruntime wrote."""
    est = PoseEstimator(bundle, backend="onnxruntime")
    seen = []
    real = est.grouper.group_ptr

    def recording(heat_ptr, paf_ptr, *rest):
        seen.append((int(heat_ptr), int(paf_ptr)))
        return real(heat_ptr, paf_ptr, *rest)

    est.grouper.group_ptr = recording
    est.infer(_frame())
    assert seen == [tuple(est.backend.bound_output_pointers(est.buffers))]


def test_frame_loop_allocations_stay_flat(bundle):
    est = PoseEstimator(bundle, backend="onnxruntime", threads=1)
    frames = [_frame(160, 120, i) for i in range(4)]
    for f in frames * 25:  # warm up caches, letterboxes, onnxruntime arenas
        est.infer(f)
    tracemalloc.start()
    try:
        for i in range(200):
            est.infer(frames[i % 4])
        base, _ = tracemalloc.get_traced_memory()
        for i in range(3000):
            est.infer(frames[i % 4])
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - base < 64 * 1024, "frame loop grew by %d bytes over 3000 frames" % (end - base)
    assert peak - base < 512 * 1024


def test_bad_frames_are_clear_errors_and_harmless(bundle):
    est = PoseEstimator(bundle, backend="onnxruntime")
    good = est.infer(_frame())
    for bad, msg in [(np.zeros((10, 10), np.uint8), "H x W x 3"),
                     (np.zeros((10, 10, 4), np.uint8), "H x W x 3"),
                     (np.zeros((10, 10, 3), np.float32), "uint8"),
                     (np.zeros((1, 1, 3), np.uint8), "too small"),
                     ("frame.jpg", "numpy array")]:
        with pytest.raises(FrameError, match=msg):
            est.infer(bad)
    again = est.infer(_frame())
    np.testing.assert_array_equal(good.keypoints, again.keypoints)


def test_letterbox_fills_the_buffer_in_place():
    pre = Preprocessor(96, 64, pad_value=7)
    buf = np.zeros((1, 64, 96, 3), np.uint8)
    addr = buf.ctypes.data
    frame = np.full((100, 100, 3), 200, np.uint8)
    lb = pre(frame, buf)
    assert buf.ctypes.data == addr
    assert (lb.pad_x, lb.pad_y, lb.resized_size) == (16.0, 0.0, (64, 64))
    assert (buf[0, :, :16] == 7).all() and (buf[0, :, 80:] == 7).all() and (buf[0, :, 16:80] == 200).all()
    wide = np.full((30, 120, 3), 50, np.uint8)  # size change: pads refilled
    lb = pre(wide, buf)
    assert lb.resized_size == (96, 24)
    assert (buf[0, :20] == 7).all() and (buf[0, 20:44] == 50).all() and (buf[0, 44:] == 7).all()


def test_nan_maps_give_no_people_not_a_crash(tmp_path):
    # std = 0 in the graph: every pixel divides by zero, the maps are NaN/inf
    model = tiny_pose_onnx(96, 64, std=(0.0, 0.0, 0.0), mean=(0.0, 0.0, 0.0))
    path = write_bundle(tmp_path / "nan", model, input_size=(96, 64), stride=8)
    est = PoseEstimator(path, backend="onnxruntime")
    poses = est.infer(np.zeros((64, 96, 3), np.uint8))
    assert not np.isfinite(est.buffers.heatmaps).all()
    assert len(poses) == 0


def test_stream_yields_frames_and_their_poses(bundle):
    est = PoseEstimator(bundle, backend="onnxruntime")
    got = list(est.stream("synthetic://160x120?people=2&frames=4"))
    assert len(got) == 4
    for frame, poses in got:
        assert frame.shape == (120, 160, 3) and poses.keypoints.shape[1:] == (18, 3)
    assert len(list(est.stream("synthetic://160x120?people=2", frames=3))) == 3


def test_info_prints_what_auto_picks_and_why():
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "openpose_plus.commands", "info", "--json"],
                          capture_output=True, text=True, timeout=120)
    facts = json.loads(proc.stdout)
    name, why = select("auto")
    assert facts["auto"] == "%s (%s)" % (name, why)
    text = subprocess.run([sys.executable, "-m", "openpose_plus.commands", "info"], capture_output=True, text=True,
                          timeout=120).stdout
    assert "auto -> %s" % name in text
