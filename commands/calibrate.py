"""``openpose-plus calibrate BUNDLE --images DIR --precision fp16|int8``: calibrate, measure, record.

What each precision means, what TensorRT builds from it and how a precision is brought
within its AP budget: :mod:`openpose_plus.calibration.calibrate`. Exit 0: stored; 1: bad
input, or a model TensorRT would not import (the message names the node); 3: the
precision asked for is over its AP budget (the report is stored, the model is not).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from openpose_plus.commands._options import add_precision

__all__ = ["add_arguments", "run"]

HELP = "FP16 / INT8 models of a bundle for TensorRT, with their accuracy cost"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (directory or .tar), rewritten in place")
    parser.add_argument("--images", required=True, help="folder of representative images (calibration)")
    add_precision(parser, choices=("fp16", "int8"), required=True, what="what to calibrate")
    parser.add_argument("--method", choices=("entropy", "percentile", "minmax"), default="entropy",
                        help="INT8 activation range method (default entropy, as TensorRT's calibrator)")
    parser.add_argument("--num-images", type=int, default=None, metavar="N",
                        help="calibration images to use; fewer in --images is an error "
                             "(default: the first 64, or all when there are fewer)")
    parser.add_argument("--max-ap-drop", type=float, default=1.0, metavar="POINTS",
                        help="AP points FP16/INT8 may lose against FP32 before layers fall back (default 1.0)")
    parser.add_argument("--max-fallback", type=int, default=16, metavar="N",
                        help="most layers the sensitivity search may keep in FP32 (default 16)")
    parser.add_argument("--val-images", help="held-out images (COCO-format set) for the AP check")
    parser.add_argument("--val-annotations", help="the held-out set's COCO keypoint annotation file")
    parser.add_argument("--max-val-images", type=int, default=0, metavar="N", help="use only N val images (0 = all)")
    parser.add_argument("--tune-grouping", action="store_true",
                        help="search the grouping parameters on the val set first (FP32 maps); every precision "
                             "is scored with the winner, which the bundle keeps")
    parser.add_argument("--trt-version", default=None, metavar="X.Y.Z",
                        help="TensorRT version named in calibration.cache's header (default 10.3.0, JetPack "
                             "6.1/6.2); the device rewrites the header to its own version, so this matters only "
                             "to tools that read the cache directly (trtexec --calib)")
    parser.add_argument("--int8-form", choices=("tensorrt", "onnxruntime"), default="tensorrt",
                        help="QDQ model for TensorRT (symmetric int8, default) or for onnxruntime's CPU "
                             "(uint8 activations, ~1.6x faster there; TensorRT then builds from the cache)")
    parser.add_argument("--no-per-channel", action="store_true", help="per-tensor weight scales (default per-channel)")
    parser.add_argument("--work-dir", help="keep intermediate models here (default: a temporary folder)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.bundle import BundleError

    from openpose_plus.calibration.accuracy import ValSet
    from openpose_plus.calibration.calibrate import CalibrationFailed, calibrate_bundle
    from openpose_plus.calibration.images import CalibrationError

    val = None
    if bool(args.val_images) != bool(args.val_annotations):
        print("calibrate: --val-images and --val-annotations go together", file=sys.stderr)
        return 2
    if args.tune_grouping and not args.val_images:
        print("calibrate: --tune-grouping needs the val set (--val-images, --val-annotations)", file=sys.stderr)
        return 2
    if args.val_images:
        if not os.path.isdir(args.val_images):
            print("calibrate: val image folder %s does not exist" % args.val_images, file=sys.stderr)
            return 1
        if not os.path.isfile(args.val_annotations):
            print("calibrate: val annotation file %s does not exist" % args.val_annotations, file=sys.stderr)
            return 1
        val = ValSet(args.val_annotations, args.val_images, args.max_val_images)
    if args.max_ap_drop < 0:
        print("calibrate: --max-ap-drop must be 0 or more AP points", file=sys.stderr)
        return 2
    try:
        kwargs = {"trt_version": args.trt_version} if args.trt_version else {}
        out = calibrate_bundle(args.bundle, args.images, args.precision, args.method, args.num_images,
                               args.max_ap_drop, args.max_fallback, val, per_channel=not args.no_per_channel,
                               work_dir=args.work_dir, quiet=args.quiet, form=args.int8_form,
                               tune_grouping=args.tune_grouping, **kwargs)
    except CalibrationFailed as exc:
        print("calibrate: %s rejected: %s" % (args.precision.upper(), exc), file=sys.stderr)
        return 3
    except (BundleError, CalibrationError, ValueError, FileNotFoundError) as exc:
        print("calibrate: %s" % exc, file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0
