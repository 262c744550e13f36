"""The TensorRT backend, builder and engine cache driven through every TensorRT generation (8.5,
8.6, 10.3, 10.13, 11.4) on the stand-ins (tests/standins: TensorRT and pycuda cannot exist on a
test machine): which route each precision takes, auto precision and its fallback, the cache,
the CUDA context's lifetime, DLA, dynamic batch, dtypes, timing cache and progress."""
from __future__ import annotations

import gc
import json
import re
import logging
import os

import numpy as np
import onnxruntime as ort
import pytest

from standins import COLUMNS, installed, pycuda_driver
from standins.pycuda_driver import ORIN, ORIN_NANO, RTX, XAVIER
from trt_fixtures import CACHE_8601, make_trt_bundle
from openpose_plus.edge import environment as env
from openpose_plus.edge.backends import BackendError, create_backend
from openpose_plus.edge.backends import trt_build
from openpose_plus.edge.backends.engine_cache import EngineCache
from openpose_plus.edge.backends.tensorrt_backend import TensorRTBackend
from openpose_plus.edge.backends.trt_api import Generation
from openpose_plus.edge.backends.trt_build import BuildOptions, RouteError, plan_build

ROUTES = {  # column -> precision -> (route, ONNX, strongly typed) for a bundle with every model
    "8.5": {"fp32": ("fp32", "model.onnx", False), "fp16": ("fp16-flag", "model.onnx", False),
            "int8": ("int8-qdq", "model.int8.onnx", False)},
    "8.6": {"fp32": ("fp32", "model.onnx", False), "fp16": ("fp16-flag", "model.onnx", False),
            "int8": ("int8-qdq", "model.int8.onnx", False)},
    "10.3": {"fp32": ("fp32", "model.onnx", False), "fp16": ("fp16-onnx", "model.fp16.onnx", True),
             "int8": ("int8-qdq", "model.int8.onnx", True)},
    "10.13": {"fp32": ("fp32", "model.onnx", False), "fp16": ("fp16-onnx", "model.fp16.onnx", True),
              "int8": ("int8-qdq", "model.int8.onnx", True)},
    "11.4": {"fp32": ("fp32", "model.onnx", True), "fp16": ("fp16-onnx", "model.fp16.onnx", True),
             "int8": ("int8-qdq", "model.int8.onnx", True)},
}


@pytest.fixture(autouse=True)
def no_board(monkeypatch, tmp_path):
    """The stand-in devices are the machine: the test host's own device tree (a Jetson's) is not read."""
    from openpose_plus.edge.backends import cuda_device

    monkeypatch.setattr(cuda_device, "DEVICE_TREE_MODEL", str(tmp_path / "no-device-tree"))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("trt"))
    return {"full": make_trt_bundle(d, "full"),
            "plain": make_trt_bundle(d, "plain", fp16=False, int8=False, cache=None),
            "int32": make_trt_bundle(d, "int32", int32_bias=True, cache=None),
            "cache_only": make_trt_bundle(d, "cache_only", fp16=False, int8=False),
            "dynamic": make_trt_bundle(d, "dynamic", int8=False, cache=None, dynamic=True),
            "half_io": make_trt_bundle(d, "half_io", int8=False, cache=None, fp16_keep_io=False),
            "renamed": _renamed(d)}


def _renamed(d):
    """A bundle whose meta names outputs the graph does not have."""
    from edge_fixtures import tiny_pose_onnx
    from openpose_plus.edge.bundle import load_bundle, write_bundle

    return load_bundle(write_bundle(os.path.join(d, "renamed"), tiny_pose_onnx(96, 64), input_size=(96, 64), stride=8,
                                    output_names=("heat", "pafs")))


def _frame(bufs, seed=1):
    bufs.input[...] = np.random.default_rng(seed).integers(0, 256, bufs.input.shape, np.uint8)


def _reference(bundle, onnx_name, image):
    return ort.InferenceSession(os.path.join(bundle.path, onnx_name), providers=["CPUExecutionProvider"]).run(
        None, {bundle.input_name: image})


def _clean(trt):
    """Nothing left: no context retained or pushed, no memory, no TensorRT object, no misuse."""
    gc.collect()
    world = pycuda_driver.WORLD
    assert world.errors == []
    assert world.live_contexts() == 0 and world.stack == [] and world.live_allocations() == 0
    assert all(n == 0 for n in trt.STANDIN.live.values()), trt.STANDIN.live


# -- routes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_each_generation_builds_each_precision_by_its_route_and_runs_it(bundles, tmp_path, column, precision):
    b = bundles["full"]
    route, onnx_name, typed = ROUTES[column][precision]
    with installed(column) as (trt, cuda):
        be = TensorRTBackend(b, precision, cache=EngineCache(str(tmp_path)))
        assert (be.plan.route, be.plan.onnx, be.plan.strongly_typed) == (route, onnx_name, typed)
        header = trt.STANDIN.builds[-1]
        assert header["strongly_typed"] == typed
        assert header["fp16_flag"] == (precision != "fp32" and not typed)  # flags only where weakly typed
        assert header["int8_flag"] == (precision == "int8" and not typed)
        bufs = be.new_buffers()
        _frame(bufs)
        be.infer(bufs)
        heat, paf = _reference(b, onnx_name, bufs.input)
        np.testing.assert_array_equal(bufs.heatmaps, heat)
        np.testing.assert_array_equal(bufs.pafs, paf)
        be.close()
        _clean(trt)


def test_plan_table_without_tensorrt(bundles):
    """The decisions themselves, for every column and for the bundles older ones have."""
    full, plain, cache_only = bundles["full"], bundles["plain"], bundles["cache_only"]
    for column, release in trt_build._COLUMN_RELEASE.items():
        gen = Generation(release)
        for precision, (route, onnx_name, typed) in ROUTES[column].items():
            plan = plan_build(full, BuildOptions(precision), gen)
            assert (plan.route, plan.onnx, plan.strongly_typed) == (route, onnx_name, typed)
    # no FP16 ONNX: 8.x/10.x build FP16 by the flag, 11.x cannot
    assert plan_build(plain, BuildOptions("fp16"), Generation("10.3.0")).route == "fp16-flag"
    with pytest.raises(RouteError, match="FP16 only from an FP16 ONNX.*model.fp16.onnx"):
        plan_build(plain, BuildOptions("fp16"), Generation("11.4.1"))
    # only a calibration cache: the implicit route on 8.x/10.x, none on 11.x
    assert plan_build(cache_only, BuildOptions("int8"), Generation("8.5.2")).route == "int8-cache"
    assert plan_build(cache_only, BuildOptions("int8"), Generation("10.3.0")).route == "int8-cache"
    with pytest.raises(RouteError, match="calibrators TensorRT 11 removed"):
        plan_build(cache_only, BuildOptions("int8"), Generation("11.4.1"))
    # DLA: the cache route for INT8 before 11.4; none in 10.8-11.3; Q/DQ on 11.4
    assert plan_build(full, BuildOptions("int8", dla_core=0), Generation("8.5.2")).route == "int8-cache"
    assert plan_build(full, BuildOptions("int8", dla_core=0), Generation("10.3.0")).route == "int8-cache"
    assert plan_build(full, BuildOptions("fp16", dla_core=0), Generation("10.3.0")).route == "fp16-flag"
    assert plan_build(full, BuildOptions("int8", dla_core=0), Generation("11.4.1")).route == "int8-qdq"
    for version in ("10.8.0", "10.13.3", "11.1.0"):
        with pytest.raises(RouteError, match="no DLA support"):
            plan_build(full, BuildOptions("fp16", dla_core=0), Generation(version))
    with pytest.raises(RouteError, match="needs the bundle's calibration cache"):
        plan_build(bundles["int32"], BuildOptions("int8", dla_core=0), Generation("8.6.2"))
    routes = trt_build.routes(plain, BuildOptions("fp16"))
    assert routes["TensorRT 8.5"].startswith("model.onnx, weakly typed, flags FP16")
    assert routes["TensorRT 11.4"].startswith("none: TensorRT 11.4.1 builds FP16 only")


def test_generations_and_versions():
    assert Generation("8.5.2.2").column == "8.5" and Generation("8.6.2").column == "8.6"
    assert Generation("10.3.0").column == "10.3" and Generation("10.7.0").column == "10.3"
    assert Generation("10.8.0").column == "10.13" and Generation("10.13.3.9.post1").column == "10.13"
    assert Generation("11.4.1").column == "11.4" and Generation("11.0.0").column == "11.4"
    assert Generation("8.6.1").code == 8601 and Generation("10.3.0").code == 100300
    assert Generation("10.7.0").has_dla and not Generation("10.8.0").has_dla
    assert not Generation("11.3.0").has_dla and Generation("11.4.1").has_dla
    for bad, msg in (("8.4.1", "too old"), ("9.3.0", "9.x shipped on no JetPack"), ("x", "cannot read")):
        with pytest.raises(ValueError, match=msg):
            Generation(bad)


def test_removed_names_raise_as_the_real_bindings_do():
    with installed("11.4") as (trt, _):
        for owner, name in ((trt.BuilderFlag, "FP16"), (trt.BuilderFlag, "INT8"),
                            (trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"), (trt, "IInt8EntropyCalibrator2")):
            with pytest.raises(AttributeError):
                getattr(owner, name)
        with pytest.raises(AttributeError):
            trt.Builder(trt.Logger()).platform_has_fast_fp16
        config = trt.Builder(trt.Logger()).create_builder_config()
        with pytest.raises(AttributeError):
            config.int8_calibrator = object()
    with installed("8.6") as (trt, _):
        assert not hasattr(trt, "IProgressMonitor")
        assert not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")


# -- auto precision and fallback ----------------------------------------------------------------------
@pytest.mark.parametrize("column, want", [("8.5", "fp16"), ("10.3", "fp16"), ("11.4", "fp16")])
def test_auto_falls_to_the_next_precision_when_int8_does_not_parse(bundles, tmp_path, column, want):
    with installed(column) as (trt, cuda):
        be = TensorRTBackend(bundles["int32"], "auto", cache=EngineCache(str(tmp_path)))
        assert be.precision == want
        assert "int8 failed (RuntimeError: TensorRT" in be.reason and "DequantizeLinear must be" in be.reason
        assert "INT32" in be.reason
        be.close()
        _clean(trt)


def test_auto_without_fp16_onnx_on_11_is_fp32_and_int8_first_elsewhere(bundles, tmp_path):
    with installed("11.4") as (trt, _):
        be = TensorRTBackend(bundles["plain"], "auto", cache=EngineCache(str(tmp_path)))
        assert be.precision == "fp32" and be.plan.strongly_typed
        be.close()
    with installed("10.3") as (trt, _):
        be = TensorRTBackend(bundles["full"], "auto", cache=EngineCache(str(tmp_path)))
        assert be.precision == "int8"
        be.close()


def test_auto_asks_the_compute_capability_not_a_builder(bundles, tmp_path):
    """A cached start makes no Builder (the old auto precision made one on every start)."""
    cache = EngineCache(str(tmp_path))
    with installed("10.3") as (trt, _):
        TensorRTBackend(bundles["full"], "auto", cache=cache).close()
        assert trt.STANDIN.made.get("Builder") == 1
    with installed("10.3") as (trt, _):
        be = TensorRTBackend(bundles["full"], "auto", cache=cache)
        assert "cached" in be.reason and be.precision == "int8"
        assert trt.STANDIN.made.get("Builder", 0) == 0
        be.close()


@pytest.fixture
def gpu_here(monkeypatch):
    monkeypatch.setattr(env, "gpu_devices", lambda: ["/dev/nvhost-gpu"])


def test_create_backend_auto_falls_back_to_onnxruntime_on_any_failure(bundles, gpu_here, monkeypatch, caplog,
                                                                      tmp_path):
    b = bundles["plain"]
    monkeypatch.setenv("OPENPOSE_PLUS_ENGINE_CACHE", str(tmp_path))
    with installed("11.4", devices=[]) as (trt, cuda):  # pycuda's RuntimeError is not the builtin one
        with caplog.at_level(logging.WARNING):
            be = create_backend(b, "auto")
        assert be.name == "onnxruntime"
        assert "tensorrt failed (RuntimeError: cuInit failed: no CUDA-capable device" in be.reason
        assert "falling back to onnxruntime" in caplog.text
        assert not issubclass(cuda.RuntimeError, RuntimeError) and issubclass(cuda.Error, Exception)
        with pytest.raises(cuda.RuntimeError):
            create_backend(b, "tensorrt")
    with installed("10.3") as (trt, cuda):  # a TypeError out of TensorRT's bindings
        def broken(self, *a, **k):
            raise TypeError("create_network(): incompatible function arguments")
        monkeypatch.setattr(trt.Builder, "create_network", broken)
        be = create_backend(b, "auto")
        assert be.name == "onnxruntime" and "TypeError: create_network()" in be.reason
        be.close()
        _clean(trt)


def test_create_backend_auto_picks_tensorrt_where_it_works(bundles, gpu_here, tmp_path):
    with installed("10.13") as (trt, cuda):
        be = create_backend(bundles["full"], "auto", cache_dir=str(tmp_path))
        assert be.name == "tensorrt" and be.precision == "int8" and "auto: tensorrt works" in be.reason
        be.close()
        _clean(trt)


# -- lifetime ---------------------------------------------------------------------------------------
def test_one_primary_context_pushed_only_around_use_and_torn_down_in_order(bundles, tmp_path):
    with installed("8.6") as (trt, cuda):
        world = pycuda_driver.WORLD
        be = TensorRTBackend(bundles["full"], "fp16", cache=EngineCache(str(tmp_path)))
        assert world.created == [] and world.live_retains() == {0: 1} and world.stack == []
        bufs = be.new_buffers()
        assert world.stack == []
        be.infer(bufs)
        assert world.stack == [] and be._done._waits == 1  # waited on the BLOCKING_SYNC event
        mark = len(world.log)
        be.close()
        tail = world.log[mark:]
        order = [e for e in tail if e.startswith(("destroy", "pop", "detach", "push"))]
        assert order == ["push 0", "destroy IExecutionContext", "destroy ICudaEngine", "destroy Runtime",
                         "pop 0", "detach 0 (0)"], order
        be.close()  # twice is harmless
        _clean(trt)


@pytest.mark.parametrize("column", ["8.5", "11.4"])
def test_a_failed_start_leaks_nothing(bundles, tmp_path, column):
    with installed(column) as (trt, cuda):
        # fails while building (the parser refuses the graph)
        with pytest.raises(BackendError, match="DequantizeLinear must be"):
            TensorRTBackend(bundles["int32"], "int8", cache=EngineCache(str(tmp_path)))
        _clean(trt)
        # fails after the engine and its execution context exist (its I/O is not the bundle's)
        with pytest.raises(BackendError, match="do not match the bundle's input 'image' and outputs"):
            TensorRTBackend(bundles["renamed"], "fp32", cache=EngineCache(str(tmp_path)))
        _clean(trt)


def test_wrong_dtypes_are_refused_and_auto_moves_on(bundles, tmp_path):
    with installed("11.4") as (trt, cuda):
        with pytest.raises(BackendError, match="engine tensor 'heatmaps' is <DataType.HALF"):
            TensorRTBackend(bundles["half_io"], "fp16", cache=EngineCache(str(tmp_path)))
        _clean(trt)
        be = TensorRTBackend(bundles["half_io"], "auto", cache=EngineCache(str(tmp_path)))
        assert be.precision == "fp32" and "fp16 failed" in be.reason
        be.close()
        _clean(trt)


def test_discrete_gpu_uses_device_buffers_and_copies(bundles, tmp_path):
    with installed("10.13", devices=[RTX]) as (trt, cuda):
        be = TensorRTBackend(bundles["full"], "fp32", cache=EngineCache(str(tmp_path)))
        assert not be.zero_copy and "device buffers" in be.reason
        bufs = be.new_buffers()
        _frame(bufs, 3)
        be.infer(bufs)
        heat, _ = _reference(bundles["full"], "model.onnx", bufs.input)
        np.testing.assert_array_equal(bufs.heatmaps, heat)
        be.close()
        _clean(trt)


# -- the cache ------------------------------------------------------------------------------------------
def test_cache_hit_then_rebuild_of_an_entry_tensorrt_refuses(bundles, tmp_path):
    cache = EngineCache(str(tmp_path))
    with installed("10.3") as (trt, _):
        TensorRTBackend(bundles["full"], "fp16", cache=cache).close()
        be = TensorRTBackend(bundles["full"], "fp16", cache=cache)
        assert "engine cached (cached engine verified)" in be.reason
        key = be.key
        be.close()
    # the same bytes under a valid checksum, but not an engine of this TensorRT: rebuilt
    engine_path, sidecar = cache.paths(key)
    cache.store(key, b"not an engine")
    with installed("10.3") as (trt, _):
        be = TensorRTBackend(bundles["full"], "fp16", cache=cache)
        assert "engine built" in be.reason and trt.STANDIN.made["Builder"] == 1
        be.close()
        _clean(trt)


def test_every_build_input_is_in_the_key(bundles):
    full = bundles["full"]
    info = _info(ORIN)
    base = trt_build.cache_key(full, BuildOptions("int8", dla_core=0), "8.5.2", info)
    variants = [
        trt_build.cache_key(full, BuildOptions("int8", dla_core=0, gpu_fallback=False), "8.5.2", info),
        trt_build.cache_key(full, BuildOptions("int8", dla_core=1), "8.5.2", info),
        trt_build.cache_key(full, BuildOptions("int8", dla_core=0, max_batch=4), "8.5.2", info),
        trt_build.cache_key(full, BuildOptions("int8", dla_core=0, workspace_mb=512), "8.5.2", info),
        trt_build.cache_key(full, BuildOptions("int8", dla_core=0), "8.5.2", _info(ORIN_NANO)),
        trt_build.cache_key(full, BuildOptions("int8", dla_core=0), "8.6.2", info),
    ]
    assert base.calibration_sha256 == full.file_sha256("calibration.cache") and base.route == "int8-cache"
    assert len({k.digest() for k in [base] + variants}) == 1 + len(variants)
    # every Orin is "Orin" to pycuda; the board, SMs and memory tell them apart
    assert _info(ORIN).name == _info(ORIN_NANO).name == "Orin"
    assert "AGX Orin" in base.device_model and "16 SMs" in base.device_model


def _info(spec):
    from openpose_plus.edge.backends.cuda_device import DeviceInfo

    return DeviceInfo(0, spec.name, "%d.%d" % spec.cc, spec.sms, spec.memory_mib, spec.integrated, True, spec.board)


def test_device_model_is_read_from_the_device_tree(tmp_path):
    from openpose_plus.edge.backends.cuda_device import describe_device

    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\x00")
    with installed("10.3", devices=[ORIN, RTX]) as (trt, cuda):
        cuda.init()
        jetson = describe_device(cuda, 0, device_tree=str(model))
        assert jetson.board == "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"
        assert jetson.model.startswith("NVIDIA Jetson Orin NX") and jetson.zero_copy
        desktop = describe_device(cuda, 1, device_tree=str(model))  # not integrated: the tree is not its board
        assert desktop.board == "" and desktop.model.startswith("NVIDIA GeForce RTX 4090, 128 SMs")
        with pytest.raises(ValueError, match="CUDA device 2 requested, this machine has 2"):
            describe_device(cuda, 2)


# -- DLA ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("column", ["8.5", "10.3"])
def test_dla_int8_takes_the_relabelled_calibration_cache_and_runs_on_its_core(bundles, tmp_path, column, caplog):
    with installed(column, devices=[XAVIER]) as (trt, cuda):
        with caplog.at_level(logging.INFO):
            be = TensorRTBackend(bundles["full"], "int8", dla_core=1, cache=EngineCache(str(tmp_path)))
        header = trt.STANDIN.builds[-1]
        assert be.plan.route == "int8-cache" and header["calibrated"] and header["dla_core"] == 1
        assert header["gpu_fallback"] and not header["qdq"]
        assert "relabelled for %s" % trt.__version__ in caplog.text
        assert be.engine._runs_on_dla_core == 1  # Runtime.DLA_core was set before deserializing
        be.close()
        _clean(trt)


def test_a_cache_tensorrt_would_ignore_fails_the_build_instead_of_calibrating_on_nothing():
    """The stand-in's rule the relabelling exists for: another version's header means no scales."""
    with installed("8.5") as (trt, cuda):
        cuda.init()
        ctx = cuda.Device(0).retain_primary_context()
        ctx.push()
        try:
            builder = trt.Builder(trt.Logger())
            net = builder.create_network(1)
            parser = trt.OnnxParser(net, trt.Logger())
            from edge_fixtures import tiny_pose_onnx

            assert parser.parse(tiny_pose_onnx(96, 64))
            config = builder.create_builder_config()
            config.set_flag(trt.BuilderFlag.INT8)
            calib = trt_build._entropy_calibrator(trt, CACHE_8601)
            config.int8_calibrator = calib
            assert builder.build_serialized_network(net, config) is None
            assert "Calibration failure" in trt.STANDIN.build_errors[-1]
            del builder, net, parser, config, calib
        finally:
            cuda.Context.pop()
            ctx.detach()
        _clean(trt)


def test_dla_where_the_generation_or_device_has_none(bundles, tmp_path):
    with installed("10.13", version="10.9.0") as (trt, _):
        with pytest.raises(BackendError, match="RouteError: TensorRT 10.9.0 has no DLA support"):
            TensorRTBackend(bundles["full"], "fp16", dla_core=0, cache=EngineCache(str(tmp_path)))
        _clean(trt)
    with installed("11.4", devices=[ORIN_NANO]) as (trt, _):
        with pytest.raises(BackendError, match="DLA core 0 requested; TensorRT 11.4.1.3 sees 0"):
            TensorRTBackend(bundles["full"], "fp16", dla_core=0, cache=EngineCache(str(tmp_path)))
        _clean(trt)
    with installed("11.4", devices=[ORIN]) as (trt, _):  # 11.4.1 on AGX Orin: DLA, from Q/DQ
        be = TensorRTBackend(bundles["full"], "int8", dla_core=1, cache=EngineCache(str(tmp_path)))
        assert be.plan.route == "int8-qdq" and be.engine._runs_on_dla_core == 1
        be.close()
        _clean(trt)


# -- dynamic batch ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("column", ["8.6", "11.4"])
def test_dynamic_batch_gets_a_profile_and_resolved_shapes(bundles, tmp_path, column):
    b = bundles["dynamic"]
    with installed(column) as (trt, _):
        be = TensorRTBackend(b, "fp32", cache=EngineCache(str(tmp_path)), max_batch=4)
        header = trt.STANDIN.builds[-1]
        assert header["profile"] == {"image": [[1, 64, 96, 3], [4, 64, 96, 3], [4, 64, 96, 3]]}
        assert tuple(be.engine.get_tensor_shape("heatmaps"))[0] == -1
        assert tuple(be.context.get_tensor_shape("heatmaps")) == be.heatmap_shape  # resolved, no -1
        bufs = be.new_buffers()
        _frame(bufs)
        be.infer(bufs)
        heat, _ = _reference(b, "model.onnx", bufs.input)
        np.testing.assert_array_equal(bufs.heatmaps, heat)
        be.close()
        _clean(trt)


def test_a_static_input_that_disagrees_with_the_bundle_is_named(tmp_path):
    from trt_fixtures import add_model
    from edge_fixtures import tiny_pose_onnx

    b = make_trt_bundle(str(tmp_path), "wrong", fp16=False, int8=False, cache=None)
    add_model(b.path, "fp32", tiny_pose_onnx(128, 64), name="model.onnx")
    from openpose_plus.edge.bundle import load_bundle

    with installed("10.3") as (trt, _):
        with pytest.raises(BackendError, match=r"ONNX input 'image' has shape \[1, 64, 128, 3\]"):
            TensorRTBackend(load_bundle(b.path), "fp32", cache=EngineCache(str(tmp_path / "c")))
        _clean(trt)


# -- timing cache and progress ---------------------------------------------------------------------------------
def test_timing_cache_beside_the_engines_is_kept_and_reused(bundles, tmp_path):
    cache = EngineCache(str(tmp_path))
    with installed("10.3") as (trt, _):
        TensorRTBackend(bundles["full"], "fp32", cache=cache).close()
        timing = [f for f in os.listdir(str(tmp_path)) if f.startswith("timing-")]
        assert len(timing) == 1 and "trt10.3.0.30" in timing[0] and "orin-16-sms-62841-mib" in timing[0]
        first = json.loads(open(os.path.join(str(tmp_path), timing[0])).read())
        TensorRTBackend(bundles["full"], "fp16", cache=cache).close()
        second = json.loads(open(os.path.join(str(tmp_path), timing[0])).read())
        assert set(first) < set(second)  # the second build started from the first one's timings
    with open(os.path.join(str(tmp_path), timing[0]), "wb") as f:
        f.write(b"\x00garbage")
    with installed("10.3") as (trt, _):
        TensorRTBackend(bundles["full"], "int8", cache=cache).close()  # a corrupt one is replaced
        assert json.loads(open(os.path.join(str(tmp_path), timing[0])).read())["version"] == "10.3.0.30"
        _clean(trt)


@pytest.mark.parametrize("column, monitor", [("8.6", False), ("10.3", True), ("11.4", True)])
def test_progress_lines_during_a_build(bundles, tmp_path, column, monitor):
    lines = []
    with installed(column) as (trt, _):
        TensorRTBackend(bundles["full"], "fp32", cache=EngineCache(str(tmp_path)), report=lines.append).close()
    assert lines[0].startswith("building TensorRT engine: fp32, model.onnx")
    assert lines[-1].startswith("building TensorRT engine: done after")
    assert ("phases: Building engine" in lines[-1]) == monitor


def test_elapsed_time_ticks_while_a_build_runs():
    import threading

    seen, ticked = [], threading.Event()

    def report(line):
        seen.append(line)
        if re.search(r"engine: \d+ s$", line):
            ticked.set()

    with trt_build._Ticker(report, "fp16", interval=0.01):
        assert ticked.wait(5), seen  # the ticker says how long it has been, without being asked
    assert seen[-1].startswith("building TensorRT engine: done after")


# -- the whole estimator --------------------------------------------------------------------------------------
@pytest.mark.parametrize("column", ["8.5", "11.4"])
def test_the_estimator_on_tensorrt_finds_what_onnxruntime_finds(bundles, gpu_here, monkeypatch, tmp_path, column):
    """Grouping reads the maps where the TensorRT engine wrote them (mapped memory, by address)."""
    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.synthetic.scene import MovingScene

    monkeypatch.setenv("OPENPOSE_PLUS_ENGINE_CACHE", str(tmp_path))
    frame = MovingScene(320, 240, 2, seed=1).frame(3)[0]
    with installed(column) as (trt, cuda):
        est = PoseEstimator(bundles["plain"], backend="auto", precision="fp32")
        assert est.backend.name == "tensorrt" and "TensorRT %s (fp32)" % trt.__version__ in est.reason
        poses = est.infer(frame)
        est.close()
        _clean(trt)
    with PoseEstimator(bundles["plain"], backend="onnxruntime") as ref_est:
        ref = ref_est.infer(frame)
    np.testing.assert_array_equal(poses.keypoints, ref.keypoints)


def test_the_estimator_says_why_it_runs_on_onnxruntime(bundles, gpu_here, monkeypatch, tmp_path):
    from openpose_plus.edge.estimator import PoseEstimator

    monkeypatch.setenv("OPENPOSE_PLUS_ENGINE_CACHE", str(tmp_path))
    with installed("11.4") as (trt, cuda):
        def broken(self, *a, **k):
            raise AttributeError("'tensorrt.tensorrt.Builder' object has no attribute 'create_network'")
        monkeypatch.setattr(trt.Builder, "create_network", broken)
        with PoseEstimator(bundles["plain"], backend="auto") as est:
            assert est.backend.name == "onnxruntime"
            assert "tensorrt failed (BackendError: TensorRT 11.4.1.3: no precision works here" in est.reason
            assert "AttributeError: 'tensorrt.tensorrt.Builder' object has no attribute" in est.reason
        _clean(trt)
