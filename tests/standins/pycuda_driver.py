"""A stand-in for ``pycuda.driver`` (pycuda 2026.1): no test machine here has a GPU, libcuda or
pycuda (it does not even build without the CUDA driver), so this module plays it, with the
surface the conformance table lists for pycuda and nothing more.

It keeps a small model of the CUDA world the real library drives, strict where the real one is
strict, so the tests see the mistakes a Jetson would punish:

- devices (name, compute capability, SMs, memory, integrated, DLA cores, board) from
  :func:`reset`; ``Device(i)`` past the count raises ``LogicError``;
- contexts: ``retain_primary_context()`` retains (not current), ``push``/static ``pop`` move
  pycuda's per-thread stack, ``detach`` releases; ``make_context`` makes a *second* context
  (counted, so a test can say none was made); popping an empty stack raises ``LogicError``
  as pycuda does ("cannot pop non-current context");
- memory: ``pagelocked_empty`` gives a numpy array whose ``.base`` is the allocation (mapped to
  the device only with ``host_alloc_flags.DEVICEMAP``), ``mem_alloc`` device memory with
  ``int()`` its address; both need a current context (pycuda raises ``LogicError``: "invalid
  device context"); ``free`` after the context is gone is recorded as an error;
- ``Stream``/``Event`` need a current context; the copy functions check their pointers.

:data:`WORLD` is that model; tests read its ``errors`` (misuse the real driver would answer
with an error or a crash), ``log`` (what happened, in order) and live counts.
"""
from __future__ import annotations

import ctypes
import itertools
import threading
import weakref
from typing import Dict, List, Optional

import numpy as np

from . import surface

LIBRARY = "pycuda.driver"
COLUMN = "2026.1"


# -- errors (pycuda._driver: Error derives from Exception) ---------------------------------
class Error(Exception):
    pass


class LogicError(Error):
    pass


class RuntimeError(Error):  # noqa: A001 - pycuda's own name
    pass


class MemoryError(Error):  # noqa: A001
    pass


class LaunchError(Error):
    pass


# -- the model ---------------------------------------------------------------------------------
class DeviceSpec:
    def __init__(self, name: str = "Orin", cc=(8, 7), sms: int = 16, memory_mib: int = 62841, integrated: bool = True,
                 dla_cores: int = 2, board: str = "NVIDIA Jetson AGX Orin Developer Kit") -> None:
        self.name, self.cc, self.sms, self.memory_mib = name, tuple(cc), sms, memory_mib
        self.integrated, self.dla_cores, self.board = integrated, dla_cores, board


ORIN = DeviceSpec()
ORIN_NANO = DeviceSpec("Orin", (8, 7), 8, 7620, True, 0, "NVIDIA Jetson Orin Nano Developer Kit")
XAVIER = DeviceSpec("Xavier", (7, 2), 8, 31011, True, 2, "NVIDIA Jetson AGX Xavier Developer Kit")
RTX = DeviceSpec("NVIDIA GeForce RTX 4090", (8, 9), 128, 24210, False, 0, "")


class _Ctx:
    """A CUDA context (the primary one of a device, or one ``make_context`` created)."""

    _ids = itertools.count(1)

    def __init__(self, device: int, primary: bool) -> None:
        self.device, self.primary = device, primary
        self.handle = next(self._ids) << 12
        self.retains = 0
        self.alive = False


class _Allocation:
    def __init__(self, buf: bytearray, ctx: _Ctx, kind: str) -> None:
        self.buf, self.ctx, self.kind = buf, ctx, kind
        self.address = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf)) if len(buf) else 0
        self.size = len(buf)
        self.freed = False


class World:
    """The devices, contexts, allocations, streams of the stand-in, and what went wrong."""

    def __init__(self, devices: Optional[List[DeviceSpec]] = None) -> None:
        self.devices = list(devices) if devices is not None else [ORIN]
        self.initialised = False
        self.primary: Dict[int, _Ctx] = {}
        self.created: List[_Ctx] = []  # contexts make_context made (the project should make none)
        self._tls = threading.local()
        self.allocations: Dict[int, _Allocation] = {}
        self.streams: "weakref.WeakValueDictionary[int, Stream]" = weakref.WeakValueDictionary()
        self.errors: List[str] = []
        self.log: List[str] = []

    # contexts
    @property
    def stack(self) -> List[_Ctx]:
        if not hasattr(self._tls, "stack"):
            self._tls.stack = []
        return self._tls.stack

    def current(self) -> Optional[_Ctx]:
        return self.stack[-1] if self.stack else None

    def require_context(self, what: str) -> _Ctx:
        ctx = self.current()
        if ctx is None or not ctx.alive:
            raise LogicError("%s failed: invalid device context - no currently active context?" % what)
        return ctx

    def primary_context(self, device: int) -> _Ctx:
        if device not in self.primary:
            self.primary[device] = _Ctx(device, True)
        return self.primary[device]

    def runtime_context(self) -> _Ctx:
        """What the CUDA runtime (TensorRT, jetson-utils) uses: the current context, else device
        0's primary context, made current implicitly as cudaSetDevice(0) would."""
        ctx = self.current()
        if ctx is not None and ctx.alive:
            return ctx
        self.log.append("runtime: implicit primary context of device 0")
        ctx = self.primary_context(0)
        ctx.alive = True
        ctx.retains += 1  # the runtime holds it until the process ends
        return ctx

    def live_contexts(self) -> int:
        """Retains of primary contexts plus contexts make_context made that are still alive."""
        return sum(c.retains for c in self.primary.values()) + sum(1 for c in self.created if c.alive)

    def live_retains(self) -> Dict[int, int]:
        return {d: c.retains for d, c in self.primary.items() if c.retains}

    # memory
    def allocate(self, nbytes: int, kind: str) -> _Allocation:
        ctx = self.require_context("cuMemAlloc" if kind == "device" else "cuMemHostAlloc")
        a = _Allocation(bytearray(max(1, int(nbytes))), ctx, kind)
        self.allocations[a.address] = a
        return a

    def free(self, a: _Allocation) -> None:
        if a.freed:
            return
        if not a.ctx.alive:
            self.errors.append("%s memory freed after its context was destroyed" % a.kind)
        a.freed = True
        self.allocations.pop(a.address, None)

    def live_allocations(self) -> int:
        return len(self.allocations)

    def device_view(self, address: int, nbytes: int, what: str) -> np.ndarray:
        """The bytes at a device address: device memory, or mapped host memory."""
        for a in self.allocations.values():
            if a.address <= address and address + nbytes <= a.address + a.size:
                if a.kind == "host":
                    raise LaunchError("%s: %#x is page-locked host memory not mapped to the device" % (what, address))
                arr = np.frombuffer(a.buf, np.uint8)
                off = address - a.address
                return arr[off:off + nbytes]
        raise LaunchError("%s: %#x (%d bytes) is not device memory (an illegal address)" % (what, address, nbytes))


WORLD = World()


def reset(devices: Optional[List[DeviceSpec]] = None) -> World:
    """A fresh world (the devices this 'machine' has)."""
    global WORLD
    WORLD = World(devices)
    return WORLD


# -- enums and flags ----------------------------------------------------------------------------
class ctx_flags:  # noqa: N801 - pycuda's names
    SCHED_AUTO = 0
    SCHED_SPIN = 1
    SCHED_YIELD = 2
    SCHED_BLOCKING_SYNC = 4
    BLOCKING_SYNC = 4
    MAP_HOST = 8


class device_attribute:  # noqa: N801
    MULTIPROCESSOR_COUNT = "MULTIPROCESSOR_COUNT"
    INTEGRATED = "INTEGRATED"
    CAN_MAP_HOST_MEMORY = "CAN_MAP_HOST_MEMORY"
    COMPUTE_CAPABILITY_MAJOR = "COMPUTE_CAPABILITY_MAJOR"
    COMPUTE_CAPABILITY_MINOR = "COMPUTE_CAPABILITY_MINOR"


class host_alloc_flags:  # noqa: N801
    PORTABLE = 1
    DEVICEMAP = 2
    WRITECOMBINED = 4


class event_flags:  # noqa: N801
    DEFAULT = 0
    BLOCKING_SYNC = 1
    DISABLE_TIMING = 2


def init(flags: int = 0) -> None:
    if not WORLD.devices:  # pycuda's RuntimeError: not the builtin one
        raise RuntimeError("cuInit failed: no CUDA-capable device is detected")
    WORLD.initialised = True


def _need_init(what: str) -> None:
    if not WORLD.initialised:
        raise LogicError("%s failed: initialization error (cuda.init() was not called)" % what)


# -- devices and contexts ---------------------------------------------------------------------------
class Device:
    def __init__(self, index: int) -> None:
        _need_init("cuDeviceGet")
        if not 0 <= int(index) < len(WORLD.devices):
            raise LogicError("cuDeviceGet failed: invalid device ordinal")
        self._index = int(index)
        self._spec = WORLD.devices[self._index]

    @staticmethod
    def count() -> int:
        _need_init("cuDeviceGetCount")
        return len(WORLD.devices)

    def name(self) -> str:
        return self._spec.name

    def compute_capability(self):
        return self._spec.cc

    def total_memory(self) -> int:
        return self._spec.memory_mib << 20

    def pci_bus_id(self) -> str:
        return "0000:%02x:00.0" % self._index

    def get_attribute(self, attr) -> int:
        s = self._spec
        values = {device_attribute.MULTIPROCESSOR_COUNT: s.sms, device_attribute.INTEGRATED: int(s.integrated),
                  device_attribute.CAN_MAP_HOST_MEMORY: 1, device_attribute.COMPUTE_CAPABILITY_MAJOR: s.cc[0],
                  device_attribute.COMPUTE_CAPABILITY_MINOR: s.cc[1]}
        return values[attr]

    def retain_primary_context(self) -> "Context":
        ctx = WORLD.primary_context(self._index)
        ctx.alive = True
        ctx.retains += 1
        WORLD.log.append("retain primary %d (%d)" % (self._index, ctx.retains))
        return Context(ctx)

    def make_context(self, flags: int = 0) -> "Context":
        ctx = _Ctx(self._index, False)
        ctx.alive, ctx.retains = True, 1
        WORLD.created.append(ctx)
        WORLD.stack.append(ctx)
        WORLD.log.append("make_context %d" % self._index)
        return Context(ctx)


class Context:
    def __init__(self, ctx: _Ctx) -> None:
        self._ctx = ctx
        self._valid = True

    def push(self) -> None:
        if not self._valid or not self._ctx.alive:
            raise LogicError("cuCtxPushCurrent failed: invalid device context")
        WORLD.stack.append(self._ctx)
        WORLD.log.append("push %d" % self._ctx.device)

    @staticmethod
    def pop() -> None:
        if not WORLD.stack:
            raise LogicError("context::pop failed: invalid device context - cannot pop non-current context")
        ctx = WORLD.stack.pop()
        WORLD.log.append("pop %d" % ctx.device)

    def detach(self) -> None:
        if not self._valid:
            raise LogicError("context::detach failed: invalid device context - cannot detach from invalid context")
        self._valid = False
        ctx = self._ctx
        ctx.retains -= 1
        WORLD.log.append("detach %d (%d)" % (ctx.device, ctx.retains))
        if ctx.retains <= 0:
            ctx.alive = False  # the last release resets (destroys) the context
            WORLD.log.append("context %d destroyed" % ctx.device)
        # pycuda drops an invalid context from its stack when it meets it
        WORLD.stack[:] = [c for c in WORLD.stack if c.alive]

    @staticmethod
    def get_current() -> Optional["Context"]:
        ctx = WORLD.current()
        return Context(ctx) if ctx is not None else None

    @staticmethod
    def synchronize() -> None:
        WORLD.require_context("cuCtxSynchronize")

    @staticmethod
    def get_device() -> Device:
        return Device(WORLD.require_context("cuCtxGetDevice").device)

    @property
    def handle(self) -> int:
        return self._ctx.handle


# -- memory -----------------------------------------------------------------------------------------
class HostPointer:
    def get_device_pointer(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError


class PagelockedHostAllocation(bytearray, HostPointer):
    """The page-locked buffer a ``pagelocked_empty`` array views (its ``.base``)."""

    def _bind(self, allocation: _Allocation, mapped: bool) -> "PagelockedHostAllocation":
        self._a, self._mapped = allocation, mapped
        return self

    def get_device_pointer(self) -> int:
        if not self._mapped:
            raise LogicError("cuMemHostGetDevicePointer failed: invalid value (not allocated with DEVICEMAP)")
        return self._a.address

    def free(self) -> None:
        WORLD.free(self._a)

    def get_flags(self) -> int:
        return host_alloc_flags.DEVICEMAP if self._mapped else 0


HostAllocation = PagelockedHostAllocation


def pagelocked_empty(shape, dtype, order: str = "C", mem_flags: int = 0) -> np.ndarray:
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    nbytes = int(np.prod(shape)) * dtype.itemsize
    mapped = bool(mem_flags & host_alloc_flags.DEVICEMAP)
    buf = PagelockedHostAllocation(max(1, nbytes))
    a = WORLD.allocate(0, "host-mapped" if mapped else "host")
    a.buf, a.size = buf, len(buf)
    WORLD.allocations.pop(a.address, None)
    a.address = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
    WORLD.allocations[a.address] = a
    buf._bind(a, mapped)
    return np.ndarray(shape, dtype, buffer=buf, order=order)


class DeviceAllocation:
    def __init__(self, a: _Allocation) -> None:
        self._a = a

    def __int__(self) -> int:
        return self._a.address

    __index__ = __int__

    def free(self) -> None:
        WORLD.free(self._a)


def mem_alloc(nbytes: int) -> DeviceAllocation:
    return DeviceAllocation(WORLD.allocate(int(nbytes), "device"))


def mem_get_info():
    WORLD.require_context("cuMemGetInfo")
    return (1 << 30, 8 << 30)


def _stream_ok(stream, what: str) -> None:
    if stream is not None and (not isinstance(stream, Stream) or stream.handle not in WORLD.streams):
        raise LogicError("%s: not a live stream" % what)


def memcpy_htod_async(dest, src, stream=None) -> None:
    WORLD.require_context("cuMemcpyHtoDAsync")
    _stream_ok(stream, "cuMemcpyHtoDAsync")
    data = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
    WORLD.device_view(int(dest), data.size, "cuMemcpyHtoDAsync")[...] = data


def memcpy_dtoh_async(dest, src, stream=None) -> None:
    WORLD.require_context("cuMemcpyDtoHAsync")
    _stream_ok(stream, "cuMemcpyDtoHAsync")
    out = dest.view(np.uint8).reshape(-1)
    out[...] = WORLD.device_view(int(src), out.size, "cuMemcpyDtoHAsync")


# -- streams and events -------------------------------------------------------------------------------
class Stream:
    _ids = itertools.count(0x5000, 0x10)

    def __init__(self, flags: int = 0) -> None:
        self._ctx = WORLD.require_context("cuStreamCreate")
        self._handle = next(self._ids)
        WORLD.streams[self._handle] = self

    @property
    def handle(self) -> int:
        return self._handle

    def synchronize(self) -> None:
        WORLD.require_context("cuStreamSynchronize")

    def is_done(self) -> bool:
        return True

    def __del__(self) -> None:
        if hasattr(self, "_ctx") and not self._ctx.alive:
            WORLD.errors.append("stream destroyed after its context")


class Event:
    def __init__(self, flags: int = 0) -> None:
        self._ctx = WORLD.require_context("cuEventCreate")
        self._flags = flags
        self._recorded = 0
        self._waits = 0

    def record(self, stream=None) -> "Event":
        WORLD.require_context("cuEventRecord")
        _stream_ok(stream, "cuEventRecord")
        self._recorded += 1
        return self

    def synchronize(self) -> "Event":
        WORLD.require_context("cuEventSynchronize")
        self._waits += 1
        return self

    def query(self) -> bool:
        return True


EXPORTS = ["Error", "LogicError", "RuntimeError", "MemoryError", "LaunchError", "ctx_flags", "device_attribute",
           "host_alloc_flags", "event_flags", "init", "Device", "Context", "HostPointer", "PagelockedHostAllocation",
           "HostAllocation", "pagelocked_empty", "DeviceAllocation", "mem_alloc", "mem_get_info",
           "memcpy_htod_async", "memcpy_dtoh_async", "Stream", "Event"]


def load():
    """The ``pycuda.driver`` module of the table's pycuda column (a fresh :data:`WORLD` is the caller's)."""
    return surface.restrict("pycuda.driver", LIBRARY, COLUMN, globals(), EXPORTS)
