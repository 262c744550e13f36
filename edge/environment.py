"""What this machine can do: optional libraries, GPUs, and why a thing is unavailable.

Backends and sources ask here before they pick themselves, and ``openpose-plus info``
prints the same answers, so "auto chose onnxruntime" always comes with the reason.
Nothing here imports a GPU library unless asked to probe it, and nothing imports
TensorFlow: a host library's version is read from its installed metadata.
"""
from __future__ import annotations

import glob
import importlib
import os
import platform
import sys
from dataclasses import dataclass
from typing import List, Optional

try:  # Python 3.8 has importlib.metadata
    from importlib import metadata as _metadata
except ImportError:  # pragma: no cover
    _metadata = None  # type: ignore[assignment]

__all__ = ["Status", "probe_module", "distribution_version", "gpu_devices", "is_jetson", "opencv_has_gstreamer",
           "summary"]


@dataclass(frozen=True)
class Status:
    """Whether something is usable here; ``detail`` is the version when it is, the reason when not."""

    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return "%-14s %-4s %s" % (self.name, "yes" if self.ok else "no", self.detail)


def distribution_version(dist: str) -> Optional[str]:
    """Installed version of a distribution, without importing it (None when absent)."""
    if _metadata is None:  # pragma: no cover
        return None
    try:
        return _metadata.version(dist)
    except _metadata.PackageNotFoundError:
        return None


def probe_module(module: str, label: Optional[str] = None, hint: str = "") -> Status:
    """Import ``module`` and report its version, or the import error with an install hint."""
    label = label or module
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # any failure to import means "not usable here", with the reason
        reason = "%s: %s" % (type(exc).__name__, exc)
        return Status(label, False, reason + (" (%s)" % hint if hint else ""))
    version = getattr(mod, "__version__", None) or getattr(mod, "VERSION", None) or "installed"
    return Status(label, True, str(version))


def gpu_devices() -> List[str]:
    """NVIDIA device nodes present (discrete: /dev/nvidia0..; Jetson: /dev/nvhost-*, /dev/nvmap)."""
    nodes = sorted(glob.glob("/dev/nvidia[0-9]*"))
    if os.path.exists("/dev/nvmap"):
        nodes.append("/dev/nvmap")
    return nodes


def is_jetson() -> bool:
    """A Jetson (integrated GPU sharing DRAM with the CPU) says so in its device tree."""
    try:
        with open("/proc/device-tree/model", "rb") as f:
            return b"jetson" in f.read().lower()
    except OSError:
        return os.path.exists("/etc/nv_tegra_release")


def opencv_has_gstreamer() -> bool:
    """Whether this OpenCV was built with GStreamer (what ``csi://`` needs without jetson_utils)."""
    import cv2

    return any("GStreamer:" in line and "YES" in line for line in cv2.getBuildInformation().splitlines())


def summary() -> List[str]:
    """Lines for ``openpose-plus info``: the platform and the C core."""
    lines = ["python         %s (%s)" % (platform.python_version(), sys.executable),
             "platform       %s %s" % (platform.system(), platform.machine()),
             "jetson         %s" % ("yes" if is_jetson() else "no"),
             "gpu nodes      %s" % (", ".join(gpu_devices()) or "none")]
    return lines
