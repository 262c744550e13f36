"""Cameras, streams and video files through OpenCV's ``cv2.VideoCapture``.

V4L2 cameras, video files, RTSP/HTTP streams, and CSI cameras where OpenCV was built with
GStreamer (``nvarguscamerasrc``; Jetson's system OpenCV has it, pip's has not). The
fallback where jetson-utils is absent: each frame is converted to RGB into the source's ring.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np

from openpose_plus.edge import environment as env
from .base import DEFAULT_RING, CorruptFrame, Frame, Source, SourceEnded, SourceError
from .registry import register
from .uri import SourceURI, int_option

try:
    import cv2
except ImportError:  # pragma: no cover - the edge extra installs opencv
    cv2 = None  # type: ignore[assignment]

__all__ = ["OpenCVSource", "CAMERA_KINDS"]

# The kinds a capture library opens (jetson-utils offers the same ones); what each is.
CAMERA_KINDS = {"csi": "CSI camera", "v4l2": "V4L2 camera", "rtsp": "network stream", "file": "video file"}
LIVE_KINDS = ("csi", "v4l2", "rtsp")


class OpenCVSource(Source):
    """V4L2 cameras, video files, RTSP and (with GStreamer) CSI cameras through ``cv2.VideoCapture``."""

    kind = "opencv"

    def __init__(self, uri: str, kind: str, location: str, options: Dict[str, str], ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        self.source_kind, self.location, self.options = kind, location, options
        self.live = kind in LIVE_KINDS
        self.cap = None
        self._bgr: Optional[np.ndarray] = None
        self._file_fps = 0.0  # a file's own rate (0: live, or unknown): its frames' media times

    def _capture_args(self):
        kind, loc, opts = self.source_kind, self.location, self.options
        w = int_option(opts, "width", 1280, self.uri)
        h = int_option(opts, "height", 720, self.uri)
        fps = int_option(opts, "fps", 30, self.uri)
        if kind == "csi":
            if not env.opencv_has_gstreamer():
                raise SourceError("source %s: csi:// needs jetson_utils or an OpenCV built with GStreamer "
                                  "(Jetson's system OpenCV has it; pip's opencv does not)" % self.uri)
            pipeline = ("nvarguscamerasrc sensor-id=%s ! video/x-raw(memory:NVMM),width=%d,height=%d,framerate=%d/1 "
                        "! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR "
                        "! appsink drop=1 max-buffers=2" % (loc, w, h, fps))
            return (pipeline, cv2.CAP_GSTREAMER)
        if kind == "v4l2":
            num = loc[len("/dev/video"):] if loc.startswith("/dev/video") else ""
            if not os.path.exists(loc):
                raise SourceError("source %s: camera %s is not there" % (self.uri, loc))
            return (int(num) if num.isdigit() else loc, cv2.CAP_V4L2)
        if kind == "file" and not os.path.isfile(loc):
            raise SourceError("source %s: no such file" % self.uri)
        return (loc, cv2.CAP_ANY)

    def open(self) -> "OpenCVSource":
        if cv2 is None:  # pragma: no cover
            raise SourceError("source %s needs OpenCV (pip install opencv-python-headless)" % self.uri)
        target, api = self._capture_args()
        cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            cap.release()
            raise SourceError("source %s: cannot open it" % self.uri)
        if self.source_kind == "v4l2":
            for prop, key in ((cv2.CAP_PROP_FRAME_WIDTH, "width"), (cv2.CAP_PROP_FRAME_HEIGHT, "height"),
                              (cv2.CAP_PROP_FPS, "fps")):
                if key in self.options:
                    cap.set(prop, float(self.options[key]))
        self.cap = cap
        self.index = 0
        # A file is read as fast as the pipeline goes: its frames' times are their places in it.
        self._file_fps = 0.0 if self.live else float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return self

    def read(self) -> Frame:
        if self.cap is None:
            raise SourceError("source %s is not open" % self.uri)
        ok, bgr = self.cap.read(self._bgr) if self._bgr is not None else self.cap.read()
        if not ok or bgr is None:
            if self.live:
                raise SourceError("source %s stopped delivering frames" % self.uri)
            raise SourceEnded("source %s ended after %d frames" % (self.uri, self.index))
        if bgr.ndim != 3 or bgr.shape[2] != 3:
            raise CorruptFrame("source %s: frame %d has shape %s, not H x W x 3" % (self.uri, self.index, bgr.shape))
        self._bgr = bgr  # VideoCapture refills this array in place next time
        buf = self.ring.get(bgr.shape[0], bgr.shape[1])
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=buf)
        fps = self._file_fps
        return self._frame(buf, media_time=self.index / fps if fps > 0 else None)

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
            self._bgr = None


def _status(kind: str) -> env.Status:
    cv = env.probe_module("cv2", "opencv", "pip install opencv-python-headless")
    if not cv.ok:
        return cv
    if kind == "csi":
        if env.opencv_has_gstreamer():
            return env.Status(kind, True, "via OpenCV GStreamer (nvarguscamerasrc)")
        return env.Status(kind, False, "OpenCV %s has no GStreamer (nvarguscamerasrc needs it; pip's opencv "
                                       "has none)" % cv.detail)
    return env.Status(kind, True, "%s via OpenCV %s" % (CAMERA_KINDS[kind], cv.detail))


def _open(uri: str, where: SourceURI, ring: int) -> OpenCVSource:
    return OpenCVSource(uri, where.kind, where.location, where.options, ring)


def _accepts(uri: str, where: SourceURI) -> Optional[str]:
    if uri.strip().lower().startswith("webrtc://"):
        return "OpenCV does not receive WebRTC"
    return None


for _kind in CAMERA_KINDS:
    register(_kind, "opencv", _open, _status, label="file" if _kind == "file" else None, accepts=_accepts)
