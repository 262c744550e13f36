"""File-like sinks: OpenPose JSON per frame, JSON lines (stdout, file, UDP), annotated video."""
from __future__ import annotations

import json
import os
import socket
import sys
from typing import Optional

from openpose_plus.edge.draw import draw_poses
from openpose_plus.edge.openpose_json import write_openpose_json
from .base import Result, Sink

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None  # type: ignore[assignment]

__all__ = ["OpenPoseJsonSink", "JsonLinesSink", "VideoSink"]


class OpenPoseJsonSink(Sink):
    """``<dir>/<prefix><frame:012d>_keypoints.json`` per frame, as OpenPose ``--write_json``."""

    name = "openpose_json"

    def __init__(self, directory: str, prefix: str = "") -> None:
        self.directory = directory
        self.prefix = prefix
        self.written = 0
        self.offset = 0

    def open(self) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise OSError("openpose_json sink: cannot create %s: %s" % (self.directory, exc)) from None
        # A restart into the same folder numbers on after the files already there, never over them.
        self.offset = 0
        head, tail = self.prefix, "_keypoints.json"
        for entry in os.scandir(self.directory):
            name = entry.name
            number = name[len(head):-len(tail)] if name.startswith(head) and name.endswith(tail) else ""
            if number.isdigit():
                self.offset = max(self.offset, int(number) + 1)

    def handle(self, result: Result) -> None:
        write_openpose_json(self.directory, self.offset + result.index, result.poses, self.prefix)
        self.written += 1


class JsonLinesSink(Sink):
    """One JSON object per frame, to ``-`` (stdout), a file (appended), or ``udp://host:port``."""

    name = "jsonl"

    def __init__(self, target: str = "-", flush_every: int = 1) -> None:
        self.target = target
        self.flush_every = max(1, int(flush_every))
        self._file = None
        self._sock: Optional[socket.socket] = None
        self._addr = None
        self._pending = 0

    def open(self) -> None:
        if self.target == "-":
            self._file = sys.stdout
        elif self.target.startswith("udp://"):
            host, sep, port = self.target[len("udp://"):].rpartition(":")
            if not sep or not port.isdigit():
                raise ValueError("jsonl sink: %r is not udp://HOST:PORT" % self.target)
            self._addr = (host.strip("[]") or "127.0.0.1", int(port))
            family = socket.AF_INET6 if ":" in self._addr[0] else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
        else:
            parent = os.path.dirname(os.path.abspath(self.target))
            os.makedirs(parent, exist_ok=True)
            self._file = open(self.target, "a", buffering=1 << 16)

    def handle(self, result: Result) -> None:
        line = json.dumps(result.record(), separators=(",", ":"))
        if self._sock is not None:
            self._sock.sendto(line.encode(), self._addr)
            return
        assert self._file is not None
        self._file.write(line + "\n")
        self._pending += 1
        if self._pending >= self.flush_every:
            self._file.flush()
            self._pending = 0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._file is not None:
            self._file.flush()
            if self._file is not sys.stdout:
                self._file.close()
            self._file = None


def _unused_name(path: str) -> str:
    stem, ext = os.path.splitext(path)
    n = 0
    while os.path.exists(path):
        n += 1
        path = "%s-%d%s" % (stem, n, ext)
    return path


class VideoSink(Sink):
    """Frames with skeletons drawn, into a video file (``cv2.VideoWriter``; fourcc from the suffix)."""

    name = "video"
    needs_image = True

    def __init__(self, path: str, fps: float = 30.0, fourcc: Optional[str] = None) -> None:
        if cv2 is None:  # pragma: no cover
            raise ImportError("the video sink needs OpenCV (pip install opencv-python-headless)")
        if fps <= 0:
            raise ValueError("video sink fps must be positive, got %r" % fps)
        self.path = path
        self.fps = float(fps)
        ext = os.path.splitext(path)[1].lower()
        self.fourcc = fourcc or {".avi": "MJPG", ".mkv": "MJPG"}.get(ext, "mp4v")
        self.writer = None
        self.size = None
        self.frames = 0

    def open(self) -> None:
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)

    def handle(self, result: Result) -> None:
        img = result.image
        if img is None:
            return
        size = (img.shape[1], img.shape[0])
        if self.writer is None:
            self.path = _unused_name(self.path)  # a restart never overwrites an earlier video
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
            if not self.writer.isOpened():
                self.writer = None
                raise OSError("video sink: OpenCV cannot write %s with codec %s" % (self.path, self.fourcc))
            self.size = size
        elif size != self.size:
            raise ValueError("video sink: frame %d is %dx%d, the video is %dx%d"
                             % (result.index, size[0], size[1], self.size[0], self.size[1]))
        draw_poses(img, result.poses, result.skeleton)  # img is this sink's own copy
        cv2.cvtColor(img, cv2.COLOR_RGB2BGR, dst=img)
        self.writer.write(img)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
