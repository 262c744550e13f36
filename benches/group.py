"""``openpose-plus bench group``: what the C grouping costs and how many people it finds.

Scenes of 1-20 COCO-18 figures are rendered to ground-truth maps at the network's
map resolution (46x54 is a 368x432 input at stride 8), optionally with smooth noise,
and grouped on one thread. Times are medians per frame as called from Python (the cffi
call included): peaks alone (step 1 into the grouper's buffers), then the whole of
``Grouper.group``.

``--real BUNDLE --images DIR --annotations FILE`` groups a real network's maps instead, and
scores them (``benches/_group_real.py``).
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

from openpose_plus.commands._options import at_least
from openpose_plus.edge.grouping import GroupParams, Grouper
from openpose_plus.edge.synthetic.recovery import Recovery, recovery
from openpose_plus.edge.skeleton import COCO18
from openpose_plus.edge.synthetic.figures import random_scene, smooth_noise
from openpose_plus.edge.targets import render_targets

from . import _group_real

SIGMA = 1.0        # heatmap Gaussian, map px (OpenPose: 7 input px at stride 8)
LIMB_WIDTH = 1.0   # PAF half-width, map px


HELP = "C grouping: ms per frame and recovery vs people (synthetic), or AP and ms on a real network's maps (--real)"

def _sizes(text: str) -> List[Tuple[int, int]]:
    out = []
    for item in text.split(","):
        h, w = item.lower().split("x")
        out.append((int(h), int(w)))
    return out


def _ints(text: str) -> List[int]:
    return [int(x) for x in text.split(",")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=_sizes, default=_sizes("46x54,60x80"), help="map sizes HxW")
    parser.add_argument("--people", type=_ints, default=_ints("1,5,10,20"))
    parser.add_argument("--frames", type=at_least(1), default=100, help="scenes per cell")
    parser.add_argument("--repeat", type=at_least(1), default=5, help="timed calls per scene")
    parser.add_argument("--noise", type=float, default=0.05, help="std of the smooth noise of the noisy run")
    parser.add_argument("--assignment", choices=("greedy", "optimal", "both"), default="greedy")
    parser.add_argument("--seed", type=int, default=0)
    _group_real.add_arguments(parser)


def make_frames(rng: np.random.Generator, people: int, height: int, width: int, frames: int,
                noise: float) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(truth, heatmaps, pafs, noisy heatmaps, noisy pafs)`` per scene."""
    out = []
    for _ in range(frames):
        truth = random_scene(rng, people, width, height)
        heat, paf = render_targets(truth, COCO18, height, width, SIGMA, LIMB_WIDTH)
        nheat = heat + smooth_noise(rng, heat.shape, noise)
        npaf = paf + smooth_noise(rng, paf.shape, noise)
        out.append((truth, heat, paf, nheat, npaf))
    return out


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def measure(grouper: Grouper, frames: Sequence, repeat: int) -> Dict[str, object]:
    peaks, total = [], []
    clean, noisy = Recovery(0, 0, 0), Recovery(0, 0, 0)
    for truth, heat, paf, nheat, npaf in frames:
        peaks.append(_median_ms(lambda: grouper._find_peaks_in_place(heat), repeat))
        total.append(_median_ms(lambda: grouper.group(heat, paf), repeat))
        clean = clean + recovery(grouper.group(heat, paf).keypoints, truth)
        noisy = noisy + recovery(grouper.group(nheat, npaf).keypoints, truth)
    return {"peaks": float(np.median(peaks)), "total": float(np.median(total)), "clean": clean, "noisy": noisy}


def run(args: argparse.Namespace) -> int:
    if args.real:
        return _group_real.run(args)
    modes = ("greedy", "optimal") if args.assignment == "both" else (args.assignment,)
    print("grouping benchmark: COCO-18, sigma %.1f, limb width %.1f map px, %d scenes per cell, "
          "noise std %.2f, one thread" % (SIGMA, LIMB_WIDTH, args.frames, args.noise))
    header = ("| map | people | assignment | peaks ms | group ms (total) | recovery clean | "
              "recovery noisy | returned/true (noisy) |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for height, width in args.sizes:
        for people in args.people:
            frames = make_frames(np.random.default_rng(args.seed + people), people, height, width,
                                 args.frames, args.noise)
            for mode in modes:
                grouper = Grouper(COCO18, height, width, GroupParams(assignment=mode))
                r = measure(grouper, frames, args.repeat)
                clean, noisy = r["clean"], r["noisy"]
                print("| %dx%d | %d | %s | %.3f | %.3f | %.1f %% | %.1f %% | %.3f |" % (
                    height, width, people, mode, r["peaks"], r["total"], 100 * clean.rate,  # type: ignore[union-attr]
                    100 * noisy.rate, noisy.returned_per_true))  # type: ignore[union-attr]
    return 0
