"""``openpose-plus tune-grouping BUNDLE --annotations A --images D``: the grouping parameters that
score best on your own val set, written into the bundle with the AP they reached.

The network runs once per image; then a bounded search (coordinate descent over the fields and
candidates of :data:`openpose_plus.evaluation.tune.SEARCH_SPACE`, at most ``--rounds`` rounds)
regroups the kept maps and scores each trial with COCOeval. From then on ``evaluate``,
``calibrate``, ``run``, ``serve`` and ``PoseEstimator`` group with the winner unless told otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ._options import add_precision, at_least

__all__ = ["add_arguments", "run"]

HELP = "search the grouping parameters on a val set; the bundle keeps the winner"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (directory or .tar), rewritten in place")
    parser.add_argument("--data", help="COCO-layout folder with annotations/person_keypoints_val2017.json and val2017/")
    parser.add_argument("--annotations", help="COCO keypoint annotation file")
    parser.add_argument("--images", help="its image folder")
    parser.add_argument("--max-images", type=at_least(0), default=0, metavar="N", help="tune on the first N images (0: all)")
    parser.add_argument("--rounds", type=at_least(1), default=2, help="rounds over every field (default 2; a round that "
                                                             "changes nothing ends the search)")
    add_precision(parser, default="fp32", choices=("fp32", "int8"), what="the graph whose maps are grouped")
    parser.add_argument("--from-defaults", action="store_true",
                        help="start from the default parameters instead of the bundle's own")
    parser.add_argument("--dry-run", action="store_true", help="report the winner, leave the bundle as it is")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from openpose_plus.calibration.report import rewrite_bundle
    from openpose_plus.edge.bundle import BundleError, load_bundle
    from openpose_plus.edge.grouping import GroupParams
    from openpose_plus.evaluation.coco import EvalError, EvalSettings
    from openpose_plus.evaluation.tune import tune

    from .evaluate import bundle_map_fn

    annotations, images = args.annotations, args.images
    if args.data:
        annotations = annotations or os.path.join(args.data, "annotations", "person_keypoints_val2017.json")
        images = images or os.path.join(args.data, "val2017")
    if not annotations or not images:
        print("tune-grouping: give the val set: --annotations FILE --images DIR (or --data DIR)", file=sys.stderr)
        return 2
    try:
        bundle = load_bundle(args.bundle)
        start = GroupParams() if args.from_defaults else bundle.group_params()
        settings = EvalSettings(bundle.input_width, bundle.input_height, bundle.stride, bundle.skeleton,
                                group=start, pad_value=bundle.pad_value)
        result = tune(annotations, images, bundle_map_fn(bundle, args.precision), settings, start,
                      max_images=args.max_images, rounds=args.rounds, show_progress=not args.quiet)
        record = result.record(val=os.path.basename(str(annotations)), precision=args.precision)
        out = {"AP_before": round(result.start_ap, 4), "AP": round(result.ap, 4), "changes": result.changes(),
               "images": result.images, "trials": len(result.trials),
               "ms_per_image": {"network": round(result.network_ms, 2), "grouping": round(result.group_ms, 3)}}
        if not args.dry_run:
            out["bundle"] = rewrite_bundle(bundle, {}, None, grouping=record)
    except (EvalError, BundleError, ValueError) as exc:
        print("tune-grouping: %s" % exc, file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1))
    if not args.dry_run and bundle.accuracy:
        print("tune-grouping: the accuracy per precision in meta.json was measured with the earlier parameters; "
              "calibrate again to measure it with these", file=sys.stderr)
    return 0
