"""``openpose-plus demo``: the system at work on a machine with no camera and no GPU.

With a model bundle (``--bundle``, or the shipped ``models/demo`` once it exists) this is
``openpose-plus run synthetic://`` with the usual outputs. Without one it shows everything
after the network: moving synthetic people, their ground-truth heatmaps and PAFs at the
network's stride standing in for the network's output, the C grouping core, the poses
mapped back through the letterbox, OpenPose JSON per frame, an annotated video, a
picture, and how close the poses are to the people that were drawn.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import List

import numpy as np

DEFAULT_BUNDLE = os.path.join("models", "demo")
INPUT_SIZE = 368   # the network input the maps stand for (square, as in the OpenPose paper)
STRIDE = 8
SIGMA = 1.0        # map px: a trained network's peaks are about this wide
LIMB_WIDTH = 1.0


def _size(text: str):
    w, h = text.lower().split("x")
    return int(w), int(h)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--size", type=_size, default=(640, 480), help="frame size WxH")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("out", "demo"), help="output folder")
    parser.add_argument("--bundle", default=None, help="model bundle (default: %s when present)" % DEFAULT_BUNDLE)


def _with_bundle(args: argparse.Namespace, bundle: str) -> int:
    from . import run_cli

    width, height = args.size
    uri = "synthetic://%dx%d?people=%d&seed=%d&frames=%d" % (width, height, args.people, args.seed, args.frames)
    parser = argparse.ArgumentParser()
    run_cli.add_arguments(parser)
    return run_cli.run(parser.parse_args([uri, "--bundle", bundle, "--frames", str(args.frames),
                                          "--write-json", os.path.join(args.out, "json"),
                                          "--output", os.path.join(args.out, "demo.mp4")]))


def _maps_only(args: argparse.Namespace) -> int:
    import cv2

    from .geometry import Letterbox
    from .grouping import Grouper
    from .pose_match import Recovery, recovery
    from .scene import MovingScene
    from .sinks import OpenPoseJsonSink, VideoSink
    from .sinks.base import Result, SinkWorker
    from .skeleton import COCO18
    from .targets import render_targets

    width, height = args.size
    scene = MovingScene(width, height, args.people, seed=args.seed)
    box = Letterbox.fit(width, height, INPUT_SIZE, INPUT_SIZE)
    map_size = INPUT_SIZE // STRIDE
    grouper = Grouper(COCO18, map_size, map_size)
    os.makedirs(args.out, exist_ok=True)
    video = os.path.join(args.out, "demo.mp4")
    workers = [SinkWorker(OpenPoseJsonSink(os.path.join(args.out, "json")), block=True).start(),
               SinkWorker(VideoSink(video, 30.0), block=True).start()]
    # A true part counts as found within 1.5 map cells, in frame pixels.
    radius = 1.5 * STRIDE / box.scale
    found, errors, render_ms, group_ms, people = Recovery(0, 0, 0), [], [], [], []  # type: ignore[var-annotated]
    picture = None
    print("no model bundle (%s): ground-truth maps stand in for the network" % DEFAULT_BUNDLE)
    for index in range(args.frames):
        image, truth = scene.frame(index)
        t0 = time.perf_counter()
        heat, paf = render_targets(box.image_to_map(truth, STRIDE), COCO18, map_size, map_size, SIGMA, LIMB_WIDTH)
        t1 = time.perf_counter()
        poses = grouper.group(heat, paf).to_image(box, STRIDE)
        t2 = time.perf_counter()
        render_ms.append((t1 - t0) * 1e3)
        group_ms.append((t2 - t1) * 1e3)
        people.append(len(poses))
        found = found + recovery(poses.keypoints, truth, radius=radius)
        errors.extend(_keypoint_errors(poses.keypoints, truth, radius))
        for w in workers:
            w.submit(Result(index, time.monotonic(), poses, image, COCO18, {"group": group_ms[-1]}))
        if index == args.frames // 2:
            picture = poses.draw(image.copy())
    for w in workers:
        w.close()
    if picture is not None:
        cv2.imwrite(os.path.join(args.out, "demo.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    print("frames            %d (%dx%d, %d people walking)" % (args.frames, width, height, args.people))
    print("people per frame  %.2f found, %.2f drawn with >= 3 visible parts" % (
        float(np.mean(people)), found.true_people / max(1, args.frames)))
    print("recovered         %.1f %% of people, %.3f returned per true person" % (100 * found.rate, found.returned_per_true))
    print("keypoint error    median %.2f px, 95th percentile %.2f px (frame pixels)" % (
        float(np.median(errors)) if errors else float("nan"), float(np.percentile(errors, 95)) if errors else float("nan")))
    print("time per frame    maps %.2f ms, grouping %.3f ms (median)" % (float(np.median(render_ms)), float(np.median(group_ms))))
    print("wrote             %s/json/*.json, %s, %s/demo.png" % (args.out, video, args.out))
    return 0


def _keypoint_errors(predicted: np.ndarray, truth: np.ndarray, radius: float) -> List[float]:
    """Distance of each true visible part to the nearest predicted part of its kind, when within radius."""
    out: List[float] = []
    for k in range(truth.shape[1] if truth.ndim == 3 else 0):
        t = truth[truth[:, k, 2] > 0, k, :2]
        p = predicted[predicted[:, k, 2] > 0, k, :2] if len(predicted) else np.zeros((0, 2))
        if len(t) and len(p):
            d = np.hypot(t[:, None, 0] - p[None, :, 0], t[:, None, 1] - p[None, :, 1]).min(axis=1)
            out.extend(float(x) for x in d[d <= radius])
    return out


def run(args: argparse.Namespace) -> int:
    if args.frames <= 0 or args.people < 0:
        print("openpose-plus demo: --frames must be positive and --people not negative")
        return 2
    bundle = args.bundle or (DEFAULT_BUNDLE if os.path.exists(DEFAULT_BUNDLE) else None)
    return _with_bundle(args, bundle) if bundle else _maps_only(args)
