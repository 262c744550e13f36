"""The pipeline's numbers for Prometheus: frames, drops, errors, stage times, queue depths, streams.

Read from the running pipeline at scrape time, so there is nothing to keep in sync; served by
the HTTP sink (``/metrics``) for the daemon and ``openpose-plus run``. Counters survive a
reload (the daemon swaps pipelines). Per-stream numbers carry a ``stream`` label, the
stream's name (a single source's: ``default``, see :mod:`openpose_plus.edge.streams`).

    openpose_plus_frames{stream}                     frames through grouping to the sinks
    openpose_plus_frames_dropped{where, stream}      where: capture, or a sink's name
    openpose_plus_frame_errors{kind, stream}         frames skipped as unusable
    openpose_plus_source_reconnects{stream}          times its source was reopened
    openpose_plus_stream_up{stream}                  1 while it delivers, 0 down/starting/ended
    openpose_plus_fps{stream}, openpose_plus_people{stream}
    openpose_plus_latency_seconds{stream}            capture to the sinks (summary)
    openpose_plus_stage_seconds{stage}               per frame; ``infer`` per network call
    openpose_plus_batch_frames                       frames per network call (summary)
    openpose_plus_sink_errors{sink}, openpose_plus_sink_queue{sink}, openpose_plus_sink_seconds{sink}
    openpose_plus_sink_failing{sink}                 1 while a sink fails (its frames are lost)
    openpose_plus_sink_connected{sink}               sinks with a connection (MQTT): 1 connected
    openpose_plus_sink_messages_dropped{sink}        what such a sink dropped itself (broker away, behind)
    openpose_plus_tracks{stream}, openpose_plus_track_births{stream}, openpose_plus_track_deaths{stream}
    openpose_plus_track_falloff{stream}              the tracker's falloff in use (share of a person's
                                                     size): rising, the keypoints got noisier
"""
from __future__ import annotations

from typing import Callable, Dict, Iterator, List, NamedTuple, Optional

from openpose_plus.edge.pipeline import STAGES

__all__ = ["PipelineMetrics", "StreamView", "stream_views"]

class StreamView(NamedTuple):
    """One stream's numbers."""

    name: str
    frames: int
    capture_drops: int
    sink_drops: Dict[str, int]
    frame_errors: Dict[str, int]
    reconnects: int
    up: bool
    fps: float
    people: int
    latency_sum: float
    latency_count: int
    tracks: int = 0     # person tracks alive (its tracker's; 0 untracked)
    births: int = 0
    deaths: int = 0
    falloff: float = 0.0  # the tracker's similarity falloff in use (TrackStats.falloff; 0 untracked)


def stream_views(p) -> List[StreamView]:
    """Per-stream numbers of the pipeline ``p``."""
    out = []
    for st in p.streams:
        drops = {w.name: int(w.dropped) for w in st.sinks}
        for w in p.shared:  # a shared sink's drops, counted by the stream of each frame
            drops[w.name] = drops.get(w.name, 0) + int(w.dropped_by_stream.get(st.name, 0))
        out.append(StreamView(st.name, st.frames, st.capture_drops, drops, dict(st.frame_errors),
                              int(getattr(st.source, "reconnects", 0)), st.state == "up" and st.connected,
                              st.recent_fps, st.last_people, st.latency_sum, st.frames, *_tracks(st.tracker)))
    return out


def _tracks(tracker) -> tuple:
    """(alive, births, deaths, falloff) of a stream's tracker; zeros where it is not tracked."""
    if tracker is None:
        return 0, 0, 0, 0.0
    stats = tracker.stats()
    return int(stats.live), int(stats.births), int(stats.deaths), float(stats.falloff)


class PipelineMetrics:
    """Prometheus view of a running pipeline (read at scrape time, so nothing to keep in sync).

    ``get_pipeline`` returns the current pipeline (the daemon swaps it on reload).
    """

    def __init__(self, get_pipeline: Callable[[], Optional[object]]) -> None:
        from prometheus_client import CollectorRegistry

        self.get_pipeline = get_pipeline
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        # Totals survive reloads: a reload starts a new pipeline, counters must not go back.
        self._base: Dict[str, float] = {}

    def carry_over(self, old) -> None:
        """Fold a finished pipeline's counts into the base before a reload replaces it."""
        if old is None:
            return
        for key, value in self._counts(old).items():
            self._base[key] = self._base.get(key, 0.0) + value
        for s in STAGES:
            self._base["sum:" + s] = self._base.get("sum:" + s, 0.0) + old.times.total[s] / 1e3
            self._base["count:" + s] = self._base.get("count:" + s, 0.0) + old.times.count[s]

    def _counts(self, p) -> Dict[str, float]:
        """Every counter of ``p``, keyed ``kind|label|label`` (stream names hold no ``|``)."""
        out: Dict[str, float] = {}

        def add(key: str, value: float) -> None:
            out[key] = out.get(key, 0.0) + float(value)

        for v in stream_views(p):
            add("frames|" + v.name, v.frames)
            add("drops|capture|" + v.name, v.capture_drops)
            add("reconnects|" + v.name, v.reconnects)
            add("latency_sum|" + v.name, v.latency_sum)
            add("latency_count|" + v.name, v.latency_count)
            for sink, n in v.sink_drops.items():
                add("drops|%s|%s" % (sink, v.name), n)
            for kind, n in v.frame_errors.items():
                add("frame_errors|%s|%s" % (kind, v.name), n)
            add("track_births|" + v.name, v.births)
            add("track_deaths|" + v.name, v.deaths)
        for w in p.sinks:
            add("sink_errors|" + w.name, w.errors)
            own = getattr(w.sink, "dropped", None)
            if isinstance(own, int) and hasattr(w.sink, "connected"):
                add("sink_own_drops|" + w.name, own)
        add("batches|", p.batches)
        add("batched_frames|", p.batched_frames)
        return out

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        p = self.get_pipeline()
        counts = dict(self._base)
        views = stream_views(p) if p is not None else []
        if p is not None:
            for key, value in self._counts(p).items():
                counts[key] = counts.get(key, 0.0) + value
        fams = {
            "frames": CounterMetricFamily("openpose_plus_frames", "Frames processed (through grouping)",
                                          labels=["stream"]),
            "drops": CounterMetricFamily("openpose_plus_frames_dropped", "Frames dropped, by where",
                                         labels=["where", "stream"]),
            "sink_errors": CounterMetricFamily("openpose_plus_sink_errors", "Sink failures, by sink", labels=["sink"]),
            "frame_errors": CounterMetricFamily("openpose_plus_frame_errors", "Frames skipped as unusable, by kind",
                                                labels=["kind", "stream"]),
            "reconnects": CounterMetricFamily("openpose_plus_source_reconnects", "Times the source was reopened",
                                              labels=["stream"]),
            "sink_own_drops": CounterMetricFamily("openpose_plus_sink_messages_dropped",
                                                  "Messages a connected sink dropped itself (broker away or behind)",
                                                  labels=["sink"]),
            "track_births": CounterMetricFamily("openpose_plus_track_births", "Person tracks begun (IDs handed out)",
                                                labels=["stream"]),
            "track_deaths": CounterMetricFamily("openpose_plus_track_deaths", "Person tracks ended",
                                                labels=["stream"]),
        }
        latency = SummaryMetricFamily("openpose_plus_latency_seconds", "Capture to the sinks, per frame",
                                      labels=["stream"])
        lat: Dict[str, List[float]] = {}
        for key, value in sorted(counts.items()):
            kind, _, rest = key.partition("|")
            labels = rest.split("|") if rest else []
            if kind in ("latency_sum", "latency_count"):
                lat.setdefault(labels[0], [0.0, 0.0])[kind == "latency_count"] = value
            elif kind in fams:
                fams[kind].add_metric(labels, value)
        for name, (total, count) in sorted(lat.items()):
            latency.add_metric([name], count_value=count, sum_value=total)
        yield from fams.values()
        yield latency
        stage = SummaryMetricFamily("openpose_plus_stage_seconds",
                                    "Time in each stage: per frame, and per network call for infer", labels=["stage"])
        for s in STAGES:
            total = self._base.get("sum:" + s, 0.0) + (p.times.total[s] / 1e3 if p else 0.0)
            count = self._base.get("count:" + s, 0.0) + (p.times.count[s] if p else 0)
            stage.add_metric([s], count_value=count, sum_value=total)
        yield stage
        batch = SummaryMetricFamily("openpose_plus_batch_frames", "Frames per network call")
        batch.add_metric([], count_value=counts.get("batches|", 0.0), sum_value=counts.get("batched_frames|", 0.0))
        yield batch
        fps = GaugeMetricFamily("openpose_plus_fps", "Frames per second over the last frames", labels=["stream"])
        people = GaugeMetricFamily("openpose_plus_people", "People in the last frame", labels=["stream"])
        up = GaugeMetricFamily("openpose_plus_stream_up", "1 while the stream delivers frames", labels=["stream"])
        for v in views:
            fps.add_metric([v.name], v.fps)
            people.add_metric([v.name], float(v.people))
            up.add_metric([v.name], 1.0 if v.up else 0.0)
        yield fps
        yield people
        yield up
        depth = GaugeMetricFamily("openpose_plus_sink_queue", "Frames waiting in each sink's queue", labels=["sink"])
        lag = GaugeMetricFamily("openpose_plus_sink_seconds", "Time the sink took for its last frame", labels=["sink"])
        connected = GaugeMetricFamily("openpose_plus_sink_connected", "1 while a sink with a connection has it",
                                      labels=["sink"])
        failing = GaugeMetricFamily("openpose_plus_sink_failing",
                                    "1 while a sink fails (its frames are lost), else 0", labels=["sink"])
        queued: Dict[str, float] = {}
        slowest: Dict[str, float] = {}
        fails: Dict[str, float] = {}
        for w in (p.sinks if p else []):  # a per-stream sink once per stream: summed, the slowest, any failing
            queued[w.name] = queued.get(w.name, 0.0) + float(w.queue.qsize())
            slowest[w.name] = max(slowest.get(w.name, 0.0), w.latency_ms / 1e3)
            fails[w.name] = max(fails.get(w.name, 0.0), 1.0 if w.failing else 0.0)
            if hasattr(w.sink, "connected"):
                connected.add_metric([w.name], 1.0 if w.sink.connected else 0.0)
        for name in queued:
            depth.add_metric([name], queued[name])
            lag.add_metric([name], slowest[name])
            failing.add_metric([name], fails[name])
        yield depth
        yield lag
        yield failing
        yield connected
        tracks = GaugeMetricFamily("openpose_plus_tracks", "Person tracks alive (seen or coasting)", labels=["stream"])
        falloff = GaugeMetricFamily("openpose_plus_track_falloff",
                                    "The tracker's keypoint falloff in use, as a share of a person's size "
                                    "(kappa, wider where the keypoints are noisy)", labels=["stream"])
        for v in views:
            tracks.add_metric([v.name], float(v.tracks))
            if v.falloff > 0:
                falloff.add_metric([v.name], v.falloff)
        yield tracks
        yield falloff
