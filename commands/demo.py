"""``openpose-plus demo``: the system at work on a machine with no camera and no GPU.

With a model bundle (``--bundle``, else the shipped ``models/demo``) this is ``openpose-plus
run synthetic://``: walking people rendered frame by frame, the network on the CPU backend,
the C grouping core, OpenPose JSON per frame, an annotated video and a picture, then a
summary: frames/s, milliseconds per stage, people per frame, and how close the poses are to
the people the renderer drew. With ``--no-model`` (or no bundle at all) ground-truth
heatmaps and PAFs at the network's stride stand in for the network, so everything after it
can be seen alone.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import List

import numpy as np

from openpose_plus.commands._options import add_backend, add_precision, size_type

DEFAULT_BUNDLE = os.path.join("models", "demo")
INPUT_SIZE = 368   # the network input the maps stand for (square, as in the OpenPose paper)
STRIDE = 8
SIGMA = 1.0        # map px: a trained network's peaks are about this wide
LIMB_WIDTH = 1.0
DEMO_HEIGHT = (0.4, 0.95)  # models/demo.toml's DATA.synthetic_height


HELP = "the system at work on synthetic people (no camera, no GPU)"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--size", type=size_type(minimum=32), default=(640, 480), help="frame size WxH")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--height", type=float, nargs=2, default=DEMO_HEIGHT, metavar=("MIN", "MAX"),
                        help="people's heights as fractions of the frame height (default %g %g: what the "
                             "shipped model was trained on, models/demo.toml)" % DEMO_HEIGHT)
    parser.add_argument("--out", default=os.path.join("out", "demo"), help="output folder")
    parser.add_argument("--bundle", default=None, help="model bundle (default: %s when present)" % DEFAULT_BUNDLE)
    parser.add_argument("--no-model", action="store_true", help="ground-truth maps instead of the network")
    add_backend(parser)
    add_precision(parser)


class _Tally:
    """The poses of a run against the people that were drawn: recovery, keypoint error, counts."""

    def __init__(self, stride: int, letterbox) -> None:
        from openpose_plus.edge.synthetic.recovery import Recovery

        # A true part counts as found within 1.5 map cells, in frame pixels.
        self.radius = 1.5 * stride / letterbox.scale
        self.found = Recovery(0, 0, 0)
        self.errors: List[float] = []
        self.people: List[int] = []

    def add(self, keypoints: np.ndarray, truth: np.ndarray) -> None:
        from openpose_plus.edge.synthetic.recovery import recovery

        self.people.append(len(keypoints))
        self.found = self.found + recovery(keypoints, truth, radius=self.radius)
        self.errors.extend(_keypoint_errors(keypoints, truth, self.radius))

    def report(self, frames: int) -> None:
        e = self.errors
        print("people per frame  %.2f found, %.2f drawn with >= 3 visible parts" % (
            float(np.mean(self.people)) if self.people else 0.0, self.found.true_people / max(1, frames)))
        print("recovered         %.1f %% of people (>= 75 %% of their parts within %.0f px), %.3f returned per "
              "true person" % (100 * self.found.rate, self.radius, self.found.returned_per_true))
        print("parts found       %.1f %% of the drawn people's labelled parts within %.0f px (PCK)"
              % (100 * self.found.pck, self.radius))
        print("keypoint error    median %.2f px, 95th percentile %.2f px (frame pixels)" % (
            float(np.median(e)) if e else float("nan"), float(np.percentile(e, 95)) if e else float("nan")))


def _save_picture(path: str, image: np.ndarray, poses) -> None:
    import cv2

    cv2.imwrite(path, cv2.cvtColor(poses.draw(image.copy()), cv2.COLOR_RGB2BGR))


def _with_bundle(args: argparse.Namespace, bundle: str) -> int:
    """The real thing: ``synthetic://`` through the pipeline (network, C grouping, sinks)."""
    from openpose_plus.edge.backends import BackendError
    from openpose_plus.edge.bundle import BundleError
    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.geometry import Letterbox
    from openpose_plus.edge.pipeline import Pipeline
    from openpose_plus.edge.progress import Progress
    from openpose_plus.edge.sinks import OpenPoseJsonSink, VideoSink
    from openpose_plus.edge.sources import SourceError, open_source

    width, height = args.size
    uri = "synthetic://%dx%d?people=%d&seed=%d&frames=%d&height=%g-%g" % (
        width, height, args.people, args.seed, args.frames, args.height[0], args.height[1])
    try:
        estimator = PoseEstimator(bundle, backend=args.backend, precision=args.precision)
        source = open_source(uri)
    except (BundleError, BackendError, SourceError, OSError) as exc:
        print("openpose-plus demo: %s" % exc)
        return 1
    b = estimator.bundle
    source_meta = b.meta.get("extra", {}).get("source", {})  # type: ignore[union-attr]
    print("model             %s: %s, input %dx%d, %s %s (%s)" % (
        bundle, source_meta.get("model", "?"), b.input_width, b.input_height, estimator.backend.name,
        estimator.backend.precision, estimator.reason))
    tally = _Tally(b.stride, Letterbox.fit(width, height, b.input_width, b.input_height))
    os.makedirs(args.out, exist_ok=True)
    video = os.path.join(args.out, "demo.mp4")
    sinks = [OpenPoseJsonSink(os.path.join(args.out, "json")), VideoSink(video, 30.0)]
    progress = Progress(args.frames, label="demo", unit="frames", interval=0.5)
    picture = os.path.join(args.out, "demo.png")

    def on_frame(r) -> None:
        tally.add(r.poses.keypoints, r.truth)
        progress.update(len(tally.people), people=len(r.poses.scores))
        if r.index == args.frames // 2:
            _save_picture(picture, r.image, r.poses)

    pipeline = Pipeline(estimator, source, sinks, max_frames=args.frames, drop_when_busy=False, on_frame=on_frame)
    try:
        pipeline.start_sinks()
        pipeline.run()
    finally:
        source.close()
        estimator.close()
        progress.close()
    if pipeline.error is not None:
        print("openpose-plus demo: %s" % pipeline.error)
        return 1
    summary = pipeline.summary()
    print("frames            %d (%dx%d, %d people walking, %g-%g of the frame height), %.1f frames/s "
          "with %d inference workers" % (pipeline.frames, width, height, args.people, args.height[0],
                                          args.height[1], summary["fps"], summary["workers"]))
    print("ms per frame      " + ", ".join("%s %.2f" % kv for kv in summary["ms"].items()) + " (mean per stage)")
    tally.report(pipeline.frames)
    print("wrote             %s/json/*.json, %s, %s" % (args.out, video, picture))
    return 0


def _maps_only(args: argparse.Namespace) -> int:
    """No network: ground-truth maps at the network's stride stand in for its output."""
    from openpose_plus.edge.geometry import Letterbox
    from openpose_plus.edge.grouping import Grouper
    from openpose_plus.edge.synthetic.scene import MovingScene
    from openpose_plus.edge.sinks import OpenPoseJsonSink, VideoSink
    from openpose_plus.edge.sinks.base import Result, SinkWorker
    from openpose_plus.edge.skeleton import COCO18
    from openpose_plus.edge.targets import render_targets

    width, height = args.size
    scene = MovingScene(width, height, args.people, seed=args.seed,
                        person_height=(args.height[0] * height, args.height[1] * height))
    box = Letterbox.fit(width, height, INPUT_SIZE, INPUT_SIZE)
    map_size = INPUT_SIZE // STRIDE
    grouper = Grouper(COCO18, map_size, map_size)
    os.makedirs(args.out, exist_ok=True)
    video = os.path.join(args.out, "demo.mp4")
    picture = os.path.join(args.out, "demo.png")
    workers = [SinkWorker(OpenPoseJsonSink(os.path.join(args.out, "json")), block=True).start(),
               SinkWorker(VideoSink(video, 30.0), block=True).start()]
    tally = _Tally(STRIDE, box)
    render_ms, group_ms = [], []  # type: ignore[var-annotated]
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
        tally.add(poses.keypoints, truth)
        for w in workers:
            w.submit(Result(index, time.monotonic(), poses, image, COCO18, {"group": group_ms[-1]}))
        if index == args.frames // 2:
            _save_picture(picture, image, poses)
    for w in workers:
        w.close()
    print("frames            %d (%dx%d, %d people walking, %g-%g of the frame height)"
          % (args.frames, width, height, args.people, args.height[0], args.height[1]))
    tally.report(args.frames)
    print("time per frame    maps %.2f ms, grouping %.3f ms (median)" % (float(np.median(render_ms)), float(np.median(group_ms))))
    print("wrote             %s/json/*.json, %s, %s" % (args.out, video, picture))
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
    if not 0 < args.height[0] <= args.height[1] < float("inf"):
        print("openpose-plus demo: --height needs 0 < MIN <= MAX, got %g %g" % tuple(args.height))
        return 2
    bundle = None if args.no_model else args.bundle or (DEFAULT_BUNDLE if os.path.exists(DEFAULT_BUNDLE) else None)
    return _with_bundle(args, bundle) if bundle else _maps_only(args)
