"""Stand-ins for TensorRT and pycuda: libraries no test machine here can have (no GPU, no
JetPack; TensorRT's PyPI wheels are stubs, pycuda does not build without libcuda). Each exposes
one generation's surface, exactly as the committed conformance table (api_table.json, from
scripts/api_table.py) lists it, and raises where the real one raises; see their modules.

``jetson_utils_standin`` stands in for jetson-utils' bindings the same way (its sources, one
column); tests/test_jetson_source.py loads a fresh copy of it as ``jetson_utils`` per test.

``installed(column)`` puts ``tensorrt`` (that column) and ``pycuda.driver`` into
``sys.modules`` for the duration, over a fresh pycuda world (the devices this "machine" has).
"""
from __future__ import annotations

import contextlib
import sys
import types
from typing import Iterator, List, Optional, Tuple

from . import pycuda_driver, tensorrt_standin

__all__ = ["installed", "pycuda_driver", "tensorrt_standin", "COLUMNS"]

COLUMNS = ("8.5", "8.6", "10.3", "10.13", "11.4")
_NAMES = ("tensorrt", "pycuda", "pycuda.driver")


@contextlib.contextmanager
def installed(column: str = "10.3", version: Optional[str] = None,
              devices: Optional[List[pycuda_driver.DeviceSpec]] = None) -> Iterator[Tuple[types.ModuleType, types.ModuleType]]:
    """``(tensorrt, pycuda.driver)`` stand-ins importable under their real names."""
    saved = {n: sys.modules.get(n) for n in _NAMES}
    pycuda_driver.reset(devices)
    trt = tensorrt_standin.load(column, version)
    cuda = pycuda_driver.load()
    package = types.ModuleType("pycuda", "stand-in package for pycuda (tests/standins)")
    package.driver = cuda  # type: ignore[attr-defined]
    package.__path__ = []  # type: ignore[attr-defined]
    sys.modules.update({"tensorrt": trt, "pycuda": package, "pycuda.driver": cuda})
    try:
        yield trt, cuda
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
