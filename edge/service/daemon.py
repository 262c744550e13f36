"""The daemon behind ``openpose-plus serve``: the pipeline wrapped for systemd.

* ``READY=1`` once every configured stream has either sent a frame through the whole
  pipeline or been declared down (its source failed to open or read and is being retried),
  so one absent camera never holds the others' start;
* ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` while frames flow (from any stream) or, when no
  stream is connected, while sources are being retried; none if the pipeline stalls (so
  systemd restarts it);
* ``STATUS=`` with the frame rate, or with what the source is doing when it is lost, or
  that frames have stalled, led by any sink that is failing (``degraded: ...``); with
  several streams, how many are up and what each one that is not is doing;
* ``/healthz``: 503 with the reason while no frame comes, a stream is down, or a sink fails
  (the sink named); with several streams one line per stream;
* SIGTERM/SIGINT: ``STOPPING=1``, capture stops, frames in flight finish, sinks flush, exit 0
  (also when a hung stage had to be left behind: a stop that was asked for is a clean stop);
* SIGHUP: ``RELOADING=1``, the config is read again and checked against this machine
  (:mod:`.preflight`) while the old pipeline runs; a config that cannot start (bad, a port
  taken, a folder that cannot be made) is refused and the old one kept; otherwise the
  pipeline restarts with it, and if it fails to start after all the old config starts again;
  ``READY=1``. Counters and frame numbers go on across a reload;
* signals that come while starting (``serve`` takes them first thing) are acted on once
  running; logs to stderr for journald.

Streams: the ``[[sources]]`` of the config (or its one ``[source]``, the stream ``default``),
each behind its own :class:`ReconnectingSource`, all through one
:class:`~openpose_plus.edge.pipeline.Pipeline` whose inference stage batches them.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
import time
from typing import Collection, Dict, List, Optional, Sequence, Tuple

from .config import ConfigError, EdgeConfig, load_config, tracking_option
from .metrics import PipelineMetrics
from .notify import Notifier
from .preflight import preflight, resources
from openpose_plus.edge.sinks.factory import build_stream_sinks
from openpose_plus.edge.sources import ReconnectingSource
from openpose_plus.edge.pipeline import Pipeline

__all__ = ["Daemon"]

log = logging.getLogger("openpose_plus.daemon")


class Daemon:
    def __init__(self, config_path: str, notifier: Optional[Notifier] = None, overrides: Sequence[str] = ()) -> None:
        self.config_path = config_path
        self.overrides = list(overrides)  # --set: applied again on every reload
        self.config: EdgeConfig = load_config(config_path, self.overrides)  # ConfigError: refused at start
        self.notifier = notifier or Notifier()
        self.metrics = PipelineMetrics(lambda: self.pipeline)
        self.estimator = None
        self.sources: Dict[str, ReconnectingSource] = {}
        self.source: Optional[ReconnectingSource] = None  # the first stream's (the only one's with [source])
        self.source_states: Dict[str, str] = {}
        self.pipeline: Optional[Pipeline] = None
        self._thread: Optional[threading.Thread] = None
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._ready_sent = False
        self._started = False  # READY=1 sent once: from then on the watchdog is fed while alive
        self.reloads_refused = 0
        self.source_state = "starting"
        self.alive = time.monotonic()

    # -- building ------------------------------------------------------------------------
    def _make_estimator(self, cfg: EdgeConfig):
        from openpose_plus.edge.estimator import PoseEstimator

        m = cfg.model
        done = threading.Event()
        interval = self.notifier.watchdog_interval() or 5.0

        def keep_alive() -> None:
            # Loading may build a TensorRT engine (minutes on a Jetson): say so, and keep
            # systemd's start/reload timeout and watchdog from firing while it works.
            while not done.wait(interval):
                self.notifier.notify("EXTEND_TIMEOUT_USEC=%d" % int(4 * interval * 1e6), "WATCHDOG=1",
                                     "STATUS=loading %s (building the engine on first start)" % m.bundle)

        pinger = threading.Thread(target=keep_alive, name="loading", daemon=True)
        pinger.start()
        try:
            from openpose_plus.edge.bundle import load_bundle

            bundle = load_bundle(m.bundle)
            return PoseEstimator(bundle, backend=m.backend, precision=m.precision,
                                 params=dict(cfg.grouping), threads=m.threads,
                                 cache_dir=m.cache_dir or None, dla_core=m.dla_core if m.dla_core >= 0 else None,
                                 batch=self._batch_for(cfg, bundle))
        finally:
            done.set()
            pinger.join()

    @staticmethod
    def _batch_for(cfg: EdgeConfig, bundle) -> int:
        """Frames per network call: a fixed-batch bundle's own size; a dynamic one's
        ``pipeline.max_batch``, or (0) the number of streams, at most its checked size."""
        spec = bundle.batch
        if not spec.dynamic:
            return spec.size
        return cfg.pipeline.max_batch or min(len(cfg.streams()), spec.size)

    def _on_source_status(self, name: str, text: str) -> None:
        self.source_states[name] = text
        if self.source is not None and self.sources.get(name) is self.source:
            self.source_state = text
        self.notifier.status(("%s: %s" % (name, text)) if self.config.multi_stream else text)

    def _heartbeat(self) -> None:
        self.alive = time.monotonic()

    def _start_pipeline(self, cfg: EdgeConfig, first_index: Optional[Dict[str, int]] = None) -> None:
        """The streams of ``cfg`` through one pipeline; ``first_index``: each stream's next frame
        number (a reload numbers on)."""
        p = cfg.pipeline
        pairs: List[Tuple[str, ReconnectingSource]] = []
        self.source_states = {}
        for s in cfg.streams():
            src = ReconnectingSource(s.uri, min_delay=s.reconnect_min, max_delay=s.reconnect_max,
                                     reopen_on_end=s.reopen_on_end,
                                     on_status=lambda text, name=s.name: self._on_source_status(name, text),
                                     heartbeat=self._heartbeat, prefer=s.prefer)
            pairs.append((s.name, src))
            self.source_states[s.name] = "starting"
        self.sources = dict(pairs)
        self.source = pairs[0][1]
        shared, own = build_stream_sinks(cfg.sinks, [n for n, _ in pairs], self.metrics.registry, self.health,
                                         own_folders=cfg.multi_stream)
        self.pipeline = Pipeline(self.estimator, pairs, shared, own, mode=p.mode, queue_size=p.queue_size,
                                 infer_workers=p.infer_workers, sink_queue=p.sink_queue,
                                 batch_wait_ms=p.batch_wait_ms, track=tracking_option(cfg), first_index=first_index)
        try:
            self.pipeline.start_sinks()  # an HTTP port in use fails here, at start, not later
        except BaseException:
            self.pipeline.close_sinks(timeout=2.0)  # the ones that did open let go of their ports and folders
            for src in self.sources.values():
                src.close()
            raise
        self._ready_sent = False
        self._thread = threading.Thread(target=self._run_pipeline, args=(self.pipeline,), name="pipeline", daemon=True)
        self._thread.start()

    def _run_pipeline(self, pipeline: Pipeline) -> None:
        try:
            pipeline.run()
        except BaseException as exc:  # reported by the main loop; the daemon exits non-zero
            pipeline.error = exc
            log.exception("pipeline failed")
        finally:
            self._wake.set()

    def _stop_pipeline(self) -> bool:
        """Stop capture, let frames in flight finish, flush sinks. False if it hung past the timeout."""
        if self.pipeline is not None:
            self.pipeline.stop()
        if self._thread is None:
            return True
        self._thread.join(self.config.daemon.stop_timeout)
        hung = self._thread.is_alive()
        if hung and self.pipeline is not None:
            # A stage is stuck (a camera driver, a network read): flush what the sinks have and go.
            log.error("pipeline did not stop within %.0f s; flushing sinks and exiting", self.config.daemon.stop_timeout)
            self.pipeline.close_sinks(timeout=2.0)
        else:
            # Release the cameras now, not when the old objects are collected: a reload opens them
            # again at once (frames still held keep a jetson_utils source's memory, not the device).
            for src in self.sources.values():
                src.close()
        self._thread = None
        return not hung

    # -- health --------------------------------------------------------------------------
    def _failing_sinks(self) -> str:
        """'sink X failing for S s (N frames lost): why', for each failing sink; '' if none."""
        p = self.pipeline
        now = time.monotonic()
        return "; ".join("sink %s failing for %.0f s (%d frame(s) lost): %s"
                         % (w.name, now - w.failing_since, w.lost, w.last_error) for w in (p.failing_sinks if p else []))

    def _stream_health(self, st, now: float) -> Tuple[bool, str]:
        state = self.source_states.get(st.name, "starting")
        if not st.frames:
            return False, "no frame yet (%s)" % state
        idle = now - st.last_frame_time
        if idle > self.config.daemon.stall_seconds:
            return False, "no frame for %.1f s (source: %s)" % (idle, state)
        return True, "ok: %.1f fps" % st.recent_fps

    def _connections(self) -> str:
        """What sinks with a connection (MQTT) say: they drop their own messages while away
        (counted), they never make the pipeline unhealthy."""
        p = self.pipeline
        words = [w.sink.health()[1] for w in (p.sinks if p else []) if hasattr(w.sink, "connected")]
        return "".join("; %s" % w for w in words)

    def health(self) -> Tuple[bool, str]:
        """(ok, why): ok while every stream delivers frames and no sink fails (one line per
        stream when there are several)."""
        p = self.pipeline
        now = time.monotonic()
        if p is None:
            return False, "no frame yet (%s)" % self.source_state
        failing = self._failing_sinks()
        checks = [(st.name,) + self._stream_health(st, now) for st in p.streams]
        if len(checks) == 1:
            ok, why = checks[0][1:]
            if ok and failing:  # frames flow, but some output is lost: not ok, and which output says why
                return False, "degraded: " + failing + self._connections()
            return ok, why + self._connections()
        up = sum(1 for _, ok, _ in checks if ok)
        whole = up == len(checks) and not failing
        head = "%s: %d/%d streams up, %.1f fps" % ("ok" if whole else "degraded", up, len(checks), p.recent_fps)
        head += ("; " + failing if failing else "") + self._connections()
        return whole, "\n".join([head] + ["%s: %s" % (name, why) for name, _, why in checks])

    def _flowing(self, now: float) -> bool:
        p = self.pipeline
        last = p.last_frame_time if p else 0.0
        if p is None or not any(st.connected for st in p.streams):
            last = max(last, self.alive)  # no stream delivers: retrying one is alive
        return now - last <= self.config.daemon.stall_seconds

    def status_text(self) -> str:
        p = self.pipeline
        if p is None:
            return "starting"
        failing = self._failing_sinks()
        head = "degraded: %s; " % failing if failing else ""
        if len(p.streams) == 1 and not p.streams[0].connected:
            return head + "source: %s" % self.source_state
        idle = time.monotonic() - p.last_frame_time
        if p.frames and idle > self.config.daemon.stall_seconds:
            return head + "stalled: no frame for %.1f s (source: %s)" % (idle, self.source_state)
        if p.frames and idle > 2.0:  # the rate over the last frames would read 0.0
            return head + "no frame for %.1f s, %d frames" % (idle, p.frames)
        drops = sum(p.sink_drops.values())
        text = head + "%.1f fps, %d people, %d frames, dropped %d capture / %d sink" % (
            p.recent_fps, p.last_people, p.frames, p.capture_drops, drops)
        if len(p.streams) > 1:
            down = [st for st in p.streams if not st.connected or st.down]
            text += "; streams %d/%d up" % (len(p.streams) - len(down), len(p.streams))
            text += "".join("; %s: %s" % (st.name, self.source_states.get(st.name, st.state)) for st in down)
        return text

    # -- signals and the main loop ----------------------------------------------------------
    def request_stop(self, *_args) -> None:
        self._stop_requested = True
        self._wake.set()

    def request_reload(self, *_args) -> None:
        self._reload_requested = True
        self._wake.set()

    def _refuse(self, exc: BaseException) -> None:
        self.reloads_refused += 1
        log.error("reload refused, keeping the running config: %s", exc)
        self.notifier.ready("reload refused: %s" % exc)

    def _reload(self) -> None:
        self._reload_requested = False
        self.notifier.reloading()
        try:
            new = load_config(self.config_path, self.overrides)
            # What would stop it starting here (a port taken, a folder that cannot be made) is
            # found now, while the old pipeline runs, not after it has been stopped.
            errors, _ = preflight(new, held=resources(self.config))
            if errors:
                raise ConfigError("; ".join(errors))
            model_changed = (dataclasses.asdict(new.model) != dataclasses.asdict(self.config.model)
                             or new.grouping != self.config.grouping
                             or self._batch_for(new, self.estimator.bundle) != self.estimator.batch)
            # The new model is loaded (and checked) while the old pipeline still runs.
            estimator = self._make_estimator(new) if model_changed else None
        except Exception as exc:  # a bad config or bundle: refused, the running one is kept
            self._refuse(exc)
            return
        log.info("reloading %s", self.config_path)
        old_config, old_estimator = self.config, self.estimator
        self._stop_pipeline()
        next_index = self.pipeline.next_index if self.pipeline is not None else None
        self.metrics.carry_over(self.pipeline)
        self.pipeline = None
        self.config = new
        if estimator is not None:
            self.estimator = estimator
        try:
            self._start_pipeline(new, next_index)
        except Exception as exc:  # it cannot start after all (a race the check cannot close): the old one again
            self.pipeline = None
            self.config, self.estimator = old_config, old_estimator
            if estimator is not None:
                estimator.close()
            log.error("the new config did not start (%s); starting the running one again", exc)
            self._start_pipeline(old_config, next_index)  # if this fails too, the main loop exits 1
            self._refuse(exc)
            return
        if estimator is not None:
            old_estimator.close()
            log.info("backend: %s", self.estimator.reason)

    def run(self, pending: Collection[int] = ()) -> int:
        """Run until stopped; ``pending``: signals that came before (``serve`` holds them from its start)."""
        cfg = self.config
        logging.getLogger("openpose_plus").setLevel(cfg.daemon.log_level.upper())
        if threading.current_thread() is threading.main_thread():  # (tests run a daemon on a thread)
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            signal.signal(signal.SIGHUP, self.request_reload)
        for sig in list(pending):  # a reload asked for while starting reads the file again once running
            (self.request_reload if sig == signal.SIGHUP else self.request_stop)()
        if self._stop_requested:
            log.info("stopped before starting")
            self.notifier.close()
            return 0
        self.notifier.status("loading %s" % cfg.model.bundle)
        try:
            self.estimator = self._make_estimator(cfg)
            log.info("backend: %s", self.estimator.reason)
            self._start_pipeline(cfg)
        except Exception as exc:
            log.error("cannot start: %s", exc)
            self.notifier.status("failed: %s" % exc)
            return 1
        interval = self.notifier.watchdog_interval()
        tick = min(0.1, interval / 4) if interval else 0.1
        last_ping = last_status = 0.0
        code = 0
        while True:
            self._wake.wait(tick)
            self._wake.clear()
            now = time.monotonic()
            if self._stop_requested:
                log.info("stopping")
                self.notifier.stopping("stopping: flushing sinks")
                self._stop_pipeline()  # a stage that hung is left behind: still the stop that was asked for
                break
            if self._reload_requested:
                try:
                    self._reload()
                except Exception as exc:  # e.g. the new bundle fails its check, a port is taken
                    log.error("reload failed: %s", exc)
                    self.notifier.status("failed: reload: %s" % exc)
                    self._stop_pipeline()
                    code = 1
                    break
                continue
            p = self.pipeline
            if self._thread is not None and not self._thread.is_alive():
                if p is not None and p.error is not None:
                    log.error("pipeline stopped: %s", p.error)
                    self.notifier.status("failed: %s" % p.error)
                    code = 1
                else:
                    log.info("source ended; %d frames", p.frames if p else 0)
                break
            if not self._ready_sent and p is not None and p.ready:
                self._ready_sent = self._started = True
                self.notifier.ready(self.status_text())
                log.info("ready: %s", ", ".join("%s %s" % (st.name, st.state) for st in p.streams))
            if interval and self._started and now - last_ping >= interval and self._flowing(now):
                self.notifier.watchdog()
                last_ping = now
            if now - last_status >= self.config.daemon.status_interval:
                self.notifier.status(self.status_text())
                last_status = now
        if self.pipeline is not None:
            log.info("summary: %s", json.dumps(self.pipeline.summary()))
        if self.estimator is not None:
            self.estimator.close()
        self.notifier.close()
        return code
