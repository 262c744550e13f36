"""The pipeline's numbers for Prometheus: frames, drops, errors, stage times, queue depths.

Read from the running :class:`~openpose_plus.edge.pipeline.Pipeline` at scrape time, so there
is nothing to keep in sync; served by the HTTP sink (``/metrics``) for the daemon and
``openpose-plus run``. Counters survive a reload (the daemon swaps pipelines).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

from openpose_plus.edge.pipeline import STAGES, Pipeline

__all__ = ["PipelineMetrics"]


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

    def carry_over(self, old: Optional[Pipeline], reconnects: int = 0) -> None:
        """Fold a finished pipeline's counts (and its source's ``reconnects``) into the base
        before a reload replaces them."""
        self._base["reconnects"] = self._base.get("reconnects", 0.0) + float(reconnects)
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
        if p.tracker is not None:
            stats = p.tracker.stats()
            out["tracks:births"] = float(stats.births)
            out["tracks:deaths"] = float(stats.deaths)
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
        rec.add_metric([], self._base.get("reconnects", 0.0) + float(self.get_reconnects()))
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
        failing = GaugeMetricFamily("openpose_plus_sink_failing",
                                    "1 while a sink fails (its frames are lost), else 0", labels=["sink"])
        for w in (p.sinks if p else []):
            depth.add_metric([w.name], float(w.queue.qsize()))
            lag.add_metric([w.name], w.latency_ms / 1e3)
            failing.add_metric([w.name], 1.0 if w.failing else 0.0)
        yield depth
        yield lag
        yield failing
        people = GaugeMetricFamily("openpose_plus_people", "People in the last frame")
        people.add_metric([], float(p.last_people) if p else 0.0)
        yield people
        tracks = GaugeMetricFamily("openpose_plus_tracks", "Person tracks alive (seen or coasting)")
        tracks.add_metric([], float(p.tracker.stats().live) if p and p.tracker is not None else 0.0)
        yield tracks
        for event in ("births", "deaths"):
            c = CounterMetricFamily("openpose_plus_track_" + event,
                                    "Person tracks %s" % ("begun (IDs handed out)" if event == "births" else "ended"))
            c.add_metric([], counts.get("tracks:" + event, 0.0))
            yield c
