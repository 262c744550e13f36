"""The TensorRT engine cache and build options: everything around TensorRT, on the CPU."""
import importlib.util
import json
import os

import pytest

from edge_fixtures import make_bundle, tiny_pose_onnx
from openpose_plus.edge.backends import trt_build
from openpose_plus.edge.bundle import load_bundle, write_bundle
from openpose_plus.edge.backends.engine_cache import CacheKey, EngineCache, default_cache_dir
from openpose_plus.edge.backends.cuda_device import DeviceInfo
from openpose_plus.edge.backends.trt_api import Generation
from openpose_plus.edge.backends.trt_build import BuildOptions

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
SHA = "ab" * 32


def key(**kw):
    args = dict(trt_version="10.3.0", gpu_name="Orin (nvgpu)", compute_capability="8.7", precision="fp16",
                onnx_sha256=SHA)
    args.update(kw)
    return CacheKey(**args)


class Builder:
    """A build step that makes distinct bytes and counts how often it ran."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return b"serialized-engine-%d-" % self.calls + os.urandom(4096)


def test_every_part_of_the_key_changes_the_entry():
    base = key()
    variants = [key(trt_version="8.6.2"), key(gpu_name="Xavier"), key(compute_capability="7.2"),
                key(precision="int8"), key(onnx_sha256="cd" * 32), key(dla_core=0),
                key(device_model="NVIDIA Jetson Orin Nano, 8 SMs, 7620 MiB"), key(route="fp16-onnx"),
                key(gpu_fallback=True), key(calibration_sha256="ef" * 32), key(profile="batch 1..4"),
                key(workspace_mb=512)]
    names = {base.filename()} | {k.filename() for k in variants}
    digests = {base.digest()} | {k.digest() for k in variants}
    assert len(names) == len(digests) == 1 + len(variants)
    name = base.filename()
    assert "fp16" in name and "trt10.3.0" in name and "sm87" in name and name.startswith(SHA[:12])
    assert "/" not in name and " " not in name and "(" not in name


@pytest.mark.parametrize("bad, message", [
    (dict(precision="fp64"), "precision"),
    (dict(onnx_sha256="xyz"), "64 lowercase hex"),
    (dict(gpu_name=""), "GPU name"),
    (dict(calibration_sha256="12"), "calibration_sha256"),
])
def test_bad_keys_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        key(**bad)


def test_build_once_then_load(tmp_path):
    cache, build = EngineCache(str(tmp_path)), Builder()
    first, built, reason = cache.get_or_build(key(), build)
    assert built and reason == "no cached engine" and build.calls == 1
    again, built, reason = cache.get_or_build(key(), build)
    assert again == first and not built and reason == "cached engine verified" and build.calls == 1
    engine, sidecar = cache.paths(key())
    meta = json.load(open(sidecar))
    assert meta["key"] == key().as_dict() and meta["size"] == len(first)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".partial")]


@pytest.mark.parametrize("damage, reason", [
    ("flip", "fails its checksum"),
    ("truncate", "truncated"),
    ("no-sidecar", "no checksum file"),
    ("bad-sidecar", "unreadable"),
    ("other-key", "different key"),
])
def test_damaged_entries_are_rebuilt_not_trusted(tmp_path, damage, reason):
    cache, build = EngineCache(str(tmp_path)), Builder()
    good, _, _ = cache.get_or_build(key(), build)
    engine, sidecar = cache.paths(key())
    if damage == "flip":
        data = bytearray(open(engine, "rb").read())
        data[100] ^= 1
        open(engine, "wb").write(bytes(data))
    elif damage == "truncate":
        with open(engine, "r+b") as f:
            f.truncate(50)
    elif damage == "no-sidecar":
        os.unlink(sidecar)
    elif damage == "bad-sidecar":
        open(sidecar, "w").write("{")
    else:  # an entry for another GPU copied over this one's name
        other = EngineCache(str(tmp_path / "other"))
        other.store(key(gpu_name="Xavier"), good)
        os.replace(other.paths(key(gpu_name="Xavier"))[1], sidecar)
    ok, why = cache.check(key())
    assert not ok and reason in why
    rebuilt, built, why = cache.get_or_build(key(), build)
    assert built and build.calls == 2 and rebuilt != good and reason in why
    assert cache.check(key()) == (True, "cached engine verified")


def test_invalidate_drops_an_entry(tmp_path):
    cache = EngineCache(str(tmp_path))
    cache.store(key(), b"engine")
    cache.invalidate(key(), "TensorRT refused it")
    assert cache.check(key()) == (False, "no cached engine")
    assert os.listdir(tmp_path) == []


def test_default_cache_dir_follows_systemd(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENPOSE_PLUS_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("CACHE_DIRECTORY", "/var/cache/openpose-plus:/var/cache/other")
    assert default_cache_dir() == "/var/cache/openpose-plus/engines"
    monkeypatch.setenv("OPENPOSE_PLUS_ENGINE_CACHE", str(tmp_path))
    assert default_cache_dir() == str(tmp_path)
    monkeypatch.delenv("OPENPOSE_PLUS_ENGINE_CACHE")
    monkeypatch.delenv("CACHE_DIRECTORY")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == os.path.join(str(tmp_path), "openpose-plus", "engines")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundles")
    plain = load_bundle(make_bundle(d, name="plain"))
    model = tiny_pose_onnx(96, 64)
    qdq = load_bundle(write_bundle(d / "qdq", model, input_size=(96, 64), stride=8, int8_model=model))
    cached = load_bundle(write_bundle(d / "cache", model, input_size=(96, 64), stride=8,
                                      calibration_cache=b"TRT-8601-EntropyCalibration2\n"))
    return plain, qdq, cached


def test_build_options_are_checked_before_a_build(bundles):
    plain, qdq, cached = bundles
    with pytest.raises(ValueError, match="DLA runs fp16 or int8 only"):
        BuildOptions("fp32", dla_core=0).validate(plain)
    with pytest.raises(ValueError, match="neither an int8 QDQ model nor a calibration cache"):
        BuildOptions("int8").validate(plain)
    with pytest.raises(ValueError, match="workspace"):
        BuildOptions("fp16", workspace_mb=0).validate(plain)
    with pytest.raises(ValueError, match="precision"):
        BuildOptions("bf16").validate(plain)
    with pytest.raises(ValueError, match="max batch"):
        BuildOptions("fp16", max_batch=0).validate(plain)
    gen = Generation("8.6.2")
    assert trt_build.plan_build(qdq, BuildOptions("int8"), gen).onnx == "model.int8.onnx"
    assert trt_build.plan_build(cached, BuildOptions("int8"), gen).onnx == "model.onnx"  # the cache route


ORIN = DeviceInfo(0, "Orin", "8.7", 16, 62841, True, True, "NVIDIA Jetson AGX Orin Developer Kit")


def test_cache_key_uses_the_onnx_that_is_built(bundles):
    plain, qdq, _ = bundles
    k16 = trt_build.cache_key(qdq, BuildOptions("fp16"), "8.6.2", ORIN)
    k8 = trt_build.cache_key(qdq, BuildOptions("int8"), "8.6.2", ORIN)
    assert k16.onnx_sha256 == qdq.file_sha256("model.onnx")
    assert k8.onnx_sha256 == qdq.file_sha256("model.int8.onnx")
    assert k16 != k8
    assert k16.device_model == "NVIDIA Jetson AGX Orin Developer Kit, 16 SMs, 62841 MiB"


def test_timing_cache_lives_beside_the_engines(tmp_path):
    cache = EngineCache(str(tmp_path))
    path = cache.timing_cache_path("10.3.0", "NVIDIA Jetson AGX Orin Developer Kit, 16 SMs, 62841 MiB")
    assert os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path) == "timing-trt10.3.0-nvidia-jetson-agx-orin-developer-kit-16-sms-62841-mib.cache"


def test_trt_major_versions():
    assert trt_build.trt_major("8.6.1.6") == 8 and trt_build.trt_major("10.3.0") == 10
    with pytest.raises(ValueError, match="TensorRT version"):
        trt_build.trt_major("unknown")


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_TRT, reason="TensorRT is not installed (it comes with JetPack)")
def test_real_build_is_cached(bundles, tmp_path):  # pragma: no cover - GPU machines only
    plain = bundles[0]
    cache = EngineCache(str(tmp_path))
    engine, k, built, _ = trt_build.engine_for(plain, BuildOptions("fp32"), cache)
    assert built and engine
    engine2, k2, built2, _ = trt_build.engine_for(plain, BuildOptions("fp32"), cache)
    assert not built2 and engine2 == engine and k2 == k


def test_int8_route_follows_what_the_qdq_model_was_made_for(tmp_path):
    model = tiny_pose_onnx(96, 64)
    ort_form = {"calibration": {"int8": {"form": "onnxruntime"}}}
    only_ort = load_bundle(write_bundle(tmp_path / "a", model, input_size=(96, 64), stride=8, int8_model=model,
                                        extra=ort_form))
    assert trt_build.int8_form(only_ort) == "onnxruntime" and trt_build.int8_route(only_ort) is None
    with pytest.raises(ValueError, match="made for onnxruntime"):
        BuildOptions("int8").validate(only_ort)
    both = load_bundle(write_bundle(tmp_path / "b", model, input_size=(96, 64), stride=8, int8_model=model,
                                    calibration_cache=b"TRT-8601-EntropyCalibration2\n", extra=ort_form))
    assert trt_build.int8_route(both) == "cache"  # the cache route, on the FP32 graph
    assert trt_build.plan_build(both, BuildOptions("int8"), Generation("8.5.2")).onnx == "model.onnx"
    qdq = load_bundle(write_bundle(tmp_path / "c", model, input_size=(96, 64), stride=8, int8_model=model))
    assert trt_build.int8_form(qdq) == "tensorrt" and trt_build.int8_route(qdq) == "qdq"
