"""The frame loop: capture, preprocess + infer, group, sinks, pipelined on bounded queues.

    capture ──q──► infer worker(s) ──q──► group (in frame order) ──► sink workers (own queues)

Each stage is a thread; numpy, OpenCV, onnxruntime and the C grouping core release the
GIL, so on two cores capture/preprocess/grouping overlap the network. Network buffer sets
circulate through a pool allocated once (a worker waits for a free one: back-pressure,
never an allocation). A live source never waits for inference: when the capture queue is
full the new frame is dropped and counted, and a slow sink drops its own frames; with a
file or folder nothing is dropped (the stages wait for each other instead).
``mode="sequential"`` runs the same steps one after another, for comparison.

Per-stage times (ms) and counters are kept here and exported to Prometheus by
:class:`PipelineMetrics`.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Callable, Dict, List, Optional

from .preprocess import FrameError
from .sinks.base import Result, Sink, SinkWorker
from .sources import CorruptFrame, Source, SourceEnded, SourceError

__all__ = ["Pipeline", "PipelineMetrics", "STAGES"]

log = logging.getLogger("openpose_plus.pipeline")

STAGES = ("capture", "preprocess", "infer", "group", "sinks")
_END = object()


class _StageTimes:
    """Running totals per stage (ms), cheap enough to update every frame."""

    def __init__(self) -> None:
        self.total = dict.fromkeys(STAGES, 0.0)
        self.count = dict.fromkeys(STAGES, 0)
        self.last = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self.total[stage] += ms
            self.count[stage] += 1
            self.last[stage] = ms

    def mean(self) -> Dict[str, float]:
        with self._lock:
            return {s: (self.total[s] / self.count[s] if self.count[s] else 0.0) for s in STAGES}


class Pipeline:
    def __init__(self, estimator, source: Source, sinks: Optional[List[Sink]] = None, mode: str = "pipelined",
                 queue_size: int = 2, infer_workers: int = 1, sink_queue: int = 4,
                 drop_when_busy: Optional[bool] = None, sink_policy: Optional[str] = None,
                 max_frames: Optional[int] = None,
                 on_frame: Optional[Callable[[Result], None]] = None) -> None:
        if mode not in ("pipelined", "sequential"):
            raise ValueError("pipeline mode must be 'pipelined' or 'sequential', got %r" % mode)
        if queue_size < 1 or infer_workers < 1:
            raise ValueError("queue_size and infer_workers must be at least 1")
        self.estimator = estimator
        self.source = source
        self.mode = mode
        self.queue_size = int(queue_size)
        self.infer_workers = int(infer_workers) if mode == "pipelined" else 1
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
        self.error: Optional[BaseException] = None
        self.started = 0.0
        self.finished = 0.0
        self.last_frame_time = 0.0  # monotonic time of the last frame out of grouping
        self.last_people = 0
        self._recent: "collections.deque[float]" = collections.deque(maxlen=32)  # frame times, for the rate now
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        n_inflight = 2 * self.queue_size + 2 * self.infer_workers + 3
        # The source's ring must outlive every frame in flight (frames are its buffers).
        source.ring.ensure(n_inflight + 2)
        self._pool: "queue.Queue[object]" = queue.Queue()
        n_buffers = 1 if mode == "sequential" else self.queue_size + 2 * self.infer_workers + 1
        for bufs in estimator.buffer_sets(n_buffers):  # reused across pipelines (reloads, benchmarks)
            self._pool.put(bufs)

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

    def _count_error(self, kind: str, exc: BaseException) -> None:
        self.frame_errors[kind] = self.frame_errors.get(kind, 0) + 1
        log.warning("frame skipped (%s): %s", kind, exc)

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

    def _infer(self, frame, bufs):
        t0 = time.perf_counter()
        lb = self.estimator.preprocessor(frame.image, bufs.input)
        t1 = time.perf_counter()
        self.estimator.backend.infer(bufs)
        t2 = time.perf_counter()
        self.times.add("preprocess", (t1 - t0) * 1e3)
        self.times.add("infer", (t2 - t1) * 1e3)
        return lb

    def _group_and_sink(self, frame, bufs, lb) -> None:
        t0 = time.perf_counter()
        try:
            poses = self.estimator.group(bufs).to_image(lb, self.estimator.bundle.stride)
        except (ValueError, RuntimeError) as exc:  # e.g. NaN maps: this frame is lost, not the daemon
            self._count_error("group", exc)
            return
        t1 = time.perf_counter()
        self.times.add("group", (t1 - t0) * 1e3)
        result = Result(frame.index, frame.timestamp, poses, frame.image, self.estimator.bundle.skeleton,
                        {s: self.times.last[s] for s in STAGES})
        for worker in self.sinks:
            worker.submit(result)
        if self.on_frame is not None:
            self.on_frame(result)
        self.times.add("sinks", (time.perf_counter() - t1) * 1e3)
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

    # -- sequential -----------------------------------------------------------------------
    def _run_sequential(self) -> None:
        bufs = self._pool.get()
        try:
            while True:
                frame = self._read_or_none()
                if frame is _END:
                    return
                if frame is None:
                    continue
                try:
                    lb = self._infer(frame, bufs)
                except FrameError as exc:
                    self._count_error("frame", exc)
                    continue
                self._group_and_sink(frame, bufs, lb)
        finally:
            self._pool.put(bufs)

    # -- pipelined ------------------------------------------------------------------------
    def _capture_loop(self, q_in: "queue.Queue[object]") -> None:
        seq = 0
        try:
            while True:
                frame = self._read_or_none()
                if frame is _END:
                    return
                if frame is None:
                    continue
                item = (seq, frame)
                if self.drop_when_busy:
                    try:
                        q_in.put_nowait(item)
                    except queue.Full:
                        self.capture_drops += 1  # a live camera never waits for the network
                        continue
                else:
                    while not self._put(q_in, item):
                        if self._stop.is_set():
                            return
                seq += 1
        except BaseException as exc:  # pragma: no cover - a bug; stop cleanly and report it
            self.error = exc
        finally:
            for _ in range(self.infer_workers):
                q_in.put(_END)

    @staticmethod
    def _put(q: "queue.Queue[object]", item) -> bool:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            return False

    def _infer_loop(self, q_in: "queue.Queue[object]", q_out: "queue.Queue[object]") -> None:
        try:
            while True:
                # Buffer first, then frame: the worker holding the oldest frame always has a
                # buffer, so frames waiting for it in the reorder map can never starve it.
                bufs = self._pool.get()
                item = q_in.get()
                if item is _END:
                    self._pool.put(bufs)
                    return
                seq, frame = item  # type: ignore[misc]
                try:
                    lb = self._infer(frame, bufs)
                except FrameError as exc:
                    self._count_error("frame", exc)
                    self._pool.put(bufs)
                    q_out.put((seq, None, None, None))  # keep the sequence without a hole
                    continue
                q_out.put((seq, frame, bufs, lb))
        except BaseException as exc:
            self.error = exc
            self._stop.set()
            self._drain(q_in)
        finally:
            q_out.put(_END)

    @staticmethod
    def _drain(q: "queue.Queue[object]") -> None:
        while True:
            try:
                if q.get(timeout=0.5) is _END:
                    return
            except queue.Empty:
                return

    def _group_loop(self, q_out: "queue.Queue[object]") -> None:
        ends, expected = 0, 0
        pending: Dict[int, tuple] = {}
        while ends < self.infer_workers:
            try:
                item = q_out.get(timeout=0.5)
            except queue.Empty:
                if self.error is not None and self._stop.is_set():
                    return  # an infer worker failed; the others may never send their end
                continue
            if item is _END:
                ends += 1
                continue
            pending[item[0]] = item  # type: ignore[index]
            while expected in pending:  # frames leave in capture order
                _, frame, bufs, lb = pending.pop(expected)
                expected += 1
                if frame is None:
                    continue
                try:
                    self._group_and_sink(frame, bufs, lb)
                finally:
                    self._pool.put(bufs)

    def _run_pipelined(self) -> None:
        q_in: "queue.Queue[object]" = queue.Queue(self.queue_size)
        q_out: "queue.Queue[object]" = queue.Queue(self.queue_size + self.infer_workers)
        threads = [threading.Thread(target=self._capture_loop, args=(q_in,), name="capture", daemon=True)]
        threads += [threading.Thread(target=self._infer_loop, args=(q_in, q_out), name="infer-%d" % i, daemon=True)
                    for i in range(self.infer_workers)]
        self._threads = threads
        for t in threads:
            t.start()
        try:
            self._group_loop(q_out)
        finally:
            for t in threads:
                t.join(timeout=10.0)

    # -- running ---------------------------------------------------------------------------
    def start_sinks(self) -> None:
        for w in self.sinks:
            if w._thread is None:
                w.start()

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
                "ms": {k: round(v, 3) for k, v in self.times.mean().items()},
                "capture_drops": self.capture_drops, "sink_drops": self.sink_drops,
                "sink_errors": {w.name: w.errors for w in self.sinks}, "frame_errors": dict(self.frame_errors)}


class PipelineMetrics:
    """Prometheus view of a running pipeline (read at scrape time, so nothing to keep in sync).

    ``get_pipeline`` returns the current pipeline (the daemon swaps it on reload);
    ``get_reconnects`` the source's reconnect count.
    """

    def __init__(self, get_pipeline: Callable[[], Optional[Pipeline]],
                 get_reconnects: Callable[[], int] = lambda: 0) -> None:
        from prometheus_client import CollectorRegistry

        self.get_pipeline = get_pipeline
        self.get_reconnects = get_reconnects
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        # Totals survive reloads: a reload starts a new Pipeline, counters must not go back.
        self._base: Dict[str, float] = {}

    def carry_over(self, old: Optional[Pipeline]) -> None:
        """Fold a finished pipeline's counts into the base before a reload replaces it."""
        if old is None:
            return
        for key, value in self._counts(old).items():
            self._base[key] = self._base.get(key, 0.0) + value
        for s in STAGES:
            self._base["sum:" + s] = self._base.get("sum:" + s, 0.0) + old.times.total[s] / 1e3
            self._base["count:" + s] = self._base.get("count:" + s, 0.0) + old.times.count[s]

    @staticmethod
    def _counts(p: Pipeline) -> Dict[str, float]:
        out = {"frames": float(p.frames), "drops:capture": float(p.capture_drops)}
        for w in p.sinks:
            out["drops:" + w.name] = float(w.dropped)
            out["sink_errors:" + w.name] = float(w.errors)
        for kind, n in p.frame_errors.items():
            out["frame_errors:" + kind] = float(n)
        return out

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        p = self.get_pipeline()
        counts = dict(self._base)
        if p is not None:
            for key, value in self._counts(p).items():
                counts[key] = counts.get(key, 0.0) + value
        frames = CounterMetricFamily("openpose_plus_frames", "Frames processed (through grouping)")
        frames.add_metric([], counts.get("frames", 0.0))
        yield frames
        drops = CounterMetricFamily("openpose_plus_frames_dropped", "Frames dropped, by where", labels=["where"])
        errors = CounterMetricFamily("openpose_plus_sink_errors", "Sink failures, by sink", labels=["sink"])
        bad = CounterMetricFamily("openpose_plus_frame_errors", "Frames skipped as unusable, by kind", labels=["kind"])
        for key, value in sorted(counts.items()):
            kind, _, label = key.partition(":")
            if kind == "drops":
                drops.add_metric([label], value)
            elif kind == "sink_errors":
                errors.add_metric([label], value)
            elif kind == "frame_errors":
                bad.add_metric([label], value)
        yield drops
        yield errors
        yield bad
        rec = CounterMetricFamily("openpose_plus_source_reconnects", "Times the source was reopened")
        rec.add_metric([], float(self.get_reconnects()))
        yield rec
        lat = SummaryMetricFamily("openpose_plus_stage_seconds", "Time per frame in each stage", labels=["stage"])
        for s in STAGES:
            total = self._base.get("sum:" + s, 0.0) + (p.times.total[s] / 1e3 if p else 0.0)
            count = self._base.get("count:" + s, 0.0) + (p.times.count[s] if p else 0)
            lat.add_metric([s], count_value=count, sum_value=total)
        yield lat
        fps = GaugeMetricFamily("openpose_plus_fps", "Frames per second over the last frames")
        fps.add_metric([], p.recent_fps if p else 0.0)
        yield fps
        depth = GaugeMetricFamily("openpose_plus_sink_queue", "Frames waiting in each sink's queue", labels=["sink"])
        lag = GaugeMetricFamily("openpose_plus_sink_seconds", "Time the sink took for its last frame", labels=["sink"])
        for w in (p.sinks if p else []):
            depth.add_metric([w.name], float(w.queue.qsize()))
            lag.add_metric([w.name], w.latency_ms / 1e3)
        yield depth
        yield lag
        people = GaugeMetricFamily("openpose_plus_people", "People in the last frame")
        people.add_metric([], float(p.last_people) if p else 0.0)
        yield people
