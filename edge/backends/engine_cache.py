"""The TensorRT engine cache: build once per device, load on every later start.

An engine is only valid for the TensorRT version, the device model (a Jetson's board, its SMs
and memory: pycuda names every Orin "Orin"), the route it was built by (precision, ONNX bytes,
calibration cache bytes, DLA core and GPU fallback, batch profile, workspace), so that is the
key. Each entry is
``<digest>.engine`` with ``<digest>.json`` beside it holding the full key and the
engine's sha256 and size. An entry whose sidecar is missing or unreadable, whose key
differs, or whose bytes fail the checksum is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Optional, Tuple

from openpose_plus.edge.atomic import write_atomic

__all__ = ["CacheKey", "EngineCache", "default_cache_dir"]

log = logging.getLogger("openpose_plus.engine_cache")


def default_cache_dir() -> str:
    """``$OPENPOSE_PLUS_ENGINE_CACHE``, else systemd's ``$CACHE_DIRECTORY``, else ~/.cache."""
    explicit = os.environ.get("OPENPOSE_PLUS_ENGINE_CACHE")
    if explicit:
        return explicit
    systemd = os.environ.get("CACHE_DIRECTORY")
    if systemd:  # may list several, ':'-separated; the first is ours
        return os.path.join(systemd.split(":")[0], "engines")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "openpose-plus", "engines")


@dataclass(frozen=True)
class CacheKey:
    """Everything an engine depends on."""

    trt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    onnx_sha256: str
    dla_core: Optional[int] = None
    device_model: str = ""
    route: str = ""
    gpu_fallback: bool = False
    calibration_sha256: str = ""
    profile: str = ""
    workspace_mb: int = 0

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "fp16", "int8"):
            raise ValueError("engine precision must be fp32, fp16 or int8, got %r" % self.precision)
        if len(self.onnx_sha256) != 64 or any(c not in "0123456789abcdef" for c in self.onnx_sha256):
            raise ValueError("onnx_sha256 must be 64 lowercase hex digits, got %r" % self.onnx_sha256)
        if self.calibration_sha256 and (len(self.calibration_sha256) != 64
                                        or any(c not in "0123456789abcdef" for c in self.calibration_sha256)):
            raise ValueError("calibration_sha256 must be empty or 64 lowercase hex digits, got %r"
                             % self.calibration_sha256)
        if not self.trt_version or not self.gpu_name or not self.compute_capability:
            raise ValueError("engine cache key needs the TensorRT version, GPU name and compute capability")

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:32]

    def filename(self) -> str:
        gpu = "".join(c if c.isalnum() else "-" for c in self.gpu_name.lower()).strip("-")[:32]
        dla = "-dla%d" % self.dla_core if self.dla_core is not None else ""
        return "%s-%s%s-trt%s-sm%s-%s" % (self.onnx_sha256[:12], self.precision, dla, self.trt_version,
                                          self.compute_capability.replace(".", ""), gpu + "-" + self.digest()[:8])


class EngineCache:
    """A directory of engines, each with a checksummed sidecar."""

    def __init__(self, directory: Optional[str] = None) -> None:
        self.directory = directory or default_cache_dir()

    def paths(self, key: CacheKey) -> Tuple[str, str]:
        stem = os.path.join(self.directory, key.filename())
        return stem + ".engine", stem + ".json"

    def timing_cache_path(self, trt_version: str, device_model: str) -> str:
        """TensorRT's timing cache for this version and device, beside the engines: tactic timings
        any later build on the same device reuses (an Orin rebuild drops from minutes to seconds)."""
        slug = "".join(c if c.isalnum() else "-" for c in device_model.lower()).strip("-")
        while "--" in slug:
            slug = slug.replace("--", "-")
        return os.path.join(self.directory, "timing-trt%s-%s.cache" % (trt_version, slug[:64]))

    def check(self, key: CacheKey) -> Tuple[bool, str]:
        """Whether the entry for ``key`` can be trusted, and if not, why (the rebuild decision)."""
        engine, sidecar = self.paths(key)
        if not os.path.exists(engine):
            return False, "no cached engine"
        try:
            with open(sidecar) as f:
                meta = json.load(f)
        except FileNotFoundError:
            return False, "cached engine has no checksum file"
        except (OSError, ValueError) as exc:
            return False, "checksum file unreadable (%s)" % exc
        if not isinstance(meta, dict) or meta.get("key") != key.as_dict():
            return False, "cached engine was built for a different key"
        size = os.path.getsize(engine)
        if size != meta.get("size"):
            return False, "cached engine is %d bytes, expected %s (truncated?)" % (size, meta.get("size"))
        h = hashlib.sha256()
        with open(engine, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != meta.get("sha256"):
            return False, "cached engine fails its checksum"
        return True, "cached engine verified"

    def load(self, key: CacheKey) -> Tuple[Optional[bytes], str]:
        ok, reason = self.check(key)
        if not ok:
            return None, reason
        with open(self.paths(key)[0], "rb") as f:
            return f.read(), reason

    def store(self, key: CacheKey, engine: bytes) -> str:
        """Write atomically: engine first, then the sidecar that makes it trusted."""
        os.makedirs(self.directory, exist_ok=True)
        path, sidecar = self.paths(key)
        meta = {"key": key.as_dict(), "sha256": hashlib.sha256(engine).hexdigest(), "size": len(engine)}
        write_atomic(path, engine, durable=True)
        write_atomic(sidecar, json.dumps(meta, indent=2), durable=True)
        return path

    def invalidate(self, key: CacheKey, reason: str = "") -> None:
        """Drop an entry (e.g. one TensorRT refused to deserialize)."""
        for p in self.paths(key):
            if os.path.exists(p):
                os.unlink(p)
        log.warning("engine cache: dropped %s%s", key.filename(), (": " + reason) if reason else "")

    def get_or_build(self, key: CacheKey, build: Callable[[], bytes]) -> Tuple[bytes, bool, str]:
        """The cached engine for ``key``, or ``build()`` stored. Returns (engine, built, reason)."""
        engine, reason = self.load(key)
        if engine is not None:
            return engine, False, reason
        log.info("engine cache: building %s (%s)", key.filename(), reason)
        engine = build()
        if not engine:
            raise RuntimeError("TensorRT produced no engine for %s" % key.filename())
        self.store(key, engine)
        return engine, True, reason
