"""The frame loop: one source or several (streams), one inference stage, each stream's sinks in its order.

    stream a: capture ─┐                                           ┌─► a: reorder ─► hook ─► a's sinks ─┐
    stream b: capture ─┼─► each stream's ─► worker k: letterbox,  ─┼─► b: reorder ─► hook ─► b's sinks ─┼─► shared
             ...       ┘   queue (gather:   network (one call),    └─► ...                              ┘   sinks
                           ≤ batch, ≤ wait) group each frame

One source is the one-stream case of the same loop (``Pipeline(estimator, source)``: the
stream :data:`~.streams.DEFAULT_STREAM`); several are ``(name, source)`` pairs (see
:mod:`.streams` for the naming and numbering rules).

Each stream has its own capture thread, so a camera that stalls or reconnects holds up no
other; its own window of at most ``queue_size + 2 * infer_workers`` frames in flight (capture
to sinks), so every queue is bounded; a live stream with no room drops *its* new frame (and
its ring buffer takes the next one, not one still in flight), a slow sink drops its own
frames; with a file or folder nothing is dropped (the stages wait for each other instead).

The inference stage: N workers (``infer_workers="auto"``: one per core on the CPU backend,
each its own session of ``cores / N`` intra-op threads; 1 on TensorRT), each with its own
preallocated buffers and grouper, so grouping reads the very buffer its network wrote. A
worker takes up to ``batch`` frames from the streams' queues, round robin, oldest first (a
stream that floods holds up no other), and runs them in one network call
(:meth:`~.worker.InferenceWorker.process_batch`; a lone frame: ``process``). It waits at most
``batch_wait_ms`` after its first frame for more, and not at all once every stream that is up
has a frame waiting, nor while another worker is free, so latency stays bounded at low rates
and batches fill when the streams come faster than the workers. Only one worker gathers at a
time; the others run their batches meanwhile. Frames carry per-stream sequence numbers; the
ordering thread hands each stream's frames to its tracker (``track``), its ``hook``, its own
sinks and the shared sinks in its capture order.

``mode="sequential"`` is one thread doing capture (each stream in turn), preprocess, infer
(the estimator's own session: every core unless ``threads`` says otherwise), group and sinks
in turn: the honest baseline.

The pipeline knows its parts only by their contracts: a :class:`~.worker.WorkerPool` (the
estimator) hands it :class:`~.worker.FrameWorker` s; a :class:`~.sources.Source` yields frames
from a ring the pipeline sizes through ``keep_in_flight`` and hands back the frames it drops;
sinks take :class:`~.sinks.base.Result` s. Stage times (ms, per frame, except ``infer``: per
network call, of ``mean_batch`` frames) and counters are kept here (summed over the streams;
each :class:`~.streams.Stream` has its own); the service exports them to Prometheus
(:class:`openpose_plus.edge.service.metrics.PipelineMetrics`).

Failures. A frame that cannot be processed (an image too thin to letterbox, one that does
not decode, maps grouping cannot read, a tracker that refuses it) is counted by kind on its
stream, logged once with its name, and skipped (or, for the tracker, sent untracked). A
stream whose source fails is that stream's end (``Stream.error``; behind a
:class:`~.sources.ReconnectingSource`, its reconnecting), never the others'; when every
stream has ended so, the first such failure is the pipeline's ``error`` too (nothing was left
to run). The backend failing stops everything and is the pipeline's ``error``.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .sinks.base import Result, Sink, SinkWorker
from .sources import CorruptFrame, Source, SourceEnded, SourceError
from .streams import DEFAULT_STREAM, Done, Hook, Stream
from .worker import FrameError, GroupingError, Processed, WorkerPool

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
        self.add_all(((stage, ms),))

    def add_all(self, pairs) -> None:
        """Several ``(stage, ms)`` under one lock (a batch's frames)."""
        with self._lock:
            for stage, ms in pairs:
                self.total[stage] += ms
                self.count[stage] += 1
                self.last[stage] = ms
                if ms < self.best[stage]:
                    self.best[stage] = ms

    def mean(self) -> Dict[str, float]:
        with self._lock:
            return {s: (self.total[s] / self.count[s] if self.count[s] else 0.0) for s in STAGES}


Sources = Union[Source, Sequence[Tuple[str, Source]]]


class Pipeline:
    """One source, or several named ones, through one inference stage (see the module doc).

    ``sources``: a :class:`~.sources.Source` (one stream, named ``name``) or ``(name, source)``
    pairs in order; ``sinks``: shared by every stream (results carry a ``stream`` field);
    ``stream_sinks``: each stream's own, by name; ``hook``: ``name -> callable(result)`` made
    once per stream and run on each of its results in order before its sinks; ``batch``:
    frames per network call (default: the workers' buffers); ``max_frames``: per stream;
    ``track`` (True, a :class:`~.tracking.TrackParams`, a dict of its fields): each stream its
    own tracker, run in its capture order before its hook and sinks (the ``track`` stage);
    ``first_index``: each stream's number for its first frame (a dict by name, or one for
    all; a reload passes the old pipeline's :attr:`next_index`).
    """

    def __init__(self, estimator: WorkerPool, sources: Sources, sinks: Optional[Sequence[Sink]] = None,
                 stream_sinks: Optional[Mapping[str, Sequence[Sink]]] = None, *, mode: str = "pipelined",
                 queue_size: int = 2, infer_workers: Union[int, str] = "auto", sink_queue: int = 4,
                 batch: Optional[int] = None, batch_wait_ms: float = 10.0, drop_when_busy: Optional[bool] = None,
                 sink_policy: Optional[str] = None, max_frames: Optional[int] = None,
                 on_frame: Optional[Callable[[Result], None]] = None,
                 hook: Optional[Callable[[str], Optional[Hook]]] = None, track=False,
                 first_index: Union[None, int, Mapping[str, int]] = None, name: str = DEFAULT_STREAM) -> None:
        pairs = [(name, sources)] if isinstance(sources, Source) else list(sources)
        if mode not in ("pipelined", "sequential"):
            raise ValueError("pipeline mode must be 'pipelined' or 'sequential', got %r" % mode)
        if not pairs:
            raise ValueError("a pipeline needs at least one source")
        names = [n for n, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError("stream names must differ, got %s" % names)
        unknown = sorted(set(stream_sinks or {}) - set(names))
        if unknown:
            raise ValueError("sinks for unknown stream(s) %s (streams: %s)" % (unknown, names))
        if infer_workers in ("auto", 0, None):
            n_workers = estimator.auto_workers()
        elif isinstance(infer_workers, int) and not isinstance(infer_workers, bool):
            n_workers = infer_workers
        else:
            raise ValueError("infer_workers must be 'auto' or an integer, got %r" % (infer_workers,))
        if queue_size < 1 or n_workers < 1 or sink_queue < 1:
            raise ValueError("queue_size, infer_workers and sink_queue must be at least 1")
        if batch_wait_ms < 0:
            raise ValueError("batch_wait_ms must be 0 or more, got %r" % (batch_wait_ms,))
        self.estimator = estimator
        self.mode = mode
        self.queue_size = int(queue_size)
        self.infer_workers = int(n_workers) if mode == "pipelined" else 1
        # Made once and kept by the estimator. Sequential: one worker on the estimator's own
        # session (every core unless ``threads`` says otherwise).
        self._workers = estimator.workers(self.infer_workers)
        most = min(getattr(w, "batch", 1) for w in self._workers)
        self.batch = most if batch is None else int(batch)
        if not 1 <= self.batch <= most:
            raise ValueError("batch must be 1..%d (the workers' buffers), got %r" % (most, batch))
        self.batch_wait = float(batch_wait_ms) / 1e3
        self.max_frames = max_frames
        self.on_frame = on_frame
        live = any(src.live for _, src in pairs)
        self.drop_when_busy = live if drop_when_busy is None else bool(drop_when_busy)
        # Live sources: a slow sink drops its own frames. Files and folders: nothing is lost.
        sink_policy = sink_policy or ("drop" if live else "block")
        if sink_policy not in ("drop", "block"):
            raise ValueError("sink_policy must be 'drop' or 'block', got %r" % sink_policy)
        block = sink_policy == "block"
        # Shared sinks see every stream's frames: room for each stream's share.
        self.shared = [SinkWorker(s, sink_queue * len(pairs), block=block) for s in (sinks or [])]
        # A stream's frames in flight: its share of the queue, and two per worker (running, reordering).
        self.window = self.queue_size + 2 * self.infer_workers
        self.streams: List[Stream] = []
        for sname, src in pairs:
            own = [SinkWorker(s, sink_queue, block=block) for s in (stream_sinks or {}).get(sname, ())]
            st = Stream(sname, src, own, self.window, hook(sname) if hook is not None else None)
            # Frames are the source's ring buffers: it keeps the window's frames, and the one the
            # capture thread holds while it waits for room, from being overwritten.
            src.keep_in_flight(self.window + 1)
            st.first_index = int(first_index.get(sname, 0) if isinstance(first_index, Mapping)
                                 else (first_index or 0))
            self.streams.append(st)
        self.sinks: List[SinkWorker] = self.shared + [w for st in self.streams for w in st.sinks]
        self._logged_errors: set = set()  # (stream, name or message) of unusable frames already logged
        self.times = _StageTimes()
        self._tracking = track
        self.batches = 0
        self.batched_frames = 0
        self.error: Optional[BaseException] = None
        self.started = 0.0
        self.finished = 0.0
        self.last_frame_time = 0.0  # monotonic time of the last frame to the sinks
        self.last_people = 0
        self._stop = threading.Event()
        self._stopped_at = 0.0
        self._lock = threading.Lock()
        self._gathering = threading.Lock()
        self._free_workers = 0  # workers waiting to gather (a batch dispatched now would not wait for them)
        # Frames waiting for a worker wait in their stream's own queue (bounded by its window).
        self._waiting = threading.Condition(threading.Lock())
        self._capturing = len(self.streams)
        self._threads: List[threading.Thread] = []

    # -- what the daemon and the metrics read (summed over the streams) ---------------------
    @property
    def source(self) -> Source:
        """The first stream's source (a single source's)."""
        return self.streams[0].source

    @property
    def tracker(self):
        """The first stream's tracker (a single source's; each stream has its own)."""
        return self.streams[0].tracker

    @property
    def frames(self) -> int:
        return sum(st.frames for st in self.streams)

    @property
    def captured(self) -> int:
        return sum(st.captured for st in self.streams)

    @property
    def capture_drops(self) -> int:
        return sum(st.capture_drops for st in self.streams)

    @property
    def frame_errors(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for st in self.streams:
            for k, v in st.frame_errors.items():
                out[k] = out.get(k, 0) + v
        return out

    @property
    def sink_drops(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for w in self.sinks:
            out[w.name] = out.get(w.name, 0) + w.dropped
        return out

    @property
    def failing_sinks(self) -> List[SinkWorker]:
        """The sinks whose last frame failed (they lose frames until they recover)."""
        return [w for w in self.sinks if w.failing]

    @property
    def next_index(self) -> Dict[str, int]:
        """Each stream's number for its next frame: where a pipeline that follows this one starts."""
        return {st.name: max(st.first_index, st.last_index + 1) for st in self.streams}

    @property
    def worker_threads(self) -> int:
        """onnxruntime intra-op threads per worker session (0: the library's default)."""
        return self._workers[0].threads

    @property
    def fps(self) -> float:
        end = self.finished or time.monotonic()
        return self.frames / (end - self.started) if self.started and end > self.started else 0.0

    @property
    def recent_fps(self) -> float:
        """Frames per second, all streams together, over the last few frames (what STATUS shows)."""
        return sum(st.recent_fps for st in self.streams)

    def stream(self, name: str) -> Stream:
        for st in self.streams:
            if st.name == name:
                return st
        raise KeyError(name)

    @property
    def ready(self) -> bool:
        """Every stream has delivered a frame or been declared down (the daemon's READY rule)."""
        return all(st.frames > 0 or st.down or st.ended for st in self.streams)

    def stop(self) -> None:
        """Stop capturing; frames already in flight finish and reach the sinks."""
        with self._waiting:
            if not self._stop.is_set():
                self._stopped_at = time.monotonic()
            self._stop.set()
            self._waiting.notify_all()
        for st in self.streams:
            stopper = getattr(st.source, "stop", None)
            if stopper is not None:
                stopper()

    def _count_error(self, st: Stream, kind: str, exc: BaseException, name: Optional[str] = None) -> None:
        """Count an unusable frame on its stream; log it once per name (or message)."""
        key = (st.name, name or str(exc))
        with self._lock:
            st.frame_errors[kind] = st.frame_errors.get(kind, 0) + 1
            first = key not in self._logged_errors and len(self._logged_errors) < _LOG_NAMES
            if first:
                self._logged_errors.add(key)
            last = first and len(self._logged_errors) == _LOG_NAMES
        if first:
            label = "" if len(self.streams) == 1 else st.name + ": "
            log.warning("%sframe skipped (%s)%s: %s", label, kind, " " + name if name else "", exc)
        if last:
            log.warning("%d different unusable frames logged; more are counted, not logged", _LOG_NAMES)

    # -- capture: one thread per stream ------------------------------------------------------
    def _read(self, st: Stream):
        """Its next frame, or None to skip (a corrupt frame), or _END (its source ended, a stop)."""
        if self._stop.is_set() or (self.max_frames is not None and st.captured >= self.max_frames):
            return _END
        t0 = time.perf_counter()
        try:
            frame = st.source.read()
        except CorruptFrame as exc:
            self._count_error(st, "corrupt", exc)
            return None
        except SourceEnded as exc:
            if not self._stop.is_set():
                log.info("%s: %s", st.name, exc)
            return _END
        except SourceError as exc:  # this stream's end, never the others'
            if not self._stop.is_set():
                st.error = exc
                log.error("%s: source failed: %s", st.name, exc)
            return _END
        self.times.add("capture", (time.perf_counter() - t0) * 1e3)
        st.captured += 1
        return frame

    def _capture_loop(self, st: Stream) -> None:
        try:
            while True:
                frame = self._read(st)
                if frame is _END:
                    return
                if frame is None:
                    continue
                if self.drop_when_busy:
                    # A live camera never waits for the network: no room in its window, no frame.
                    if not st.window.acquire(blocking=False):
                        st.capture_drops += 1
                        st.source.drop(frame)
                        continue
                else:
                    while not st.window.acquire(timeout=0.1):
                        if self._stop.is_set():
                            return
                with self._waiting:
                    st.queue.append((st, st.next_seq, frame))
                    self._waiting.notify()
                st.next_seq += 1
        except BaseException as exc:  # pragma: no cover - a bug; this stream ends, and says why
            st.error = exc
            log.exception("%s: capture failed", st.name)
        finally:
            self._ended(st)

    def _ended(self, st: Stream) -> None:
        st.ended = True
        with self._waiting:  # when every stream is done, workers end once the queues are empty
            self._capturing -= 1
            if self._capturing == 0 and self.error is None and all(s.error is not None for s in self.streams):
                self.error = self.streams[0].error  # nothing was left to run
            self._waiting.notify_all()

    # -- inference: gather a batch, run it, hand back each frame -----------------------------
    def _gather(self) -> Tuple[list, bool]:
        """Up to ``batch`` frames, taken round robin over the streams (oldest first): as soon
        as there is one, plus more until the batch could be full, every stream that is up has
        one waiting, or ``batch_wait`` has passed. ``(items, ended)``: ended when every stream
        is done and nothing waits (or, stopping, past a grace for a read that never returns)."""
        cv = self._waiting
        streams = self.streams
        with cv:
            while not any(st.queue for st in streams):
                if self._capturing == 0 or (self._stop.is_set() and time.monotonic() - self._stopped_at > 1.0):
                    return [], True
                cv.wait(0.1)
            if len(streams) == 1:  # one stream: what waits is all there is (nothing to wait for)
                q = streams[0].queue
                return [q.popleft() for _ in range(min(self.batch, len(q)))], False
            deadline = time.monotonic() + self.batch_wait
            while True:
                waiting = sum(len(st.queue) for st in streams)
                have = sum(1 for st in streams if st.queue)
                up = sum(1 for st in streams if st.connected)
                left = deadline - time.monotonic()
                # Waiting fills batches only while every other worker is busy: a free one means
                # the machine has room now, so the frames go now (latency), and batches fill by
                # themselves when the streams come faster than the workers (throughput).
                if waiting >= self.batch or have >= up or left <= 0 or self._capturing == 0 or self._free_workers:
                    break
                cv.wait(left)
            items: list = []
            while len(items) < self.batch:
                heads = sorted((st for st in streams if st.queue), key=lambda st: st.queue[0][2].timestamp)
                if not heads:
                    break
                for st in heads[:self.batch - len(items)]:
                    items.append(st.queue.popleft())
        return items, False

    def _infer(self, worker, items: list) -> List[Done]:
        """``(stream, seq, frame)`` items through ``worker`` in one network call: a Done each,
        in order (an unusable frame's without poses). The backend failing is raised."""
        if len(items) == 1:
            try:
                outs: list = [worker.process(items[0][2].image)]
            except (FrameError, GroupingError) as exc:
                outs = [exc]
        else:
            outs = worker.process_batch([frame.image for _, _, frame in items])
        with self._lock:
            self.batches += 1
            self.batched_frames += len(items)
        times: list = []
        done: List[Done] = []
        call_ms = 0.0
        for (st, seq, frame), out in zip(items, outs):
            if isinstance(out, Processed):
                # per frame: letterbox and grouping; per call: the network (see summary)
                times += (("preprocess", out.preprocess_ms), ("group", out.group_ms))
                call_ms = out.infer_ms
                done.append(Done(st, seq, frame, out))
            else:
                self._count_error(st, "frame" if isinstance(out, FrameError) else "group", out, frame.name)
                done.append(Done(st, seq, None, None))
        if call_ms:
            times.append(("infer", call_ms))
        self.times.add_all(times)
        return done

    def _worker_loop(self, worker, q_out: "queue.Queue[object]") -> None:
        items: list = []
        try:
            ended = False
            while not ended:
                with self._waiting:
                    self._free_workers += 1
                    self._waiting.notify_all()
                with self._gathering:
                    with self._waiting:
                        self._free_workers -= 1
                    items, ended = self._gather()
                if not items:
                    continue
                q_out.put(self._infer(worker, items))  # the batch at once: one wake-up of the ordering thread
                # Hold no frame while waiting for the next batch: a source whose ring turns on
                # every capture (jetson_utils) waits until the frames it would overwrite are let go.
                items = []
        except BaseException as exc:  # the backend failed: stop everything and report it
            # keep each stream's sequence without a hole
            q_out.put([Done(st, seq, None, None) for st, seq, _ in items])
            self.error = exc
            self.stop()
        finally:
            q_out.put(_END)

    # -- ordering and the sinks: per stream, on this thread -----------------------------------
    def _track(self, st: Stream, poses, timestamp: float, image=None):
        """IDs and smoothing for one frame of ``st``, in its capture order: (poses, ms taken);
        ``image`` (the frame) lets the tracker tell people apart by their colours too."""
        if self._tracking is False or self._tracking is None:
            return poses, 0.0
        from .tracking import track_frame

        t0 = time.perf_counter()
        try:
            st.tracker, poses = track_frame(st.tracker, self._tracking, poses, timestamp, image=image)
        except ValueError as exc:  # e.g. a clock that went back: the frame goes out untracked
            self._count_error(st, "track", exc)
        ms = (time.perf_counter() - t0) * 1e3
        self.times.add("track", ms)
        return poses, ms

    def _deliver(self, done: Done) -> None:
        """One frame's poses to its stream's hook and sinks and the shared sinks (in its capture order)."""
        st, frame, out = done.stream, done.frame, done.out
        poses, trk = self._track(st, out.poses, frame.media_time, frame.image)
        t0 = time.perf_counter()
        timings = {"capture": self.times.last["capture"], "preprocess": out.preprocess_ms, "infer": out.infer_ms,
                   "group": out.group_ms, "track": trk, "sinks": self.times.last["sinks"]}
        index = st.first_index + frame.index
        result = Result(index, frame.timestamp, poses, frame.image, poses.skeleton, timings, frame.truth,
                        stream=st.name)
        st.last_index = index
        if st.hook is not None:
            st.hook(result)
        for w in st.sinks:
            w.submit(result)
        for w in self.shared:
            w.submit(result)
        if self.on_frame is not None:
            self.on_frame(result)
        now = time.monotonic()
        self.times.add("sinks", (time.perf_counter() - t0) * 1e3)
        st.frames += 1
        st.last_people = self.last_people = len(result.poses.scores)
        st.latency_last = now - frame.timestamp
        st.latency_sum += st.latency_last
        st.last_frame_time = self.last_frame_time = now
        st.recent.append(now)

    def _order_loop(self, q_out: "queue.Queue[object]") -> None:
        """Each stream's frames to its sinks in its capture order (its reorder buffer is bounded
        by its window)."""
        ends = 0
        while ends < self.infer_workers:
            batch = q_out.get()
            if batch is _END:
                ends += 1
                continue
            for item in batch:  # type: ignore[union-attr]
                st = item.stream
                st.pending[item.seq] = item
                while st.expected in st.pending:
                    done = st.pending.pop(st.expected)
                    st.expected += 1
                    try:
                        if done.frame is not None:
                            self._deliver(done)
                    finally:
                        st.window.release()
            batch = item = done = None  # the frames are let go here, not when the next batch comes

    # -- running ------------------------------------------------------------------------------
    def start_sinks(self) -> None:
        for w in self.sinks:
            if w._thread is None:
                w.start()
        # Number on after what the outputs already hold of each stream (a restart into the same
        # folder or file): its own sinks, and its records in the shared ones.
        for st in self.streams:
            held = [w.sink.next_frame(st.name) for w in st.sinks + self.shared]
            st.first_index = max([st.first_index] + held)

    def run(self) -> "Pipeline":
        """Run until every stream ends, ``max_frames`` each, or :meth:`stop`; then flush the sinks."""
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

    def _run_sequential(self) -> None:
        """One thread: a frame from each stream in turn, through the network together, to the sinks."""
        worker, live = self._workers[0], list(self.streams)
        while live:
            items = []
            for st in list(live):
                frame = self._read(st)
                if frame is _END:
                    live.remove(st)
                    self._ended(st)
                elif frame is not None:
                    items.append((st, st.next_seq, frame))
                    st.next_seq += 1
            for i in range(0, len(items), self.batch):
                for done in self._infer(worker, items[i:i + self.batch]):
                    if done.frame is not None:
                        self._deliver(done)
            items = done = None  # the frames are let go before the next are read

    def _run_pipelined(self) -> None:
        q_out: "queue.Queue[object]" = queue.Queue()  # bounded by the windows
        workers = [threading.Thread(target=self._worker_loop, args=(w, q_out), name="infer-%d" % i, daemon=True)
                   for i, w in enumerate(self._workers)]
        captures = [threading.Thread(target=self._capture_loop, args=(st,), name="capture-" + st.name, daemon=True)
                    for st in self.streams]
        self._threads = captures + workers
        for t in workers + captures:
            t.start()
        try:
            self._order_loop(q_out)
        except BaseException:  # a sink or hook bug: stop capture, let the workers end
            self.stop()
            for st in self.streams:
                for _ in range(st.window_size):
                    st.window.release()
            raise
        finally:
            for t in self._threads:
                t.join(timeout=10.0)

    def close_sinks(self, timeout: float = 10.0) -> None:
        for w in self.sinks:
            w.close(timeout)

    def summary(self) -> Dict[str, object]:
        return {"frames": self.frames, "fps": round(self.fps, 2), "mode": self.mode,
                "workers": self.infer_workers, "threads": self.worker_threads, "batch": self.batch,
                "mean_batch": round(self.batched_frames / self.batches, 2) if self.batches else 0.0,
                "ms": {k: round(v, 3) for k, v in self.times.mean().items()},
                "best_ms": {k: (round(v, 3) if v != float("inf") else 0.0) for k, v in self.times.best.items()},
                "capture_drops": self.capture_drops, "sink_drops": self.sink_drops,
                "sink_errors": {w.name: w.errors for w in self.sinks}, "frame_errors": self.frame_errors,
                "streams": {st.name: st.summary() for st in self.streams}}
