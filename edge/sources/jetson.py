"""Cameras, streams and video files through ``jetson_utils.videoSource`` (on a Jetson).

Its ``cudaImage`` is mapped memory, so the frame is already where the GPU reads. jetson_utils
is imported only when such a source opens; it cannot be installed off a Jetson, so nothing
here runs on a test machine (the class is moved as it was; its behaviour against the real
bindings is checked on a device).
"""
from __future__ import annotations

from typing import Dict

from openpose_plus.edge import environment as env
from .base import DEFAULT_RING, Frame, Source, SourceEnded, SourceError
from .opencv import CAMERA_KINDS, LIVE_KINDS
from .registry import register
from .uri import SourceURI

__all__ = ["JetsonSource"]


class JetsonSource(Source):
    """``jetson_utils.videoSource``: CSI, V4L2, RTSP, files, with frames in mapped CUDA memory."""

    kind = "jetson_utils"

    def __init__(self, uri: str, kind: str, location: str, options: Dict[str, str], ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        self.source_kind, self.location, self.options = kind, location, options
        self.live = kind in LIVE_KINDS
        self._src: "Optional[jetson_utils.videoSource]" = None  # typed for the API conformance test

    def open(self) -> "JetsonSource":
        import jetson_utils

        self._ju = jetson_utils
        argv = ["--input-%s=%s" % (k, v) for k, v in sorted(self.options.items())
                if k in ("width", "height", "rate", "codec", "flip", "loop", "latency")]
        # Its ring must outlive the frames a pipeline keeps in flight, as ours does.
        argv.append("--num-buffers=%d" % self.ring.size)
        uri = self.uri.split("?")[0] if self.source_kind != "rtsp" else self.uri
        try:
            self._src = jetson_utils.videoSource(uri, argv=argv)
        except Exception as exc:  # jetson_utils raises plain Exceptions
            raise SourceError("source %s: jetson_utils cannot open it: %s" % (self.uri, exc)) from None
        self.index = 0
        return self

    def read(self) -> Frame:
        if self._src is None:
            raise SourceError("source %s is not open" % self.uri)
        try:
            img = self._src.Capture(format="rgb8", timeout=2500)
        except Exception as exc:
            raise SourceError("source %s: capture failed: %s" % (self.uri, exc)) from None
        if img is None:
            if not self._src.IsStreaming():
                if self.live:
                    raise SourceError("source %s stopped streaming" % self.uri)
                raise SourceEnded("source %s ended after %d frames" % (self.uri, self.index))
            raise SourceError("source %s: no frame within 2.5 s" % self.uri)
        self._ju.cudaDeviceSynchronize()
        # Mapped memory: the numpy view is the camera's buffer itself, no copy.
        return self._frame(self._ju.cudaToNumpy(img))

    def close(self) -> None:
        if self._src is not None:
            self._src.Close()
            self._src = None


def _status(kind: str) -> env.Status:
    ju = env.probe_module("jetson_utils", hint="build jetson-inference/jetson-utils on the device")
    if ju.ok:
        return env.Status(kind, True, "%s via jetson_utils (zero-copy cudaImage)" % CAMERA_KINDS[kind])
    return env.Status(kind, False, "jetson_utils: %s" % ju.detail)


def _open(uri: str, where: SourceURI, ring: int) -> JetsonSource:
    return JetsonSource(uri, where.kind, where.location, where.options, ring)


# Before OpenCV wherever it imports: its frames need no copy.
for _kind in CAMERA_KINDS:
    register(_kind, "jetson_utils", _open, _status, priority=10)
