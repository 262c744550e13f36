"""``openpose-plus synth-data OUT --images N --seed S [--val N]``: a synthetic COCO-format dataset.

Writes COCO 2017's layout (``train2017/``, ``val2017/``, ``annotations/person_keypoints_*.json``)
so OUT works as ``DATA.coco_dir``, as custom data, and for ``evaluate --data OUT``.
"""
from __future__ import annotations

import argparse
import os
import sys

from openpose_plus.commands._options import size_type

__all__ = ["add_arguments", "run"]


HELP = "write a synthetic COCO-format dataset"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output directory")
    parser.add_argument("--images", type=int, required=True, help="training images")
    parser.add_argument("--val", type=int, default=0, help="validation images (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same dataset")
    parser.add_argument("--size", type=size_type(minimum=32), default=(640, 480), help="image size WxH (default 640x480)")
    parser.add_argument("--people", type=int, nargs=2, default=(1, 5), metavar=("MIN", "MAX"),
                        help="people per image (default 1 5)")
    parser.add_argument("--height", type=float, nargs=2, default=(0.12, 1.0), metavar=("MIN", "MAX"),
                        help="person heights as fractions of the image height (default 0.12 1.0)")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality (default 92)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from openpose_plus.host_training.data.synthetic import SynthOptions, write_dataset

    if args.images <= 0 or args.val < 0:
        print("synth-data: --images must be positive and --val zero or more", file=sys.stderr)
        return 2
    lo, hi = args.people
    if not 0 <= lo <= hi:
        print("synth-data: --people needs 0 <= MIN <= MAX, got %d %d" % (lo, hi), file=sys.stderr)
        return 2
    if not 0 < args.height[0] <= args.height[1]:
        print("synth-data: --height needs 0 < MIN <= MAX, got %g %g" % tuple(args.height), file=sys.stderr)
        return 2
    if not 1 <= args.quality <= 100 or args.seed < 0:
        print("synth-data: --quality must be 1..100 and --seed zero or more", file=sys.stderr)
        return 2
    opts = SynthOptions(width=args.size[0], height=args.size[1], min_people=lo, max_people=hi,
                        quality=args.quality, seed=args.seed,
                        min_height=args.height[0], max_height=args.height[1])
    paths = write_dataset(args.out, args.images, args.val, opts, workers=max(1, args.workers),
                          show_progress=not args.quiet)
    for split, path in paths.items():
        print("%s: %s" % (split, path))
    return 0
