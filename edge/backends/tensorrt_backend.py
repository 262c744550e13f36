"""TensorRT: the Jetson path. Engine from the cache (built on first use), tensor-address API.

Integrated GPU (Jetson, one DRAM): every buffer is pycuda page-locked *mapped* memory;
the numpy arrays are its host view and the engine gets its device pointer, so the
preprocessor writes where the network reads and the grouping core reads where the
network writes: no copy. Discrete GPU: device buffers plus page-locked host mirrors,
async copies and ``execute_async_v3`` on one stream.

Written against the documented TensorRT >= 8.5 (``num_io_tensors``, ``set_tensor_address``,
``execute_async_v3``) and pycuda APIs; neither library is imported until this backend is
asked for.
"""
from __future__ import annotations

import logging
import threading
from typing import Optional

import numpy as np

from .engine_cache import EngineCache
from .trt_build import BuildOptions, engine_for, import_tensorrt, int8_route, trt_major
from .base import Backend, BackendError, BufferSet

__all__ = ["TensorRTBackend", "import_pycuda"]

log = logging.getLogger("openpose_plus.backends.tensorrt")


def import_pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendError("the tensorrt backend needs pycuda (%s); pip install pycuda on the device" % exc) from None
    return cuda


class _Slot:
    """Per buffer set: host arrays, device pointers, and (discrete) device allocations."""

    def __init__(self) -> None:
        self.device_ptrs = {}
        self.device_allocs = []
        self.host = {}


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, bundle, precision: str = "auto", cache: Optional[EngineCache] = None,
                 dla_core: Optional[int] = None, workspace_mb: int = 1024, device: int = 0) -> None:
        try:
            trt = import_tensorrt()
        except RuntimeError as exc:
            raise BackendError(str(exc)) from None
        self.api_generation(trt.__version__)  # refuses a TensorRT older than 8.5
        cuda = import_pycuda()
        self._trt, self._cuda = trt, cuda
        cuda.init()
        self._device = cuda.Device(device)
        # MAP_HOST: mapped page-locked buffers; BLOCKING_SYNC: waiting for the GPU sleeps
        # instead of spinning on a core that capture and grouping need (Jetsons have few).
        self._ctx = self._device.make_context(flags=cuda.ctx_flags.MAP_HOST | cuda.ctx_flags.SCHED_BLOCKING_SYNC)
        try:
            self.integrated = bool(self._device.get_attribute(cuda.device_attribute.INTEGRATED))
            can_map = bool(self._device.get_attribute(cuda.device_attribute.CAN_MAP_HOST_MEMORY))
            self.zero_copy = self.integrated and can_map
            if precision == "auto":
                precision = self._auto_precision(bundle)
            super().__init__(bundle, precision)
            options = BuildOptions(precision=precision, dla_core=dla_core, workspace_mb=workspace_mb)
            self._cache = cache or EngineCache()
            engine_bytes, key, built, why = engine_for(bundle, options, self._cache, trt, device)
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            self.engine = self._runtime.deserialize_cuda_engine(engine_bytes)
            if self.engine is None and not built:
                # A cache entry that passed its checksum but not TensorRT: rebuild, do not trust it.
                self._cache.invalidate(key, "TensorRT could not deserialize it")
                engine_bytes, key, built, why = engine_for(bundle, options, self._cache, trt, device)
                self.engine = self._runtime.deserialize_cuda_engine(engine_bytes)
            if self.engine is None:
                raise BackendError("TensorRT could not deserialize the engine built for %s" % key.filename())
            self.context = self.engine.create_execution_context()
            self._lock = threading.Lock()  # one execution context: one inference at a time
            self.stream = cuda.Stream()
            self._check_io()
            self.reason = "TensorRT %s, %s, engine %s (%s)" % (
                trt.__version__, "zero-copy mapped memory" if self.zero_copy else "device buffers + async copies",
                "built" if built else "cached", why)
        finally:
            self._ctx.pop()

    def _auto_precision(self, bundle) -> str:
        builder = self._trt.Builder(self._trt.Logger(self._trt.Logger.ERROR))
        # platform_has_fast_* are deprecated in TensorRT 10 (every supported GPU has both).
        if int8_route(bundle) is not None and getattr(builder, "platform_has_fast_int8", True):
            return "int8"
        return "fp16" if getattr(builder, "platform_has_fast_fp16", True) else "fp32"

    def _io_names(self):
        trt = self._trt
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        return names, inputs

    def _check_io(self) -> None:
        b = self.bundle
        names, inputs = self._io_names()
        want = {b.input_name: self.input_shape, b.heatmaps_name: self.heatmap_shape, b.pafs_name: self.paf_shape}
        if inputs != [b.input_name] or set(names) != set(want):
            raise BackendError("engine tensors %s do not match the bundle's %s" % (names, sorted(want)))
        for name, shape in want.items():
            got = tuple(self.engine.get_tensor_shape(name))
            if -1 in got and name == b.input_name:
                self.context.set_input_shape(name, shape)  # a dynamic-batch export: fix batch 1
                got = tuple(self.context.get_tensor_shape(name))
            if got != tuple(shape):
                raise BackendError("engine tensor %r has shape %s, the bundle needs %s" % (name, got, shape))

    def _alloc(self, slot: _Slot, name: str, shape, dtype) -> np.ndarray:
        cuda = self._cuda
        if self.zero_copy:
            host = cuda.pagelocked_empty(shape, dtype, mem_flags=cuda.host_alloc_flags.DEVICEMAP)
            slot.device_ptrs[name] = int(host.base.get_device_pointer())
        else:
            host = cuda.pagelocked_empty(shape, dtype)
            dev = cuda.mem_alloc(host.nbytes)
            slot.device_allocs.append(dev)
            slot.device_ptrs[name] = int(dev)
        slot.host[name] = host
        return host

    def new_buffers(self) -> BufferSet:
        b = self.bundle
        self._ctx.push()
        try:
            slot = _Slot()
            inp = self._alloc(slot, b.input_name, self.input_shape, np.uint8)
            inp[...] = b.pad_value
            heat = self._alloc(slot, b.heatmaps_name, self.heatmap_shape, np.float32)
            paf = self._alloc(slot, b.pafs_name, self.paf_shape, np.float32)
        finally:
            self._ctx.pop()
        bufs = BufferSet(inp, heat, paf, slot)
        self._buffers.append(bufs)
        return bufs

    def infer(self, buffers: BufferSet) -> None:
        cuda, slot, b = self._cuda, buffers.handle, self.bundle
        with self._lock:
            self._infer(cuda, slot, b)

    def _infer(self, cuda, slot, b) -> None:
        self._ctx.push()
        try:
            for name, ptr in slot.device_ptrs.items():
                self.context.set_tensor_address(name, ptr)
            if not self.zero_copy:
                cuda.memcpy_htod_async(slot.device_ptrs[b.input_name], slot.host[b.input_name], self.stream)
            if not self.context.execute_async_v3(self.stream.handle):
                raise BackendError("TensorRT execute_async_v3 failed")
            if not self.zero_copy:
                for name in (b.heatmaps_name, b.pafs_name):
                    cuda.memcpy_dtoh_async(slot.host[name], slot.device_ptrs[name], self.stream)
            self.stream.synchronize()
        finally:
            self._ctx.pop()

    def close(self) -> None:
        super().close()
        self.context = None
        self.engine = None
        if getattr(self, "_ctx", None) is not None:
            self._ctx.detach()
            self._ctx = None

    @staticmethod
    def api_generation(version: str) -> str:
        """Which documented API family a TensorRT version gets (8.5/8.6 and 10.x are both served)."""
        major = trt_major(version)
        if major < 8 or (major == 8 and int(str(version).split(".")[1]) < 5):
            raise BackendError("TensorRT %s is too old: the tensor-address API needs 8.5 or newer" % version)
        return "trt10" if major >= 10 else "trt8"
