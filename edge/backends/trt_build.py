"""Build a TensorRT engine from a bundle's ONNX (the only module that drives the builder).

Precision: fp32; fp16 (``BuilderFlag.FP16``); int8 from the bundle's QDQ model (explicit
quantisation, ``BuilderFlag.INT8``) or, for bundles with only ``calibration.cache``, from
the FP32 graph with a calibrator that replays the cache. Optional DLA core with GPU
fallback, workspace limit. Works with TensorRT 8.5/8.6 (JetPack 5) and 10.x (JetPack 6).
``tensorrt`` and ``pycuda`` are imported only when a build is asked for.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Tuple

from .engine_cache import CacheKey, EngineCache

__all__ = ["BuildOptions", "int8_form", "int8_route", "import_tensorrt", "trt_major", "device_identity", "cache_key",
           "build_engine", "engine_for"]

log = logging.getLogger("openpose_plus.trt_build")


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise RuntimeError("TensorRT is not installed here (%s); on a Jetson it comes with JetPack "
                           "(apt install python3-libnvinfer), it cannot come from pip" % exc) from None
    return tensorrt


def trt_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise ValueError("cannot read a TensorRT version from %r" % (version,)) from None


def int8_form(bundle) -> str:
    """Whom the bundle's QDQ model was made for: ``tensorrt`` or ``onnxruntime`` (calibration
    records it in meta ``extra.calibration.int8.form``; uint8-activation QDQ is onnxruntime's
    and TensorRT cannot parse it)."""
    cal = (bundle.meta.get("extra") or {}).get("calibration") or {}
    return str((cal.get("int8") or {}).get("form", "tensorrt"))


def int8_route(bundle) -> Optional[str]:
    """How TensorRT gets INT8 from this bundle: ``qdq`` (explicit), ``cache`` (FP32 graph plus
    the calibration cache), or None when it cannot."""
    if "int8" in bundle.models and int8_form(bundle) == "tensorrt":
        return "qdq"
    if bundle.calibration_cache_path:
        return "cache"
    return None


@dataclass(frozen=True)
class BuildOptions:
    precision: str = "fp16"
    dla_core: Optional[int] = None
    gpu_fallback: bool = True
    workspace_mb: int = 1024

    def validate(self, bundle) -> "BuildOptions":
        """Reject what the builder would reject, before a long build (and with a clear reason)."""
        if self.precision not in ("fp32", "fp16", "int8"):
            raise ValueError("precision must be fp32, fp16 or int8, got %r" % self.precision)
        if self.workspace_mb <= 0:
            raise ValueError("workspace must be a positive number of MiB, got %r" % self.workspace_mb)
        if self.dla_core is not None:
            if self.dla_core < 0:
                raise ValueError("DLA core must be 0 or more, got %d" % self.dla_core)
            if self.precision == "fp32":
                raise ValueError("DLA runs fp16 or int8 only; use --precision fp16 or int8 with --dla")
        if self.precision == "int8" and int8_route(bundle) is None:
            if "int8" in bundle.models:
                raise ValueError("bundle %s: its int8 QDQ model was made for onnxruntime, which TensorRT cannot "
                                 "parse, and it has no calibration cache; calibrate for tensorrt or use fp16"
                                 % (bundle.source or bundle.path))
            raise ValueError("bundle %s has neither an int8 QDQ model nor a calibration cache; "
                             "run `openpose-plus calibrate` first" % (bundle.source or bundle.path))
        return self

    def onnx_path(self, bundle) -> str:
        if self.precision == "int8" and int8_route(bundle) == "cache":
            return bundle.model_path("fp32")
        return bundle.model_path(self.precision)


def device_identity(device: int = 0) -> Tuple[str, str]:
    """(GPU name, compute capability 'major.minor') through pycuda."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise RuntimeError("pycuda is needed to identify the GPU (%s); pip install pycuda on the device" % exc) from None
    cuda.init()
    dev = cuda.Device(device)
    major, minor = dev.compute_capability()
    return dev.name(), "%d.%d" % (major, minor)


def cache_key(bundle, options: BuildOptions, trt_version: str, gpu_name: str, compute_capability: str) -> CacheKey:
    import os

    rel = os.path.relpath(options.onnx_path(bundle), bundle.path)
    return CacheKey(trt_version=str(trt_version), gpu_name=gpu_name, compute_capability=compute_capability,
                    precision=options.precision, onnx_sha256=bundle.file_sha256(rel), dla_core=options.dla_core)


def _cache_calibrator(trt, cache: bytes):
    """An INT8 calibrator that only replays a calibration cache (no data needed on the device)."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):
            return None  # never asked when the cache matches the network

        def read_calibration_cache(self):
            return cache

        def write_calibration_cache(self, data) -> None:
            pass

    return CacheCalibrator()


def build_engine(bundle, options: BuildOptions, trt=None) -> bytes:
    """Parse the ONNX and build a serialized engine (bytes)."""
    options.validate(bundle)
    trt = trt or import_tensorrt()
    major = trt_major(trt.__version__)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # Explicit batch is the only mode in TensorRT 10 (the flag is deprecated there).
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    path = options.onnx_path(bundle)
    with open(path, "rb") as f:
        if not parser.parse(f.read()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError("TensorRT cannot parse %s: %s" % (path, errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    if options.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8 layers that cannot quantise fall back to fp16
    if options.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if int8_route(bundle) == "cache":  # implicit quantisation from the FP32 graph
            with open(bundle.calibration_cache_path, "rb") as f:
                config.int8_calibrator = _cache_calibrator(trt, f.read())
    if options.dla_core is not None:
        if options.dla_core >= builder.num_DLA_cores:
            raise RuntimeError("DLA core %d requested, this device has %d" % (options.dla_core, builder.num_DLA_cores))
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        if options.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build an engine from %s (see its log above)" % path)
    return bytes(serialized)


def engine_for(bundle, options: BuildOptions, cache: Optional[EngineCache] = None, trt=None, device: int = 0):
    """The engine for this bundle on this device: from the cache, else built and cached.

    Returns (engine bytes, CacheKey, built, reason).
    """
    options.validate(bundle)
    trt = trt or import_tensorrt()
    cache = cache or EngineCache()
    name, cc = device_identity(device)
    key = cache_key(bundle, options, trt.__version__, name, cc)
    engine, built, reason = cache.get_or_build(key, lambda: build_engine(bundle, options, trt))
    return engine, key, built, reason
