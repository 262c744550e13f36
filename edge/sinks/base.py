"""What a sink receives, and the bounded queue that keeps a slow sink from stalling the rest.

Each sink runs on its own thread behind a :class:`SinkWorker`. ``submit`` never blocks:
when the sink's queue is full the frame is dropped *for that sink only* and counted. A
sink that needs the image gets its own copy in a buffer from a pool sized to its queue
(allocated once), because the source's ring buffer is reused a few frames later.
A sink that raises is counted and frames keep flowing. For offline runs (a file, a folder)
a worker can be made lossless (``block=True``): it then waits for its sink.

A failing sink is a state, not a stream of log lines: the first failure logs one ERROR and
marks the worker ``failing`` (the daemon shows it in ``/healthz``, STATUS and metrics); each
frame after a failure first lets the sink repair what it can (:meth:`Sink.recover`: make its
folder again, reopen its file) and is retried once if it did; the first frame that goes
through again logs that the sink recovered and how many frames it lost. ``errors`` counts
exactly the frames lost to failures.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Dict, List, Optional

import numpy as np

__all__ = ["Result", "Sink", "SinkWorker"]

log = logging.getLogger("openpose_plus.sinks")


class Result:
    """One processed frame: poses in image pixels, the image (RGB), timings in ms, (from
    ``synthetic://`` only) the true keypoints the frame was drawn from, and the name of the
    stream it came from (the pipeline always names it, one source or several: see
    :mod:`openpose_plus.edge.streams`; None only for results made outside a pipeline)."""

    __slots__ = ("index", "timestamp", "poses", "image", "timings", "skeleton", "truth", "stream")

    def __init__(self, index: int, timestamp: float, poses, image: Optional[np.ndarray], skeleton,
                 timings: Optional[Dict[str, float]] = None, truth: Optional[np.ndarray] = None,
                 stream: Optional[str] = None) -> None:
        self.stream = stream
        self.truth = truth
        self.index = index
        self.timestamp = timestamp
        self.poses = poses
        self.image = image
        self.skeleton = skeleton
        self.timings = timings if timings is not None else {}

    def record(self) -> Dict[str, object]:
        """A JSON-ready summary (JSON lines, HTTP /poses)."""
        kp = np.asarray(self.poses.keypoints, np.float64)
        scores = np.asarray(self.poses.scores, np.float64)
        ids = getattr(self.poses, "ids", None)
        people = []
        for n in range(kp.shape[0] if kp.ndim == 3 else 0):
            k = kp[n].copy()
            k[~np.isfinite(k).all(axis=1)] = 0.0
            person: Dict[str, object] = {}
            if ids is not None:
                person["id"] = int(ids[n])  # the track's ID; -1: not (yet) tracked
            person["score"] = round(float(scores[n]), 5)
            person["keypoints"] = [[round(float(x), 2), round(float(y), 2), round(float(c), 4)] for x, y, c in k]
            people.append(person)
        # Capture time as Unix seconds for consumers (frames carry the monotonic clock).
        wall = time.time() - (time.monotonic() - self.timestamp)
        out: Dict[str, object] = {"frame": self.index, "time": round(wall, 6), "people": people}
        if self.stream is not None:
            out["stream"] = self.stream
        if self.timings:
            out["ms"] = {k: round(v, 3) for k, v in self.timings.items()}
        return out


class Sink:
    """Base: ``handle(result)`` on the sink's own thread; ``close()`` flushes."""

    name = "sink"
    needs_image = False

    def open(self) -> None:
        pass

    def handle(self, result: Result) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def recover(self) -> bool:
        """After a failed frame: repair what can be repaired here (make a removed folder again,
        reopen a file). True if something was repaired and the frame is worth trying again."""
        return False

    def next_frame(self, stream: Optional[str] = None) -> int:
        """After :meth:`open`: the lowest frame number of ``stream`` (of any, when None) that
        would not clash with what this sink already holds (files or records from an earlier
        run), so frames number on after them."""
        return 0

    def close(self) -> None:
        pass


_STOP = object()


class SinkWorker:
    """Runs one sink on a thread behind a bounded queue; counts handled, dropped and failed frames."""

    def __init__(self, sink: Sink, maxsize: int = 4, block: bool = False) -> None:
        if maxsize < 1:
            raise ValueError("sink queue size must be at least 1, got %d" % maxsize)
        self.sink = sink
        self.name = sink.name
        self.maxsize = maxsize
        self.block = block  # lossless (files, offline runs): wait for the sink instead of dropping
        self.queue: "queue.Queue[object]" = queue.Queue(maxsize)
        self.handled = 0
        self.dropped = 0
        self.dropped_by_stream: Dict[Optional[str], int] = {}  # the same drops, by the stream of the frame
        self.errors = 0             # frames lost to failures, exactly
        self.last_error = ""
        self.failing = False        # the last frame failed; frames are being lost
        self.failing_since = 0.0    # monotonic time of the first failure of this spell
        self.lost = 0               # frames lost in this spell
        self.latency_ms = 0.0
        self._free: List[np.ndarray] = []   # image copies not in use (at most maxsize + 1 exist)
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "SinkWorker":
        self.sink.open()
        self._thread = threading.Thread(target=self._loop, name="sink-" + self.name, daemon=True)
        self._thread.start()
        return self

    def _image_copy(self, image: np.ndarray) -> np.ndarray:
        with self._lock:
            while self._free and self._free[-1].shape != image.shape:
                self._free.pop()  # the frame size changed: old buffers go
            buf = self._free.pop() if self._free else np.empty_like(image)
        np.copyto(buf, image)
        return buf

    def submit(self, result: Result) -> bool:
        """Queue ``result`` unless the sink is behind (then drop it and count).

        Never blocks, unless this worker was made with ``block=True`` (offline runs)."""
        if self.queue.full() and not self.block:
            self._count_drop(result.stream)
            return False
        if self.sink.needs_image and result.image is not None:
            result = Result(result.index, result.timestamp, result.poses, self._image_copy(result.image),
                            result.skeleton, result.timings, stream=result.stream)
        else:
            result = Result(result.index, result.timestamp, result.poses, None, result.skeleton, result.timings,
                            stream=result.stream)
        try:
            self.queue.put(result, block=self.block)
        except queue.Full:  # pragma: no cover - only this thread submits
            self._count_drop(result.stream)
            self._release(result)
            return False
        return True

    def _count_drop(self, stream: Optional[str]) -> None:
        self.dropped += 1
        self.dropped_by_stream[stream] = self.dropped_by_stream.get(stream, 0) + 1

    def _release(self, result: Result) -> None:
        if result.image is not None:
            with self._lock:
                self._free.append(result.image)

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            t0 = time.perf_counter()
            try:
                self._handle(item)  # type: ignore[arg-type]
            finally:
                self.latency_ms = (time.perf_counter() - t0) * 1e3
                self._release(item)  # type: ignore[arg-type]

    def _handle(self, item: Result) -> None:
        """One frame, retried once if the sink repaired itself; a failure never leaves this thread."""
        try:
            self.sink.handle(item)
        except Exception as exc:  # a failing sink must not take the pipeline down
            try:
                repaired = self.sink.recover()
            except Exception:  # could not repair (the folder cannot be made): this frame is lost
                repaired = False
            if not repaired:
                self._failed(exc)
                return
            try:
                self.sink.handle(item)
            except Exception as again:
                self._failed(again)
                return
        self.handled += 1
        if self.failing:
            log.warning("sink %s recovered: %d frame(s) lost over %.1f s", self.name, self.lost,
                        time.monotonic() - self.failing_since)
            self.failing, self.lost = False, 0

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self.lost += 1
        self.last_error = str(exc) or type(exc).__name__
        if not self.failing:  # once per spell, not per frame
            self.failing, self.failing_since = True, time.monotonic()
            log.error("sink %s failing: %s (its frames are lost until it recovers; each frame tries again)",
                      self.name, self.last_error)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush what is queued, then close the sink. False if the sink did not finish in time."""
        finished = True
        if self._thread is not None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    self.queue.put(_STOP, timeout=0.1)
                    break
                except queue.Full:
                    if time.monotonic() > deadline:
                        break
            self._thread.join(max(0.0, deadline - time.monotonic()))
            finished = not self._thread.is_alive()
            if not finished:
                log.error("sink %s did not finish within %.0f s; %d frame(s) left in its queue",
                          self.name, timeout, self.queue.qsize())
        try:
            if finished:
                self.sink.close()
        except Exception as exc:
            self.errors += 1
            log.error("sink %s failed to close: %s", self.name, exc)
        return finished
