"""Inference backends behind one interface, and the one rule for ``backend="auto"``.

``tensorrt`` when TensorRT and pycuda import and an NVIDIA GPU is present, else
``onnxruntime``. :func:`availability` gives each backend's yes/no with the reason, and
``openpose-plus info`` prints exactly that, so the choice is never a mystery.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Tuple

from openpose_plus.edge import environment as env
from .base import Backend, BackendError, BufferSet

__all__ = ["Backend", "BackendError", "BufferSet", "BACKENDS", "availability", "select", "create_backend"]

BACKENDS = ("tensorrt", "onnxruntime")

log = logging.getLogger("openpose_plus.backends")


def availability() -> List[env.Status]:
    """Whether each backend can run here, and why not (in ``auto``'s order of preference)."""
    trt_status = env.probe_module("tensorrt", hint="comes with JetPack: python3-libnvinfer; never from pip")
    pycuda_status = env.probe_module("pycuda.driver", "pycuda", "pip install pycuda on the device")
    missing = [s.name for s in (trt_status, pycuda_status) if not s.ok]
    gpus = env.gpu_devices()
    if missing:
        t = env.Status("tensorrt", False, "missing: %s" % ", ".join(missing))
    elif not gpus:
        t = env.Status("tensorrt", False, "no NVIDIA GPU device node")
    else:
        t = env.Status("tensorrt", True, "TensorRT %s on %s" % (trt_status.detail, gpus[0]))
    ort = env.probe_module("onnxruntime", hint="pip install onnxruntime")
    if ort.ok:
        import onnxruntime

        ort = env.Status("onnxruntime", True, "%s, providers: %s"
                         % (ort.detail, ", ".join(onnxruntime.get_available_providers())))
    return [t, env.Status("onnxruntime", ort.ok, ort.detail)]


def select(name: str = "auto") -> Tuple[str, str]:
    """The backend ``name`` resolves to here, and why."""
    if name != "auto":
        if name not in BACKENDS:
            raise BackendError("unknown backend %r (choose from auto, %s)" % (name, ", ".join(BACKENDS)))
        return name, "asked for"
    statuses = availability()
    for st in statuses:
        if st.ok:
            others = "; ".join("%s: %s" % (s.name, s.detail) for s in statuses if s is not st and not s.ok)
            return st.name, "auto: %s works (%s)%s" % (st.name, st.detail, (", " + others) if others else "")
    raise BackendError("no backend can run here: " + "; ".join("%s: %s" % (s.name, s.detail) for s in statuses))


def create_backend(bundle, name: str = "auto", precision: str = "auto", threads: int = 0,
                   cache_dir: Optional[str] = None, dla_core: Optional[int] = None,
                   providers: Optional[List[str]] = None, device: int = 0) -> Backend:
    """Open ``bundle`` on backend ``name``. ``threads``/``providers`` are onnxruntime's,
    ``cache_dir``/``dla_core``/``device`` TensorRT's (the engine cache, the DLA core, the CUDA device).

    With ``auto``, any failure of TensorRT (pycuda's errors derive from Exception, TensorRT's
    include AttributeError and TypeError) falls back to onnxruntime, with the reason logged and
    kept in ``reason``."""
    chosen, why = select(name)
    if chosen == "tensorrt":
        from .engine_cache import EngineCache
        from .tensorrt_backend import TensorRTBackend

        try:
            backend: Backend = TensorRTBackend(bundle, precision, cache=EngineCache(cache_dir), dla_core=dla_core,
                                               device=device)
        except Exception as exc:
            if name != "auto":
                raise
            # auto promised something that runs: say why TensorRT did not, and use the CPU path.
            detail = "%s: %s" % (type(exc).__name__, exc)
            log.warning("tensorrt failed, falling back to onnxruntime: %s", detail)
            from .onnxruntime_backend import OnnxRuntimeBackend

            backend = OnnxRuntimeBackend(bundle, "auto" if precision == "fp16" else precision,
                                         providers=providers, threads=threads)
            why = "auto: tensorrt failed (%s), so onnxruntime" % detail
    else:
        from .onnxruntime_backend import OnnxRuntimeBackend

        backend = OnnxRuntimeBackend(bundle, precision, providers=providers, threads=threads)
    backend.reason = "%s; %s" % (why, backend.reason)
    return backend
