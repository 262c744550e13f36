"""Build a TensorRT engine from a bundle: one builder for every generation (the only module that
drives TensorRT's builder).

Which ONNX, which network and which flags a precision takes depends on the TensorRT running
(:func:`plan_build` decides, without TensorRT, so every decision is tested here):

================  ==================================  =====================================  ==============================
precision         8.5 / 8.6 (JetPack 5, 6.0)          10.x (JetPack 6.1/6.2, 7.0/7.1)        11.x (JetPack 7.2.2+)
================  ==================================  =====================================  ==============================
fp32              model.onnx                          model.onnx                             model.onnx, strongly typed
fp16              model.onnx + FP16 flag              model.fp16.onnx, strongly typed        model.fp16.onnx, strongly typed
                                                      (no fp16 ONNX: model.onnx + FP16 flag)
int8              model.int8.onnx (Q/DQ) + INT8/FP16  model.int8.onnx, strongly typed        model.int8.onnx, strongly typed
int8, no Q/DQ     model.onnx + calibration.cache      model.onnx + calibration.cache         none
fp16 on DLA       model.onnx + FP16 flag              model.onnx + FP16 flag (10.0-10.7)     model.fp16.onnx (11.4, AGX Orin)
int8 on DLA       model.onnx + calibration.cache      model.onnx + calibration.cache (-10.7) model.int8.onnx (11.4, AGX Orin)
================  ==================================  =====================================  ==============================

A calibration cache is replayed by a calibrator that never supplies data; TensorRT ignores a
cache whose header names another version (and would then calibrate on nothing), so the header
is relabelled to the running version: the scales are per ONNX tensor name and do not depend on
it. A dynamic-batch ONNX gets an optimization profile (batch 1..N, optimum N). A timing cache
beside the engine cache makes rebuilds fast, and a progress line (TensorRT's progress monitor
where it has one, elapsed time always) says a long first build is working.
``tensorrt`` and ``pycuda`` are imported only when a build is asked for.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from openpose_plus.edge.atomic import write_atomic
from .cuda_device import DeviceInfo, PrimaryContext, fast_precisions
from .engine_cache import CacheKey, EngineCache
from .trt_api import GENERATIONS, Generation, serves

__all__ = ["BuildOptions", "BuildPlan", "RouteError", "int8_form", "int8_route", "import_tensorrt", "import_pycuda",
           "trt_major", "plan_build", "routes", "cache_key", "build_engine", "engine_for", "Built", "auto_candidates",
           "read_calibration_cache"]

log = logging.getLogger("openpose_plus.trt_build")

Report = Callable[[str], None]


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise RuntimeError("TensorRT is not installed here (%s); on a Jetson it comes with JetPack "
                           "(apt install python3-libnvinfer), it cannot come from pip" % exc) from None
    return tensorrt


def import_pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise RuntimeError("the tensorrt backend needs pycuda (%s); pip install pycuda on the device" % exc) from None
    return cuda


def trt_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise ValueError("cannot read a TensorRT version from %r" % (version,)) from None


class RouteError(ValueError):
    """This TensorRT cannot build this precision from this bundle; the message says why and what to do."""


# -- what the bundle offers ------------------------------------------------------------

def int8_form(bundle) -> str:
    """Whom the bundle's QDQ model was made for: ``tensorrt`` or ``onnxruntime`` (calibration
    records it in meta ``extra.calibration.int8.form``; uint8-activation QDQ is onnxruntime's
    and TensorRT cannot parse it)."""
    cal = (bundle.meta.get("extra") or {}).get("calibration") or {}
    return str((cal.get("int8") or {}).get("form", "tensorrt"))


def _has_qdq(bundle) -> bool:
    return "int8" in bundle.models and int8_form(bundle) == "tensorrt"


def _model(bundle, key: str) -> Optional[str]:
    """Bundle-relative file of ``models[key]`` or None (older bundles have no fp16 entry)."""
    name = bundle.models.get(key)
    return str(name) if name else None


def _cache_name(bundle) -> Optional[str]:
    name = bundle.meta.get("calibration_cache")
    return str(name) if name else None


def int8_route(bundle) -> Optional[str]:
    """How TensorRT 8.x/10.x gets INT8 on the GPU from this bundle: ``qdq`` (explicit), ``cache``
    (FP32 graph plus the calibration cache), or None when it cannot."""
    if _has_qdq(bundle):
        return "qdq"
    if _cache_name(bundle):
        return "cache"
    return None


# -- options and the plan ----------------------------------------------------------------

@dataclass(frozen=True)
class BuildOptions:
    precision: str = "fp16"
    dla_core: Optional[int] = None
    gpu_fallback: bool = True
    workspace_mb: int = 1024
    max_batch: int = 1

    def validate(self, bundle) -> "BuildOptions":
        """Reject what no TensorRT would build, before a long build (and with a clear reason)."""
        if self.precision not in ("fp32", "fp16", "int8"):
            raise ValueError("precision must be fp32, fp16 or int8, got %r" % self.precision)
        if self.workspace_mb <= 0:
            raise ValueError("workspace must be a positive number of MiB, got %r" % self.workspace_mb)
        if self.max_batch < 1:
            raise ValueError("max batch must be 1 or more, got %r" % self.max_batch)
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


@dataclass(frozen=True)
class BuildPlan:
    """What one build does: the ONNX, the network's typing, the builder flags, DLA."""

    precision: str
    route: str                 # fp32 | fp16-flag | fp16-onnx | int8-qdq | int8-cache
    onnx: str                  # bundle-relative file
    strongly_typed: bool
    flags: Tuple[str, ...]     # BuilderFlag names
    calibration_cache: Optional[str] = None
    dla_core: Optional[int] = None

    def describe(self) -> str:
        parts = [self.onnx, "strongly typed" if self.strongly_typed else "weakly typed"]
        if self.flags:
            parts.append("flags " + "+".join(self.flags))
        if self.calibration_cache:
            parts.append("calibration cache " + self.calibration_cache)
        if self.dla_core is not None:
            parts.append("DLA core %d" % self.dla_core)
        return ", ".join(parts)


def plan_build(bundle, options: BuildOptions, gen: Generation) -> BuildPlan:
    """The route this TensorRT takes to ``options.precision`` from this bundle (table above)."""
    options.validate(bundle)
    p, dla, where = options.precision, options.dla_core is not None, bundle.source or bundle.path
    if dla and not gen.has_dla:
        raise RouteError("TensorRT %s has no DLA support (10.8 to 11.3 have none; 11.4 has it on AGX Orin only); "
                         "build without --dla" % gen.version)
    fallback = ("GPU_FALLBACK",) if dla and options.gpu_fallback else ()
    fp16, qdq, cache = _model(bundle, "fp16"), _has_qdq(bundle), _cache_name(bundle)

    def plan(route: str, onnx: str, typed: bool, flags: Tuple[str, ...] = (), calib: Optional[str] = None):
        return BuildPlan(p, route, onnx, typed, flags + fallback, calib, options.dla_core)

    fp32 = _model(bundle, "fp32") or "model.onnx"
    if p == "fp32":
        return plan("fp32", fp32, gen.strongly_typed_only)
    if gen.strongly_typed_only:  # 11.x: precision lives in the ONNX's tensors, nowhere else
        if p == "fp16":
            if not fp16:
                raise RouteError("TensorRT %s builds FP16 only from an FP16 ONNX and bundle %s has none "
                                 "(model.fp16.onnx): run `openpose-plus calibrate --precision fp16` for it, "
                                 "or use fp32" % (gen.version, where))
            return plan("fp16-onnx", fp16, True)
        if not qdq:
            raise RouteError("TensorRT %s builds INT8 only from a Q/DQ ONNX made for TensorRT and bundle %s has "
                             "none (its calibration cache needs the calibrators TensorRT 11 removed): run "
                             "`openpose-plus calibrate --precision int8`" % (gen.version, where))
        return plan("int8-qdq", _model(bundle, "int8") or "", True)
    if p == "fp16":
        if fp16 and not dla and gen.at_least("10.0"):
            return plan("fp16-onnx", fp16, True)
        return plan("fp16-flag", fp32, False, ("FP16",))
    # int8 on 8.x / 10.x
    if dla:  # DLA cannot run Q/DQ before 11.4: implicit quantisation from the cache
        if not cache:
            raise RouteError("INT8 on DLA with TensorRT %s needs the bundle's calibration cache (DLA runs no Q/DQ "
                             "before TensorRT 11.4) and bundle %s has none; use --precision fp16 with --dla"
                             % (gen.version, where))
        return plan("int8-cache", fp32, False, ("INT8", "FP16"), cache)
    if qdq:
        if gen.at_least("10.0"):
            return plan("int8-qdq", _model(bundle, "int8") or "", True)
        return plan("int8-qdq", _model(bundle, "int8") or "", False, ("INT8", "FP16"))
    if cache:
        return plan("int8-cache", fp32, False, ("INT8", "FP16"), cache)
    raise RouteError("bundle %s has no INT8 source TensorRT can use" % where)


# One release per column, for describing routes where no TensorRT is installed.
_COLUMN_RELEASE = {"8.5": "8.5.2", "8.6": "8.6.2", "10.3": "10.3.0", "10.13": "10.13.3", "11.4": "11.4.1"}


def routes(bundle, options: BuildOptions) -> Dict[str, str]:
    """Per generation, the route :func:`plan_build` takes (or why there is none): what
    ``build-engine`` shows where TensorRT is absent."""
    out = {}
    for column in GENERATIONS:
        gen = Generation(_COLUMN_RELEASE[column])
        try:
            out["TensorRT %s" % column] = plan_build(bundle, options, gen).describe()
        except RouteError as exc:
            out["TensorRT %s" % column] = "none: %s" % exc
    return out


# -- the cache key -------------------------------------------------------------------------

def _sha(bundle, relpath: Optional[str]) -> str:
    return bundle.file_sha256(relpath) if relpath else ""


def cache_key(bundle, options: BuildOptions, trt_version: str, device: DeviceInfo,
              plan: Optional[BuildPlan] = None) -> CacheKey:
    """Everything the engine depends on: TensorRT, the device model, the route, the ONNX and
    calibration cache bytes, DLA and its GPU fallback, the batch profile, the workspace."""
    plan = plan or plan_build(bundle, options, Generation(trt_version))
    return CacheKey(trt_version=str(trt_version), gpu_name=device.name, compute_capability=device.compute_capability,
                    precision=plan.precision, onnx_sha256=_sha(bundle, plan.onnx), dla_core=plan.dla_core,
                    device_model=device.model, route=plan.route,
                    gpu_fallback=bool(plan.dla_core is not None and options.gpu_fallback),
                    calibration_sha256=_sha(bundle, plan.calibration_cache),
                    profile="batch 1..%d" % options.max_batch, workspace_mb=options.workspace_mb)


# -- the build ------------------------------------------------------------------------------

def _network_flags(trt, gen: Generation, strongly_typed: bool) -> int:
    if gen.below("10.0"):
        # 8.x parses ONNX into explicit-batch networks only when asked (implicit in 10+)
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


@serves("8.5", "8.6", "10.3", "10.13")
def _precision_flags(trt, config: "trt.IBuilderConfig", names: Tuple[str, ...]) -> None:
    """FP16/INT8 builder flags: weakly typed networks on 8.x/10.x only (gone in 11)."""
    for name in names:
        if name == "FP16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif name == "INT8":
            config.set_flag(trt.BuilderFlag.INT8)


def read_calibration_cache(path: str, gen: Generation) -> Tuple[bytes, str]:
    """The bundle's cache with its header naming this TensorRT, and the calibrator that replays
    it (:func:`.calibration_cache.for_tensorrt`: the scales kept bit for bit)."""
    from .calibration_cache import CALIBRATOR, for_tensorrt

    with open(path, "rb") as f:
        data = f.read()
    try:
        out = for_tensorrt(data, gen.version)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RouteError("%s is not a TensorRT calibration cache this builder can replay: %s"
                         % (os.path.basename(path), exc)) from None
    written = data.split(b"\n", 1)[0].strip()
    if written != out.split(b"\n", 1)[0]:
        log.info("calibration cache %s was written as %s; relabelled for %s (%d): its scales are per ONNX "
                 "tensor and do not change with the version", os.path.basename(path), written.decode("ascii", "replace"),
                 gen.version, gen.code)
    return out, CALIBRATOR


@serves("8.5", "8.6", "10.3", "10.13")
def _set_calibrator(trt, config: "trt.IBuilderConfig", cache: bytes, algorithm: str) -> object:
    """A calibrator that only replays ``cache``: it has no data, so a cache TensorRT refuses
    fails the build instead of calibrating on nothing. Returned so the caller keeps it alive."""
    calibrator = _entropy_calibrator(trt, cache)  # the calibrator every cache of ours is written for
    config.int8_calibrator = calibrator
    return calibrator


@serves("8.5", "8.6", "10.3", "10.13")
def _entropy_calibrator(trt, cache: bytes) -> object:
    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names, *args):
            return None  # no data on the device: TensorRT asks only when it refused the cache

        def read_calibration_cache(self, *args):
            return cache

        def write_calibration_cache(self, data, *args) -> None:
            pass

    return CacheCalibrator()


def _profile(trt, builder: "trt.Builder", network: "trt.INetworkDefinition", bundle,
             options: BuildOptions) -> "Optional[trt.IOptimizationProfile]":
    """An optimization profile for dynamic inputs (batch 1..N, optimum N; other dims from the
    bundle), or None when every input is static. A static input must match the bundle."""
    profile: "Optional[trt.IOptimizationProfile]" = None
    want = (options.max_batch, bundle.input_height, bundle.input_width, 3)
    for i in range(network.num_inputs):
        tensor: "trt.ITensor" = network.get_input(i)
        shape = tuple(int(d) for d in tensor.shape)
        if len(shape) != 4 or any(d not in (-1, w) and not (j == 0 and d == 1) for j, (d, w) in enumerate(zip(shape, want))):
            raise RuntimeError("ONNX input %r has shape %s; the bundle feeds (batch, %d, %d, 3)"
                               % (tensor.name, list(shape), bundle.input_height, bundle.input_width))
        if -1 not in shape:
            continue
        if profile is None:
            profile = builder.create_optimization_profile()
        opt = tuple(w if d == -1 else d for d, w in zip(shape, want))
        low = (1,) + opt[1:] if shape[0] == -1 else opt
        profile.set_shape(tensor.name, low, opt, opt)
    return profile


def _timing_cache(config: "trt.IBuilderConfig", path: Optional[str]) -> "Optional[trt.ITimingCache]":
    """Load the timing cache at ``path`` into the config (a fresh one where it is absent or
    unreadable); TensorRT refuses one from another device or version, then we start fresh."""
    data = b""
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    try:
        cache: "Optional[trt.ITimingCache]" = config.create_timing_cache(data)
    except Exception as exc:  # pybind raises TypeError/RuntimeError on a corrupt blob
        # a string, not the exception: a kept log record would keep its frames' objects alive
        log.warning("timing cache %s unreadable (%s); starting a new one", path, str(exc))
        cache = None
    if cache is None and data:
        cache = config.create_timing_cache(b"")
    if cache is not None and not config.set_timing_cache(cache, False):
        log.info("timing cache %s is from another device or TensorRT; starting a new one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def _save_timing_cache(config: "trt.IBuilderConfig", path: Optional[str]) -> None:
    if not path:
        return
    timing: "Optional[trt.ITimingCache]" = config.get_timing_cache()
    if timing is None:
        return
    blob: "trt.IHostMemory" = timing.serialize()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_atomic(path, bytes(blob))


class _Ticker:
    """Elapsed time every ``interval`` seconds while a build runs, plus the phase the progress
    monitor last reported (TensorRT 10+), so a long first build never looks like a hang."""

    def __init__(self, report: Report, what: str, interval: float = 15.0) -> None:
        self.report, self.what, self.interval = report, what, interval
        self.phase = ""
        self.phases: List[str] = []  # what TensorRT's progress monitor reported (10+)
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-build-progress", daemon=True)

    def __enter__(self) -> "_Ticker":
        self.report("building TensorRT engine: %s (the first build on a device takes minutes; it is cached)" % self.what)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.report("building TensorRT engine: %.0f s%s" % (time.monotonic() - self.start,
                                                               (", " + self.phase) if self.phase else ""))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.report("building TensorRT engine: %s after %.0f s%s" % (
            "failed" if exc[0] else "done", time.monotonic() - self.start,
            (" (phases: %s)" % ", ".join(self.phases)) if self.phases else ""))


@serves("10.3", "10.13", "11.4")
def _progress_monitor(trt, ticker: _Ticker) -> object:
    """TensorRT's IProgressMonitor (Python bindings from 10.0) feeding the ticker's phase."""

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: Dict[str, Tuple[int, int]] = {}

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            self.steps[phase_name] = (0, int(num_steps))
            ticker.phase = "%s (0/%d)" % (phase_name, num_steps)
            if phase_name not in ticker.phases:
                ticker.phases.append(str(phase_name))

        def step_complete(self, phase_name, step) -> bool:
            total = self.steps.get(phase_name, (0, 0))[1]
            self.steps[phase_name] = (int(step) + 1, total)
            ticker.phase = "%s (%d/%d)" % (phase_name, int(step) + 1, total)
            return True  # False would cancel the build

        def phase_finish(self, phase_name) -> None:
            self.steps.pop(phase_name, None)
            ticker.phase = ""

    return Monitor()


def build_engine(bundle, options: BuildOptions, trt=None, gen: Optional[Generation] = None,
                 timing_cache: Optional[str] = None, report: Optional[Report] = None) -> bytes:
    """Parse the plan's ONNX and build a serialized engine (bytes), on the CUDA context that is
    current (the caller pushes the device's)."""
    trt = trt or import_tensorrt()
    gen = gen or Generation(trt.__version__)
    plan = plan_build(bundle, options, gen)
    path = os.path.join(bundle.path, plan.onnx)
    logger = trt.Logger(trt.Logger.WARNING)
    builder: "Optional[trt.Builder]" = None
    network: "Optional[trt.INetworkDefinition]" = None
    parser: "Optional[trt.OnnxParser]" = None
    config: "Optional[trt.IBuilderConfig]" = None
    serialized: "Optional[trt.IHostMemory]" = None
    profile: "Optional[trt.IOptimizationProfile]" = None
    keep: List[object] = []  # what TensorRT reads during the build (calibrator, monitor)
    try:
        builder = trt.Builder(logger)
        if plan.dla_core is not None and plan.dla_core >= builder.num_DLA_cores:
            raise RuntimeError("DLA core %d requested; TensorRT %s sees %d DLA cores on this device"
                               % (plan.dla_core, gen.version, builder.num_DLA_cores))
        network = builder.create_network(_network_flags(trt, gen, plan.strongly_typed))
        parser = trt.OnnxParser(network, logger)
        with open(path, "rb") as f:
            if not parser.parse(f.read()):
                errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise RuntimeError("TensorRT %s cannot parse %s: %s" % (gen.version, plan.onnx, errors))
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
        if gen.below("11.0"):
            _precision_flags(trt, config, tuple(n for n in plan.flags if n in ("FP16", "INT8")))
            if plan.calibration_cache:
                cache, algorithm = read_calibration_cache(os.path.join(bundle.path, plan.calibration_cache), gen)
                keep.append(_set_calibrator(trt, config, cache, algorithm))
        if "GPU_FALLBACK" in plan.flags:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        if plan.dla_core is not None:
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = plan.dla_core
        profile = _profile(trt, builder, network, bundle, options)
        if profile is not None:
            config.add_optimization_profile(profile)
        _timing_cache(config, timing_cache)
        ticker = _Ticker(report or log.info, "%s, %s" % (plan.precision, plan.describe()))
        if hasattr(trt, "IProgressMonitor"):
            monitor = _progress_monitor(trt, ticker)
            keep.append(monitor)
            config.progress_monitor = monitor
        with ticker:
            serialized = builder.build_serialized_network(network, config)
            if serialized is None:
                raise RuntimeError("TensorRT %s failed to build an engine from %s (%s; see its log above)"
                                   % (gen.version, plan.onnx, plan.describe()))
        _save_timing_cache(config, timing_cache)
        return bytes(serialized)
    except BaseException as exc:
        # the traceback would keep the callees' TensorRT objects alive past the context's pop
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        # freed here, in reverse order of creation, while the caller's CUDA context is still
        # current: a traceback would otherwise keep them until after it is popped
        serialized = parser = profile = network = config = builder = None
        keep.clear()


@dataclass(frozen=True)
class Built:
    engine: bytes
    key: CacheKey
    built: bool
    reason: str
    plan: BuildPlan

    def __iter__(self):  # (engine, key, built, reason) as before, for callers that unpack
        return iter((self.engine, self.key, self.built, self.reason))


def engine_for(bundle, options: BuildOptions, cache: Optional[EngineCache] = None, trt=None, device: int = 0,
               context: Optional[PrimaryContext] = None, report: Optional[Report] = None) -> Built:
    """The engine for this bundle on CUDA device ``device``: from the cache, else built (on that
    device: its primary context is pushed for the build) and cached."""
    options.validate(bundle)
    trt = trt or import_tensorrt()
    gen = Generation(trt.__version__)
    plan = plan_build(bundle, options, gen)
    cache = cache or EngineCache()
    own = context is None
    if own:
        context = PrimaryContext(import_pycuda(), device)
    assert context is not None
    try:
        with context:
            info = context.info
            key = cache_key(bundle, options, trt.__version__, info, plan)
            timing = cache.timing_cache_path(str(trt.__version__), info.model)
            engine, built, reason = cache.get_or_build(
                key, lambda: build_engine(bundle, options, trt, gen, timing_cache=timing, report=report))
    finally:
        if own:
            context.release()
    return Built(engine, key, built, reason, plan)


def auto_candidates(bundle, gen: Generation, info: DeviceInfo, options: BuildOptions) -> List[Tuple[str, str]]:
    """``precision="auto"``: (precision, why) in the order to try; the fastest this device runs
    and this TensorRT can build from this bundle first. Decided without a Builder."""
    fast16, fast8 = fast_precisions(info.compute_capability)
    out = []
    for p, fast in (("int8", fast8), ("fp16", fast16), ("fp32", True)):
        if not fast:
            continue
        try:
            plan_build(bundle, BuildOptions(p, options.dla_core, options.gpu_fallback, options.workspace_mb,
                                            options.max_batch), gen)
        except ValueError as exc:  # RouteError or a bundle without that precision
            log.info("auto precision: not %s (%s)", p, str(exc))
            continue
        out.append((p, "compute capability %s" % info.compute_capability))
    return out
