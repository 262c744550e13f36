"""A stand-in for NVIDIA's ``jetson_utils`` Python module, for tests only (loaded under that
name by tests/test_jetson_source.py).

The real module is built on a Jetson from dusty-nv/jetson-utils and links CUDA, GStreamer
and the Jetson multimedia API: no test machine can have it (PyPI's ``jetson-utils`` is an
unrelated package). This stand-in exposes the part of its surface openpose-plus uses and
behaves as its C++ does where that matters to us, read from the sources
(``python/bindings/PyVideo.cpp``, ``PyCUDA.cpp``, ``PyNumpy.cpp``; ``cpp/network/URI.cpp``,
``cpp/video/videoSource.cpp``, ``videoOptions.cpp``, ``cpp/codec/gstDecoder.cpp``,
``gstBufferManager.cpp``, ``cpp/camera/gstCamera.cpp``, ``cpp/parsers/commandLine.cpp``):

* ``videoSource(uri, argv=[...])`` parses the URI as ``URI::Parse`` does (``v4l2://0`` fails:
  it wants ``/dev/videoN``; a bare path becomes ``file://`` + its absolute path), opens the
  protocols ``videoSource::Create`` opens (csi, v4l2, rtp, rtsp, webrtc, file) and raises
  ``Exception("failed to create videoSource device")`` otherwise. ``argv`` is read like
  jetson-utils' ``commandLine`` (``--num-buffers``, ``--input-width``, ...; prefix match).
* ``Capture(format="rgb8", timeout=ms)`` converts into a ring of ``--num-buffers`` images (4 by
  default) allocated at the first capture and advanced once per frame captured (never on a
  timeout), and returns a ``cudaImage`` on that ring's memory with ``freeOnDelete=False``:
  the memory is the source's and is freed when the ``videoSource`` object is deleted
  (``Close()`` only stops streaming). A file's end: ``IsStreaming()`` turns false and Capture
  raises. A timeout returns None in builds from 2023-03 on and raises in older ones
  (:func:`_set_generation`); ``stream=`` and ``cudaStreamCreate/Synchronize/Destroy`` exist
  from 2024-06 on only (``cudaStreamCreate`` makes a blocking stream unless ``nonblocking=True``).
* ``cudaToNumpy(image)`` wraps the mapped memory without a copy (the array's base is the
  cudaImage, as ``PyArray_SetBaseObject`` makes it); ``cudaDeviceSynchronize()`` does nothing.

What cannot be had without a device is simulated, and said so: "device memory" is numpy
buffers that are never given back to Python's allocator (a freed buffer is filled with
``POISON`` and its address recorded in :data:`FREED`, so a test sees a use after free instead
of crashing); cameras and streams are a :data:`WORLD` the test controls (present or not,
unplugged, stalled), their frames filled with the capture's number; timeouts return at once,
as if the time had passed. Video files are decoded for real, with OpenCV.
"""
from __future__ import annotations

import os
import re
import time
import weakref
from typing import Dict, List, Optional, Set

import numpy as np

__version__ = "stand-in"
LIBRARY, COLUMN = "jetson_utils", "master"  # its column of the conformance table (api_table.json)
# What it implements of the real surface (tests check each is in the table: nothing invented).
EXPORTS = ["videoSource", "cudaMemory", "cudaImage", "cudaToNumpy", "cudaDeviceSynchronize", "cudaStreamCreate",
           "cudaStreamSynchronize", "cudaStreamDestroy"]
STREAM_API = ("cudaStreamCreate", "cudaStreamSynchronize", "cudaStreamDestroy")  # from 2024-06

POISON = 0xDD
GENERATIONS = ("2022.08", "2023.03", "2024.06")  # timeouts raise | timeouts return None | + stream=
_generation = "2024.06"

DEFAULT_TIMEOUT = 1000
DEFAULT_NUM_BUFFERS = 4
VIDEO_EXTENSIONS = ("mkv", "mp4", "qt", "flv", "avi", "h264", "h265", "mov", "webm")  # gstDecoder's
FORMATS = {"rgb8": 3, "rgba8": 4}

# "Device memory": every buffer ever allocated, by address, never returned to Python.
_MEMORY: Dict[int, np.ndarray] = {}
FREED: Set[int] = set()       # addresses of buffers a deleted videoSource freed
LIVE: "weakref.WeakSet[videoSource]" = weakref.WeakSet()  # sources not deleted yet


def fresh():
    """A new copy of this module (its own world and memory), to stand in as ``jetson_utils``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("jetson_utils", os.path.abspath(__file__))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _set_generation(name: str) -> None:
    """Which build to behave as (see :data:`GENERATIONS`): older ones lack the stream API."""
    global _generation
    if name not in GENERATIONS:
        raise ValueError("generation %r is not one of %s" % (name, GENERATIONS))
    _generation = name
    for attr in STREAM_API:
        if name < "2024.06":
            globals().pop(attr, None)
        else:
            globals()[attr] = _STREAM_IMPL[attr]


def _alloc(shape) -> np.ndarray:
    buf = np.zeros(shape, np.uint8)
    _MEMORY[buf.ctypes.data] = buf
    return buf


def _free(buf: np.ndarray) -> None:
    buf.fill(POISON)
    FREED.add(buf.ctypes.data)


# -- what only a device has: cameras and streams, controlled by the test ----------------------
class World:
    """The cameras (``/dev/videoN``, CSI sensors) and network streams a test plugs in."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.v4l2: Dict[str, bool] = {}     # /dev/videoN -> delivering frames
        self.csi: Dict[int, bool] = {}      # sensor id -> delivering frames
        self.streams: Dict[str, bool] = {}  # rtsp/rtp/webrtc URL -> delivering frames
        self.stalls: Dict[str, int] = {}    # resource string -> timeouts before the next frame
        self.opened: List[str] = []         # resource strings of every videoSource made

    def _table(self, uri: "URI"):
        if uri.protocol == "v4l2":
            return self.v4l2, uri.location
        if uri.protocol == "csi":
            return self.csi, uri.port
        return self.streams, uri.string

    def plug(self, resource: str, delivering: bool = True) -> None:
        """``/dev/video0``, ``csi://0`` or a stream URL is there (and sends frames or not)."""
        u = URI(resource)
        table, key = self._table(u)
        table[key] = delivering

    def unplug(self, resource: str) -> None:
        u = URI(resource)
        table, key = self._table(u)
        table.pop(key, None)

    def stall(self, resource: str, timeouts: int) -> None:
        """The next ``timeouts`` captures of ``resource`` time out."""
        self.stalls[URI(resource).string] = timeouts

    def present(self, uri: "URI") -> bool:
        table, key = self._table(uri)
        return key in table

    def delivering(self, uri: "URI") -> bool:
        table, key = self._table(uri)
        return bool(table.get(key, False))


WORLD = World()


def _reset() -> None:
    """Back to a world with nothing plugged in and the newest build."""
    WORLD.reset()
    _set_generation("2024.06")


# -- URI::Parse ------------------------------------------------------------------------------
class URI:
    """jetson-utils' ``URI``: protocol, location, path, extension, port (``URI::Parse``)."""

    def __init__(self, text: str) -> None:
        if not self.parse(text):
            raise ValueError("URI -- invalid resource: %s" % text)

    def parse(self, text: str) -> bool:
        if not text:
            return False
        self.string, self.protocol, self.extension, self.location, self.port = text, "", "", "", -1
        pos = text.find("://")
        if pos >= 0:
            self.protocol, self.location = text[:pos], text[pos + 3:]
        else:
            if text.startswith("/dev/video"):
                self.protocol = "v4l2"
            elif "." in text or "/" in text or os.path.exists(text):
                self.protocol = "file"
            elif re.match(r"\s*[+-]?\d", text):
                self.protocol = "csi"
                self.port = int(re.match(r"\s*([+-]?\d+)", text).group(1))
            elif text == "display":
                self.protocol = "display"
            else:
                return False
            self.location = text
            self.string = self.protocol + "://" + (os.path.abspath(text) if self.protocol == "file" else text)
        self.path = self.location
        self.protocol = self.protocol.lower()
        if self.protocol == "v4l2":
            m = re.match(r"/dev/video([+-]?\d+)", self.location)
            if not m:
                return False  # "URI -- failed to parse V4L2 device ID from %s"
            self.port = int(m.group(1))
        elif self.protocol == "csi":
            m = re.match(r"\s*([+-]?\d+)", self.location)
            if not m:
                return False  # "URI -- failed to parse MIPI CSI device ID from %s"
            self.port = int(m.group(1))
        elif self.protocol == "display":
            m = re.match(r"\s*([+-]?\d+)", self.location)
            self.port = int(m.group(1)) if m else 0
        elif self.protocol == "file":
            ext = os.path.splitext(self.location)[1]
            self.extension = ext[1:].lower() if ext else ""
        else:  # ip/port
            loc = self.location
            pos = loc.find(":")
            port_str = ""
            if pos >= 0:
                if self.protocol == "rtsp":  # user:pass@ip:port
                    host_pos, port_pos = loc.find("@", pos + 1), loc.find(":", pos + 1)
                    if host_pos >= 0 and port_pos >= 0:
                        pos = port_pos
                path_pos = loc.find("/", pos + 1)
                if path_pos >= 0:
                    self.path = loc[path_pos:]
                port_str = loc[pos + 1:path_pos if path_pos >= 0 else None]
                loc = loc[:pos]
            elif loc.count(".") == 0:
                port_str, loc = loc, "0.0.0.0"
            if port_str:
                m = re.match(r"\s*([+-]?\d+)", port_str)
                if m:
                    self.port = int(m.group(1))
                elif self.protocol == "rtsp":
                    self.port = 554
                else:
                    return False  # "URI -- failed to parse IP port from %s"
            self.location = "0.0.0.0" if loc == "@" else loc
        return True

    def as_dict(self) -> Dict[str, object]:
        return {"string": self.string, "protocol": self.protocol, "path": self.path, "extension": self.extension,
                "location": self.location, "port": self.port}


# -- commandLine ----------------------------------------------------------------------------
def _arg(argv: List[str], key: str) -> Optional[str]:
    """``commandLine::GetString``: the value of the first ``--key=value`` (prefix match, any case)."""
    for a in argv:
        stripped = a.lstrip("-")
        if stripped == a or len(a) - len(stripped) >= len(a) - 1:
            continue
        if stripped.lower().startswith(key.lower()):
            rest = stripped[len(key):]
            return rest[1:] if rest.startswith("=") else rest
    return None


def _uint(argv: List[str], key: str, default: int) -> int:
    v = _arg(argv, key)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        return 0  # atoi


# -- cudaMemory / cudaImage -----------------------------------------------------------------
class cudaMemory:
    """``jetson_utils.cudaMemory``: ptr, size, mapped, freeOnDelete, gpudata."""

    def __init__(self, ptr: int, size: int, mapped: bool, freeOnDelete: bool) -> None:
        self._ptr, self._size, self._mapped, self._free = int(ptr), int(size), bool(mapped), bool(freeOnDelete)

    ptr = property(lambda self: self._ptr, doc="Address of CUDA memory")
    gpudata = property(lambda self: self._ptr, doc="Address of CUDA memory (PyCUDA interface)")
    size = property(lambda self: self._size)
    mapped = property(lambda self: self._mapped)
    freeOnDelete = property(lambda self: self._free)


class cudaImage(cudaMemory):
    """``jetson_utils.cudaImage`` as ``PyCUDA_RegisterImage`` makes it for a captured frame."""

    def __init__(self, ptr: int, width: int, height: int, format: str, timestamp: int, mapped: bool,
                 freeOnDelete: bool) -> None:
        super().__init__(ptr, width * height * FORMATS[format], mapped, freeOnDelete)
        self._width, self._height, self._format, self._timestamp = width, height, format, timestamp

    width = property(lambda self: self._width)
    height = property(lambda self: self._height)
    channels = property(lambda self: FORMATS[self._format])
    shape = property(lambda self: (self._height, self._width, FORMATS[self._format]))
    format = property(lambda self: self._format)
    timestamp = property(lambda self: self._timestamp)

    @property
    def __cuda_array_interface__(self) -> Dict[str, object]:
        return {"shape": self.shape, "typestr": "<u1", "data": (self._ptr, False), "version": 3}

    @property
    def __array_interface__(self):
        if not self._mapped:
            return None
        return self.__cuda_array_interface__


def cudaToNumpy(image, width: int = 0, height: int = 0, depth: int = 0) -> np.ndarray:
    """A numpy array on the image's mapped memory, no copy; its base is the image."""
    if not isinstance(image, cudaMemory):
        raise Exception("jetson.utils -- cudaToNumpy() failed to get input CUDA pointer from first arg "
                        "(should be cudaImage or cudaMemory)")
    if not image.mapped:
        raise Exception("jetson.utils -- cudaToNumpy() needs to use CUDA mapped memory as input "
                        "(allocate with mapped=1)")
    arr = np.asarray(image)
    assert arr.base is image
    return arr


SYNCS = {"device": 0, "stream": 0}  # how often each kind of wait was asked for
STREAMS: Dict[int, bool] = {}        # streams created and not destroyed: nonblocking?
_stream_ids = iter(range(0x7F0000001000, 0x7FFFFFFFFFFF, 0x100))


def cudaDeviceSynchronize() -> None:
    """Nothing runs on a device here: the conversion is done when Capture returns."""
    SYNCS["device"] += 1


def cudaStreamCreate(nonblocking: bool = False, priority: int = 0) -> int:
    handle = next(_stream_ids)
    STREAMS[handle] = bool(nonblocking)
    return handle


def _live_stream(stream: int) -> None:
    if stream not in STREAMS:
        raise Exception("jetson.utils -- CUDA error: invalid resource handle (stream %#x)" % stream)


def cudaStreamSynchronize(stream: int) -> None:
    _live_stream(stream)
    SYNCS["stream"] += 1


def cudaStreamDestroy(stream: int) -> None:
    _live_stream(stream)
    del STREAMS[stream]


_STREAM_IMPL = {"cudaStreamCreate": cudaStreamCreate, "cudaStreamSynchronize": cudaStreamSynchronize,
                "cudaStreamDestroy": cudaStreamDestroy}


# -- videoSource ----------------------------------------------------------------------------
class videoSource:
    """``jetson_utils.videoSource``: cameras, streams and video files."""

    def __init__(self, uri: Optional[str] = None, argv: Optional[List[str]] = None, positionArg: int = -1,
                 options: Optional[dict] = None) -> None:
        self._alive = False
        argv = [str(a) for a in (argv or [])]
        if options is not None and _generation < "2022.11":
            raise TypeError("'options' is an invalid keyword argument for this function")
        uri = uri or "csi://0"
        try:
            self._uri = URI(uri)
        except ValueError:
            raise Exception("jetson.utils -- failed to create videoSource device") from None
        u = self._uri
        self._num_buffers = _uint(argv, "num-buffers", DEFAULT_NUM_BUFFERS)
        self._width = _uint(argv, "input-width", 0)
        self._height = _uint(argv, "input-height", 0)
        self._rate = float(_arg(argv, "input-rate") or 0) or 30.0
        self._loop = int(_arg(argv, "input-loop") or 0)
        self._flip = _arg(argv, "input-flip") or "none"
        self._codec = _arg(argv, "input-codec") or "unknown"
        self._streaming = False
        self._eos = False
        self._eos_reported = False
        self._loops = 1
        self._frames = 0
        self._ring: List[np.ndarray] = []
        self._next = 0
        self._cap = None
        self._streams_used: Set[int] = set()
        if u.protocol == "file":
            if u.extension not in VIDEO_EXTENSIONS:
                raise NotImplementedError("stand-in: imageLoader (still images, folders) is not modelled")
            if not os.path.isfile(u.location):  # gstDecoder's discoverer fails: Create returns NULL
                raise Exception("jetson.utils -- failed to create videoSource device")
            self._kind = "gstDecoder"
        elif u.protocol in ("rtp", "rtsp", "webrtc"):
            self._kind = "gstDecoder"
        elif u.protocol in ("csi", "v4l2"):
            # gstCamera::Create probes a V4L2 device's formats: an absent one fails here;
            # a CSI pipeline is built blind and fails when it starts.
            if u.protocol == "v4l2" and not WORLD.present(u):
                raise Exception("jetson.utils -- failed to create videoSource device")
            self._kind = "gstCamera"
        else:  # "videoSource -- unsupported protocol (%s)"
            raise Exception("jetson.utils -- failed to create videoSource device")
        if self._num_buffers < 1:
            raise Exception("jetson.utils -- failed to create videoSource device")
        if self._kind == "gstCamera":
            self._width, self._height = self._width or 1280, self._height or 720
        WORLD.opened.append(u.string)
        LIVE.add(self)
        self._alive = True

    # PyVideoSource_Dealloc: ``delete source`` frees its buffers (the ring included).
    def __del__(self) -> None:
        if getattr(self, "_alive", False):
            self._alive = False
            try:
                if self._cap is not None:
                    self._cap.release()
                for buf in self._ring:
                    _free(buf)
            except Exception:  # pragma: no cover - the interpreter is shutting down
                pass
            self._ring = []

    # -- streaming ----------------------------------------------------------------------
    def Open(self) -> None:
        if not self._open():
            raise Exception("jetson.utils -- failed to open videoSource device for streaming")

    def _open(self) -> bool:
        u = self._uri
        if self._eos:
            if self._looping():
                self._loops += 1
                self._eos = self._eos_reported = False
                self._cap.set(1, 0)  # CAP_PROP_POS_FRAMES: seek to the start
            else:
                return False  # "end of stream (EOS) has been reached, stream has been closed"
        if self._streaming:
            return True
        if u.protocol == "file":
            if self._cap is None:
                import cv2

                self._cap = cv2.VideoCapture(u.location)
                if not self._cap.isOpened():
                    return False
                self._width = self._width or int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
                self._height = self._height or int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        elif not WORLD.present(u):
            return False
        elif u.protocol != "v4l2" and u.protocol != "csi":
            self._width, self._height = self._width or 1280, self._height or 720
        self._streaming = True
        return True

    def Close(self) -> None:
        self._streaming = False

    def IsStreaming(self) -> bool:
        return self._streaming

    def _looping(self) -> bool:
        return self._loop < 0 or self._loops < self._loop

    def Capture(self, format: str = "rgb8", timeout: int = DEFAULT_TIMEOUT, **kwargs):
        for key in kwargs:
            if key != "stream" or _generation < "2024.06":
                raise TypeError("'%s' is an invalid keyword argument for this function" % key)
        if kwargs.get("stream"):
            _live_stream(kwargs["stream"])
            self._streams_used.add(kwargs["stream"])
        if not isinstance(format, str) or not isinstance(timeout, int):
            raise TypeError("Capture(format: str, timeout: int)")
        if format not in FORMATS:
            raise Exception("jetson.utils -- videoSource failed to capture image")  # unsupported format
        if not self._streaming or self._eos:
            if not self._open():
                raise Exception("jetson.utils -- videoSource failed to capture image")  # ERROR or EOS
        frame = self._next_frame()
        if frame is None:  # TIMEOUT
            if _generation < "2023.03":
                raise Exception("jetson.utils -- videoSource failed to capture image")
            return None
        return self._convert(frame, format)

    def _next_frame(self) -> Optional[np.ndarray]:
        """The next frame (RGB), or None for a timeout; a file's end sets EOS."""
        u = self._uri
        stalls = WORLD.stalls.get(u.string, 0)
        if stalls:
            WORLD.stalls[u.string] = stalls - 1
            return None
        if u.protocol == "file":
            import cv2

            ok, bgr = self._cap.read()
            if not ok:
                # onEOS: the stream stops (unless it loops); the Capture waiting on it times out.
                self._eos = True
                self._streaming = self._looping()
                return None
            if bgr.shape[1] != self._width or bgr.shape[0] != self._height:
                bgr = cv2.resize(bgr, (self._width, self._height))
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if not WORLD.delivering(u):
            return None  # unplugged or silent: gstreamer posts an error, the appsink gets nothing
        img = np.empty((self._height, self._width, 3), np.uint8)
        img.fill(self._frames % 256)
        return img

    def _convert(self, rgb: np.ndarray, format: str) -> cudaImage:
        """gstBufferManager::Dequeue: the next buffer of the RGB ring, allocated at first use."""
        ch = FORMATS[format]
        shape = (self._height, self._width, ch)
        if not self._ring or self._ring[0].shape != shape:  # RingBuffer::Alloc on a new size
            for buf in self._ring:
                _free(buf)
            self._ring = [_alloc(shape) for _ in range(self._num_buffers)]
            self._next = 0
        buf = self._ring[self._next]
        self._next = (self._next + 1) % len(self._ring)
        buf[..., :3] = rgb
        if ch == 4:
            buf[..., 3] = 255
        self._frames += 1
        return cudaImage(buf.ctypes.data, self._width, self._height, format, time.monotonic_ns(), True, False)

    # -- properties -----------------------------------------------------------------------
    def GetWidth(self) -> int:
        return self._width

    def GetHeight(self) -> int:
        return self._height

    def GetFrameRate(self) -> float:
        return self._rate

    @property
    def GetFrameCount(self):
        """A method from 2023-03 on: older builds have no such attribute."""
        if _generation < "2023.03":
            raise AttributeError("'jetson_utils.videoSource' object has no attribute 'GetFrameCount'")
        return lambda: self._frames

    def GetOptions(self) -> Dict[str, object]:
        return {"resource": self._uri.as_dict(), "width": self._width, "height": self._height,
                "framerate": self._rate, "codec": self._codec, "loop": self._loop, "flipMethod": self._flip,
                "numBuffers": self._num_buffers, "zeroCopy": True,
                "deviceType": {"file": "file", "csi": "csi", "v4l2": "v4l2"}.get(self._uri.protocol, "ip"),
                "ioType": "input"}

    @staticmethod
    def Usage() -> str:
        return "videoSource arguments: --input-width, --input-height, --input-rate, --num-buffers, ..."
