"""One stream of the frame loop: a named source, its own sinks, counters and order.

:class:`~.pipeline.Pipeline` runs one stream or several through one inference stage; each
:class:`Stream` is what belongs to one of them: its source, its window of frames in flight
(a live stream with no room drops *its* new frame, counted as its own drop), the queue its
captured frames wait in for a worker, its sequence numbers (so its frames reach the sinks in
its capture order, whatever batch they ran in), its own sinks, its tracker and its state,
which the daemon (READY, STATUS, ``/healthz``) and the metrics read.

Names. A stream is named by the config (``[[sources]]``' ``name``) or by ``run``'s
``NAME=URI``; a single ``[source]``, and a lone ``run SOURCE`` without a name, is the stream
:data:`DEFAULT_STREAM` (``default``); several unnamed ``run`` sources are ``stream0``,
``stream1``, ... in order. Every result carries its stream's name (the ``stream`` field of
JSON lines and ``/poses``, the MQTT topic), with one source as with several, so ``run`` and
``serve`` write the same records.

Numbers. Frame numbers are per stream: a stream's frame is numbered by its source's frame
index (0, 1, 2, ... as read, so a frame the source dropped leaves a gap) plus the stream's
first number: ``first_index`` (a reload passes the old pipeline's ``next_index``), raised
to what its outputs already hold of it (:meth:`~.sinks.base.Sink.next_frame`: its own
sinks, and its records in the shared ones: a JSON lines file's last MiB), so a restart
numbers on. Every output numbers a frame alike; where several streams share one output
(JSON lines, ``/poses``, MQTT) a record is told by ``(stream, frame)``.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Dict, Optional, Sequence

from .sinks.base import Result, SinkWorker
from .sources import Frame, Source
from .worker import Processed

__all__ = ["Stream", "Done", "DEFAULT_STREAM", "Hook"]

DEFAULT_STREAM = "default"  # the name of a single source's stream
Hook = Callable[[Result], None]


class Stream:
    """One named stream: its source, its counters and its state (read by the daemon and metrics)."""

    def __init__(self, name: str, source: Source, sinks: Sequence[SinkWorker], window: int,
                 hook: Optional[Hook] = None) -> None:
        self.name = name
        self.source = source
        self.sinks = list(sinks)   # this stream's own sinks (shared ones are the pipeline's)
        self.hook = hook
        self.tracker = None        # its person tracker (``track``): made at its first frame
        self.window_size = window
        self.window = threading.Semaphore(window)
        self.captured = 0
        self.frames = 0            # delivered to the sinks
        self.capture_drops = 0
        self.frame_errors: Dict[str, int] = {}
        self.error: Optional[BaseException] = None  # why its capture ended, if it failed
        self.ended = False
        self.last_frame_time = 0.0
        self.last_people = 0
        self.latency_sum = 0.0     # seconds, capture to sinks, over ``frames``
        self.latency_last = 0.0
        self.recent: "collections.deque[float]" = collections.deque(maxlen=32)
        self.queue: "collections.deque[tuple]" = collections.deque()  # captured, waiting for a worker
        self.first_index = 0       # the sinks' number for its source's frame 0
        self.last_index = -1       # the number of its last frame handed to the sinks
        self.next_seq = 0          # capture side
        self.expected = 0          # ordering side
        self.pending: Dict[int, "Done"] = {}

    @property
    def connected(self) -> bool:
        """Its source delivers (a reconnecting source says; any other is up until it ends)."""
        if self.ended:
            return False
        return bool(getattr(self.source, "connected", True))

    @property
    def down(self) -> bool:
        """Declared down: its source failed (and is being retried), or its capture ended on an error."""
        if self.ended:
            return self.error is not None
        return bool(getattr(self.source, "down", False))

    @property
    def state(self) -> str:
        if self.ended:
            return "failed: %s" % self.error if self.error is not None else "ended"
        if self.down:
            return "down"
        return "up" if self.frames else "starting"

    @property
    def recent_fps(self) -> float:
        times = self.recent
        if len(times) < 2 or time.monotonic() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else 0.0

    @property
    def sink_drops(self) -> Dict[str, int]:
        return {w.name: w.dropped for w in self.sinks}

    def summary(self) -> Dict[str, object]:
        return {"state": self.state, "frames": self.frames, "captured": self.captured,
                "capture_drops": self.capture_drops, "sink_drops": self.sink_drops,
                "frame_errors": dict(self.frame_errors),
                "latency_ms": round(1e3 * self.latency_sum / self.frames, 2) if self.frames else 0.0}


class Done:
    """A frame out of a worker: what the worker made of it, or None where it was lost."""

    __slots__ = ("stream", "seq", "frame", "out")

    def __init__(self, stream: Stream, seq: int, frame: Optional[Frame], out: Optional[Processed]) -> None:
        self.stream, self.seq, self.frame, self.out = stream, seq, frame, out
