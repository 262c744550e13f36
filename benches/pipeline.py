"""``openpose-plus bench pipeline BUNDLE``: per-stage time and end-to-end frames/s.

Runs the same frames through the sequential loop (one thread: capture, preprocess, the
network on one session using every core, group, sinks, frame after frame: the honest
baseline) and through the pipeline (capture and sinks on their own threads, N inference
workers each taking whole frames through its own session of ``cores / N`` threads), both
``--repeat`` times, interleaved, and reports the medians: the mean ms of every stage
(capture, preprocess, infer, group, sinks), frames/s end to end, their ratio, and the load
average of the machine while it ran. Frames are taken from ``--source`` once and replayed
from memory, so ``capture`` measures what a camera costs the loop (a copy into the ring),
not how fast this machine can render synthetic people.

``BUNDLE`` may be ``demo`` (or ``demo:WxH``, default 368x368): a network of realistic cost
for that input (stride 8, COCO-18 heads, about 3 GFLOP at 368x368) is built with ``onnx``
(:mod:`openpose_plus.benches._pose_onnx`, the tests' builder too) into a temporary bundle,
with random weights, so the timings need no trained model.

Targets (issue 6): everything but the network at most 10 % of the network's time;
pipelined throughput at least 1.5x the sequential loop on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Dict, List

import numpy as np

from openpose_plus.commands._options import add_backend, add_precision, parse_size
from openpose_plus.edge.sources import Source, SourceEnded

__all__ = ["add_arguments", "run", "ReplaySource", "measure", "cpu_profile"]

STAGE_NAMES = ("capture", "preprocess", "infer", "group", "track", "sinks")


class ReplaySource(Source):
    """Frames held in memory, copied into the ring like a camera's DMA would fill it."""

    def __init__(self, images: List[np.ndarray], count: int) -> None:
        super().__init__("replay://")
        self.images, self.count = images, count

    def read(self):
        if self.index >= self.count:
            raise SourceEnded("replay ended")
        img = self.images[self.index % len(self.images)]
        buf = self.ring.get(img.shape[0], img.shape[1])
        np.copyto(buf, img)
        return self._frame(buf)


HELP = "per-stage time and end-to-end frames/s"

def _demo_bundle(spec: str, tmp: str) -> str:
    from openpose_plus.benches._pose_onnx import demo_pose_onnx
    from openpose_plus.edge.bundle import write_bundle

    try:
        w, h = parse_size(spec.partition(":")[2] or "368x368", multiple=8, example="368x368")
    except ValueError as exc:
        raise ValueError("%r: the demo %s" % (spec, exc)) from None
    return write_bundle(os.path.join(tmp, "demo"), demo_pose_onnx(w, h), input_size=(w, h), stride=8,
                        mean=(127.5,) * 3, std=(127.5,) * 3, training_config={"MODEL": {"name": "demo"}})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (directory or .tar), or demo[:WxH] for a built one")
    parser.add_argument("--source", default="synthetic://640x480?people=3", help="where the frames come from")
    parser.add_argument("--frames", type=int, default=300, help="frames per run (default %(default)s)")
    parser.add_argument("--distinct", type=int, default=30, help="distinct frames taken from the source")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each mode, interleaved; medians are reported (default %(default)s)")
    add_backend(parser, default="onnxruntime")
    add_precision(parser)
    parser.add_argument("--threads", type=int, default=0,
                        help="onnxruntime threads of the sequential loop's session (0: every core)")
    parser.add_argument("--workers", type=int, default=0,
                        help="inference workers when pipelined (0: auto, one per core on the CPU backend)")
    parser.add_argument("--worker-threads", type=int, default=0,
                        help="onnxruntime threads per worker session (0: cores / workers)")
    parser.add_argument("--sink", default="jsonl", choices=("none", "jsonl", "openpose_json"),
                        help="sink to include (written to a temporary place)")
    parser.add_argument("--no-cpu-profile", action="store_true", help="skip the one-thread CPU-time profile")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _sinks(kind: str, tmp: str):
    from openpose_plus.edge.sinks import JsonLinesSink, OpenPoseJsonSink

    if kind == "jsonl":
        return [JsonLinesSink(os.devnull, flush_every=64)]
    if kind == "openpose_json":
        return [OpenPoseJsonSink(tmp)]
    return []


def measure(est, images: List[np.ndarray], frames: int, mode: str, workers, sink: str, tmp: str) -> Dict[str, object]:
    """One run of ``frames`` frames through ``est`` in ``mode`` (after a short warm-up)."""
    from openpose_plus.edge.pipeline import Pipeline

    Pipeline(est, ReplaySource(images, min(20, frames)), mode=mode, infer_workers=workers, track=True).run()  # warm-up
    load0 = os.getloadavg()[0]
    p = Pipeline(est, ReplaySource(images, frames), _sinks(sink, tmp), mode=mode, infer_workers=workers,
                 track=True).run()  # tracking on, as run and serve have it
    out = p.summary()
    out["load1"] = round((load0 + os.getloadavg()[0]) / 2, 2)
    return out


def cpu_profile(bundle, images: List[np.ndarray], frames: int, backend: str, precision: str) -> Dict[str, float]:
    """CPU ms per stage on one thread (the network on one onnxruntime thread, run by the caller).

    Thread CPU time does not count time spent waiting for a core, so unlike the wall-clock
    runs this stays right on a machine that other work is loading.
    """
    import time

    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.sinks import JsonLinesSink, Result
    from openpose_plus.edge.tracking import PoseTracker

    est = PoseEstimator(bundle, backend=backend, precision=precision, threads=1)
    worker = est.workers(1)[0]  # the pipeline's own path for a frame, timed in thread CPU time
    clock = worker.clock = time.thread_time
    tracker = PoseTracker(bundle.skeleton)
    src = ReplaySource(images, frames + 10)
    sink = JsonLinesSink(os.devnull, flush_every=64)
    sink.open()
    total = dict.fromkeys(STAGE_NAMES, 0.0)
    try:
        for i in range(frames + 10):
            t0 = clock()
            frame = src.read()
            t1 = clock()
            out = worker.process(frame.image)
            t2 = clock()
            poses = tracker.update(out.poses, frame.timestamp)
            t3 = clock()
            sink.handle(Result(frame.index, frame.timestamp, poses, None, bundle.skeleton))
            t4 = clock()
            if i >= 10:  # the first frames warm caches up
                for k, ms in (("capture", (t1 - t0) * 1e3), ("preprocess", out.preprocess_ms),
                              ("infer", out.infer_ms), ("group", out.group_ms), ("track", (t3 - t2) * 1e3),
                              ("sinks", (t4 - t3) * 1e3)):
                    total[k] += ms
    finally:
        sink.close()
        est.close()
    return {k: v / frames for k, v in total.items()}


def _median_run(runs: List[Dict[str, object]]) -> Dict[str, object]:
    """Per-stage medians and the median frames/s of several runs of one mode."""
    med = dict(runs[0])
    med["fps"] = round(statistics.median(r["fps"] for r in runs), 2)
    med["ms"] = {k: round(statistics.median(r["ms"][k] for r in runs), 3) for k in STAGE_NAMES}
    med["best_ms"] = {k: min(r["best_ms"][k] for r in runs) for k in STAGE_NAMES}  # fastest frame of any run
    med["load1"] = round(statistics.median(r["load1"] for r in runs), 2)
    med["fps_all"] = [r["fps"] for r in runs]
    for k in ("capture_drops", "sink_drops", "sink_errors", "frame_errors"):
        med.pop(k, None)
    return med


def _share(ms: Dict[str, float]) -> float:
    """Everything but the network, as a fraction of the network's time."""
    return sum(v for k, v in ms.items() if k != "infer") / ms["infer"] if ms["infer"] else float("inf")


def run(args: argparse.Namespace) -> int:
    import tempfile

    from openpose_plus.edge.backends import BackendError, select
    from openpose_plus.edge.bundle import BundleError, load_bundle
    from openpose_plus.edge.estimator import PoseEstimator, cpu_cores
    from openpose_plus.edge.sources import SourceError, open_source

    cores = cpu_cores()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = _demo_bundle(args.bundle, tmp) if args.bundle.split(":")[0] == "demo" else args.bundle
            bundle = load_bundle(path)
            chosen, why = select(args.backend)
            with open_source(args.source) as src:
                images = [src.read().image.copy() for _ in range(max(1, args.distinct))]
        except (BundleError, BackendError, SourceError, ValueError, RuntimeError) as exc:
            print("bench pipeline: %s" % exc, file=sys.stderr)
            return 1
        cpu = None
        if chosen == "onnxruntime" and not args.no_cpu_profile:
            print("profiling CPU time per stage (%d frames)..." % args.frames, file=sys.stderr)
            cpu = cpu_profile(bundle, images, args.frames, args.backend, args.precision)
        # Two estimators: the sequential loop's (one session on every core) and the
        # pipeline's (its workers' sessions, cores / N threads each), made once, reused.
        seq_est = PoseEstimator(bundle, backend=args.backend, precision=args.precision, threads=args.threads or cores)
        par_est = PoseEstimator(bundle, backend=args.backend, precision=args.precision, threads=args.worker_threads)
        try:
            workers = args.workers or par_est.auto_workers()
            raw: Dict[str, List[Dict[str, object]]] = {"sequential": [], "pipelined": []}
            for i in range(max(1, args.repeat)):
                for label, est, mode, n in (("sequential", seq_est, "sequential", 1),
                                            ("pipelined", par_est, "pipelined", workers)):
                    print("run %d/%d: %s (%d frames, load %.2f)..." % (i + 1, args.repeat, label, args.frames,
                                                                       os.getloadavg()[0]), file=sys.stderr)
                    raw[label].append(measure(est, images, args.frames, mode, n, args.sink, tmp))
        finally:
            seq_est.close()
            par_est.close()
    results = {k: _median_run(v) for k, v in raw.items()}
    seq, par = results["sequential"], results["pipelined"]
    ratio = par["fps"] / seq["fps"] if seq["fps"] else 0.0
    # Each pipelined run against the sequential run just before it (same load, give or take).
    pairs = [p["fps"] / s["fps"] for s, p in zip(raw["sequential"], raw["pipelined"]) if s["fps"]]
    paired = statistics.median(pairs) if pairs else 0.0
    summary = {"backend": chosen, "reason": why, "cores": cores, "frame": list(images[0].shape),
               "input": [bundle.input_width, bundle.input_height], "repeat": args.repeat, "runs": results,
               "load_average": [round(v, 2) for v in os.getloadavg()],
               "non_network_share_of_network": round(_share(seq["ms"]), 4),
               "cpu_ms_one_thread": {k: round(v, 4) for k, v in cpu.items()} if cpu else None,
               "non_network_share_of_network_cpu": round(_share(cpu), 4) if cpu else None,
               "pipelined_speedup": round(ratio, 3), "pipelined_speedup_paired": round(paired, 3),
               "pipelined_speedup_each_pair": [round(v, 3) for v in pairs]}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print("backend %s on %d cores; frames %dx%d into %dx%d; median of %d interleaved runs"
          % (chosen, cores, images[0].shape[1], images[0].shape[0], bundle.input_width, bundle.input_height,
             args.repeat))
    print("%-11s %7s %8s %8s %8s %8s %8s %9s %6s  %s" % ("run", "threads", "capture", "prep", "infer", "group", "sinks",
                                                         "frames/s", "load", "frames/s of each run"))
    for label, r in results.items():
        m = r["ms"]
        print("%-11s %7s %8.3f %8.3f %8.3f %8.3f %8.3f %9.2f %6.2f  %s" % (
            label, "%dx%d" % (r["workers"], r["threads"]), m["capture"], m["preprocess"], m["infer"], m["group"],
            m["sinks"], r["fps"], r["load1"], " ".join("%.2f" % v for v in r["fps_all"])))
    print("(mean ms per frame in each stage; threads = inference workers x onnxruntime threads per session,"
          " 0 = onnxruntime's default; load = 1-minute load average)")
    if cpu:
        print("%-11s %7s %8.3f %8.3f %8.3f %8.3f %8.3f   (CPU ms on one thread, immune to other load)" % (
            "cpu-time", "1x1", cpu["capture"], cpu["preprocess"], cpu["infer"], cpu["group"], cpu["sinks"]))
        print("everything but the network, in CPU time: %.1f %% of the network's (target <= 10 %%)"
              % (100 * summary["non_network_share_of_network_cpu"]))
    print("everything but the network: %.1f %% of the network's time, sequential (target <= 10 %%)"
          % (100 * summary["non_network_share_of_network"]))
    print("pipelined (%d workers x %d threads) / sequential (1 x %d threads): %.2fx (target >= 1.5x)"
          % (par["workers"], par["threads"], seq["threads"], ratio))
    print("  median of the %d interleaved pairs' ratios: %.2fx (each: %s)"
          % (len(pairs), paired, " ".join("%.2f" % v for v in pairs)))
    return 0
