"""Inference backends behind one interface, a registry of them, and the one rule for ``backend="auto"``.

Each backend registers a name, a ``status()`` (can it run here, and why not), the
precisions it runs and a factory; ``auto`` takes the first registered whose status is ok
(``tensorrt`` when TensorRT and pycuda import and an NVIDIA GPU is present, else
``onnxruntime``), and if that one fails to open, the next. :func:`availability` gives each
backend's yes/no with the reason, and ``openpose-plus info`` prints exactly that, so the
choice is never a mystery. A backend module is imported only when it is created.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from openpose_plus.edge import environment as env
from .base import Backend, BackendError, BufferSet

__all__ = ["Backend", "BackendError", "BufferSet", "BACKENDS", "BackendEntry", "register_backend", "availability",
           "select", "create_backend"]

log = logging.getLogger("openpose_plus.backends")


class BackendEntry(NamedTuple):
    name: str
    status: Callable[[], env.Status]   # can it run here; the version when it can, the reason when not
    precisions: Tuple[str, ...]        # what it runs (auto's fallback asks the others for "auto" otherwise)
    # (bundle, precision, threads=, cache_dir=, dla_core=, providers=) -> Backend; each takes its own options
    create: Callable[..., Backend]


_REGISTRY: Dict[str, BackendEntry] = {}  # in auto's order of preference
BACKENDS: Tuple[str, ...] = ()           # the registered names, in that order


def register_backend(entry: BackendEntry, before: Optional[str] = None) -> None:
    """Add (or replace) a backend; ``before``: the name it is preferred to by ``auto``."""
    global BACKENDS
    entries = [e for e in _REGISTRY.values() if e.name != entry.name]
    at = next((i for i, e in enumerate(entries) if e.name == before), len(entries))
    entries.insert(at, entry)
    _REGISTRY.clear()
    _REGISTRY.update((e.name, e) for e in entries)
    BACKENDS = tuple(_REGISTRY)


def _tensorrt_status() -> env.Status:
    trt_status = env.probe_module("tensorrt", hint="comes with JetPack: python3-libnvinfer; never from pip")
    cuda = env.probe_module("pycuda.driver", "pycuda", "pip install pycuda on the device")
    missing = [s.name for s in (trt_status, cuda) if not s.ok]
    gpus = env.gpu_devices()
    if missing:
        return env.Status("tensorrt", False, "missing: %s" % ", ".join(missing))
    if not gpus:
        return env.Status("tensorrt", False, "no NVIDIA GPU device node")
    return env.Status("tensorrt", True, "TensorRT %s on %s" % (trt_status.detail, gpus[0]))


def _tensorrt(bundle, precision: str, cache_dir: Optional[str] = None, dla_core: Optional[int] = None,
              device: int = 0, batch: int = 0, **_) -> Backend:
    from .engine_cache import EngineCache
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(bundle, precision, cache=EngineCache(cache_dir), dla_core=dla_core, device=device,
                           max_batch=batch)


def _onnxruntime_status() -> env.Status:
    ort = env.probe_module("onnxruntime", hint="pip install onnxruntime")
    if ort.ok:
        import onnxruntime

        ort = env.Status("onnxruntime", True, "%s, providers: %s"
                         % (ort.detail, ", ".join(onnxruntime.get_available_providers())))
    return env.Status("onnxruntime", ort.ok, ort.detail)


def _onnxruntime(bundle, precision: str, threads: int = 0, providers: Optional[List[str]] = None, batch: int = 0,
                 **_) -> Backend:
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(bundle, precision, providers=providers, threads=threads, batch=batch)


register_backend(BackendEntry("tensorrt", _tensorrt_status, ("auto", "fp32", "fp16", "int8"), _tensorrt))
register_backend(BackendEntry("onnxruntime", _onnxruntime_status, ("auto", "fp32", "int8"), _onnxruntime))


def availability() -> List[env.Status]:
    """Whether each backend can run here, and why not (in ``auto``'s order of preference)."""
    return [e.status() for e in _REGISTRY.values()]


def _auto(statuses: List[env.Status]) -> List[Tuple[str, str]]:
    """The backends auto may use here, best first, each with why."""
    out = []
    for st in statuses:
        if st.ok:
            others = "; ".join("%s: %s" % (s.name, s.detail) for s in statuses if s is not st and not s.ok)
            out.append((st.name, "auto: %s works (%s)%s" % (st.name, st.detail, (", " + others) if others else "")))
    return out


def select(name: str = "auto") -> Tuple[str, str]:
    """The backend ``name`` resolves to here, and why."""
    if name != "auto":
        if name not in _REGISTRY:
            raise BackendError("unknown backend %r (choose from auto, %s)" % (name, ", ".join(_REGISTRY)))
        return name, "asked for"
    statuses = availability()
    usable = _auto(statuses)
    if not usable:
        raise BackendError("no backend can run here: " + "; ".join("%s: %s" % (s.name, s.detail) for s in statuses))
    return usable[0]


def create_backend(bundle, name: str = "auto", precision: str = "auto", threads: int = 0,
                   cache_dir: Optional[str] = None, dla_core: Optional[int] = None,
                   providers: Optional[List[str]] = None, device: int = 0, batch: int = 0) -> Backend:
    """Open ``bundle`` on backend ``name``. ``threads``/``providers`` are onnxruntime's,
    ``cache_dir``/``dla_core``/``device`` TensorRT's (the engine cache, the DLA core, the CUDA device);
    ``batch`` the frames per buffer set of a dynamic-batch bundle (0: the bundle's size).

    ``auto`` promises something that runs: when its first choice fails to open, it says why
    and takes the next backend that runs here (at ``auto`` precision where that one does not
    run the precision asked for, as onnxruntime does not run fp16). Any failure counts: pycuda's
    errors derive from Exception, TensorRT's include AttributeError and TypeError; the reason,
    with its type, is logged and kept in the backend's ``reason``."""
    options = dict(threads=threads, cache_dir=cache_dir, dla_core=dla_core, providers=providers, device=device,
                   batch=batch)
    if name != "auto":
        candidates = [select(name)]
    else:
        statuses = availability()
        candidates = _auto(statuses)
        if not candidates:
            raise BackendError("no backend can run here: "
                               + "; ".join("%s: %s" % (s.name, s.detail) for s in statuses))
    failed: List[str] = []

    def open_on(chosen: str, why: str) -> Backend:
        entry = _REGISTRY[chosen]
        asked = precision if not failed or precision in entry.precisions else "auto"
        backend = entry.create(bundle, asked, **options)
        if failed:
            why = "auto: %s, so %s" % ("; ".join(failed), chosen)
        backend.reason = "%s; %s" % (why, backend.reason)
        return backend

    for (chosen, why), (after, _) in zip(candidates, candidates[1:]):  # all but the last may fail
        try:
            return open_on(chosen, why)
        except Exception as exc:
            detail = "%s: %s" % (type(exc).__name__, exc)
            log.warning("%s failed, falling back to %s: %s", chosen, after, detail)
            failed.append("%s failed (%s)" % (chosen, detail))
    return open_on(*candidates[-1])
