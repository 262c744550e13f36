"""``openpose-plus run SOURCE --bundle B``: the daemon's pipeline in the foreground.

    openpose-plus run synthetic:// --bundle bundle/ --frames 100 --write-json out/json --output out/video.mp4

Exit status: 0 when every frame read was processed and written; 1 with the reason when the
pipeline failed, when no frame could be processed, or when a sink lost frames (an offline
run whose output is incomplete has not succeeded); 2 for bad arguments. Frames skipped as
unusable (an odd image in a folder) are counted and named, and do not fail the run alone.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from openpose_plus.commands._options import add_backend, add_precision
from openpose_plus.edge.progress import Progress

__all__ = ["add_arguments", "run"]


HELP = "run the pipeline in the foreground on a source"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="csi://0, /dev/video0, rtsp://..., a video, an image folder, synthetic://")
    parser.add_argument("--bundle", required=True, help="model bundle (directory or .tar)")
    parser.add_argument("--write-json", metavar="DIR", help="OpenPose-format JSON per frame into DIR")
    parser.add_argument("--output", metavar="FILE", help="annotated video file (.mp4, .avi)")
    parser.add_argument("--jsonl", metavar="TARGET", help="JSON lines to - (stdout), a file or udp://host:port")
    parser.add_argument("--http", metavar="ADDR:PORT", help="serve /poses, /preview.mjpg, /metrics, /healthz")
    parser.add_argument("--frames", type=int, default=None, metavar="N", help="stop after N frames")
    add_backend(parser)
    add_precision(parser)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: default)")
    parser.add_argument("--mode", default="pipelined", choices=("pipelined", "sequential"))
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the --output video")
    parser.add_argument("--group", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a grouping parameter (repeatable); the rest are the bundle's own")
    parser.add_argument("--no-track", action="store_true",
                        help="no person IDs and no smoothing (tracking is on by default)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.backends import BackendError
    from openpose_plus.edge.bundle import BundleError
    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.pipeline import Pipeline
    from openpose_plus.edge.service.metrics import PipelineMetrics
    from openpose_plus.edge.sinks.factory import build_sinks, sinks_config
    from openpose_plus.edge.sources import SourceError, open_source

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.frames is not None and args.frames <= 0:
        print("openpose-plus run: --frames must be positive", file=sys.stderr)
        return 2
    from openpose_plus.edge.grouping import parse_overrides

    try:
        estimator = PoseEstimator(args.bundle, backend=args.backend, precision=args.precision, threads=args.threads,
                                  params=parse_overrides(args.group))
        source = open_source(args.source)
    except (BundleError, BackendError, SourceError, OSError, ValueError) as exc:
        print("openpose-plus run: %s" % exc, file=sys.stderr)
        return 1
    holder = {}
    metrics = PipelineMetrics(lambda: holder.get("p"))
    try:
        sinks = build_sinks(sinks_config(args.write_json, args.jsonl, args.output, args.fps, args.http), metrics.registry)
    except ValueError as exc:
        print("openpose-plus run: %s" % exc, file=sys.stderr)
        return 2
    progress = Progress(args.frames, unit="frames", interval=0.5, every=None if args.frames else 1000,
                        enabled=not args.quiet and args.jsonl != "-")
    pipeline = Pipeline(estimator, source, sinks, mode=args.mode, max_frames=args.frames, drop_when_busy=False,
                        on_frame=lambda r: progress.update(holder["p"].frames + 1, people=len(r.poses.scores)),
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
        source.close()
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
    skipped = sum(pipeline.frame_errors.values())
    if pipeline.frames == 0 and pipeline.error is None:
        out.append("no frame processed" + (" (%d skipped as unusable: %s)" % (
            skipped, ", ".join("%s %d" % kv for kv in sorted(pipeline.frame_errors.items()))) if skipped else ""))
    for w in pipeline.sinks:
        if w.errors:
            out.append("sink %s lost %d of %d frames: %s" % (w.name, w.errors, w.errors + w.handled, w.last_error))
    return out
