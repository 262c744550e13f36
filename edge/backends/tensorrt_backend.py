"""TensorRT: the Jetson path. Engine from the cache (built on first use), tensor-address API.

Integrated GPU (Jetson, one DRAM): every buffer is pycuda page-locked *mapped* memory;
the numpy arrays are its host view and the engine gets its device pointer, so the
preprocessor writes where the network reads and the grouping core reads where the
network writes: no copy. Discrete GPU: device buffers plus page-locked host mirrors,
async copies and ``execute_async_v3`` on one stream.

Every TensorRT from 8.5 (JetPack 5) to 11.x (JetPack 7.2) through one code path (the builder
decides the route per generation, :mod:`.trt_build`). One CUDA context: the device's primary
context, which jetson-utils' frames live in too, pushed around every use. Teardown frees with
that context current, in TensorRT's order (execution context, engine, runtime), then the
buffers, then pops and releases it; a start that fails part way releases the same way, so a
failed start or a reload leaks nothing. Neither library is imported until this backend is
asked for.
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from .base import Backend, BackendError, BufferSet
from .cuda_device import PrimaryContext
from .engine_cache import EngineCache
from .trt_api import Generation
from .trt_build import BuildOptions, auto_candidates, engine_for, import_pycuda as _import_pycuda, import_tensorrt

__all__ = ["TensorRTBackend", "import_pycuda"]

log = logging.getLogger("openpose_plus.backends.tensorrt")


def import_pycuda():
    try:
        return _import_pycuda()
    except RuntimeError as exc:
        raise BackendError(str(exc)) from None


def _free(alloc: "Union[cuda.HostAllocation, cuda.DeviceAllocation]") -> None:
    alloc.free()


class _Slot:
    """Per buffer set: device pointers by tensor name, and the allocations to free at close."""

    def __init__(self) -> None:
        self.device_ptrs: Dict[str, int] = {}
        self.allocations: List[object] = []
        self.host: Dict[str, np.ndarray] = {}


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, bundle, precision: str = "auto", cache: Optional[EngineCache] = None,
                 dla_core: Optional[int] = None, workspace_mb: int = 1024, device: int = 0,
                 gpu_fallback: bool = True, max_batch: int = 0,
                 report: Optional[Callable[[str], None]] = None) -> None:
        # Buffers of ``batch`` frames (a dynamic bundle: max_batch, its own size when 0); the
        # engine's profile runs 1..N, optimum N: the bundle's batch size, or more where asked, so
        # a daemon with fewer streams than that reuses the engine build-engine made (the cache
        # keys on the profile).
        super().__init__(bundle, precision, max_batch)
        self.max_batch = max(self.batch, int(max_batch), bundle.batch.size)
        self._shape_n = 0  # the batch the execution context's input shape is set to
        # everything below is released by _release(), on close and when this start fails
        self._device: Optional[PrimaryContext] = None
        self.context: "Optional[trt.IExecutionContext]" = None
        self.engine: "Optional[trt.ICudaEngine]" = None
        self._runtime: "Optional[trt.Runtime]" = None
        self.stream: "Optional[cuda.Stream]" = None
        self._done: "Optional[cuda.Event]" = None
        self._slots: List[_Slot] = []
        self._lock = threading.Lock()  # one execution context: one inference at a time
        try:
            trt = import_tensorrt()
        except RuntimeError as exc:
            raise BackendError(str(exc)) from None
        try:
            self.gen = Generation(trt.__version__)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        cuda = import_pycuda()
        self._trt, self._cuda = trt, cuda
        self._logger: "trt.Logger" = trt.Logger(trt.Logger.WARNING)  # outlives the runtime and engine (TensorRT's rule)
        self._cache = cache or EngineCache()
        self.attempts: List[str] = []
        try:
            self._device = PrimaryContext(cuda, device)
            self._device.push()
            info = self.device_info = self._device.info
            self.zero_copy = info.zero_copy
            self.integrated = info.integrated
            options = BuildOptions("fp16", dla_core, gpu_fallback, workspace_mb, self.max_batch)
            if precision == "auto":
                candidates = auto_candidates(bundle, self.gen, info, options)
                if not candidates:
                    raise BackendError("no precision TensorRT %s can build from this bundle on %s"
                                       % (trt.__version__, info.model))
            else:
                candidates = [(precision, "asked for")]
            why, failed = "", []
            for p, _ in candidates:
                try:
                    why = self._open(p, options, report)
                    self.precision = p
                    break
                except Exception as exc:  # TensorRT raises RuntimeError, TypeError, AttributeError...
                    traceback.clear_frames(exc.__traceback__)  # free what the failed try made, now
                    self._drop_engine()
                    detail = "%s failed (%s: %s)" % (p, type(exc).__name__, exc)
                    if precision != "auto":
                        raise BackendError("TensorRT %s: %s" % (trt.__version__, detail)) from None
                    failed.append(detail)
                    log.warning("tensorrt: %s%s", detail, "; trying the next precision" if p != candidates[-1][0] else "")
            else:
                raise BackendError("TensorRT %s: no precision works here: %s" % (trt.__version__, "; ".join(failed)))
            self.attempts = failed
            self.stream = cuda.Stream()
            # waiting on a BLOCKING_SYNC event sleeps instead of spinning on a core that capture and
            # grouping need (the primary context's flags are the runtime's, so the event carries it)
            self._done = cuda.Event(cuda.event_flags.BLOCKING_SYNC)
            self.reason = "TensorRT %s (%s), %s on %s, %s%s" % (
                trt.__version__, self.precision, "zero-copy mapped memory" if self.zero_copy
                else "device buffers + async copies", info.model, why,
                ("; " + "; ".join(self.attempts)) if self.attempts else "")
            self._device.pop()
        except BaseException as exc:
            # the traceback holds the callees' TensorRT objects: free them while the context lives
            traceback.clear_frames(exc.__traceback__)
            self._release()
            raise

    # -- engine ---------------------------------------------------------------------------
    def _open(self, precision: str, options: BuildOptions, report) -> str:
        trt, b = self._trt, self.bundle
        options = BuildOptions(precision, options.dla_core, options.gpu_fallback, options.workspace_mb,
                               options.max_batch).validate(b)
        built = engine_for(b, options, self._cache, trt, context=self._device, report=report)
        if self._runtime is None:
            self._runtime = trt.Runtime(self._logger)
        runtime: "trt.Runtime" = self._runtime
        if built.plan.dla_core is not None:
            runtime.DLA_core = built.plan.dla_core  # the core the engine will run on: set before deserializing
        self.engine = runtime.deserialize_cuda_engine(built.engine)
        if self.engine is None and not built.built:
            # a cache entry that passed its checksum but not TensorRT: rebuild, do not trust it
            self._cache.invalidate(built.key, "TensorRT could not deserialize it")
            built = engine_for(b, options, self._cache, trt, context=self._device, report=report)
            self.engine = runtime.deserialize_cuda_engine(built.engine)
        if self.engine is None:
            raise BackendError("TensorRT could not deserialize the engine built for %s" % built.key.filename())
        engine: "trt.ICudaEngine" = self.engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise BackendError("TensorRT could not create an execution context (device memory?)")
        self._check_io()
        self.plan, self.key = built.plan, built.key
        return "route %s (%s), engine %s (%s)" % (built.plan.route, built.plan.describe(),
                                                   "built" if built.built else "cached", built.reason)

    def _drop_engine(self) -> None:
        self.context = None  # execution context before its engine (TensorRT's order)
        self.engine = None

    def _check_io(self) -> None:
        """Names, modes, dtypes (uint8 in, float32 out) and shapes, resolved: a dynamic batch
        is fixed to 1 on the execution context, and no output shape may keep a -1."""
        trt, b = self._trt, self.bundle
        engine: "trt.ICudaEngine" = self.engine
        context: "trt.IExecutionContext" = self.context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        want = {b.input_name: self.input_shape, b.heatmaps_name: self.heatmap_shape, b.pafs_name: self.paf_shape}
        if inputs != [b.input_name] or set(names) != set(want):
            raise BackendError("engine tensors %s (inputs %s) do not match the bundle's input %r and outputs %s"
                               % (names, inputs, b.input_name, sorted(set(want) - {b.input_name})))
        dtypes = {b.input_name: trt.DataType.UINT8, b.heatmaps_name: trt.DataType.FLOAT, b.pafs_name: trt.DataType.FLOAT}
        for name, dtype in dtypes.items():
            got = engine.get_tensor_dtype(name)
            if got != dtype:
                raise BackendError("engine tensor %r is %s; the bundle's contract is %s" % (name, got, dtype))
        self._shape_n = 0
        if -1 in tuple(engine.get_tensor_shape(b.input_name)):
            if not context.set_input_shape(b.input_name, self.input_shape):
                raise BackendError("engine input %r cannot take shape %s (its profile: %s)"
                                   % (b.input_name, self.input_shape, tuple(engine.get_tensor_shape(b.input_name))))
            self._shape_n = self.batch  # a dynamic engine: each call sets the batch it runs
        for name, shape in want.items():
            got = tuple(int(d) for d in context.get_tensor_shape(name))
            if got != tuple(shape):
                raise BackendError("engine tensor %r has shape %s, the bundle needs %s" % (name, got, shape))

    # -- buffers --------------------------------------------------------------------------
    def _alloc(self, slot: _Slot, name: str, shape: Tuple[int, ...], dtype) -> np.ndarray:
        cuda = self._cuda
        if self.zero_copy:
            host: np.ndarray = cuda.pagelocked_empty(shape, dtype, mem_flags=cuda.host_alloc_flags.DEVICEMAP)
            alloc: "cuda.HostAllocation" = host.base
            slot.device_ptrs[name] = int(alloc.get_device_pointer())
            slot.allocations.append(alloc)
        else:
            host = cuda.pagelocked_empty(shape, dtype)
            mirror: "cuda.HostAllocation" = host.base
            dev: "cuda.DeviceAllocation" = cuda.mem_alloc(host.nbytes)
            slot.allocations.extend((dev, mirror))
            slot.device_ptrs[name] = int(dev)
        slot.host[name] = host
        return host

    def new_buffers(self) -> BufferSet:
        b = self.bundle
        if self._device is None:
            raise BackendError("the tensorrt backend is closed")
        with self._device:
            slot = _Slot()
            self._slots.append(slot)
            inp = self._alloc(slot, b.input_name, self.input_shape, np.uint8)
            inp[...] = b.pad_value
            heat = self._alloc(slot, b.heatmaps_name, self.heatmap_shape, np.float32)
            paf = self._alloc(slot, b.pafs_name, self.paf_shape, np.float32)
        bufs = BufferSet(inp, heat, paf, slot)
        self._buffers.append(bufs)
        return bufs

    # -- inference ------------------------------------------------------------------------
    def infer(self, buffers: BufferSet, n: Optional[int] = None) -> None:
        n = self.frames_to_run(n)
        with self._lock:
            if self._device is None:
                raise BackendError("the tensorrt backend is closed")
            with self._device:
                self._infer(buffers.handle, n)

    def _infer(self, slot: _Slot, n: int) -> None:
        cuda, b = self._cuda, self.bundle
        context: "trt.IExecutionContext" = self.context
        stream: "cuda.Stream" = self.stream
        done: "cuda.Event" = self._done
        if self._shape_n and n != self._shape_n:
            # the first n frames of the batch's buffers: same addresses, a smaller input shape
            if not context.set_input_shape(b.input_name, (n,) + tuple(self.input_shape[1:])):
                raise BackendError("engine input %r cannot take a batch of %d" % (b.input_name, n))
            self._shape_n = n
        for name, ptr in slot.device_ptrs.items():
            context.set_tensor_address(name, ptr)
        if not self.zero_copy:
            cuda.memcpy_htod_async(slot.device_ptrs[b.input_name], slot.host[b.input_name], stream)
        if not context.execute_async_v3(stream.handle):
            raise BackendError("TensorRT execute_async_v3 failed (see its log)")
        if not self.zero_copy:
            for name in (b.heatmaps_name, b.pafs_name):
                cuda.memcpy_dtoh_async(slot.host[name], slot.device_ptrs[name], stream)
        done.record(stream)
        done.synchronize()

    # -- teardown -------------------------------------------------------------------------
    def _release(self) -> None:
        """Free everything with the context current, in order, then pop and release it."""
        device, self._device = self._device, None
        if device is None or device.released:
            return
        try:
            if not device.pushed:
                device.push()
            self.context = None   # execution context, then engine, then runtime
            self.engine = None
            self._runtime = None
            for slot in self._slots:
                for alloc in slot.allocations:
                    _free(alloc)
                slot.allocations.clear()
            self._slots.clear()
            self._buffers.clear()
            self._done = None
            self.stream = None
        finally:
            device.release()  # pops what is pushed, then detaches

    def close(self) -> None:
        with self._lock:
            self._release()
        super().close()

    @staticmethod
    def api_generation(version: str) -> str:
        """The API family a TensorRT version gets (``trt8``, ``trt10``, ``trt11``)."""
        try:
            return "trt%d" % Generation(version).major
        except ValueError as exc:
            raise BackendError(str(exc)) from None
