"""``openpose-plus build-engine BUNDLE --precision fp32|fp16|int8 [--dla N] [--device N] [--max-batch N] ...``.

The TensorRT engine of a bundle for this device, built once and cached, by the same builder and
cache the edge's TensorRT backend uses (:mod:`openpose_plus.edge.backends.trt_build`,
:mod:`openpose_plus.edge.backends.engine_cache`), so the daemon's first start finds it. The
route (which ONNX, strongly typed or builder flags, calibration cache) depends on the
TensorRT installed: 8.5/8.6 (JetPack 5, 6.0), 10.x (JetPack 6.1+, 7.0/7.1), 11.x (JetPack 7.2.2+).
The build runs on CUDA device ``--device`` (its primary context is current for the build) and
says how long it has been running while it runs.

Everything that can be checked without TensorRT is checked first (the bundle, the options),
and where TensorRT is absent the command prints the route each generation would take and exits 2.
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
    parser.add_argument("--max-batch", type=int, default=0, metavar="N",
                        help="largest batch of a dynamic-batch ONNX (its optimization profile: 1..N, optimum N; "
                             "default: the bundle's batch, as the daemon builds it)")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="engine cache folder (default: $OPENPOSE_PLUS_ENGINE_CACHE, systemd's "
                             "$CACHE_DIRECTORY/engines, or ~/.cache/openpose-plus/engines)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index to build on (default 0)")


def describe_int8_route(bundle) -> str:
    """How TensorRT 8.x/10.x builds INT8 on the GPU from this bundle, in words."""
    from openpose_plus.edge.backends.trt_build import int8_route as route

    how = route(bundle)
    if how == "qdq":
        return "explicit: QDQ model %s" % bundle.models["int8"]
    if how == "cache":
        return "implicit: FP32 graph + calibration cache %s" % bundle.meta.get("calibration_cache")
    return "none: no TensorRT-ready INT8 model and no calibration cache"


def _say(line: str) -> None:
    print("build-engine: %s" % line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.bundle import BundleError, load_bundle
    from openpose_plus.edge.backends.engine_cache import EngineCache
    from openpose_plus.edge.backends.trt_api import Generation
    from openpose_plus.edge.backends.trt_build import BuildOptions, engine_for, import_tensorrt, plan_build, routes

    try:
        bundle = load_bundle(args.bundle)
        options = BuildOptions(precision=args.precision, dla_core=args.dla, gpu_fallback=not args.no_gpu_fallback,
                               workspace_mb=args.workspace,
                               max_batch=args.max_batch or bundle.batch.size).validate(bundle)
    except (BundleError, ValueError) as exc:
        _say(str(exc))
        return 1
    if args.no_gpu_fallback and args.dla is None:
        _say("--no-gpu-fallback only means something with --dla")
        return 1
    if args.device < 0:
        _say("--device must be 0 or more, got %d" % args.device)
        return 1
    plan = {"bundle": bundle.source, "precision": options.precision, "dla_core": options.dla_core,
            "workspace_mb": options.workspace_mb, "max_batch": options.max_batch, "device": args.device,
            "routes": routes(bundle, options)}
    if options.precision == "int8":
        plan["int8"] = describe_int8_route(bundle)
    try:
        trt = import_tensorrt()
    except RuntimeError as exc:
        _say(str(exc))
        _say("run this on the device; the bundle and options are fine, and each TensorRT would build: %s"
             % json.dumps(plan, indent=1))
        return EXIT_NO_TENSORRT
    try:
        gen = Generation(trt.__version__)
        chosen = plan_build(bundle, options, gen)
    except ValueError as exc:  # a TensorRT too old, or no route to this precision on it
        _say(str(exc))
        return 1
    plan.update({"tensorrt": str(trt.__version__), "route": chosen.route, "onnx": chosen.onnx,
                 "how": chosen.describe()})
    cache = EngineCache(args.cache)
    try:
        built = engine_for(bundle, options, cache, trt=trt, device=args.device, report=_say)
    except Exception as exc:  # TensorRT and pycuda raise many kinds (RuntimeError, TypeError, pycuda's Error...)
        _say("%s: %s" % (type(exc).__name__, exc))
        return 1
    plan.update({"engine": cache.paths(built.key)[0], "bytes": len(built.engine), "built": built.built,
                 "reason": built.reason, "key": built.key.as_dict()})
    del plan["routes"]
    print(json.dumps(plan, indent=1))
    return 0
