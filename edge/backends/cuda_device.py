"""One CUDA device through pycuda: what it is (for the engine cache) and its primary context.

The primary context is the one the CUDA runtime uses, so TensorRT, pycuda and jetson-utils
(which allocates its frames through the runtime) share one context on the device instead of
pycuda making a second one beside it (``make_context``): on a Jetson's one iGPU, a second
context costs memory and every switch between them costs time.

pycuda's context rules (src/cpp/cuda.hpp, 2026.1): ``retain_primary_context()`` retains
without making it current; ``push()`` makes it current on this thread; the static
``Context.pop()`` undoes the last push; ``detach()`` releases the retain. Anything that frees
device memory (TensorRT's engine and execution context, pycuda allocations) must run while
the context is current, so teardown is: push, free, pop, detach.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["DeviceInfo", "PrimaryContext", "describe_device", "fast_precisions", "DEVICE_TREE_MODEL"]

# Where a Jetson names itself ("NVIDIA Jetson AGX Orin Developer Kit"); pycuda calls every Orin "Orin".
DEVICE_TREE_MODEL = "/proc/device-tree/model"


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    compute_capability: str
    sm_count: int
    memory_mib: int
    integrated: bool
    can_map_host: bool
    board: str = ""  # the device tree's model on a Jetson, else ""

    @property
    def model(self) -> str:
        """What an engine is specific to: the board (or GPU name), its SMs and memory, so an
        AGX Orin 64 GB, an Orin NX 8 GB and an Orin Nano never share a cache entry."""
        return "%s, %d SMs, %d MiB" % (self.board or self.name, self.sm_count, self.memory_mib)

    @property
    def zero_copy(self) -> bool:
        return self.integrated and self.can_map_host


def fast_precisions(compute_capability: str):
    """(fast fp16, fast int8) from the compute capability, as TensorRT's removed
    ``platform_has_fast_fp16/int8`` reported them: fp16 on 5.3, 6.0, 6.2 and 7.0+; int8 on 6.1 and 7.0+."""
    major, minor = (int(x) for x in compute_capability.split(".")[:2])
    fp16 = (major, minor) in ((5, 3), (6, 0), (6, 2)) or major >= 7
    int8 = (major, minor) == (6, 1) or major >= 7
    return fp16, int8


def _board(path: str = DEVICE_TREE_MODEL) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def describe_device(cuda, index: int = 0, device_tree: Optional[str] = None) -> DeviceInfo:
    """The facts of CUDA device ``index`` (``cuda`` is pycuda.driver, already initialised)."""
    count = cuda.Device.count()
    if not 0 <= index < count:
        raise ValueError("CUDA device %d requested, this machine has %d" % (index, count))
    dev: "cuda.Device" = cuda.Device(index)
    major, minor = dev.compute_capability()
    integrated = bool(dev.get_attribute(cuda.device_attribute.INTEGRATED))
    return DeviceInfo(index=index, name=dev.name(), compute_capability="%d.%d" % (major, minor),
                      sm_count=int(dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)),
                      memory_mib=int(dev.total_memory()) >> 20, integrated=integrated,
                      can_map_host=bool(dev.get_attribute(cuda.device_attribute.CAN_MAP_HOST_MEMORY)),
                      # a desktop's device tree (where there is one) describes the board, not the GPU
                      board=_board(device_tree or DEVICE_TREE_MODEL) if integrated else "")


class PrimaryContext:
    """Device ``index``'s primary context, retained once; ``push``/``pop`` around each use.

    ``with ctx:`` pushes and pops. :meth:`release` pops whatever this object still has pushed and
    detaches (releases the retain); it is safe to call twice and after a failed start.
    """

    def __init__(self, cuda, index: int = 0, device_tree: Optional[str] = None) -> None:
        self._cuda = cuda
        self._pushed = 0
        self._ctx: "Optional[cuda.Context]" = None
        cuda.init()
        self.info = describe_device(cuda, index, device_tree)
        dev: "cuda.Device" = cuda.Device(index)
        self._ctx = dev.retain_primary_context()

    @property
    def pushed(self) -> int:
        return self._pushed

    def push(self) -> None:
        if self._ctx is None:
            raise RuntimeError("CUDA context of device %d already released" % self.info.index)
        self._ctx.push()
        self._pushed += 1

    def pop(self) -> None:
        if self._pushed:
            self._cuda.Context.pop()
            self._pushed -= 1

    def __enter__(self) -> "PrimaryContext":
        self.push()
        return self

    def __exit__(self, *exc) -> None:
        self.pop()

    def release(self) -> None:
        """Pop what is still pushed, then release the retain (the order pycuda needs)."""
        while self._pushed:
            self.pop()
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.detach()

    @property
    def released(self) -> bool:
        return self._ctx is None

