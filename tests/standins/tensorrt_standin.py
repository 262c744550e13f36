"""A stand-in for the ``tensorrt`` Python module, one generation at a time: no test machine here
can have TensorRT (PyPI's wheels are stubs that fetch the libraries from NVIDIA's index, which is
unreachable, and it needs a GPU), so this module plays it.

``load(column, version)`` gives the module of one column of the conformance table
(api_table.json: 8.5, 8.6, 10.3, 10.13, 11.4): exactly the names that generation's bindings
expose among those implemented here, so a name the generation lacks raises AttributeError as
the real one does (``BuilderFlag.FP16``, ``IBuilderConfig.int8_calibrator``, the
``IInt8*Calibrator`` classes and ``platform_has_fast_*`` on 11.x; ``IProgressMonitor`` and
``STRONGLY_TYPED`` before 10.x; ``EXPLICIT_BATCH`` on 11.x).

Behaviour, where the real library has it (release notes and the ONNX parser's rules):

- the ONNX parser (onnx reads the graph) refuses a DequantizeLinear whose input is not INT8
  (INT8/FP8/INT4 from 10.x, FP4 from 11.x), so an INT32 bias DQ is a parse error; non-zero
  zero points; an 8.x network made without EXPLICIT_BATCH;
- the builder refuses FP16/INT8 flags on a strongly typed network, Q/DQ without the INT8
  flag in a weakly typed one, INT8 without Q/DQ and without a calibration cache this version
  accepts (a cache whose header names another version is ignored: TensorRT asks the
  calibrator for data, and ``get_batch`` returning None fails the build), a dynamic input
  without an optimization profile, a DLA core the device lacks (no DLA in 10.8-11.3; on 11.4
  only an AGX Orin has one), DLA on a weakly typed network without FP16/INT8, Q/DQ on DLA
  before 11.4 unless GPU fallback is on; a build runs on the current CUDA context's device;
- an engine is bytes only this version on this device model deserializes;
  ``Runtime.DLA_core`` at deserialization is the core it runs on;
- ``execute_async_v3`` needs every tensor's address (device memory or mapped host memory of
  the pycuda stand-in), the input shape of a dynamic engine, a live stream, and the engine's
  context current; it runs the network with onnxruntime on the CPU and writes the outputs
  where the addresses point;
- the builder, network, parser, runtime, engine and execution context must be destroyed while
  their CUDA context is current and alive (the real ones free device memory then); the pycuda
  stand-in's ``WORLD.errors`` collects every violation; ``keep_alive`` is as in the bindings
  (an execution context keeps its engine, an engine its runtime).
"""
from __future__ import annotations

import hashlib
import json
import types
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from . import pycuda_driver, surface

LIBRARY = "tensorrt"
RELEASES = {"8.5": "8.5.2.2", "8.6": "8.6.2.3", "10.3": "10.3.0.30", "10.13": "10.13.3.9", "11.4": "11.4.1.3"}
MAGIC = b"STANDIN-TRT-ENGINE\n"


def _world():
    return pycuda_driver.WORLD


class Facts:
    """What a TensorRT release does, by version."""

    def __init__(self, version: str) -> None:
        parts = [int(p) for p in version.split(".")[:3]]
        self.version = version
        self.major, self.minor = parts[0], parts[1]
        self.code = self.major * (10000 if self.major >= 10 else 1000) + self.minor * 100 + parts[2]
        self.dq_inputs = {"INT8"} | ({"FLOAT8E4M3FN", "INT4"} if self.major >= 10 else set()) | (
            {"FLOAT4E2M1"} if self.major >= 11 else set())
        self.strongly_typed_only = self.major >= 11
        self.dla_in_release = self.major < 10 or (self.major == 10 and self.minor < 8) or (self.major, self.minor) >= (11, 4)

    def dla_cores(self, spec) -> int:
        if not self.dla_in_release:
            return 0
        if self.major >= 11 and "AGX Orin" not in spec.board:
            return 0
        return spec.dla_cores


# -- enums ---------------------------------------------------------------------------------
class _Value:
    def __init__(self, enum: str, name: str, value: int) -> None:
        self.enum, self.name, self.value = enum, name, value

    def __int__(self) -> int:
        return self.value

    __index__ = __int__

    def __eq__(self, other) -> bool:
        return isinstance(other, _Value) and (other.enum, other.value) == (self.enum, self.value)

    def __hash__(self) -> int:
        return hash((self.enum, self.value))

    def __repr__(self) -> str:
        return "<%s.%s: %d>" % (self.enum, self.name, self.value)

    __str__ = __repr__


def _enum(name: str, members: Dict[str, int]) -> type:
    return type(name, (), {k: _Value(name, k, v) for k, v in members.items()})


BuilderFlag = _enum("BuilderFlag", {"FP16": 0, "INT8": 1, "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 5, "TF32": 7})
NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1})
DataType = _enum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "FP8": 6,
                              "BF16": 7, "INT64": 8, "INT4": 9, "FP4": 10})
TensorIOMode = _enum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})
MemoryPoolType = _enum("MemoryPoolType", {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "DLA_LOCAL_DRAM": 2,
                                          "DLA_GLOBAL_DRAM": 3})
DeviceType = _enum("DeviceType", {"GPU": 0, "DLA": 1})
def _attribute(field: str, convert: Callable[[Any], Any] = lambda v: v) -> property:
    """A read-write attribute of the bindings (``config.DLA_core = 1``), kept in ``self.<field>``."""
    return property(lambda self: getattr(self, field), lambda self, value: setattr(self, field, convert(value)))


def _count(field: str) -> property:
    """A read-only ``num_*`` attribute of the bindings: how many ``self.<field>`` holds."""
    return property(lambda self: len(getattr(self, field)))


_ONNX_TYPES = {1: "FLOAT", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "HALF", 16: "BF16",
               17: "FLOAT8E4M3FN", 22: "INT4", 23: "FLOAT4E2M1"}
_DTYPE = {"FLOAT": "FLOAT", "UINT8": "UINT8", "INT8": "INT8", "INT32": "INT32", "HALF": "HALF", "BOOL": "BOOL",
          "INT64": "INT64"}


# -- logging -------------------------------------------------------------------------------
class ILogger:
    Severity = _enum("Severity", {"INTERNAL_ERROR": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "VERBOSE": 4})
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (Severity.INTERNAL_ERROR, Severity.ERROR, Severity.WARNING,
                                                     Severity.INFO, Severity.VERBOSE)

    def __init__(self) -> None:
        self._messages: List[str] = []

    def log(self, severity, msg: str) -> None:
        self._messages.append("%s: %s" % (severity.name, msg))


class Logger(ILogger):
    def __init__(self, min_severity=ILogger.WARNING) -> None:
        super().__init__()
        self.min_severity = min_severity


# -- objects that live in a CUDA context ---------------------------------------------------------
class _Tracked:
    """Destroying one of these needs its CUDA context current and alive (the real one frees
    device memory then); the stand-in records every violation in the pycuda world."""

    _kind = "object"

    def _attach(self, api: "_Api") -> None:
        self._api = api
        self._ctx = _world().runtime_context()
        self._alive_check = True
        api.live[self._kind] = api.live.get(self._kind, 0) + 1
        api.made[self._kind] = api.made.get(self._kind, 0) + 1

    def __del__(self) -> None:
        if not getattr(self, "_alive_check", False):
            return
        self._api.live[self._kind] -= 1
        world, ctx = _world(), self._ctx
        world.log.append("destroy %s" % self._kind)
        if not ctx.alive:
            world.errors.append("%s destroyed after its CUDA context was destroyed" % self._kind)
        elif world.current() is not ctx:
            world.errors.append("%s destroyed with no CUDA context current (or another one)" % self._kind)


class IHostMemory:
    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)

    @property
    def nbytes(self) -> int:
        return len(self._data)

    def __bytes__(self) -> bytes:
        return self._data


class ITensor:
    def __init__(self, name: str, shape, dtype) -> None:
        self._name, self._shape, self._dtype = name, tuple(shape), dtype

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self):
        return self._shape

    @property
    def dtype(self):
        return self._dtype


class ParserError:
    def __init__(self, node: int, name: str, op: str, desc: str) -> None:
        self._node, self._name, self._op, self._desc = node, name, op, desc

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def code(self) -> int:
        return 9

    def __str__(self) -> str:
        return "In node %d with name: %s and operator: %s (parseGraph): INVALID_NODE: %s" % (
            self._node, self._name, self._op, self._desc)


class INetworkDefinition(_Tracked):
    _kind = "INetworkDefinition"

    def __init__(self, api: "_Api", builder: "Builder", flags: int) -> None:
        self._attach(api)
        self._builder = builder  # keep_alive<0, 1>
        self._explicit_batch = bool(flags & 1) or api.facts.major >= 10
        self._strongly_typed = bool(flags & 2) or api.facts.strongly_typed_only
        if api.facts.major >= 11 and flags & 1:
            raise TypeError("create_network(): flag bit 0 (EXPLICIT_BATCH) does not exist in TensorRT 11")
        self._model: Optional[bytes] = None
        self._inputs: List[ITensor] = []
        self._outputs: List[ITensor] = []
        self._qdq = False
        self._fp16 = False

    num_inputs = _count("_inputs")
    num_outputs = _count("_outputs")

    def get_input(self, index: int) -> ITensor:
        return self._inputs[index]

    def get_output(self, index: int) -> ITensor:
        return self._outputs[index]


class OnnxParser(_Tracked):
    _kind = "OnnxParser"

    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        self._attach(network._api)
        self._network, self._logger = network, logger
        self._errors: List[ParserError] = []

    num_errors = _count("_errors")

    def get_error(self, index: int) -> ParserError:
        return self._errors[index]

    def clear_errors(self) -> None:
        self._errors.clear()

    def parse(self, model: bytes, path: Optional[str] = None) -> bool:
        import onnx
        from onnx import numpy_helper

        net, facts = self._network, self._network._api.facts
        if not net._explicit_batch:
            self._errors.append(self._api.make("ParserError", -1, "", "", "the ONNX parser needs an explicit-batch network "
                                                         "(create_network with EXPLICIT_BATCH)"))
            return False
        try:
            proto = onnx.load_model_from_string(bytes(model))
        except Exception as exc:
            self._errors.append(self._api.make("ParserError", -1, "", "", "cannot read the model: %s" % exc))
            return False
        g = proto.graph
        types_ = {i.name: i.data_type for i in g.initializer}
        consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            types_.setdefault(vi.name, vi.type.tensor_type.elem_type)
        for n in g.node:  # QuantizeLinear's output type is its zero point's (uint8 without one)
            if n.op_type == "QuantizeLinear":
                zp = n.input[2] if len(n.input) > 2 and n.input[2] else None
                types_[n.output[0]] = types_.get(zp, 2) if zp else 2
            if n.op_type == "Cast":
                to = [a.i for a in n.attribute if a.name == "to"]
                if to:
                    types_[n.output[0]] = to[0]
        for i, n in enumerate(g.node):
            if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
                net._qdq = True
                x = types_.get(n.input[0] if n.op_type == "DequantizeLinear" else n.output[0])
                kind = _ONNX_TYPES.get(x, str(x))
                if kind not in facts.dq_inputs:
                    which = "x input" if n.op_type == "DequantizeLinear" else "y output"
                    self._errors.append(self._api.make("ParserError", i, n.name, n.op_type, "Assertion failed: %s of %s must be %s, "
                                                    "got %s" % (which, n.op_type, "/".join(sorted(facts.dq_inputs)), kind)))
                    return False
                zp = n.input[2] if len(n.input) > 2 and n.input[2] else None
                if zp in consts and np.any(consts[zp] != 0):
                    self._errors.append(self._api.make("ParserError", i, n.name, n.op_type, "TensorRT supports only symmetric "
                                                    "quantization: zero point must be 0"))
                    return False
            if any(types_.get(o) == 10 for o in n.output):
                net._fp16 = True
        if any(t.data_type == 10 for t in g.initializer):
            net._fp16 = True
        inits = set(consts)

        def tensor(vi):
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
            name = _ONNX_TYPES.get(vi.type.tensor_type.elem_type, "FLOAT")
            return net._api.make("ITensor", vi.name, dims, getattr(DataType, _DTYPE.get(name, "FLOAT")))

        net._inputs = [tensor(vi) for vi in g.input if vi.name not in inits]
        net._outputs = [tensor(vi) for vi in g.output]
        net._model = bytes(model)
        return True


class IOptimizationProfile:
    def __init__(self) -> None:
        self._shapes: Dict[str, list] = {}

    def set_shape(self, input: str, min, opt, max) -> None:  # noqa: A002 - the binding's names
        self._shapes[input] = [list(min), list(opt), list(max)]

    def get_shape(self, input: str):  # noqa: A002
        return [tuple(s) for s in self._shapes[input]]


class ITimingCache:
    def __init__(self, entries: Dict[str, str]) -> None:
        self._entries = dict(entries)

    def serialize(self) -> IHostMemory:
        return IHostMemory(json.dumps(self._entries, sort_keys=True).encode())


class IBuilderConfig(_Tracked):
    _kind = "IBuilderConfig"

    def __init__(self, api: "_Api") -> None:
        self._attach(api)
        self._flags = 0
        self._pools: Dict[int, int] = {}
        self._calibrator = None
        self._device_type = DeviceType.GPU
        self._dla_core = -1
        self._profiles: List[IOptimizationProfile] = []
        self._timing: Optional[ITimingCache] = None
        self._monitor = None

    def set_memory_pool_limit(self, pool, pool_size: int) -> None:
        self._pools[int(pool)] = int(pool_size)

    def get_memory_pool_limit(self, pool) -> int:
        return self._pools.get(int(pool), 0)

    def set_flag(self, flag) -> None:
        self._flags |= 1 << int(flag)

    def clear_flag(self, flag) -> None:
        self._flags &= ~(1 << int(flag))

    def get_flag(self, flag) -> bool:
        return bool(self._flags & (1 << int(flag)))

    @property
    def flags(self) -> int:
        return self._flags

    int8_calibrator = _attribute("_calibrator")
    default_device_type = _attribute("_device_type")
    DLA_core = _attribute("_dla_core", int)
    progress_monitor = _attribute("_monitor")

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self._profiles.append(profile)
        return len(self._profiles) - 1

    num_optimization_profiles = _count("_profiles")

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        data = bytes(serialized_timing_cache)
        if not data:
            return self._api.make("ITimingCache", {"version": self._api.facts.version,
                                                   "device": self._api.device_model()})
        try:
            entries = json.loads(data.decode())
            assert isinstance(entries, dict) and "version" in entries
        except Exception:
            raise RuntimeError("createTimingCache: the serialized timing cache is corrupt") from None
        return self._api.make("ITimingCache", entries)

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        ours = (self._api.facts.version, self._api.device_model())
        if (cache._entries.get("version"), cache._entries.get("device")) != ours and not ignore_mismatch:
            return False
        self._timing = cache  # keep_alive<1, 2>
        return True

    def get_timing_cache(self) -> Optional[ITimingCache]:
        return self._timing


class _Calibrator:
    """Base of the INT8 calibrators (pure virtual: an override is required)."""

    _algorithm = ""

    def __init__(self) -> None:
        pass

    def get_batch_size(self) -> int:
        raise RuntimeError("Tried to call pure virtual function \"IInt8Calibrator::getBatchSize\"")

    def get_batch(self, names):
        raise RuntimeError("Tried to call pure virtual function \"IInt8Calibrator::getBatch\"")

    def read_calibration_cache(self):
        return None

    def write_calibration_cache(self, cache) -> None:
        pass

    def get_algorithm(self):
        return self._algorithm


class IInt8EntropyCalibrator2(_Calibrator):
    _algorithm = "EntropyCalibration2"


class IInt8MinMaxCalibrator(_Calibrator):
    _algorithm = "MinMaxCalibration"


class IProgressMonitor:
    def __init__(self) -> None:
        pass

    def phase_start(self, phase_name, parent_phase, num_steps) -> None:
        raise RuntimeError("Tried to call pure virtual function \"IProgressMonitor::phaseStart\"")

    def step_complete(self, phase_name, step) -> bool:
        raise RuntimeError("Tried to call pure virtual function \"IProgressMonitor::stepComplete\"")

    def phase_finish(self, phase_name) -> None:
        raise RuntimeError("Tried to call pure virtual function \"IProgressMonitor::phaseFinish\"")


class Builder(_Tracked):
    _kind = "Builder"

    def __init__(self, logger: ILogger) -> None:
        self._attach(_API_OF[type(self)])
        self._logger = logger  # keep_alive<1, 2>

    @property
    def num_DLA_cores(self) -> int:  # noqa: N802
        return self._api.facts.dla_cores(_world().devices[self._ctx.device])

    @property
    def platform_has_fast_fp16(self) -> bool:
        return True

    @property
    def platform_has_fast_int8(self) -> bool:
        return True

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return self._api.make("INetworkDefinition", self._api, self, int(flags))

    def create_builder_config(self) -> IBuilderConfig:
        return self._api.make("IBuilderConfig", self._api)

    def create_optimization_profile(self) -> IOptimizationProfile:
        return self._api.make("IOptimizationProfile")

    def _fail(self, msg: str) -> None:
        self._logger.log(ILogger.ERROR, msg)
        self._api.build_errors.append(msg)
        return None

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> Optional[IHostMemory]:
        api, facts, world = self._api, self._api.facts, _world()
        ctx = world.runtime_context()
        spec = world.devices[ctx.device]
        if network._model is None:
            return self._fail("the network is empty (nothing was parsed)")
        fp16, int8 = config._flags & 1, config._flags & 2
        if network._strongly_typed and (fp16 or int8):
            return self._fail("Error Code 3: API Usage Error (BuilderFlag::kFP16 / kINT8 are not allowed for "
                              "strongly typed networks)")
        calibrated = False
        if not network._strongly_typed:
            if network._qdq and not int8:
                return self._fail("Error Code 4: the network has Q/DQ layers, which need BuilderFlag::kINT8")
            if int8 and not network._qdq:
                calibrator = config._calibrator
                if calibrator is None:
                    return self._fail("Calibration failure occurred with no scaling factors detected "
                                      "(INT8 without Q/DQ needs a calibrator)")
                cache = calibrator.read_calibration_cache()
                header = bytes(cache or b"").split(b"\n", 1)[0].decode(errors="replace")
                if header != "TRT-%d-%s" % (facts.code, calibrator.get_algorithm()):
                    self._logger.log(ILogger.WARNING, "calibration cache header %r is not this version's; "
                                     "calibrating" % header)
                    batch = calibrator.get_batch([t.name for t in network._inputs])
                    if batch is None:
                        return self._fail("Calibration failure: the calibrator returned no data")
                calibrated = True
        dla = config._device_type == DeviceType.DLA
        fallback = bool(config._flags & (1 << 3))
        if dla:
            cores = facts.dla_cores(spec)
            if not 0 <= config._dla_core < cores:
                return self._fail("DLA core %d requested; this device has %d" % (config._dla_core, cores))
            if not network._strongly_typed and not (fp16 or int8) and not fallback:
                return self._fail("DLA needs FP16 or INT8 (set BuilderFlag::kFP16) or GPU fallback")
            if network._qdq and (facts.major, facts.minor) < (11, 4) and not fallback:
                return self._fail("DLA cannot run Q/DQ layers in TensorRT %s" % facts.version)
        dynamic = [t for t in network._inputs if -1 in t.shape]
        profile = config._profiles[0]._shapes if config._profiles else {}
        for t in dynamic:
            if t.name not in profile:
                return self._fail("Network has dynamic or shape inputs, but no optimization profile has been "
                                  "defined (input %s)" % t.name)
            lo, opt, hi = profile[t.name]
            for d, a, b, c in zip(t.shape, lo, opt, hi):
                if not (0 < a <= b <= c) or (d != -1 and not a == b == c == d):
                    return self._fail("optimization profile for %s is invalid: %s" % (t.name, profile[t.name]))
        monitor = config._monitor
        if monitor is not None:
            monitor.phase_start("Building engine", None, 2)
            for step in range(2):
                if not monitor.step_complete("Building engine", step):
                    monitor.phase_finish("Building engine")
                    return self._fail("the build was cancelled by the progress monitor")
            monitor.phase_finish("Building engine")
        if config._timing is not None:
            config._timing._entries[hashlib.sha256(network._model).hexdigest()[:16]] = "timed"
        header = {"version": facts.version, "device": ctx.device, "cc": "%d.%d" % spec.cc, "board": spec.board,
                  "sms": spec.sms, "strongly_typed": network._strongly_typed, "fp16_flag": bool(fp16),
                  "int8_flag": bool(int8), "qdq": network._qdq, "fp16_tensors": network._fp16,
                  "calibrated": calibrated, "dla_core": config._dla_core if dla else None, "gpu_fallback": fallback,
                  "profile": profile, "workspace": config._pools.get(0, 0),
                  "inputs": [[t.name, list(t.shape), t.dtype.name] for t in network._inputs],
                  "outputs": [[t.name, list(t.shape), t.dtype.name] for t in network._outputs]}
        api.builds.append(header)
        return api.make("IHostMemory", MAGIC + json.dumps(header).encode() + b"\n" + network._model)


class Runtime(_Tracked):
    _kind = "Runtime"

    def __init__(self, logger: ILogger) -> None:
        self._attach(_API_OF[type(self)])
        self._logger = logger
        self._dla_core = 0

    DLA_core = _attribute("_dla_core", int)

    @property
    def num_DLA_cores(self) -> int:  # noqa: N802
        return self._api.facts.dla_cores(_world().devices[self._ctx.device])

    def deserialize_cuda_engine(self, serialized_engine) -> Optional["ICudaEngine"]:
        data = bytes(serialized_engine)
        world = _world()
        ctx = world.runtime_context()
        if not data.startswith(MAGIC):
            self._logger.log(ILogger.ERROR, "Serialization assertion failed: magic tag does not match")
            return None
        head, _, model = data[len(MAGIC):].partition(b"\n")
        header = json.loads(head.decode())
        if header["version"] != self._api.facts.version:
            self._logger.log(ILogger.ERROR, "The engine plan file is not compatible with this version of TensorRT, "
                             "expecting library version %s got %s" % (self._api.facts.version, header["version"]))
            return None
        spec = world.devices[ctx.device]
        if header["cc"] != "%d.%d" % spec.cc or header["sms"] != spec.sms:
            self._logger.log(ILogger.ERROR, "The engine plan file is generated on an incompatible device")
            return None
        return self._api.make("ICudaEngine", self, header, model)


class ICudaEngine(_Tracked):
    _kind = "ICudaEngine"

    def __init__(self, runtime: Runtime, header: dict, model: bytes) -> None:
        self._attach(runtime._api)
        self._runtime = runtime  # keep_alive<0, 1>
        self._header, self._model = header, model
        self._runs_on_dla_core = runtime._dla_core if header["dla_core"] is not None else None
        self._io = [(n, s, d, TensorIOMode.INPUT) for n, s, d in header["inputs"]] + \
                   [(n, s, d, TensorIOMode.OUTPUT) for n, s, d in header["outputs"]]
        self._session = None

    num_io_tensors = _count("_io")

    def get_tensor_name(self, index: int) -> str:
        return self._io[index][0]

    def _find(self, name: str):
        for io in self._io:
            if io[0] == name:
                return io
        raise ValueError("no tensor %r" % name)

    def get_tensor_mode(self, name: str):
        return self._find(name)[3]

    def get_tensor_shape(self, name: str):
        return tuple(self._find(name)[1])

    def get_tensor_dtype(self, name: str):
        return getattr(DataType, self._find(name)[2])

    @property
    def num_optimization_profiles(self) -> int:
        return 1

    def create_execution_context(self) -> "IExecutionContext":
        return self._api.make("IExecutionContext", self)


class IExecutionContext(_Tracked):
    _kind = "IExecutionContext"

    def __init__(self, engine: ICudaEngine) -> None:
        self._attach(engine._api)
        self._engine = engine  # keep_alive<0, 1>
        self._addresses: Dict[str, int] = {}
        self._input_shapes: Dict[str, tuple] = {}
        self._runs = 0

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._engine._find(name)
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def set_input_shape(self, name: str, shape) -> bool:
        io = self._engine._find(name)
        shape = tuple(int(s) for s in shape)
        lo, _, hi = self._engine._header["profile"].get(name, [io[1]] * 3)
        if len(shape) != len(io[1]) or any(not (a <= s <= b) for s, a, b in zip(shape, lo, hi)):
            return False
        self._input_shapes[name] = shape
        return True

    def _resolved(self):
        """Input shapes as set; output shapes inferred by running shape inference in onnxruntime terms."""
        ins = {}
        for name, shape, _, mode in self._engine._io:
            if mode == TensorIOMode.INPUT:
                ins[name] = self._input_shapes.get(name, tuple(shape))
        return ins

    def get_tensor_shape(self, name: str):
        io = self._engine._find(name)
        if io[3] == TensorIOMode.INPUT:
            return self._resolved()[name]
        ins = self._resolved()
        if any(-1 in s for s in ins.values()):
            return tuple(io[1])
        batch = next(iter(ins.values()))[0]
        return tuple(batch if d == -1 else d for d in io[1])

    def execute_async_v3(self, stream_handle: int) -> bool:
        world, engine = _world(), self._engine
        ctx = world.current()
        if ctx is None or ctx is not self._ctx or not ctx.alive:
            raise pycuda_driver.LogicError("execute_async_v3: the engine's CUDA context is not current "
                                           "(cudaErrorInvalidResourceHandle)")
        if stream_handle not in world.streams:
            engine._api.build_errors.append("execute_async_v3 on a stream that is not live")
            return False
        ins = self._resolved()
        if any(-1 in s for s in ins.values()):
            engine._api.build_errors.append("execute_async_v3: input shape not set for a dynamic engine")
            return False
        missing = [io[0] for io in engine._io if io[0] not in self._addresses]
        if missing:
            engine._api.build_errors.append("execute_async_v3: no address for %s" % missing)
            return False
        if engine._session is None:
            import onnxruntime as ort

            engine._session = ort.InferenceSession(engine._model, providers=["CPUExecutionProvider"])
        feeds = {}
        for name, shape in ins.items():
            dtype = np.uint8 if engine.get_tensor_dtype(name) == DataType.UINT8 else np.float32
            n = int(np.prod(shape)) * np.dtype(dtype).itemsize
            feeds[name] = world.device_view(self._addresses[name], n, "input %s" % name).view(dtype).reshape(shape).copy()
        outs = engine._session.run(None, feeds)
        for (name, _, _, mode), value in zip([io for io in engine._io if io[3] == TensorIOMode.OUTPUT], outs):
            raw = np.ascontiguousarray(value).view(np.uint8).reshape(-1)
            world.device_view(self._addresses[name], raw.size, "output %s" % name)[...] = raw
        self._runs += 1
        return True


EXPORTS = ["BuilderFlag", "NetworkDefinitionCreationFlag", "DataType", "TensorIOMode", "MemoryPoolType", "DeviceType",
           "ILogger", "Logger", "IHostMemory", "ITensor", "ParserError", "INetworkDefinition", "OnnxParser",
           "IOptimizationProfile", "ITimingCache", "IBuilderConfig", "IInt8EntropyCalibrator2",
           "IInt8MinMaxCalibrator", "IProgressMonitor", "Builder", "Runtime", "ICudaEngine", "IExecutionContext",
           "__version__"]
__version__ = "stand-in"

_API_OF: Dict[type, "_Api"] = {}


class _Api:
    """One loaded generation: its restricted classes, facts, and what happened (for tests)."""

    def __init__(self, column: str, version: str) -> None:
        self.column, self.facts = column, Facts(version)
        self.live: Dict[str, int] = {}  # objects alive now, by class
        self.made: Dict[str, int] = {}  # objects ever made, by class
        self.builds: List[dict] = []
        self.build_errors: List[str] = []
        impl = dict(globals())
        impl["__version__"] = version
        self.module = surface.restrict("tensorrt", LIBRARY, column, impl, EXPORTS)
        self.module.__version__ = version
        self.module.STANDIN = self  # for tests: not part of TensorRT
        for name in ("Builder", "Runtime"):
            if hasattr(self.module, name):
                _API_OF[getattr(self.module, name)] = self

    def make(self, name: str, *args):
        """An instance of this generation's (restricted) class ``name``."""
        return getattr(self.module, name)(*args)

    def device_model(self) -> str:
        world = _world()
        spec = world.devices[world.runtime_context().device]
        return "%s/%d.%d/%d" % (spec.board or spec.name, spec.cc[0], spec.cc[1], spec.sms)


def load(column: str, version: Optional[str] = None) -> types.ModuleType:
    """The ``tensorrt`` module of table column ``column`` (reporting ``version``, default the
    JetPack release of that column); ``module.STANDIN`` holds what it saw."""
    return _Api(column, version or RELEASES[column]).module
