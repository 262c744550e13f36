"""``openpose-plus bench backend BUNDLE``: onnxruntime frames/s on this CPU for FP32, FP16 and INT8.

At the bundle's input size, one frame per run (the device's batch), after warm-up; the
precisions take turns frame by frame and the median time counts.
FP16 is the float16 graph made as ``calibrate`` makes it; INT8 is the bundle's QDQ model
(run ``calibrate --precision int8`` first). The target is INT8 at least 1.5x FP32.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from openpose_plus.commands._options import at_least

__all__ = ["add_arguments", "run", "bench_models", "TARGET_INT8_SPEEDUP"]

TARGET_INT8_SPEEDUP = 1.5
_LEVELS = ("disable", "basic", "extended", "all")  # edge.backends.onnxruntime_backend.OPTIMIZATION_LEVELS


HELP = "onnxruntime FP32 / FP16 / INT8 frames/s"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (directory or .tar)")
    parser.add_argument("--precisions", default="fp32,fp16,int8", help="comma-separated (default fp32,fp16,int8)")
    parser.add_argument("--frames", type=at_least(1), default=30, help="timed frames per precision (default 30)")
    parser.add_argument("--warmup", type=at_least(0), default=3, help="untimed frames first (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = all cores)")
    parser.add_argument("--opt-level", choices=_LEVELS, default="all", help="onnxruntime graph optimisation")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def bench_models(paths: Dict[str, str], input_name: str, shape, frames: int, warmup: int, threads: int = 0,
                 level: str = "all") -> Dict[str, Dict[str, float]]:
    """frames/s and ms per frame of each ONNX model on one uint8 frame.

    The models take turns frame by frame, so a load that comes and goes on a shared machine
    slows them alike; frames/s is from the median time (what a steady stream sees).
    """
    from openpose_plus.edge.backends.onnxruntime_backend import CPU, open_session

    # spin: each session runs alone here, as onnxruntime's own benchmarks run it.
    sessions = {k: open_session(p, threads, CPU, level, spin=True) for k, p in paths.items()}
    feed = {input_name: np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)}
    for session in sessions.values():
        for _ in range(warmup):
            session.run(None, feed)
    times: Dict[str, List[float]] = {k: [] for k in sessions}
    for _ in range(frames):
        for k, session in sessions.items():
            t0 = time.perf_counter()
            session.run(None, feed)
            times[k].append(time.perf_counter() - t0)
    out = {}
    for k, t in times.items():
        median = float(np.median(t))
        out[k] = {"fps": 1.0 / median, "ms_median": 1000 * median, "ms_min": 1000 * min(t),
                  "ms_mean": 1000 * sum(t) / len(t)}
    return out


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.bundle import BundleError, load_bundle

    from openpose_plus.calibration.fp16 import convert_fp16

    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in precisions if p not in ("fp32", "fp16", "int8")]
    if unknown or not precisions:
        print("bench backend: unknown precision(s) %s (fp32, fp16, int8)" % ", ".join(unknown), file=sys.stderr)
        return 2
    try:
        bundle = load_bundle(args.bundle)
    except BundleError as exc:
        print("bench backend: %s" % exc, file=sys.stderr)
        return 1
    shape = (1, bundle.input_height, bundle.input_width, 3)
    results: Dict[str, Dict[str, float]] = {}
    skipped: Dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="openpose-plus-bench-") as tmp:
        paths: Dict[str, Optional[str]] = {"fp32": bundle.model_path("fp32"), "fp16": None,
                                           "int8": os.path.join(bundle.path, bundle.models["int8"])
                                           if "int8" in bundle.models else None}
        if "fp16" in precisions:  # the bundle's own FP16 model, else a plain conversion of the FP32 one
            paths["fp16"] = (os.path.join(bundle.path, bundle.models["fp16"]) if "fp16" in bundle.models else
                             convert_fp16(paths["fp32"], os.path.join(tmp, "model.fp16.onnx")).path)  # type: ignore[arg-type]
        todo: Dict[str, str] = {}
        for prec in precisions:
            if paths[prec] is None:
                skipped[prec] = "bundle has no INT8 QDQ model: run `openpose-plus calibrate --precision int8` first"
            else:
                todo[prec] = paths[prec]  # type: ignore[assignment]
        if todo:
            print("bench backend: %s, %d frames each, taking turns ..." % (", ".join(todo), args.frames),
                  file=sys.stderr)
            results = bench_models(todo, bundle.input_name, shape, args.frames, args.warmup, args.threads,
                                   args.opt_level)
    base = results.get("fp32", {}).get("fps")
    for prec, r in results.items():
        if base:
            r["speedup_vs_fp32"] = r["fps"] / base
    verdict = None
    if "int8" in results and base:
        speed = results["int8"]["speedup_vs_fp32"]
        verdict = "INT8 %.2fx FP32: %s the %.1fx target" % (speed, "meets" if speed >= TARGET_INT8_SPEEDUP else "MISSES",
                                                            TARGET_INT8_SPEEDUP)
    if args.json:
        print(json.dumps({"input": [bundle.input_width, bundle.input_height], "threads": args.threads,
                          "opt_level": args.opt_level, "results": results, "skipped": skipped, "verdict": verdict},
                         indent=1))
        return 0
    print("onnxruntime on CPU, %dx%d input, %s threads, optimisation %s"
          % (bundle.input_width, bundle.input_height, args.threads or "all", args.opt_level))
    print("%-9s %9s %11s %9s" % ("precision", "frames/s", "ms/frame", "vs fp32"))  # ms: median
    for prec in precisions:
        if prec in results:
            r = results[prec]
            print("%-9s %9.2f %11.2f %8.2fx" % (prec, r["fps"], r["ms_median"], r.get("speedup_vs_fp32", 0.0)))
        else:
            print("%-9s skipped: %s" % (prec, skipped[prec]))
    if verdict:
        print(verdict)
    return 0
