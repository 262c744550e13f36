"""Frame sources named by URI, as jetson-utils' ``videoSource`` names them.

``csi://0``, ``v4l2:///dev/video0`` or ``/dev/video0``, ``rtsp://host/path``, a video file,
a folder of images (or one image), and
``synthetic://[WxH][?people=N&seed=S&fps=F&frames=N&rate=R&height=MIN-MAX]``, which renders
people walking (:mod:`.scene`; ``height``: their heights as fractions of the frame's, by
default 0.25-0.8) so everything runs with no camera.

Through ``jetson_utils.videoSource`` when it is installed (its ``cudaImage`` is mapped
memory, so the frame is already where the GPU reads), else OpenCV. Every source yields
:class:`Frame` objects with RGB ``H x W x 3`` uint8 images written into a small ring of
buffers allocated once (the ring is longer than the frames a pipeline keeps in flight).
:class:`ReconnectingSource` wraps one and reopens it with exponential backoff when it
ends or fails, telling a status callback what it is doing.
"""
from __future__ import annotations

import glob
import logging
import os
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from openpose_plus.edge import environment as env

try:
    import cv2
except ImportError as _exc:  # pragma: no cover
    cv2 = None  # type: ignore[assignment]

__all__ = ["Frame", "SourceError", "SourceEnded", "CorruptFrame", "Source", "parse_uri", "open_source",
           "availability", "ReconnectingSource", "IMAGE_EXTENSIONS"]

log = logging.getLogger("openpose_plus.sources")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DEFAULT_RING = 12


class SourceError(RuntimeError):
    """A source that cannot be opened or stopped delivering; the message names it."""


class SourceEnded(SourceError):
    """The end of a file, a folder or a finite synthetic stream."""


class CorruptFrame(SourceError):
    """One unusable frame (e.g. an image that does not decode); the stream itself goes on."""


class Frame:
    __slots__ = ("image", "index", "timestamp", "truth")

    def __init__(self, image: np.ndarray, index: int, timestamp: float, truth: Optional[np.ndarray] = None) -> None:
        self.image = image          # RGB H x W x 3 uint8 (a ring buffer: copy it to keep it)
        self.index = index
        self.timestamp = timestamp  # time.monotonic() at capture
        self.truth = truth          # synthetic:// only: ground-truth keypoints (N, K, 3) in image px


def parse_uri(uri: str) -> Tuple[str, str, Dict[str, str]]:
    """``(kind, location, options)``; kind is csi, v4l2, rtsp, file, folder or synthetic."""
    if not isinstance(uri, str) or not uri.strip():
        raise SourceError("empty source URI")
    uri = uri.strip()
    options: Dict[str, str] = {}
    scheme, sep, rest = uri.partition("://")
    if sep and scheme in ("csi", "v4l2", "synthetic", "file"):
        rest, _, query = rest.partition("?")
        for item in filter(None, query.split("&")):
            k, eq, v = item.partition("=")
            if not eq:
                raise SourceError("source %s: option %r has no value (use key=value)" % (uri, item))
            options[k] = v
    if not sep:
        if uri.startswith("/dev/video"):
            return "v4l2", uri, options
        return ("folder" if os.path.isdir(uri) or _is_image(uri) else "file"), uri, options
    if scheme == "csi":
        return "csi", rest or "0", options
    if scheme == "v4l2":
        return "v4l2", rest if rest.startswith("/dev/") else "/dev/video" + (rest or "0"), options
    if scheme in ("rtsp", "rtsps", "http", "https", "rtmp"):
        return "rtsp", uri, options
    if scheme == "synthetic":
        return "synthetic", rest, options
    if scheme == "file":
        return ("folder" if os.path.isdir(rest) or _is_image(rest) else "file"), rest, options
    raise SourceError("unknown source %r (use csi://, v4l2://, /dev/videoN, rtsp://, a file, a folder "
                      "or synthetic://)" % uri)


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _int_opt(options: Dict[str, str], key: str, default: Optional[int], uri: str) -> Optional[int]:
    if key not in options:
        return default
    try:
        return int(options[key])
    except ValueError:
        raise SourceError("source %s: option %s=%r is not an integer" % (uri, key, options[key])) from None


def _range_opt(options: Dict[str, str], key: str, uri: str) -> Optional[Tuple[float, float]]:
    """``MIN-MAX`` (or one number) -> ``(min, max)``, ``0 < min <= max``; None when absent."""
    if key not in options:
        return None
    text = options[key]
    try:
        parts = [float(v) for v in text.split("-")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not 0 < parts[0] <= parts[1] < float("inf"):
        raise SourceError("source %s: option %s=%r is not MIN-MAX with 0 < MIN <= MAX" % (uri, key, text))
    return parts[0], parts[1]


def _float_opt(options: Dict[str, str], key: str, default: Optional[float], uri: str) -> Optional[float]:
    if key not in options:
        return default
    try:
        return float(options[key])
    except ValueError:
        raise SourceError("source %s: option %s=%r is not a number" % (uri, key, options[key])) from None


class _Ring:
    """A few frame buffers allocated once, handed out round-robin."""

    def __init__(self, size: int) -> None:
        self.size = max(2, int(size))
        self.buffers: List[np.ndarray] = []
        self.next = 0

    def ensure(self, size: int) -> None:
        """Grow to at least ``size`` buffers (a pipeline with more frames in flight asks)."""
        if size > self.size:
            if self.buffers:
                shape = self.buffers[0].shape
                self.buffers[self.next:self.next] = [np.zeros(shape, np.uint8) for _ in range(size - self.size)]
            self.size = size

    def get(self, height: int, width: int) -> np.ndarray:
        if not self.buffers or self.buffers[0].shape[:2] != (height, width):
            self.buffers = [np.zeros((height, width, 3), np.uint8) for _ in range(self.size)]
            self.next = 0
        buf = self.buffers[self.next]
        self.next = (self.next + 1) % self.size
        return buf


class Source:
    """Base: ``open()``, ``read() -> Frame`` (raises SourceEnded/SourceError/CorruptFrame), ``close()``."""

    kind = "base"
    live = False  # a camera/stream (reconnect on loss) rather than a file (ends)

    def __init__(self, uri: str, ring: int = DEFAULT_RING) -> None:
        self.uri = uri
        self.ring = _Ring(ring)
        self.index = 0

    def open(self) -> "Source":
        return self

    def read(self) -> Frame:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                yield self.read()
            except SourceEnded:
                return

    def __enter__(self) -> "Source":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _frame(self, image: np.ndarray, truth=None) -> Frame:
        f = Frame(image, self.index, time.monotonic(), truth)
        self.index += 1
        return f


class SyntheticSource(Source):
    """People walking over a fixed background (:class:`.scene.MovingScene`)."""

    kind = "synthetic"

    def __init__(self, uri: str, location: str, options: Dict[str, str], ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        size = location.strip("/") or "640x480"
        try:
            w, h = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise SourceError("source %s: size %r is not WIDTHxHEIGHT" % (uri, size)) from None
        known = {"people", "seed", "fps", "frames", "rate", "height"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SourceError("source %s: unknown option(s) %s (known: %s)" % (uri, ", ".join(unknown), ", ".join(sorted(known))))
        self.width, self.height = w, h
        self.people = _int_opt(options, "people", 3, uri)
        self.seed = _int_opt(options, "seed", 0, uri)
        self.fps = _float_opt(options, "fps", 30.0, uri)
        self.frames = _int_opt(options, "frames", None, uri)
        self.rate = _float_opt(options, "rate", None, uri)  # pace like a camera (frames/s)
        self.person_height = _range_opt(options, "height", uri)  # fractions of the frame height
        self.scene = None
        self._next_time = 0.0

    def open(self) -> "SyntheticSource":
        from openpose_plus.edge.synthetic.scene import MovingScene

        try:
            heights = None if self.person_height is None else \
                (self.person_height[0] * self.height, self.person_height[1] * self.height)
            self.scene = MovingScene(self.width, self.height, self.people, seed=self.seed, fps=self.fps,
                                     person_height=heights)
        except ValueError as exc:
            raise SourceError("source %s: %s" % (self.uri, exc)) from None
        self.index = 0
        self._next_time = time.monotonic()
        return self

    def read(self) -> Frame:
        if self.scene is None:
            raise SourceError("source %s is not open" % self.uri)
        if self.frames is not None and self.index >= self.frames:
            raise SourceEnded("source %s ended after %d frames" % (self.uri, self.frames))
        if self.rate:
            self._next_time += 1.0 / self.rate
            delay = self._next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        image, truth = self.scene.frame(self.index)
        buf = self.ring.get(self.height, self.width)
        np.copyto(buf, image)
        return self._frame(buf, truth)

    def close(self) -> None:
        self.scene = None


class FolderSource(Source):
    """Images of a folder in name order (or a single image file)."""

    kind = "folder"

    def __init__(self, uri: str, location: str, options: Dict[str, str], ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        self.location = location
        self.files: List[str] = []

    def open(self) -> "FolderSource":
        if cv2 is None:  # pragma: no cover
            raise SourceError("reading images needs OpenCV (pip install opencv-python-headless)")
        if os.path.isdir(self.location):
            self.files = sorted(p for p in glob.glob(os.path.join(glob.escape(self.location), "*")) if _is_image(p))
            if not self.files:
                raise SourceError("source %s: no images (%s) in the folder" % (self.uri, ", ".join(IMAGE_EXTENSIONS)))
        elif os.path.isfile(self.location):
            self.files = [self.location]
        else:
            raise SourceError("source %s: no such file or folder" % self.uri)
        self.index = 0
        return self

    def read(self) -> Frame:
        if self.index >= len(self.files):
            raise SourceEnded("source %s: all %d images read" % (self.uri, len(self.files)))
        path = self.files[self.index]
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            self.index += 1
            raise CorruptFrame("source %s: cannot decode image %s (corrupt or not an image)" % (self.uri, path))
        buf = self.ring.get(bgr.shape[0], bgr.shape[1])
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=buf)
        return self._frame(buf)


class OpenCVSource(Source):
    """V4L2 cameras, video files, RTSP and (with GStreamer) CSI cameras through ``cv2.VideoCapture``."""

    kind = "opencv"

    def __init__(self, uri: str, kind: str, location: str, options: Dict[str, str], ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        self.source_kind, self.location, self.options = kind, location, options
        self.live = kind in ("csi", "v4l2", "rtsp")
        self.cap = None
        self._bgr: Optional[np.ndarray] = None

    def _capture_args(self):
        kind, loc, opts = self.source_kind, self.location, self.options
        w = _int_opt(opts, "width", 1280, self.uri)
        h = _int_opt(opts, "height", 720, self.uri)
        fps = _int_opt(opts, "fps", 30, self.uri)
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
        return self._frame(buf)

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
            self._bgr = None


class JetsonSource(Source):
    """``jetson_utils.videoSource``: CSI, V4L2, RTSP, files, with frames in mapped CUDA memory."""

    kind = "jetson_utils"

    def __init__(self, uri: str, kind: str, location: str, options: Dict[str, str], ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        self.source_kind, self.location, self.options = kind, location, options
        self.live = kind in ("csi", "v4l2", "rtsp")
        self._src = None

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


def _jetson_utils_ok() -> bool:
    return env.probe_module("jetson_utils").ok


def availability() -> List[env.Status]:
    """Which source kinds can be opened here, through what, and why not."""
    ju = env.probe_module("jetson_utils", hint="build jetson-inference/jetson-utils on the device")
    cv = env.probe_module("cv2", "opencv", "pip install opencv-python-headless")
    gst = cv.ok and env.opencv_has_gstreamer()
    out = [env.Status("synthetic://", cv.ok, "rendered people, no camera needed" if cv.ok else cv.detail)]
    for kind, what in (("csi://", "CSI camera"), ("v4l2://", "V4L2 camera"), ("rtsp://", "network stream"),
                       ("file", "video file")):
        if ju.ok:
            out.append(env.Status(kind, True, "%s via jetson_utils (zero-copy cudaImage)" % what))
        elif kind == "csi://":
            out.append(env.Status(kind, gst, "via OpenCV GStreamer (nvarguscamerasrc)" if gst else
                                  "needs jetson_utils (%s) or OpenCV with GStreamer" % ju.detail))
        else:
            out.append(env.Status(kind, cv.ok, "%s via OpenCV %s (no jetson_utils)" % (what, cv.detail)
                                  if cv.ok else cv.detail))
    out.append(env.Status("folder", cv.ok, "images via OpenCV" if cv.ok else cv.detail))
    return out


def make_source(uri: str, ring: int = DEFAULT_RING, prefer: str = "auto") -> Source:
    """A closed source for ``uri``; ``prefer`` is auto, jetson_utils or opencv."""
    kind, location, options = parse_uri(uri)
    if kind == "synthetic":
        return SyntheticSource(uri, location, options, ring)
    if kind == "folder":
        return FolderSource(uri, location, options, ring)
    use_ju = prefer == "jetson_utils" or (prefer == "auto" and _jetson_utils_ok())
    if use_ju:
        return JetsonSource(uri, kind, location, options, ring)
    return OpenCVSource(uri, kind, location, options, ring)


def open_source(uri: str, ring: int = DEFAULT_RING, prefer: str = "auto") -> Source:
    """An opened source for ``uri`` (raises :class:`SourceError` naming the problem)."""
    return make_source(uri, ring, prefer).open()


class ReconnectingSource(Source):
    """Reopens ``uri`` with exponential backoff when it fails (and, if ``reopen_on_end``, when it ends).

    ``on_status(text)`` hears about losses and retries (the daemon puts it in STATUS=),
    ``heartbeat()`` is called on every attempt (the pipeline is alive while retrying).
    ``stop()`` interrupts a backoff sleep. Frame indices keep counting across reconnects.
    """

    def __init__(self, uri: str, ring: int = DEFAULT_RING, min_delay: float = 0.5, max_delay: float = 30.0,
                 reopen_on_end: bool = True, max_attempts: Optional[int] = None,
                 on_status: Optional[Callable[[str], None]] = None,
                 heartbeat: Optional[Callable[[], None]] = None, prefer: str = "auto") -> None:
        super().__init__(uri, ring)
        if min_delay <= 0 or max_delay < min_delay:
            raise ValueError("reconnect delays must satisfy 0 < min (%r) <= max (%r)" % (min_delay, max_delay))
        self.min_delay, self.max_delay = float(min_delay), float(max_delay)
        self.reopen_on_end = reopen_on_end
        self.max_attempts = max_attempts
        self.on_status = on_status or (lambda text: None)
        self.heartbeat = heartbeat or (lambda: None)
        self.prefer = prefer
        self.inner: Optional[Source] = None
        self.reconnects = 0
        self.delays: List[float] = []  # the backoff delays slept, for logs and tests
        self.connected = False
        self._stop = threading.Event()

    @property
    def live(self) -> bool:  # type: ignore[override]
        return True

    def stop(self) -> None:
        self._stop.set()

    def open(self) -> "ReconnectingSource":
        self._connect(first=True)
        return self

    def _connect(self, first: bool = False, why: str = "") -> None:
        delay = self.min_delay
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            self.heartbeat()
            try:
                self.inner = make_source(self.uri, self.ring.size, self.prefer).open()
                self.inner.ring = self.ring  # keep one ring across reconnects
                self.connected = True
                if not first:
                    self.reconnects += 1
                    self.on_status("source %s reconnected after %d attempt(s)" % (self.uri, attempt))
                    log.info("source %s reconnected", self.uri)
                return
            except SourceError as exc:
                if self.max_attempts is not None and attempt >= self.max_attempts:
                    raise
                msg = "%s; retry %d in %.1f s" % (exc, attempt, delay)
                self.on_status(("source lost (%s): " % why if why else "") + msg)
                log.warning("%s", msg)
                self.delays.append(delay)
                deadline = time.monotonic() + delay
                while not self._stop.is_set() and time.monotonic() < deadline:
                    self.heartbeat()  # retrying is alive: the daemon keeps its watchdog fed
                    self._stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2.0, self.max_delay)
        raise SourceEnded("source %s: stopped while reconnecting" % self.uri)

    def read(self) -> Frame:
        while True:
            if self._stop.is_set():
                raise SourceEnded("source %s stopped" % self.uri)
            if self.inner is None:
                self._connect(why="not open")
            try:
                frame = self.inner.read()  # type: ignore[union-attr]
            except CorruptFrame:
                raise
            except SourceEnded as exc:
                if not self.reopen_on_end:
                    raise
                self._drop(str(exc))
                continue
            except SourceError as exc:
                self._drop(str(exc))
                continue
            frame.index = self.index
            self.index += 1
            return frame

    def _drop(self, why: str) -> None:
        self.connected = False
        log.warning("source %s lost: %s", self.uri, why)
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        self._connect(why=why)

    def close(self) -> None:
        self._stop.set()
        if self.inner is not None:
            self.inner.close()
            self.inner = None
