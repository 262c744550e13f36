"""``openpose-plus build-engine BUNDLE --precision fp32|fp16|int8 [--dla N] [--workspace MB] [--cache DIR]``.

The TensorRT engine of a bundle for this device, built once and cached (keyed by TensorRT
version, GPU name and compute capability, precision, DLA core and the ONNX's sha256), by
the same builder and cache the edge's TensorRT backend uses (:mod:`openpose_plus.edge.backends.trt_build`,
:mod:`openpose_plus.edge.backends.engine_cache`), so the daemon's first start finds it.

Everything that can be checked without TensorRT is checked first (the bundle, the options,
the INT8 source), so a mistake is reported on any machine; where TensorRT is absent the
command says so and exits 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from openpose_plus.commands._options import PRECISIONS, add_precision

__all__ = ["add_arguments", "run", "EXIT_NO_TENSORRT", "describe_int8_route"]

EXIT_NO_TENSORRT = 2


HELP = "build (or load) the TensorRT engine of a bundle"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (directory or .tar)")
    add_precision(parser, default="fp16", choices=PRECISIONS, what="the engine's precision")
    parser.add_argument("--dla", type=int, default=None, metavar="N",
                        help="DLA core on Xavier/Orin (layers it cannot run fall back to the GPU)")
    parser.add_argument("--no-gpu-fallback", action="store_true", help="with --dla: fail instead of using the GPU")
    parser.add_argument("--workspace", type=int, default=1024, metavar="MB", help="builder workspace limit (MiB)")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="engine cache folder (default: $OPENPOSE_PLUS_ENGINE_CACHE, systemd's "
                             "$CACHE_DIRECTORY/engines, or ~/.cache/openpose-plus/engines)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")


def describe_int8_route(bundle) -> str:
    """How an INT8 engine is built from this bundle, in words (edge/trt_build decides)."""
    from openpose_plus.edge.backends.trt_build import int8_route as route

    how = route(bundle)
    if how == "qdq":
        return "explicit: QDQ model %s" % bundle.models["int8"]
    if how == "cache":
        return "implicit: FP32 graph + calibration cache %s" % bundle.meta.get("calibration_cache")
    return "none: no TensorRT-ready INT8 model and no calibration cache"


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.bundle import BundleError, load_bundle
    from openpose_plus.edge.backends.engine_cache import EngineCache
    from openpose_plus.edge.backends.trt_build import BuildOptions, engine_for, import_tensorrt

    try:
        bundle = load_bundle(args.bundle)
        options = BuildOptions(precision=args.precision, dla_core=args.dla, gpu_fallback=not args.no_gpu_fallback,
                               workspace_mb=args.workspace).validate(bundle)
    except (BundleError, ValueError) as exc:
        print("build-engine: %s" % exc, file=sys.stderr)
        return 1
    if args.no_gpu_fallback and args.dla is None:
        print("build-engine: --no-gpu-fallback only means something with --dla", file=sys.stderr)
        return 1
    plan = {"bundle": bundle.source, "precision": options.precision, "onnx": options.onnx_path(bundle),
            "dla_core": options.dla_core, "workspace_mb": options.workspace_mb}
    if options.precision == "int8":
        plan["int8"] = describe_int8_route(bundle)
    try:
        trt = import_tensorrt()
    except RuntimeError as exc:
        print("build-engine: %s" % exc, file=sys.stderr)
        print("build-engine: run this on the device; the bundle and options are fine: %s" % json.dumps(plan),
              file=sys.stderr)
        return EXIT_NO_TENSORRT
    cache = EngineCache(args.cache)
    try:
        engine, key, built, reason = engine_for(bundle, options, cache, trt=trt, device=args.device)
    except (RuntimeError, ValueError) as exc:
        print("build-engine: %s" % exc, file=sys.stderr)
        return 1
    plan.update({"engine": cache.paths(key)[0], "bytes": len(engine), "built": built, "reason": reason,
                 "key": key.as_dict()})
    print(json.dumps(plan, indent=1))
    return 0
