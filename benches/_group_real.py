"""``openpose-plus bench group --real BUNDLE --images DIR --annotations FILE``: the C grouping on
maps from a real network (not a bench of its own: its name starts with ``_``).

The bundle's network (onnxruntime, as ``evaluate`` runs it) makes each image's maps once; then
each row groups all of them with its parameters, scores the people with COCOeval (the
TF-free evaluation, as ``evaluate`` and ``tune-grouping`` do) and times ``Grouper.group`` on one
thread: per image the median of ``--repeat`` calls, then the median and the largest over the
images. Rows: the bundle's own parameters (``--group FIELD=VALUE`` changes them), the
runtime's defaults, and the core's 0.1 defaults (chosen on synthetic maps), for comparison.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

from openpose_plus.commands._options import at_least

__all__ = ["add_arguments", "run", "rows", "time_grouping"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--real", metavar="BUNDLE", help="group a real network's maps: its bundle (directory or "
                                                       ".tar); needs --images and --annotations")
    parser.add_argument("--images", help="--real: the images (COCO layout's image folder)")
    parser.add_argument("--annotations", help="--real: their COCO keypoint annotations")
    parser.add_argument("--max-images", type=at_least(0), default=0, metavar="N",
                        help="--real: the first N images (0: all)")
    parser.add_argument("--group", action="append", default=[], metavar="FIELD=VALUE",
                        help="--real: change a grouping parameter of the bundle's row (repeatable)")


def rows(bundle_params, overrides: Dict[str, object]) -> List[Tuple[str, object]]:
    """``(label, GroupParams)`` of each row, without repeats."""
    from openpose_plus.edge.grouping import DEFAULTS_0_1, GroupParams

    own = dataclasses.replace(bundle_params, **overrides)
    label = "bundle" + ("".join(" %s=%s" % kv for kv in overrides.items()) if overrides else "")
    out = [(label, own)]
    for name, params in (("defaults", GroupParams()), ("0.1 defaults", GroupParams(**DEFAULTS_0_1))):
        if all(params != p for _, p in out):
            out.append((name, params))
    return out


def time_grouping(grouper, records: Sequence, repeat: int) -> Tuple[float, float]:
    """Median and largest, over the images, of each image's median ``Grouper.group`` ms."""
    per_image = []
    for r in records:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            grouper.group(r.heatmaps, r.pafs)
            times.append(time.perf_counter() - t)
        per_image.append(float(np.median(times)))
    return 1e3 * float(np.median(per_image)), 1e3 * float(np.max(per_image))


def run(args: argparse.Namespace) -> int:
    from openpose_plus.commands.evaluate import bundle_map_fn
    from openpose_plus.edge.bundle import BundleError, load_bundle
    from openpose_plus.edge.grouping import parse_overrides
    from openpose_plus.evaluation.coco import EvalError, EvalSettings, load_coco, make_grouper
    from openpose_plus.evaluation.tune import collect_maps, score

    if not args.images or not args.annotations:
        print("bench group --real: give the images and their annotations: --images DIR --annotations FILE",
              file=sys.stderr)
        return 2
    try:
        bundle = load_bundle(args.real)
        overrides = parse_overrides(args.group)
        table = rows(bundle.group_params(), overrides)
        settings = EvalSettings(bundle.input_width, bundle.input_height, bundle.stride, bundle.skeleton,
                                pad_value=bundle.pad_value)
        coco = load_coco(args.annotations)
        cats = coco.getCatIds()
        if settings.category_id not in cats and len(cats) == 1:
            settings.category_id = cats[0]
        records, network_ms = collect_maps(coco, args.images, bundle_map_fn(bundle), settings, args.max_images,
                                           show_progress=False)
    except (EvalError, BundleError, ValueError) as exc:
        print("bench group --real: %s" % exc, file=sys.stderr)
        return 1
    w, h = settings.map_size
    people = sum(1 for i in (r.image_id for r in records)
                 for a in coco.loadAnns(coco.getAnnIds(imgIds=i, iscrowd=False)) if a.get("num_keypoints", 0) > 0)
    print("grouping on real maps: %s (input %dx%d, maps %dx%d, network %.1f ms an image here), %d images with "
          "%d labelled people (%s), one thread, %d timed calls an image"
          % (bundle.source or bundle.path, bundle.input_width, bundle.input_height, w, h, network_ms, len(records),
             people, args.annotations, args.repeat))
    header = "| parameters | AP | AP50 | AR | people returned | group ms (median) | group ms (largest) |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for label, params in table:
        metrics, _ = score(records, coco, settings, params)
        grouper = make_grouper(dataclasses.replace(settings, group=params))
        median_ms, max_ms = time_grouping(grouper, records, args.repeat)
        returned = sum(len(grouper.group(r.heatmaps, r.pafs)) for r in records)
        print("| %s | %.3f | %.3f | %.3f | %d | %.3f | %.3f |" % (label, metrics["AP"], metrics["AP50"], metrics["AR"],
                                                                returned, median_ms, max_ms))
    return 0
