"""``openpose-plus bench pipeline BUNDLE``: per-stage time and end-to-end frames/s.

Runs the same frames through the sequential loop and the pipelined one on the chosen
backend and prints, for each, the mean ms of every stage (capture, preprocess, infer,
group, sinks) and the frames/s end to end. Frames are taken from ``--source`` once and
replayed from memory, so ``capture`` measures what a camera costs the loop (a copy into
the ring), not how fast this machine can render synthetic people.

Targets (issue 6): everything but the network at most 10 % of the network's time;
pipelined throughput at least 1.5x the sequential loop on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

import numpy as np

from .sources import Source, SourceEnded

__all__ = ["add_arguments", "run", "ReplaySource", "measure"]


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (directory or .tar)")
    parser.add_argument("--source", default="synthetic://640x480?people=3", help="where the frames come from")
    parser.add_argument("--frames", type=int, default=300, help="frames per run (default %(default)s)")
    parser.add_argument("--distinct", type=int, default=30, help="distinct frames taken from the source")
    parser.add_argument("--backend", default="onnxruntime", choices=("auto", "tensorrt", "onnxruntime"))
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=0,
                        help="onnxruntime threads for the sequential loop (0: one per core)")
    parser.add_argument("--workers", type=int, default=0,
                        help="inference workers when pipelined (0: one per core on the CPU backend)")
    parser.add_argument("--sink", default="jsonl", choices=("none", "jsonl", "openpose_json"),
                        help="sink to include (written to a temporary place)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _sinks(kind: str, tmp: str):
    from .sinks import JsonLinesSink, OpenPoseJsonSink

    if kind == "jsonl":
        return [JsonLinesSink(os.devnull, flush_every=64)]
    if kind == "openpose_json":
        return [OpenPoseJsonSink(tmp)]
    return []


def measure(bundle, images: List[np.ndarray], frames: int, mode: str, backend: str, precision: str,
            threads: int, workers: int, sink: str, tmp: str) -> Dict[str, object]:
    from .estimator import PoseEstimator
    from .pipeline import Pipeline

    est = PoseEstimator(bundle, backend=backend, precision=precision, threads=threads)
    try:
        Pipeline(est, ReplaySource(images, min(20, frames)), mode=mode, infer_workers=workers).run()  # warm-up
        p = Pipeline(est, ReplaySource(images, frames), _sinks(sink, tmp), mode=mode, infer_workers=workers).run()
    finally:
        est.close()
    out = p.summary()
    out["threads"], out["workers"] = threads, workers
    return out


def cpu_profile(bundle, images: List[np.ndarray], frames: int, backend: str, precision: str) -> Dict[str, float]:
    """CPU ms per stage on one thread (the network on one onnxruntime thread, run by the caller).

    Thread CPU time does not count time spent waiting for a core, so unlike the wall-clock
    runs this stays right on a machine that other work is loading.
    """
    import time

    from .estimator import PoseEstimator
    from .sinks import JsonLinesSink, Result

    est = PoseEstimator(bundle, backend=backend, precision=precision, threads=1)
    src = ReplaySource(images, frames + 10)
    sink = JsonLinesSink(os.devnull, flush_every=64)
    sink.open()
    total = dict.fromkeys(("capture", "preprocess", "infer", "group", "sinks"), 0.0)
    clock = time.thread_time
    try:
        for i in range(frames + 10):
            t0 = clock()
            frame = src.read()
            t1 = clock()
            lb = est.preprocessor(frame.image, est.buffers.input)
            t2 = clock()
            est.backend.infer(est.buffers)
            t3 = clock()
            poses = est.group(est.buffers).to_image(lb, bundle.stride)
            t4 = clock()
            sink.handle(Result(frame.index, frame.timestamp, poses, None, bundle.skeleton))
            t5 = clock()
            if i >= 10:  # the first frames warm caches up
                for k, a, b in (("capture", t0, t1), ("preprocess", t1, t2), ("infer", t2, t3),
                                ("group", t3, t4), ("sinks", t4, t5)):
                    total[k] += (b - a) * 1e3
    finally:
        sink.close()
        est.close()
    return {k: v / frames for k, v in total.items()}


def run(args: argparse.Namespace) -> int:
    import tempfile

    from .backends import BackendError, select
    from .bundle import BundleError, load_bundle
    from .sources import SourceError, open_source

    cores = os.cpu_count() or 1
    try:
        bundle = load_bundle(args.bundle)
        chosen, why = select(args.backend)
        with open_source(args.source) as src:
            images = [src.read().image.copy() for _ in range(max(1, args.distinct))]
    except (BundleError, BackendError, SourceError) as exc:
        print("bench pipeline: %s" % exc, file=sys.stderr)
        return 1
    cpu = chosen == "onnxruntime"
    seq_threads = args.threads or cores
    workers = args.workers or (cores if cpu else 1)
    par_threads = max(1, cores // workers) if cpu else 0
    # Three runs: the sequential loop with the network on one thread per inference (the
    # pipelined workers' setting: pipelining alone), with the network on every core (the
    # best a sequential loop does here), and the pipeline.
    runs = [("sequential", "sequential", par_threads, 1)]
    if cpu and seq_threads != par_threads:
        runs.append(("sequential-%dt" % seq_threads, "sequential", seq_threads, 1))
    runs.append(("pipelined", "pipelined", par_threads, workers))
    results = {}
    cpu = None
    if chosen == "onnxruntime":
        print("profiling CPU time per stage (%d frames)..." % args.frames, file=sys.stderr)
        cpu = cpu_profile(bundle, images, args.frames, args.backend, args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        for label, mode, threads, n_workers in runs:
            print("running %s (%d frames)..." % (label, args.frames), file=sys.stderr)
            results[label] = measure(bundle, images, args.frames, mode, args.backend, args.precision,
                                     threads, n_workers, args.sink, tmp)
    par = results["pipelined"]
    best_seq = max((r for k, r in results.items() if k != "pipelined"), key=lambda r: r["fps"])
    same_seq = results["sequential"]

    def share(r):  # everything but the network, as a fraction of the network's time
        m = r["ms"]
        return sum(v for k, v in m.items() if k != "infer") / m["infer"] if m["infer"] else float("inf")

    summary = {"backend": chosen, "reason": why, "cores": cores, "frame": list(images[0].shape),
               "input": [bundle.input_width, bundle.input_height], "runs": results,
               "non_network_share_of_network": round(max(share(r) for k, r in results.items() if k != "pipelined"), 4),
               "cpu_ms_one_thread": {k: round(v, 4) for k, v in cpu.items()} if cpu else None,
               "non_network_share_of_network_cpu": round(share({"ms": cpu}), 4) if cpu else None,
               "pipelined_speedup_same_threads": round(par["fps"] / same_seq["fps"], 3) if same_seq["fps"] else 0.0,
               "pipelined_speedup_vs_best_sequential": round(par["fps"] / best_seq["fps"], 3) if best_seq["fps"] else 0.0}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print("backend %s on %d cores; frames %dx%d into %dx%d" % (chosen, cores, images[0].shape[1], images[0].shape[0],
                                                            bundle.input_width, bundle.input_height))
    print("%-14s %7s %8s %8s %8s %8s %8s %9s" % ("run", "threads", "capture", "prep", "infer", "group", "sinks",
                                                "frames/s"))
    for label, r in results.items():
        m = r["ms"]
        print("%-14s %7s %8.3f %8.3f %8.3f %8.3f %8.3f %9.1f" % (
            label, "%dx%d" % (r["workers"], r["threads"]), m["capture"], m["preprocess"], m["infer"], m["group"],
            m["sinks"], r["fps"]))
    print("(mean ms per frame in each stage; threads = inference workers x onnxruntime threads)")
    if cpu:
        print("%-14s %7s %8.3f %8.3f %8.3f %8.3f %8.3f   (CPU ms, immune to other load)" % (
            "cpu-time", "1x1", cpu["capture"], cpu["preprocess"], cpu["infer"], cpu["group"], cpu["sinks"]))
        print("everything but the network, in CPU time: %.1f %% of the network's (target <= 10 %%)"
              % (100 * summary["non_network_share_of_network_cpu"]))
    print("everything but the network: %.1f %% of the network's time, sequential (target <= 10 %%)"
          % (100 * summary["non_network_share_of_network"]))
    print("pipelined / sequential, same network threads: %.2fx (target >= 1.5x)" % summary["pipelined_speedup_same_threads"])
    print("pipelined / best sequential: %.2fx" % summary["pipelined_speedup_vs_best_sequential"])
    return 0
    print("backend %s on %d cores; frames %dx%d into %dx%d" % (chosen, cores, images[0].shape[1], images[0].shape[0],
                                                            bundle.input_width, bundle.input_height))
    print("%-11s %8s %8s %8s %8s %8s %9s" % ("mode", "capture", "prep", "infer", "group", "sinks", "frames/s"))
    for mode, r in results.items():
        m = r["ms"]
        print("%-11s %8.3f %8.3f %8.3f %8.3f %8.3f %9.1f" % (mode, m["capture"], m["preprocess"], m["infer"],
                                                            m["group"], m["sinks"], r["fps"]))
    print("(ms per frame per stage; pipelined: %d workers x %d threads, sequential: %d threads)"
          % (workers, par_threads, seq_threads))
    print("everything but the network: %.1f %% of the network's time (target <= 10 %%)" % (100 * overhead))
    print("pipelined / sequential: %.2fx (target >= 1.5x)" % speedup)
    return 0
