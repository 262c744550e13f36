"""``openpose-plus check-device BUNDLE [--frames N] [--source URI] [--report FILE]``: after
installing on a Jetson, check the device path end to end.

Every precision the bundle offers is opened on TensorRT (the engine built, or found in the
cache), its maps compared with onnxruntime's FP32 maps of the same frames, and N frames run
through the real pipeline; frames/s per stage and whether the frame path is zero-copy are
printed and written to a JSON report (the work is :mod:`openpose_plus.edge.device_check`).
Exit 0 when every precision built, agreed and ran; 1 when one did not (it says why); 2 where
TensorRT, pycuda or a GPU is absent (it says which).
"""
from __future__ import annotations

import argparse
import logging
import sys

from openpose_plus.commands._options import PRECISIONS, add_precision

__all__ = ["add_arguments", "run"]

HELP = "check the device path: each precision built, compared with onnxruntime, timed through the pipeline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (directory or .tar)")
    parser.add_argument("--frames", type=int, default=200, metavar="N", help="frames through the pipeline per precision")
    parser.add_argument("--compare-frames", type=int, default=8, metavar="N",
                        help="frames whose maps are compared with onnxruntime's")
    parser.add_argument("--source", default=None, metavar="URI",
                        help="frames from here (csi://0, /dev/video0, a video; default: synthetic people)")
    add_precision(parser, default=None, choices=PRECISIONS, what="check only this precision (otherwise every "
                  "one the bundle offers)")
    parser.add_argument("--report", default="device-check.json", metavar="FILE", help="the JSON report")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="engine cache folder (default: the one the service uses, see build-engine --help)")
    parser.add_argument("--dla", type=int, default=None, metavar="N", help="build for DLA core N (Xavier, AGX Orin)")


def _say(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.bundle import BundleError
    from openpose_plus.edge.device_check import (EXIT_FAILED, EXIT_NO_DEVICE, EXIT_OK, CheckOptions, check_device,
                                                 write_report)

    # The builder's progress (elapsed time, TensorRT's phases) and the cache's notes go to
    # stderr while they happen: a first build takes minutes.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("check-device: %(message)s"))
    loggers = [logging.getLogger(n) for n in ("openpose_plus.trt_build", "openpose_plus.engine_cache")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False  # once, here, whatever the root logger has
    try:
        options = CheckOptions(frames=args.frames, compare_frames=args.compare_frames, source=args.source,
                               precisions=[args.precision] if args.precision else None, cache_dir=args.cache,
                               dla_core=args.dla).validate()
        report = check_device(args.bundle, options, say=_say)
    except (BundleError, ValueError, OSError) as exc:
        print("check-device: %s" % exc, file=sys.stderr)
        return EXIT_FAILED
    finally:
        for lg, (level, propagate) in zip(loggers, saved):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
    try:
        write_report(report, args.report)
    except OSError as exc:
        print("check-device: %s" % exc, file=sys.stderr)
        return EXIT_FAILED
    if report["reason"] and not report["precisions"]:
        print("check-device: %s" % report["reason"], file=sys.stderr)
        print("check-device: report written to %s; run this on the device (JetPack's TensorRT, pycuda built there)"
              % args.report, file=sys.stderr)
        return EXIT_NO_DEVICE
    verdict = "every precision built, agreed with onnxruntime and ran" if report["ok"] else report["reason"]
    _say("%s: %s; report %s" % ("ok" if report["ok"] else "FAILED", verdict, args.report))
    return EXIT_OK if report["ok"] else EXIT_FAILED
