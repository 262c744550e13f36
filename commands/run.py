"""``openpose-plus run SOURCE [SOURCE ...] --bundle B``: the daemon's pipeline in the foreground.

    openpose-plus run synthetic:// --bundle bundle/ --frames 100 --write-json out/json --output out/video.mp4
    openpose-plus run door=rtsp://cam1/live yard=rtsp://cam2/live --bundle b/ --jsonl - --mqtt broker.local

Each source is a named stream (``NAME=URI``; a lone unnamed source is ``default``, as
``serve``'s single ``[source]``; several unnamed ones ``stream0``, ``stream1``, ... in order),
all through one batched inference stage. Every record carries its ``stream`` and the stream's
own frame number. With several sources each writes OpenPose JSON into ``DIR/NAME/`` and
video to ``FILE-NAME.ext``; JSON lines, HTTP and MQTT are shared.

Exit status: 0 when every frame read was processed and written; 1 with the reason when the
pipeline failed, when no frame could be processed, or when a sink lost frames (an offline
run whose output is incomplete has not succeeded); 2 for bad arguments. Frames skipped as
unusable (an odd image in a folder) are counted and named, and do not fail the run alone.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
from typing import List, Tuple

from openpose_plus.commands._options import add_backend, add_precision, at_least
from openpose_plus.edge.progress import Progress

__all__ = ["add_arguments", "run", "parse_sources"]


HELP = "run the pipeline in the foreground on one source or several (batched)"

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})=(.+)$")  # the daemon's stream-name rule


def parse_sources(items: List[str]) -> List[Tuple[str, str]]:
    """``[(name, uri)]`` of ``NAME=URI`` or bare ``URI`` arguments (a lone one named ``default``,
    several ``stream0``, ``stream1``, ... by position).

    A URI's own ``=`` (``synthetic://?people=2``) is not a name: a name is letters, digits,
    ``_.-`` only, so the text before its ``=`` holds no ``:``, ``/`` or ``?``."""
    out: List[Tuple[str, str]] = []
    for i, item in enumerate(items):
        m = _NAME.match(item)
        out.append((m.group(1), m.group(2)) if m else ("default" if len(items) == 1 else "stream%d" % i, item))
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError("stream name %s given twice" % ", ".join(dup))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="csi://0, /dev/video0, rtsp://..., a video, an image folder, synthetic://; "
                             "several (NAME=URI to name them) run as streams batched into one network call")
    parser.add_argument("--bundle", required=True, help="model bundle (directory or .tar)")
    parser.add_argument("--write-json", metavar="DIR", help="OpenPose-format JSON per frame into DIR (DIR/NAME/ "
                                                            "per stream)")
    parser.add_argument("--output", metavar="FILE", help="annotated video file (.mp4, .avi; FILE-NAME.mp4 per stream)")
    parser.add_argument("--jsonl", metavar="TARGET", help="JSON lines to - (stdout), a file or udp://host:port")
    parser.add_argument("--http", metavar="ADDR:PORT", help="serve /poses, /preview.mjpg, /metrics, /healthz")
    parser.add_argument("--mqtt", metavar="HOST[:PORT]",
                        help="publish each frame's poses to this broker (topic openpose-plus/STREAM/poses; "
                             "credentials and TLS: the daemon's [sinks.mqtt], never flags)")
    parser.add_argument("--mqtt-prefix", default="openpose-plus", metavar="PREFIX", help="MQTT topic prefix")
    parser.add_argument("--frames", type=at_least(1), default=None, metavar="N", help="stop after N frames (per stream)")
    add_backend(parser)
    add_precision(parser)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: default)")
    parser.add_argument("--mode", default="pipelined", choices=("pipelined", "sequential"))
    parser.add_argument("--max-batch", type=at_least(0), default=0, metavar="N",
                        help="frames per network call with several sources and a dynamic-batch bundle "
                             "(default: the number of sources, at most the bundle's checked size)")
    parser.add_argument("--batch-wait-ms", type=at_least(0, float), default=10.0, metavar="MS",
                        help="longest a batch waits for more streams' frames (default %(default)s)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the --output video")
    parser.add_argument("--group", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a grouping parameter (repeatable); the rest are the bundle's own")
    parser.add_argument("--no-track", action="store_true",
                        help="no person IDs and no smoothing (tracking is on by default)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.backends import BackendError
    from openpose_plus.edge.bundle import BundleError, load_bundle
    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.pipeline import Pipeline
    from openpose_plus.edge.service.metrics import PipelineMetrics
    from openpose_plus.edge.sinks.factory import build_stream_sinks, sinks_config
    from openpose_plus.edge.sources import SourceError, open_source

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from openpose_plus.edge.grouping import parse_overrides

    try:
        named = parse_sources(args.sources)
        cfg = sinks_config(args.write_json, args.jsonl, args.output, args.fps, args.http, args.mqtt)
        cfg.mqtt.topic_prefix = args.mqtt_prefix
        cfg.mqtt.connect_wait = 5.0  # a finite run: its first frames wait for the broker (a moment, not forever)
    except ValueError as exc:
        print("openpose-plus run: %s" % exc, file=sys.stderr)
        return 2
    several = len(named) > 1
    sources = []
    try:
        bundle = load_bundle(args.bundle)
        spec = bundle.batch
        batch = args.max_batch or (min(len(named), spec.size) if spec.dynamic else spec.size)
        estimator = PoseEstimator(bundle, backend=args.backend, precision=args.precision, threads=args.threads,
                                  params=parse_overrides(args.group), batch=batch)
        for name, uri in named:
            sources.append((name, open_source(uri)))
    except (BundleError, BackendError, SourceError, OSError, ValueError) as exc:
        for _, src in sources:
            src.close()
        print("openpose-plus run: %s" % exc, file=sys.stderr)
        return 1
    holder = {}
    metrics = PipelineMetrics(lambda: holder.get("p"))
    try:
        shared, own = build_stream_sinks(cfg, [n for n, _ in named], metrics.registry, own_folders=several)
    except ValueError as exc:
        print("openpose-plus run: %s" % exc, file=sys.stderr)
        return 2
    progress = Progress(args.frames * len(named) if args.frames else None, unit="frames", interval=0.5,
                        every=None if args.frames else 1000, enabled=not args.quiet and args.jsonl != "-")
    on_frame = lambda r: progress.update(holder["p"].frames + 1, people=len(r.poses.scores))  # noqa: E731
    pipeline = Pipeline(estimator, sources, shared, own, mode=args.mode, max_frames=args.frames,
                        drop_when_busy=False, batch_wait_ms=args.batch_wait_ms, on_frame=on_frame,
                        track=not args.no_track)
    holder["p"] = pipeline
    # Ctrl-C / SIGTERM: stop capturing, finish the frames in flight, flush the sinks.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: pipeline.stop())
    try:
        pipeline.start_sinks()
        pipeline.run()
    except OSError as exc:
        print("openpose-plus run: %s" % exc, file=sys.stderr)
        return 1
    finally:
        for _, src in sources:
            src.close()
        estimator.close()
    progress.update(pipeline.frames, people=pipeline.last_people)
    progress.close()
    print(json.dumps(pipeline.summary()), file=sys.stderr)
    problems = failures(pipeline)
    for text in problems:
        print("openpose-plus run: %s" % text, file=sys.stderr)
    return 1 if problems else 0


def failures(pipeline) -> list:
    """Why a finished run did not do its job, in words (empty: it did)."""
    out = []
    if pipeline.error is not None:
        out.append(str(pipeline.error))
    for st in pipeline.streams:  # each source's own end (the pipeline's too when it was the last)
        if st.error is not None and st.error is not pipeline.error:
            out.append("stream %s: %s" % (st.name, st.error))
    skipped = sum(pipeline.frame_errors.values())
    if pipeline.frames == 0 and pipeline.error is None:
        out.append("no frame processed" + (" (%d skipped as unusable: %s)" % (
            skipped, ", ".join("%s %d" % kv for kv in sorted(pipeline.frame_errors.items()))) if skipped else ""))
    for w in pipeline.sinks:
        if w.errors:
            out.append("sink %s lost %d of %d frames: %s" % (w.name, w.errors, w.errors + w.handled, w.last_error))
    return out
