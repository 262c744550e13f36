"""What every source is: :class:`Source`, the :class:`Frame` it yields, its errors, its ring.

A source writes each frame into a :class:`FrameRing`, a few buffers allocated once and
handed out round-robin, so capture allocates nothing per frame. A frame is a view of one
of those buffers: it stays intact until the ring comes round to it again. The consumer
says how many frames it keeps in flight (:meth:`Source.keep_in_flight`) and hands back
the ones it drops unused (:meth:`Source.drop`), so the ring never reuses a buffer under
a frame still in use.
"""
from __future__ import annotations

import time
from typing import Iterator, List, Optional

import numpy as np

__all__ = ["Frame", "SourceError", "SourceEnded", "CorruptFrame", "FrameRing", "Source", "DEFAULT_RING"]

DEFAULT_RING = 12


class SourceError(RuntimeError):
    """A source that cannot be opened or stopped delivering; the message names it."""


class SourceEnded(SourceError):
    """The end of a file, a folder or a finite synthetic stream."""


class CorruptFrame(SourceError):
    """One unusable frame (e.g. an image that does not decode); the stream itself goes on."""


class Frame:
    __slots__ = ("image", "index", "timestamp", "truth", "name", "media_time")

    def __init__(self, image: np.ndarray, index: int, timestamp: float, truth: Optional[np.ndarray] = None,
                 name: Optional[str] = None, media_time: Optional[float] = None) -> None:
        self.image = image          # RGB H x W x 3 uint8 (a ring buffer: copy it to keep it)
        self.index = index
        self.timestamp = timestamp  # time.monotonic() at capture
        self.truth = truth          # synthetic:// only: ground-truth keypoints (N, K, 3) in image px
        self.name = name            # where it came from when that has a name (an image file), for logs
        # Seconds in the stream's own time, what tracking's velocities are per: a camera's is
        # its capture time; a recording's (a video file, synthetic://) is its frame's place
        # in it (index / fps), since it is read as fast as the pipeline goes, in bursts.
        self.media_time = timestamp if media_time is None else media_time


class FrameRing:
    """A few frame buffers allocated once, handed out round-robin."""

    def __init__(self, size: int) -> None:
        self.size = max(2, int(size))
        self.buffers: List[np.ndarray] = []
        self.next = 0
        self._last: Optional[int] = None  # the buffer handed out last, while it may be given back

    def ensure(self, size: int) -> None:
        """Grow to at least ``size`` buffers, inserted where the next frame goes, so the
        buffers of frames already handed out keep their turn (none is reused sooner)."""
        if size > self.size:
            if self.buffers:
                shape = self.buffers[0].shape
                self.buffers[self.next:self.next] = [np.zeros(shape, np.uint8) for _ in range(size - self.size)]
            self.size = size
            self._last = None

    def get(self, height: int, width: int) -> np.ndarray:
        if not self.buffers or self.buffers[0].shape[:2] != (height, width):
            self.buffers = [np.zeros((height, width, 3), np.uint8) for _ in range(self.size)]
            self.next = 0
        buf = self.buffers[self.next]
        self._last = self.next
        self.next = (self.next + 1) % self.size
        return buf

    def unget(self, buf: np.ndarray) -> None:
        """``buf``, the last buffer handed out, is free again: it takes the next frame.

        Without this a live camera that drops frames while the pipeline is busy would turn
        the ring round past the frames still in flight. Anything else is ignored (a frame
        that is not ours, as jetson-utils' own buffers, or not the last one handed out)."""
        if self._last is not None and self.buffers[self._last] is buf:
            self.next, self._last = self._last, None


class Source:
    """Base: ``open()``, ``read() -> Frame`` (raises SourceEnded/SourceError/CorruptFrame), ``close()``.

    A kind subclasses it and registers itself (:func:`.registry.register`)."""

    kind = "base"
    live = False  # a camera/stream (reconnect on loss) rather than a file (ends)

    def __init__(self, uri: str, ring: int = DEFAULT_RING) -> None:
        self.uri = uri
        self.ring = FrameRing(ring)
        self.index = 0

    def open(self) -> "Source":
        return self

    def read(self) -> Frame:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- the ring, sized by the consumer -------------------------------------------------
    def keep_in_flight(self, frames: int) -> None:
        """The consumer keeps up to ``frames`` frames it has read and not dropped (in queues,
        workers, a reorder buffer) until it is done with them: the ring holds those and the
        one being captured, so none of them is overwritten. Only ever grows."""
        if frames < 1:
            raise ValueError("keep_in_flight: frames must be at least 1, got %r" % (frames,))
        self.ring.ensure(int(frames) + 1)

    def drop(self, frame: Frame) -> None:
        """The consumer let ``frame`` go unused (no room for it): its buffer takes the next frame."""
        self.ring.unget(frame.image)

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

    def _frame(self, image: np.ndarray, truth=None, name: Optional[str] = None,
               media_time: Optional[float] = None) -> Frame:
        f = Frame(image, self.index, time.monotonic(), truth, name, media_time)
        self.index += 1
        return f
