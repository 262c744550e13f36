"""Cameras, streams and video files through ``jetson_utils.videoSource`` (on a Jetson).

Written against jetson-utils' own sources (``python/bindings/PyVideo.cpp``, ``PyCUDA.cpp``,
``PyNumpy.cpp``; ``cpp/network/URI.cpp``, ``cpp/video/videoSource.cpp``,
``cpp/codec/gstDecoder.cpp``, ``gstBufferManager.cpp``) and tested against a stand-in that
behaves as they do (``tests/standins/jetson_utils.py``); jetson_utils is imported only when
such a source opens.

* **What it opens**: ``csi://N``, ``v4l2:///dev/videoN`` (its URI parser rejects
  ``v4l2://N``: the URI is rewritten), ``rtsp://``, ``rtp://``, ``webrtc://`` and video files
  its decoder knows by extension (:data:`VIDEO_EXTENSIONS`). Other URIs of those kinds
  (rtsps, http(s), rtmp, a ``.ts`` file) go to OpenCV: the provider does not accept them.
* **Its frames are its own memory**: ``Capture()`` converts into the videoSource's ring of
  ``--num-buffers`` images (mapped, so the numpy view is no copy), fixed when it is made, and
  returns a ``cudaImage`` that does not own its buffer (``freeOnDelete=False``); deleting the
  videoSource frees the ring. Hence three rules here:

  - the ring is sized to the frames the consumer keeps in flight: :meth:`keep_in_flight`
    remakes the videoSource with more buffers when it needs them (free before the first
    capture: GStreamer only starts on the first ``Capture``);
  - each frame's array is a view of a :class:`_Lease` that holds the videoSource, so closing
    the source (a reconnect) stops it streaming at once while its memory lives until the
    last frame it handed out is let go;
  - its ring turns on every capture, dropped frames too, so before each capture the source
    checks that the buffer it will overwrite is under no frame still in flight, and waits for
    that frame otherwise (a camera's newest frame waits in jetson-utils' own queue meanwhile).
* **Its own CUDA stream** (builds from 2024-06, which take ``Capture(stream=)``): the colour
  conversion runs on a non-blocking stream and only that stream is waited for, so a capture
  does not wait for an inference running on the GPU meanwhile (``cudaDeviceSynchronize``,
  all older builds have, waits for everything).
* **End and timeouts**: at a file's end ``Capture`` raises and ``IsStreaming()`` is false:
  :class:`SourceEnded`. A timeout returns None (builds from 2023-03) or raises with the stream
  still on (older builds): retried, then :class:`SourceError` (a live source reconnects).
"""
from __future__ import annotations

import collections
import gc
import itertools
import logging
import os
import queue
import re
import time
import weakref
from typing import Dict, List, Optional, Tuple

import numpy as np

from openpose_plus.edge import environment as env
from .base import DEFAULT_RING, CorruptFrame, Frame, Source, SourceEnded, SourceError
from .opencv import CAMERA_KINDS, LIVE_KINDS
from .registry import register
from .uri import SourceURI, float_option, int_option

__all__ = ["JetsonSource", "jetson_resource", "import_jetson_utils", "cuda_image", "VIDEO_EXTENSIONS",
           "NETWORK_SCHEMES"]

log = logging.getLogger("openpose_plus.sources")

# gstDecoder::SupportedExtensions: other files would go to its still-image loader.
VIDEO_EXTENSIONS = ("mkv", "mp4", "qt", "flv", "avi", "h264", "h265", "mov", "webm")
NETWORK_SCHEMES = ("rtsp", "rtp", "webrtc")  # videoSource::Create's network protocols
CAPTURE_TIMEOUT_MS = 1000   # one Capture's wait (jetson-utils' own default)
FIRST_FRAME_TIMEOUTS = 15   # a stream's connect and a hardware decoder's start take seconds
TIMEOUTS = 5                # a running source silent for this many captures is lost
HELD_WAIT_S = 2.0           # how long a capture waits for the frame whose buffer it needs
# URI options -> jetson-utils' command line (videoOptions::Parse), and how each is read.
_ARGV = {"width": ("input-width", int_option), "height": ("input-height", int_option),
         "fps": ("input-rate", float_option), "rate": ("input-rate", float_option),
         "latency": ("input-latency", int_option), "loop": ("input-loop", int_option),
         "codec": ("input-codec", None), "flip": ("input-flip", None)}


def import_jetson_utils():
    """``jetson_utils`` (``jetson.utils`` in builds before 2022-07), or SourceError saying why not."""
    try:
        import jetson_utils

        return jetson_utils
    except ImportError as exc:
        try:
            import jetson.utils as ju  # type: ignore[import-not-found]

            return ju
        except ImportError:
            raise SourceError("jetson_utils is not importable (%s); build jetson-inference/jetson-utils on "
                              "the device" % exc) from None


def jetson_resource(uri: str, where: SourceURI) -> Tuple[Optional[str], str]:
    """The resource URI jetson-utils' parser and ``videoSource::Create`` accept for ``uri``,
    or ``(None, why not)`` where jetson-utils does not open it."""
    kind, loc = where.kind, where.location
    if kind == "csi":
        if re.fullmatch(r"\d+", loc):
            return "csi://%d" % int(loc), ""
        return None, "a CSI sensor is a number (csi://0), not %r" % loc
    if kind == "v4l2":
        dev = os.path.realpath(loc) if os.path.islink(loc) else loc  # /dev/v4l/by-id/... -> /dev/videoN
        if re.fullmatch(r"/dev/video\d+", dev):
            return "v4l2://" + dev, ""
        return None, "its URI parser takes /dev/videoN, not %s" % loc
    if kind == "file":
        ext = os.path.splitext(loc)[1].lower().lstrip(".")
        if ext in VIDEO_EXTENSIONS:
            return "file://" + os.path.abspath(loc), ""
        return None, "its decoder takes .%s files, not %s" % (", .".join(VIDEO_EXTENSIONS),
                                                             "." + ext if ext else "a name without extension")
    if kind == "rtsp":
        scheme = uri.strip().partition("://")[0].lower()
        if scheme in NETWORK_SCHEMES:
            return uri.strip(), ""
        return None, "its network inputs are %s, not %s://" % (", ".join(s + "://" for s in NETWORK_SCHEMES), scheme)
    return None, "it does not open %s sources" % kind


class _Held:
    """What the source remembers of one capture: its frame's lease (weakly), dropped or not."""

    __slots__ = ("lease", "dropped")

    def __init__(self, lease: "Optional[weakref.ref[_Lease]]", dropped: bool = False) -> None:
        self.lease, self.dropped = lease, dropped

    def free(self) -> bool:
        return self.dropped or self.lease is None or self.lease() is None


class _Lease:
    """One frame's claim on the videoSource's memory. The frame's array is made from this
    object's ``__array_interface__``, so numpy keeps it as the base of that array and of every
    view of it: while any of them lives, so do the videoSource and the buffer under the frame."""

    def __init__(self, array: np.ndarray, source: object, image: object, held: _Held) -> None:
        self.__array_interface__ = array.__array_interface__
        self.keep = (array, image, source)
        self.held = held


class JetsonSource(Source):
    """``jetson_utils.videoSource``: CSI, V4L2, RTSP/RTP/WebRTC, video files, frames in mapped CUDA memory."""

    kind = "jetson_utils"

    def __init__(self, uri: str, kind: str, location: str, options: Dict[str, str], ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        self.source_kind, self.location, self.options = kind, location, options
        self.resource, self._refused = jetson_resource(uri, SourceURI(kind, location, options))
        self.live = kind in LIVE_KINDS
        self._ju = None
        self._src: "Optional[jetson_utils.videoSource]" = None  # typed for the API conformance test
        self._stream: Optional[int] = None  # its CUDA stream (builds from 2024-06), else None
        self._buffers = 0      # the ring the videoSource was made with (--num-buffers)
        self._captures = 0     # captures from it: its ring turns once per capture
        self._recent: "collections.deque[_Held]" = collections.deque()
        self._released: "queue.SimpleQueue[None]" = queue.SimpleQueue()  # a frame let go (any thread)
        self.zero_copy: Optional[bool] = None  # are frames in mapped memory (known from the first)
        self.remakes = 0       # videoSources made again for a bigger ring
        self.waits = 0         # captures that waited for a frame in flight
        self.overwrites = 0    # captures that overwrote a frame still held past HELD_WAIT_S

    # -- opening ---------------------------------------------------------------------------
    def argv(self, buffers: int) -> List[str]:
        """The command line the videoSource is made with (``videoOptions::Parse`` reads it)."""
        args = ["--num-buffers=%d" % buffers,
                # jetson-utils logs to stdout by default (process-wide): keep stdout for the
                # results (`run --jsonl -`) and only its warnings and errors.
                "--log-file=stderr", "--log-level=warning"]
        for key in sorted(self.options):
            flag, read = _ARGV.get(key, (None, None))
            if flag is None:
                continue
            value = read(self.options, key, None, self.uri) if read else self.options[key]
            args.append("--%s=%s" % (flag, value))
        return args

    def open(self) -> "JetsonSource":
        if self.resource is None:
            raise SourceError("source %s: jetson_utils does not open it (%s)" % (self.uri, self._refused))
        self._ju = import_jetson_utils()
        self._make()
        self.index = 0
        return self

    def _make(self) -> None:
        n = self.ring.size
        argv = self.argv(n)
        try:
            src: "jetson_utils.videoSource" = self._ju.videoSource(self.resource, argv=argv)  # type: ignore[union-attr]
        except Exception as exc:  # jetson_utils raises plain Exceptions
            raise SourceError("source %s: jetson_utils cannot open %s: %s" % (self.uri, self.resource, exc)) from None
        self._src, self._buffers, self._captures = src, n, 0
        self._recent = collections.deque(maxlen=n)
        if hasattr(self._ju, "cudaStreamCreate"):  # with Capture(stream=): 2024-06 on
            try:
                self._stream = self._ju.cudaStreamCreate(nonblocking=True)
            except Exception as exc:  # no stream: the device-wide wait of older builds
                log.warning("source %s: no CUDA stream of its own (%s)", self.uri, exc)

    def keep_in_flight(self, frames: int) -> None:
        """Its ring is fixed when the videoSource is made: a bigger one means making it again
        (before the first capture, as ``open_source()`` then ``Pipeline(...)`` do, that costs
        nothing; a file read from already goes on where it was)."""
        super().keep_in_flight(frames)
        if self._src is not None and self.ring.size > self._buffers:
            done = 0 if self.live else self._captures
            self.close()
            self._make()
            self.remakes += 1
            for _ in range(done):
                self._capture(self._src)
                self._recent.append(_Held(None, dropped=True))
            log.info("source %s: made again with %d buffers", self.uri, self._buffers)

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> Frame:
        src: "Optional[jetson_utils.videoSource]" = self._src
        if src is None:
            raise SourceError("source %s is not open" % self.uri)
        self._wait_for_buffer()
        img: "jetson_utils.cudaImage" = self._capture(src)
        # The colour conversion ran on the GPU; the CPU (and any stream) reads the frame next.
        if self._stream is not None:
            self._ju.cudaStreamSynchronize(self._stream)
        else:
            self._ju.cudaDeviceSynchronize()
        try:
            array: "np.ndarray" = self._ju.cudaToNumpy(img)  # mapped memory: a view, no copy
        except Exception as exc:  # not mapped memory: nothing on the CPU can read it
            raise SourceError("source %s: jetson_utils' frame is not in mapped memory (%s)" % (self.uri, exc)) from None
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise CorruptFrame("source %s: frame %d is %s %s, not H x W x 3 uint8"
                               % (self.uri, self.index, array.dtype, array.shape))
        if self.zero_copy is None:
            self.zero_copy = bool(img.mapped)
        held = _Held(None)
        lease = _Lease(array, src, img, held)
        put = self._released.put
        held.lease = weakref.ref(lease, lambda _ref: put(None))
        self._recent.append(held)
        return self._frame(np.asarray(lease))

    def _capture(self, src: "jetson_utils.videoSource") -> "jetson_utils.cudaImage":
        """One image, retrying timeouts; SourceEnded at a file's end, SourceError otherwise."""
        limit = FIRST_FRAME_TIMEOUTS if self._captures == 0 else TIMEOUTS
        why = "timed out"
        for _ in range(limit):
            try:
                if self._stream is not None:
                    img: "Optional[jetson_utils.cudaImage]" = src.Capture(
                        format="rgb8", timeout=CAPTURE_TIMEOUT_MS, stream=self._stream)
                else:
                    img = src.Capture(format="rgb8", timeout=CAPTURE_TIMEOUT_MS)
            except TypeError:  # a call this build does not take: a bug here, not the stream
                raise
            except Exception as exc:  # the end, an error, or (builds before 2023-03) a timeout
                img, why = None, str(exc)
            if img is not None:
                self._captures += 1
                return img
            if not src.IsStreaming():
                self._stopped(why)
        raise SourceError("source %s: no frame in %.0f s (%s)" % (self.uri, limit * CAPTURE_TIMEOUT_MS / 1e3, why))

    def _stopped(self, why: str) -> None:
        if self.live:
            raise SourceError("source %s stopped streaming (%s)" % (self.uri, why))
        if self._captures == 0 and self.index == 0:
            raise SourceError("source %s: jetson_utils could not start it (%s)" % (self.uri, why))
        raise SourceEnded("source %s ended after %d frames" % (self.uri, self.index))

    def _wait_for_buffer(self) -> None:
        """Before a capture: the buffer it overwrites is that of the capture ``buffers`` ago.
        Free if that frame was dropped or let go, or if the consumer kept ``buffers - 1``
        frames since (it keeps no more in flight, oldest first: :meth:`keep_in_flight`).
        Otherwise wait until it is let go (a dropped frame took a turn of the ring)."""
        while True:  # what was let go before now is seen below
            try:
                self._released.get_nowait()
            except queue.Empty:
                break
        recent = self._recent
        if len(recent) < self._buffers:
            return
        oldest = recent[0]
        if oldest.free() or sum(not h.dropped for h in itertools.islice(recent, 1, None)) >= self._buffers - 1:
            return
        self.waits += 1
        deadline, collected = time.monotonic() + HELD_WAIT_S, False
        while not oldest.free():
            left = deadline - time.monotonic()
            if left <= 0:
                if not collected:  # a frame kept only by a reference cycle goes with a collection
                    gc.collect()
                    collected = True
                    continue
                self.overwrites += 1
                log.warning("source %s: a frame held for %.0f s is overwritten (copy frames kept longer than "
                            "the pipeline's window)", self.uri, HELD_WAIT_S)
                return
            try:
                self._released.get(timeout=left)
            except queue.Empty:
                pass

    def drop(self, frame: Frame) -> None:
        """``frame`` was not used: its buffer may take a later capture (never the next one:
        jetson-utils' ring turns by itself)."""
        lease = getattr(frame.image, "base", None)
        if isinstance(lease, _Lease):
            lease.held.dropped = True
            self._released.put(None)

    def close(self) -> None:
        """Stop streaming now; the videoSource and its ring are freed when the last frame it
        handed out is let go (each frame's lease holds it)."""
        src: "Optional[jetson_utils.videoSource]" = self._src
        stream, self._src, self._stream = self._stream, None, None
        self._recent = collections.deque()
        if src is not None:
            try:
                src.Close()
            except Exception as exc:  # closing a source that failed: nothing more to stop
                log.warning("source %s: jetson_utils Close: %s", self.uri, exc)
        if stream is not None:  # every frame it converted was waited for: nothing runs on it
            try:
                self._ju.cudaStreamDestroy(stream)
            except Exception as exc:
                log.warning("source %s: jetson_utils cudaStreamDestroy: %s", self.uri, exc)


def cuda_image(frame: Frame) -> "Optional[jetson_utils.cudaImage]":
    """The ``cudaImage`` under a frame this source handed out (None for any other frame).

    For a GPU stage that reads the frame where it is: its ``ptr`` (or
    ``__cuda_array_interface__``) is mapped memory in the CUDA primary context, where the
    TensorRT backend's pycuda works too, and the colour conversion that wrote it has finished
    (:meth:`JetsonSource.read` synchronised). Valid while the frame (or any view of it) lives."""
    lease = getattr(frame.image, "base", None)
    return lease.keep[1] if isinstance(lease, _Lease) else None


def _status(kind: str) -> env.Status:
    ju = env.probe_module("jetson_utils", hint="build jetson-inference/jetson-utils on the device")
    if not ju.ok and env.probe_module("jetson.utils").ok:
        ju = env.Status("jetson_utils", True, "jetson.utils")
    if ju.ok:
        return env.Status(kind, True, "%s via jetson_utils (zero-copy cudaImage)" % CAMERA_KINDS[kind])
    return env.Status(kind, False, "jetson_utils: %s" % ju.detail)


def _open(uri: str, where: SourceURI, ring: int) -> JetsonSource:
    return JetsonSource(uri, where.kind, where.location, where.options, ring)


def _accepts(uri: str, where: SourceURI) -> Optional[str]:
    resource, why = jetson_resource(uri, where)
    return None if resource is not None else why


# Before OpenCV wherever it imports: its frames need no copy.
for _kind in CAMERA_KINDS:
    register(_kind, "jetson_utils", _open, _status, priority=10, accepts=_accepts)
