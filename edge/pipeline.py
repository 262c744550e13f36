"""The frame loop: capture, then N inference workers, then the sinks in frame order.

    capture ──q_in──► worker 1: preprocess → infer → group ──┐
                 └──► worker N: preprocess → infer → group ──┴─q_out─► reorder ──► sink workers (own queues)

Frame-level parallelism: each inference worker takes one whole frame from letterbox to
poses on its own thread, with its own backend session (onnxruntime: ``cores / N`` intra-op
threads), its own preallocated input and output buffers and its own grouper, so grouping
reads the very buffer its worker's network wrote and the next frame cannot overwrite it
before grouping is done. ``infer_workers="auto"`` is one worker per core on the CPU
backend and 1 on TensorRT. Frames carry sequence numbers; a small reorder buffer hands
them to the sinks in capture order. A window of at most ``queue_size + 2 * N`` frames is
in flight (capture to sinks), so every queue and the reorder buffer are bounded.

A live source never waits for inference: when the window or the capture queue is full the
new frame is dropped and counted, and a slow sink drops its own frames; with a file or
folder nothing is dropped (the stages wait for each other instead).
``mode="sequential"`` is one thread doing capture, preprocess, infer (the estimator's own
session: every core unless ``threads`` says otherwise), group and sinks per frame in turn:
the honest baseline.

The pipeline knows its parts only by their contracts: a :class:`~.worker.WorkerPool` (the
estimator) hands it :class:`~.worker.FrameWorker` s, each ``process(image) -> Processed``;
a :class:`~.sources.Source` yields frames from a ring the pipeline sizes through
``keep_in_flight`` and hands back the frames it drops; sinks take :class:`~.sinks.base.Result` s.
Per-stage times (ms) and counters are kept here; the service exports them to Prometheus
(:class:`openpose_plus.edge.service.metrics.PipelineMetrics`).

A frame that cannot be processed (an image too thin to letterbox, one that does not decode,
maps grouping cannot read) is counted by kind, logged once with its name (the same image met
again, a folder read round again, is not logged again) and skipped. Frame numbers (what the
sinks write: JSON lines, ``/poses``, OpenPose JSON file names) start after what the sinks
already hold (:meth:`~.sinks.base.Sink.next_frame`) or at ``first_index``, whichever is later,
so a restart or a reload numbers on, and every output numbers a frame alike.

With ``track`` (True, a :class:`~.tracking.TrackParams`, a dict of its fields, or a
:class:`~.tracking.PoseTracker`) the frames' poses get person IDs and smoothed keypoints
in capture order, timed by the source's timestamps, before the sinks see them (the
``track`` stage).
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

from .sinks.base import Result, Sink, SinkWorker
from .sources import CorruptFrame, Frame, Source, SourceEnded, SourceError
from .worker import FrameError, FrameWorker, GroupingError, Processed, WorkerPool

__all__ = ["Pipeline", "STAGES"]

log = logging.getLogger("openpose_plus.pipeline")

STAGES = ("capture", "preprocess", "infer", "group", "track", "sinks")
_END = object()
_LOG_NAMES = 1024  # distinct unusable frames logged by name; after that they are only counted


class _StageTimes:
    """Running totals per stage (ms), cheap enough to update every frame."""

    def __init__(self) -> None:
        self.total = dict.fromkeys(STAGES, 0.0)
        self.count = dict.fromkeys(STAGES, 0)
        self.last = dict.fromkeys(STAGES, 0.0)
        self.best = dict.fromkeys(STAGES, float("inf"))  # the fastest frame seen
        self._lock = threading.Lock()

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self.total[stage] += ms
            self.count[stage] += 1
            self.last[stage] = ms
            if ms < self.best[stage]:
                self.best[stage] = ms

    def add3(self, pre: float, inf: float, grp: float) -> None:
        with self._lock:
            for stage, ms in (("preprocess", pre), ("infer", inf), ("group", grp)):
                self.total[stage] += ms
                self.count[stage] += 1
                self.last[stage] = ms
                if ms < self.best[stage]:
                    self.best[stage] = ms

    def mean(self) -> Dict[str, float]:
        with self._lock:
            return {s: (self.total[s] / self.count[s] if self.count[s] else 0.0) for s in STAGES}


class _Done:
    """A frame out of a worker, in sequence: what the worker made of it, or None if it was lost."""

    __slots__ = ("seq", "frame", "out")

    def __init__(self, seq: int, frame: Optional[Frame], out: Optional[Processed]) -> None:
        self.seq, self.frame, self.out = seq, frame, out


class Pipeline:
    def __init__(self, estimator: WorkerPool, source: Source, sinks: Optional[List[Sink]] = None,
                 mode: str = "pipelined", queue_size: int = 2, infer_workers: Union[int, str] = "auto",
                 sink_queue: int = 4, drop_when_busy: Optional[bool] = None, sink_policy: Optional[str] = None,
                 max_frames: Optional[int] = None, on_frame: Optional[Callable[[Result], None]] = None,
                 track=False, first_index: int = 0) -> None:
        if mode not in ("pipelined", "sequential"):
            raise ValueError("pipeline mode must be 'pipelined' or 'sequential', got %r" % mode)
        if infer_workers in ("auto", 0, None):
            n_workers = estimator.auto_workers()
        elif isinstance(infer_workers, int) and not isinstance(infer_workers, bool):
            n_workers = infer_workers
        else:
            raise ValueError("infer_workers must be 'auto' or an integer, got %r" % (infer_workers,))
        if queue_size < 1 or n_workers < 1:
            raise ValueError("queue_size and infer_workers must be at least 1")
        self.estimator = estimator
        self.source = source
        self.mode = mode
        self.queue_size = int(queue_size)
        self.infer_workers = int(n_workers) if mode == "pipelined" else 1
        self.drop_when_busy = source.live if drop_when_busy is None else bool(drop_when_busy)
        self.max_frames = max_frames
        self.on_frame = on_frame
        # Live sources: a slow sink drops its own frames. Files and folders: nothing is lost.
        sink_policy = sink_policy or ("drop" if source.live else "block")
        if sink_policy not in ("drop", "block"):
            raise ValueError("sink_policy must be 'drop' or 'block', got %r" % sink_policy)
        self.sinks = [SinkWorker(s, sink_queue, block=sink_policy == "block") for s in (sinks or [])]
        self.times = _StageTimes()
        self.frames = 0             # frames through grouping
        self.captured = 0
        self.capture_drops = 0
        self.frame_errors: Dict[str, int] = {}
        self._logged_errors: set = set()  # names (or messages) of unusable frames already logged
        self.first_index = int(first_index)  # the sinks' number for the source's frame 0
        self.last_index = -1                 # the number of the last frame handed to the sinks
        self.error: Optional[BaseException] = None
        self.started = 0.0
        self.finished = 0.0
        self.last_frame_time = 0.0  # monotonic time of the last frame out of grouping
        self.last_people = 0
        self._recent: "collections.deque[float]" = collections.deque(maxlen=32)  # frame times, for the rate now
        self._stop = threading.Event()
        self._errors_lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        # Frames in flight, capture to sinks: the capture queue plus two per worker.
        self.window = self.queue_size + 2 * self.infer_workers
        # Frames are the source's ring buffers: it keeps the window's frames, and the one the
        # capture thread holds while it waits for room, from being overwritten.
        source.keep_in_flight(self.window + 1)
        # Made once and kept by the estimator. Sequential: one worker on the estimator's own
        # session (every core unless ``threads`` says otherwise).
        self._workers: Sequence[FrameWorker] = estimator.workers(self.infer_workers)
        # The C core's tracker, one per stream; made at the first frame, from its skeleton.
        self._tracking = track
        self.tracker = None

    @property
    def worker_threads(self) -> int:
        """onnxruntime intra-op threads per worker session (0: the library's default)."""
        return self._workers[0].threads

    # -- state for the daemon -------------------------------------------------------------
    @property
    def fps(self) -> float:
        end = self.finished or time.monotonic()
        return self.frames / (end - self.started) if self.started and end > self.started else 0.0

    @property
    def recent_fps(self) -> float:
        """Frames per second over the last few frames (what STATUS shows)."""
        times = self._recent
        if len(times) < 2 or time.monotonic() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else 0.0

    @property
    def sink_drops(self) -> Dict[str, int]:
        return {w.name: w.dropped for w in self.sinks}

    @property
    def failing_sinks(self) -> List[SinkWorker]:
        """The sinks whose last frame failed (they lose frames until they recover)."""
        return [w for w in self.sinks if w.failing]

    @property
    def next_index(self) -> int:
        """The number the next frame would get: where a pipeline that follows this one starts."""
        return max(self.first_index, self.last_index + 1)

    def _count_error(self, kind: str, exc: BaseException, name: Optional[str] = None) -> None:
        key = name or str(exc)
        with self._errors_lock:
            self.frame_errors[kind] = self.frame_errors.get(kind, 0) + 1
            first = key not in self._logged_errors and len(self._logged_errors) < _LOG_NAMES
            if first:
                self._logged_errors.add(key)
            last = first and len(self._logged_errors) == _LOG_NAMES
        if first:
            log.warning("frame skipped (%s)%s: %s", kind, " " + name if name else "", exc)
        if last:
            log.warning("%d different unusable frames logged; more are counted, not logged", _LOG_NAMES)

    def stop(self) -> None:
        """Stop capturing; frames already in flight finish and reach the sinks."""
        self._stop.set()
        stopper = getattr(self.source, "stop", None)
        if stopper is not None:
            stopper()

    # -- the steps -----------------------------------------------------------------------
    def _capture(self):
        t0 = time.perf_counter()
        frame = self.source.read()
        self.times.add("capture", (time.perf_counter() - t0) * 1e3)
        self.captured += 1
        return frame

    def _process(self, worker: FrameWorker, seq: int, frame: Frame) -> _Done:
        """One frame through one worker (letterbox, network, grouping, all on this thread).
        An unusable image or unreadable maps lose this frame only; anything else is raised."""
        try:
            out = worker.process(frame.image)
        except FrameError as exc:
            self._count_error("frame", exc, frame.name)
            return _Done(seq, None, None)
        except GroupingError as exc:
            self._count_error("group", exc, frame.name)
            return _Done(seq, None, None)
        self.times.add3(out.preprocess_ms, out.infer_ms, out.group_ms)
        return _Done(seq, frame, out)

    def _track(self, poses, timestamp: float):
        """IDs and smoothing for one frame, in capture order: (poses, ms taken)."""
        if self._tracking is False or self._tracking is None:
            return poses, 0.0
        from .tracking import track_frame

        t0 = time.perf_counter()
        try:
            self.tracker, poses = track_frame(self.tracker, self._tracking, poses, timestamp)
        except ValueError as exc:  # e.g. a clock that went back: the frame goes out untracked
            self._count_error("track", exc)
        ms = (time.perf_counter() - t0) * 1e3
        self.times.add("track", ms)
        return poses, ms

    def _sink(self, done: _Done) -> None:
        """Hand one frame's poses to the sinks (frames arrive here in capture order)."""
        frame, out = done.frame, done.out
        poses, trk = self._track(out.poses, frame.timestamp)
        t0 = time.perf_counter()
        timings = {"capture": self.times.last["capture"], "preprocess": out.preprocess_ms, "infer": out.infer_ms,
                   "group": out.group_ms, "track": trk, "sinks": self.times.last["sinks"]}
        index = self.first_index + frame.index
        result = Result(index, frame.timestamp, poses, frame.image, poses.skeleton, timings, frame.truth)
        self.last_index = index
        for worker in self.sinks:
            worker.submit(result)
        if self.on_frame is not None:
            self.on_frame(result)
        self.times.add("sinks", (time.perf_counter() - t0) * 1e3)
        self.frames += 1
        self.last_people = len(poses.scores)
        self.last_frame_time = time.monotonic()
        self._recent.append(self.last_frame_time)

    def _read_or_none(self):
        """A frame, or None to skip (corrupt frame), or _END (source ended / stop)."""
        if self._stop.is_set() or (self.max_frames is not None and self.captured >= self.max_frames):
            return _END
        try:
            return self._capture()
        except CorruptFrame as exc:
            self._count_error("corrupt", exc)
            return None
        except SourceEnded as exc:
            if not self._stop.is_set():
                log.info("%s", exc)
            return _END
        except SourceError as exc:
            if not self._stop.is_set():
                self.error = exc
            return _END

    def _frames(self):
        """The frames to process, in capture order, until the source ends or a stop."""
        while True:
            frame = self._read_or_none()
            if frame is _END:
                return
            if frame is not None:
                yield frame

    # -- sequential -----------------------------------------------------------------------
    def _run_sequential(self) -> None:
        worker = self._workers[0]
        for frame in self._frames():
            done = self._process(worker, 0, frame)
            if done.frame is not None:
                self._sink(done)

    # -- pipelined ------------------------------------------------------------------------
    def _capture_loop(self, q_in: "queue.Queue[object]", window: threading.Semaphore,
                      workers: List[threading.Thread]) -> None:
        seq = 0
        try:
            for frame in self._frames():
                item = (seq, frame)
                if self.drop_when_busy:
                    # A live camera never waits for the network: no room, no frame (and its
                    # ring buffer takes the next one, not one still in flight).
                    if not window.acquire(blocking=False):
                        self.capture_drops += 1
                        self.source.drop(frame)
                        continue
                    try:
                        q_in.put_nowait(item)
                    except queue.Full:
                        window.release()
                        self.capture_drops += 1
                        self.source.drop(frame)
                        continue
                else:
                    while not window.acquire(timeout=0.1):
                        if self._stop.is_set():
                            return
                    while not self._put(q_in, item):
                        if self._stop.is_set():
                            window.release()
                            return
                seq += 1
        except BaseException as exc:  # pragma: no cover - a bug; stop cleanly and report it
            self.error = exc
            self._stop.set()
        finally:
            for _ in range(self.infer_workers):  # one end per worker (a dead one takes none)
                while not self._put(q_in, _END):
                    if not any(t.is_alive() for t in workers):
                        break

    @staticmethod
    def _put(q: "queue.Queue[object]", item) -> bool:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            return False

    def _worker_loop(self, worker, q_in: "queue.Queue[object]", q_out: "queue.Queue[object]") -> None:
        try:
            while True:
                item = q_in.get()
                if item is _END:
                    return
                seq, frame = item  # type: ignore[misc]
                try:
                    done = self._process(worker, seq, frame)
                except BaseException:
                    q_out.put(_Done(seq, None, None))  # keep the sequence without a hole
                    raise
                q_out.put(done)
                # Hold no frame while waiting for the next: a source whose ring turns on every
                # capture (jetson_utils) waits until the frames it would overwrite are let go.
                item = frame = done = None
        except BaseException as exc:  # the backend failed: stop the pipeline and report it
            self.error = exc
            self._stop.set()
        finally:
            q_out.put(_END)

    def _order_loop(self, q_out: "queue.Queue[object]", window: threading.Semaphore) -> None:
        """Frames to the sinks in capture order (a reorder buffer of at most ``window`` frames)."""
        ends, expected = 0, 0
        pending: Dict[int, _Done] = {}
        while ends < self.infer_workers:
            item = q_out.get()
            if item is _END:
                ends += 1
                continue
            pending[item.seq] = item  # type: ignore[union-attr]
            while expected in pending:
                done = pending.pop(expected)
                expected += 1
                try:
                    if done.frame is not None:
                        self._sink(done)
                finally:
                    window.release()
                item = done = None  # the frame is let go here, not when the next one comes
        for _ in pending:  # only after a worker failed mid-frame: nothing waits for these
            window.release()

    def _run_pipelined(self) -> None:
        n = self.infer_workers
        q_in: "queue.Queue[object]" = queue.Queue(self.queue_size)
        q_out: "queue.Queue[object]" = queue.Queue(self.window + n)  # never fills: the window bounds it
        window = threading.Semaphore(self.window)
        workers = [threading.Thread(target=self._worker_loop, args=(w, q_in, q_out), name="infer-%d" % i, daemon=True)
                   for i, w in enumerate(self._workers)]
        capture = threading.Thread(target=self._capture_loop, args=(q_in, window, workers), name="capture",
                                   daemon=True)
        self._threads = [capture] + workers
        for t in workers:
            t.start()
        capture.start()
        try:
            self._order_loop(q_out, window)
        except BaseException:  # a sink or on_frame bug: stop capture, let the workers end
            self._stop.set()
            for _ in range(self.window):
                window.release()
            raise
        finally:
            for t in self._threads:
                t.join(timeout=10.0)

    # -- running ---------------------------------------------------------------------------
    def start_sinks(self) -> None:
        for w in self.sinks:
            if w._thread is None:
                w.start()
        # Number on after what the outputs already hold (a restart into the same folder or file).
        self.first_index = max([self.first_index] + [w.sink.next_frame() for w in self.sinks])

    def run(self) -> "Pipeline":
        """Run until the source ends, ``max_frames`` or :meth:`stop`; then flush the sinks."""
        self.start_sinks()
        self.started = time.monotonic()
        try:
            if self.mode == "sequential":
                self._run_sequential()
            else:
                self._run_pipelined()
        finally:
            self.finished = time.monotonic()
            self.close_sinks()
        return self

    def close_sinks(self, timeout: float = 10.0) -> None:
        for w in self.sinks:
            w.close(timeout)

    def summary(self) -> Dict[str, object]:
        return {"frames": self.frames, "fps": round(self.fps, 2), "mode": self.mode,
                "workers": self.infer_workers, "threads": self.worker_threads,
                "ms": {k: round(v, 3) for k, v in self.times.mean().items()},
                "best_ms": {k: (round(v, 3) if v != float("inf") else 0.0) for k, v in self.times.best.items()},
                "capture_drops": self.capture_drops, "sink_drops": self.sink_drops,
                "sink_errors": {w.name: w.errors for w in self.sinks}, "frame_errors": dict(self.frame_errors)}
