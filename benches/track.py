"""``openpose-plus bench track``: who is who across frames, how steady, how fast.

On ``synthetic://`` walkers, whose identities the renderer knows (:meth:`MovingScene.ids`;
one who walks off and comes back on the other side is somebody new):

* **identity**: IDF1, MOTA and ID switches per 1,000 person-frames, scored by
  ``motmetrics`` (the standard MOT scorer), with people walking both ways at a walking
  pace on a floor seen in perspective (``MovingScene(crossing=True)``), so they cross and
  the nearer hide the farther. Two inputs: ground-truth maps (heatmaps and PAFs drawn
  from every part, hidden ones too, as the training targets draw a part COCO labels
  hidden, plus smooth noise) grouped by the C core, 10 people in 960x540 frames
  (``--in-view-only``: of the parts in view alone, harder: a person behind another comes
  out of the grouping as pieces or merged with them); and the shipped model (``models/demo``) on
  the rendered frames, 3 people in 320x240 frames at the heights it was trained on. A
  person counts in the frames where at least ``--min-visible`` parts are in view and
  unhidden; one seen less
  (mostly hidden) is "don't care" (a track on them is neither a hit nor a false alarm).
  A track matches a person at OKS >= 0.5 over their unhidden parts (as PoseTrack; kappa
  0.1 of the person's size). Untracked people (ID -1: not yet born) are not output. In
  brackets, the IDF1 of the same people perfectly associated (each labelled with the
  truth it overlaps most): the most those detections allow. ``--switches`` lists each
  switch: its frame, the person, the tracks before and after, and its cause (``reborn``:
  the person was lost and came back as a new track; ``swap``: a track that had followed
  someone else took them).
* **smoothing**: jitter, the RMS distance (px) of a keypoint to its mean on people standing
  still (the median over track and part), raw and smoothed; lag, the frames by which the
  keypoints trail the truth on walkers (the least-squares L in out(t) = truth(t) - L v(t)),
  and their RMS error to the truth. The model's frames get camera noise.
* **time**: ``PoseTracker.update`` per frame (the C call and its Python wrapper, tracking and
  smoothing) at 1, 10 and 20 people, without and with the frame (the colours: sampling and
  comparing), the frame cold from memory or just read (as in the pipeline, after the
  letterbox): the per-frame minimum over ``--repeat`` runs (the machine may be shared),
  median over frames.

Each tracker gets the rendered frame its people are in, as the pipeline gives its tracker
the frame it has (both inputs: the maps row's frames are rendered anyway, to tell hidden
parts apart), so the colour cue (``TrackParams.appearance``; ``--appearance 0``: geometry
alone) is measured on both rows.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import motmetrics as mm  # the standard MOT scorer (the dev extra has it): bench says so if it is missing
import numpy as np

from openpose_plus.edge.geometry import map_to_input
from openpose_plus.edge.grouping import Grouper
from openpose_plus.edge.poses import Poses
from openpose_plus.edge.skeleton import COCO18
from openpose_plus.edge.synthetic.scene import MovingScene
from openpose_plus.edge.targets import render_targets
from openpose_plus.edge.tracking import PoseTracker, TrackParams

HELP = "tracking: IDF1, MOTA, ID switches, jitter, lag, time per frame"

STRIDE = 8
SIGMA = 1.0        # heatmap Gaussian, map px (as bench group)
LIMB_WIDTH = 1.0   # PAF half-width, map px
OKS_KAPPA = 0.1    # the scorer's keypoint falloff, as a share of the person's size
MATCH_OKS = 0.5    # a track matches a person at this OKS or more


def _size(text: str) -> Tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def _range(text: str) -> Tuple[float, float]:
    lo, hi = text.split("-")
    return float(lo), float(hi)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=_size, default=(960, 540), help="frame WxH of the maps runs (120x67 maps)")
    parser.add_argument("--people", type=int, default=10, help="crossing people of the maps identity runs")
    parser.add_argument("--frames", type=int, default=600, help="frames of each identity run (at --fps)")
    parser.add_argument("--seeds", type=int, default=3, help="scenes per identity run (seeds F..F+N-1)")
    parser.add_argument("--first-seed", type=int, default=0, help="F, the first scene's seed")
    parser.add_argument("--switches", action="store_true", help="also list each ID switch (frame, person, cause)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--appearance", type=float, default=None,
                        help="the trackers' colour weight (TrackParams.appearance; 0: geometry alone; default: its default)")
    parser.add_argument("--noise", type=float, default=0.05, help="std of the smooth noise on the maps")
    parser.add_argument("--in-view-only", action="store_true",
                        help="draw the maps of the parts in view alone, not of the hidden ones too (as the training targets do)")
    parser.add_argument("--min-visible", type=int, default=6, help="parts in view a person needs to count")
    parser.add_argument("--bundle", default="models/demo", help="the shipped model ('' to skip it)")
    parser.add_argument("--model-size", type=_size, default=(320, 240), help="frame WxH of the model runs")
    parser.add_argument("--model-people", type=int, default=3, help="crossing people of the model runs")
    parser.add_argument("--model-height", type=_range, default=(0.45, 0.7),
                        help="people's heights in the model runs, as shares of the frame's (as it was trained)")
    parser.add_argument("--model-frames", type=int, default=300, help="frames of each model run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs (the per-frame minimum is kept)")
    parser.add_argument("--strip", metavar="PNG", help="also write a strip of frames with IDs (e.g. docs/tracking.png)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")


class Setup:
    """Where one input's scenes come from: frame size, people, heights, frames."""

    def __init__(self, args, source: str) -> None:
        self.source, self.fps = source, args.fps
        self.hidden_parts = not args.in_view_only
        # the identity runs' tracker: the defaults, or the colour weight asked for
        self.params = TrackParams() if args.appearance is None else TrackParams(appearance=args.appearance)
        if source == "maps":
            self.size, self.people, self.heights, self.frames = args.size, args.people, None, args.frames
        else:
            h = args.model_size[1]
            self.size, self.people, self.frames = args.model_size, args.model_people, args.model_frames
            self.heights = (args.model_height[0] * h, args.model_height[1] * h)

    def scene(self, people: int, seed: int, crossing: bool = True, standing: bool = False) -> MovingScene:
        w, h = self.size
        return MovingScene(w, h, people, seed=seed, fps=self.fps, crossing=crossing, standing=standing,
                           person_height=self.heights)


# -- scoring ------------------------------------------------------------------------------

def oks(truth: np.ndarray, guess: np.ndarray, kappa: float = OKS_KAPPA) -> float:
    """Object keypoint similarity of ``guess`` (K, 3) to ``truth`` (K, 3) over the truth's
    visible parts (v = 2; as PoseTrack, which labels only those), with one falloff
    ``kappa`` times the truth's size (the larger side of the box of all its parts)."""
    lab = truth[:, 2] >= 2
    if not lab.any():
        return 0.0
    pts = truth[truth[:, 2] > 0, :2]
    s = max(float((pts.max(0) - pts.min(0)).max()), 1.0)
    found = lab & (guess[:, 2] > 0)
    d2 = ((guess[found, :2] - truth[found, :2]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * (kappa * s) ** 2)).sum() / lab.sum())


def _visible_in_frame(kp: np.ndarray, width: int, height: int) -> np.ndarray:
    """Per person, parts unhidden (v = 2) and inside the frame."""
    inside = (kp[..., 0] >= 0) & (kp[..., 1] >= 0) & (kp[..., 0] <= width - 1) & (kp[..., 1] <= height - 1)
    return ((kp[..., 2] >= 2) & inside).sum(axis=1)


def _accumulate(truths: Sequence[np.ndarray], truth_ids: Sequence[np.ndarray], outputs: Sequence[Poses],
                width: int, height: int, min_visible: int) -> "mm.MOTAccumulator":
    """The motmetrics events of tracked ``outputs`` against the truth, frame by frame."""
    acc = mm.MOTAccumulator(auto_id=True)
    for kp, ids, out in zip(truths, truth_ids, outputs):
        counted = _visible_in_frame(kp, width, height) >= min_visible
        tracked = [j for j in range(len(out)) if out.ids is not None and out.ids[j] >= 0]
        sim = np.array([[oks(kp[g], out.keypoints[h]) for h in tracked] for g in range(len(kp))]
                       ).reshape(len(kp), len(tracked))
        # A track on a mostly hidden person is neither a hit nor a false alarm.
        dont_care = [h for col, h in enumerate(tracked)
                     if len(kp) and not counted[int(np.argmax(sim[:, col]))] and sim[:, col].max() >= MATCH_OKS]
        keep = [col for col, h in enumerate(tracked) if h not in dont_care]
        gt = np.flatnonzero(counted)
        dist = 1.0 - sim[np.ix_(gt, keep)]
        dist[dist > 1.0 - MATCH_OKS] = np.nan
        acc.update(ids[gt].tolist(), [int(out.ids[tracked[c]]) for c in keep], dist)
    return acc


def mot_scores(truths: Sequence[np.ndarray], truth_ids: Sequence[np.ndarray], outputs: Sequence[Poses],
               width: int, height: int, min_visible: int) -> Dict[str, float]:
    """IDF1, MOTA and ID switches of tracked ``outputs`` against the truth, by motmetrics."""
    acc = _accumulate(truths, truth_ids, outputs, width, height, min_visible)
    mh = mm.metrics.create()
    s = mh.compute(acc, metrics=["idf1", "mota", "num_switches", "num_objects", "num_unique_objects",
                                 "precision", "recall"], name="run")
    row = {k: float(s[k].iloc[0]) for k in s.columns}
    row["switches_per_1000"] = 1000.0 * row["num_switches"] / max(1.0, row["num_objects"])
    return row


def switches(truths: Sequence[np.ndarray], truth_ids: Sequence[np.ndarray], outputs: Sequence[Poses],
             width: int, height: int, min_visible: int) -> List[Dict[str, object]]:
    """Each ID switch: the frame, the person, the track they had and the one they got, the
    person's parts in view, and whether the new track had just begun (``reborn``: the person
    was lost and found again as somebody new) or had followed someone else (``swap``)."""
    events = _accumulate(truths, truth_ids, outputs, width, height, min_visible).mot_events
    first: Dict[float, int] = {}
    last_track: Dict[float, float] = {}
    out: List[Dict[str, object]] = []
    for (frame, _), e in events.iterrows():
        if e.Type not in ("MATCH", "SWITCH"):
            continue
        first.setdefault(e.HId, frame)
        if e.Type == "SWITCH":
            g = int(np.flatnonzero(np.asarray(truth_ids[frame]) == e.OId)[0])
            out.append({"frame": int(frame), "person": int(e.OId), "from": int(last_track.get(e.OId, -1)),
                        "to": int(e.HId), "parts_in_view": int(_visible_in_frame(truths[frame], width, height)[g]),
                        "cause": "reborn" if first[e.HId] >= frame - 3 else "swap"})
        last_track[e.OId] = e.HId
    return out


# -- inputs ---------------------------------------------------------------------------------

class MapPoses:
    """People from ground-truth maps of the unhidden parts (``hidden``: of every part, as
    the training targets draw them), plus smooth noise, grouped by the C core and put back
    in frame pixels (the frame is the network input: no letterbox)."""

    def _noise(self, shape: Tuple[int, ...]) -> np.ndarray:
        """White noise blurred over each map (sigma 1 cell) and rescaled to the std: the
        noise of ``figures.smooth_noise``, made with OpenCV (its matrix products are slow
        on large maps)."""
        import cv2

        white = self.rng.standard_normal((shape[-2], shape[-1], shape[0])).astype(np.float32)  # H x W x C
        blurred = np.ascontiguousarray(cv2.GaussianBlur(white, (0, 0), 1.0).transpose(2, 0, 1))
        scale = float(blurred.std())
        return blurred * (self.noise / scale if scale > 0 else 0.0)

    def __init__(self, width: int, height: int, noise: float, seed: int, hidden: bool = False) -> None:
        self.mw, self.mh = width // STRIDE, height // STRIDE
        self.hidden = hidden
        self.grouper = Grouper(COCO18, self.mh, self.mw)
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def __call__(self, truth: np.ndarray) -> Poses:
        kp = truth.copy()
        kp[..., 2] = np.where(kp[..., 2] >= (1 if self.hidden else 2), 2.0, 0.0)  # v = 1: hidden
        kp[..., :2] = (kp[..., :2] - (STRIDE / 2.0 - 0.5)) / STRIDE
        heat, paf = render_targets(kp, COCO18, self.mh, self.mw, SIGMA, LIMB_WIDTH)
        if self.noise > 0:
            heat += self._noise(heat.shape)
            paf += self._noise(paf.shape)
        poses = self.grouper.group(heat, paf)
        out = map_to_input(poses.keypoints, STRIDE)
        out[..., :2][out[..., 2] <= 0] = 0.0
        return Poses(out, poses.scores, COCO18)


def _camera_noise(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Sensor noise (std 4 levels): a still picture would give the very same maps every frame."""
    noisy = image.astype(np.int16) + rng.normal(0, 4, image.shape).astype(np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _inputs(setup: Setup, scene: MovingScene, seed: int, estimator=None, frames: Optional[int] = None,
            camera_noise: bool = False, trackers: Sequence[PoseTracker] = ()):
    """``(truths, ids, poses, tracked)`` of a scene's frames through the maps or the model;
    ``tracked[j]``: the poses through ``trackers[j]``, each given the rendered frame and its
    size (as the pipeline gives its tracker the frame it has), tracked as the frames are
    made (a run's frames are not kept: 600 of them at 960x540 would take 0.9 GB)."""
    w, h = setup.size
    maps = MapPoses(w, h, NOISE[0], seed, setup.hidden_parts) if setup.source == "maps" else None
    rng = np.random.default_rng(seed)
    truths, ids, poses = [], [], []
    tracked: List[List[Poses]] = [[] for _ in trackers]
    for i in range(frames or setup.frames):
        image, kp = scene.frame(i)  # drawing is what tells hidden parts apart
        truths.append(kp)
        ids.append(scene.ids(i))
        if maps is not None:
            poses.append(maps(kp))
        else:
            image = _camera_noise(rng, image) if camera_noise else image
            poses.append(estimator.infer(image))
        for tracker, out in zip(trackers, tracked):
            out.append(tracker.update(poses[-1], i / setup.fps, frame_size=(w, h), image=image))
    return truths, ids, poses, tracked


NOISE = [0.05]  # the maps' noise std (run() sets it from --noise)


# -- the measurements ------------------------------------------------------------------------

def oracle(truths: Sequence[np.ndarray], truth_ids: Sequence[np.ndarray], poses: Sequence[Poses]) -> List[Poses]:
    """Each person found labelled with the identity of the truth it overlaps most (OKS >=
    0.5): what a tracker that never errs would output from these people. Its IDF1 is
    the most these detections allow; the tracker's is measured against it."""
    out = []
    for kp, gid, p in zip(truths, truth_ids, poses):
        labels = np.full(len(p), -1, np.int64)
        for j in range(len(p)):
            sims = [oks(kp[g], p.keypoints[j]) for g in range(len(kp))]
            if sims and max(sims) >= MATCH_OKS:
                labels[j] = gid[int(np.argmax(sims))] + 1
        out.append(Poses(p.keypoints, p.scores, p.skeleton, ids=labels))
    return out


def identity_run(setup: Setup, seed: int, min_visible: int, estimator=None) -> Dict[str, float]:
    """One crossing scene, tracked and scored (and the same people perfectly associated)."""
    truths, ids, poses, (out,) = _inputs(setup, setup.scene(setup.people, seed), seed, estimator,
                                         trackers=[PoseTracker(COCO18, setup.params)])
    row = mot_scores(truths, ids, out, setup.size[0], setup.size[1], min_visible)
    row["frames"] = len(poses)
    row["switches"] = switches(truths, ids, out, setup.size[0], setup.size[1], min_visible)
    row["idf1_perfect_association"] = mot_scores(truths, ids, oracle(truths, ids, poses), setup.size[0],
                                                 setup.size[1], min_visible)["idf1"]
    return row


def _by_id(outputs: Sequence[Poses]) -> Dict[int, List[Tuple[int, np.ndarray]]]:
    tracks: Dict[int, List[Tuple[int, np.ndarray]]] = {}
    for i, out in enumerate(outputs):
        for j, tid in enumerate(out.ids if out.ids is not None else []):
            if tid >= 0:
                tracks.setdefault(int(tid), []).append((i, out.keypoints[j]))
    return tracks


def jitter(outputs: Sequence[Poses], skip: int, pool=np.median) -> float:
    """The RMS distance (px) of a part to its mean position over the frames after ``skip``
    where it is shown, pooled over (track, part) by ``pool``: the median by default,
    the typical part (a part the grouping puts on someone else now and then, where
    standing people overlap, is a detection error, not jitter; the mean counts it)."""
    spreads = []
    for seq in _by_id(outputs).values():
        kp = np.stack([k for i, k in seq if i >= skip]) if any(i >= skip for i, _ in seq) else None
        if kp is None or len(kp) < 10:
            continue
        for part in range(kp.shape[1]):
            shown = kp[:, part, 2] > 0
            if shown.sum() >= 10:
                xy = kp[shown, part, :2]
                spreads.append(float(np.sqrt(((xy - xy.mean(0)) ** 2).sum(1).mean())))
    return float(pool(spreads)) if spreads else float("nan")


def lag_and_error(outputs: Sequence[Poses], truths: Sequence[np.ndarray], skip: int) -> Tuple[float, float]:
    """``(lag in frames, RMS error px)`` of tracked keypoints against the truth: each track
    follows the person it overlaps most (OKS); lag is the least-squares L in
    ``out(t) = truth(t) - L * v(t)``, v the truth's motion per frame (central difference)."""
    num = den = 0.0
    err: List[float] = []
    for i in range(max(1, skip), len(outputs) - 1):
        out, kp = outputs[i], truths[i]
        if out.ids is None or not len(kp):
            continue
        v = (truths[i + 1][..., :2] - truths[i - 1][..., :2]) / 2.0
        for j in range(len(out)):
            if out.ids[j] < 0:
                continue
            sims = [oks(kp[g], out.keypoints[j]) for g in range(len(kp))]
            g = int(np.argmax(sims))
            if sims[g] < MATCH_OKS:
                continue
            shown = (out.keypoints[j, :, 2] > 0) & (kp[g, :, 2] >= 2)
            e = out.keypoints[j, shown, :2] - kp[g, shown, :2]
            vv = v[g, shown]
            num += float(-(e * vv).sum())
            den += float((vv * vv).sum())
            err.extend(np.sqrt((e * e).sum(1)).tolist())
    return (num / den if den > 0 else float("nan")), (float(np.sqrt(np.mean(np.square(err)))) if err else float("nan"))


SMOOTHING = (("raw", TrackParams(smooth=False)), ("One Euro", TrackParams(motion=False)),
             ("One Euro + motion (default)", TrackParams()))


def smoothing_runs(setup: Setup, estimator=None, people: int = 5, frames: int = 300) -> Dict[str, Dict[str, float]]:
    """Jitter on people standing still and lag/error on people walking, per smoothing
    variant (the model's frames get camera noise)."""
    skip = 30  # the filters settle
    results: Dict[str, Dict[str, float]] = {name: {} for name, _ in SMOOTHING}
    for what, scene in (("jitter", setup.scene(people, 11, crossing=False, standing=True)),
                        ("lag", setup.scene(people, 12))):
        truths, _, poses, outs = _inputs(setup, scene, 3, estimator, frames, camera_noise=True,
                                         trackers=[PoseTracker(COCO18, params) for _, params in SMOOTHING])
        for (name, params), out in zip(SMOOTHING, outs):
            if what == "jitter":
                results[name]["jitter_px"] = jitter(out, skip)
                results[name]["jitter_mean_px"] = jitter(out, skip, np.mean)
            else:
                results[name]["lag_frames"], results[name]["error_px"] = lag_and_error(out, truths, skip)
    return results


def time_per_frame(setup: Setup, people: int, repeat: int, frames: int = 60, image: bool = False,
                   warm: bool = False) -> float:
    """ms per ``PoseTracker.update`` (tracking and smoothing, defaults) with ``people``
    walkers: their true keypoints plus 1 px noise, the per-frame minimum of ``repeat``
    runs, median over the frames after the first 10; with ``image`` the rendered frames
    go in too (the colours: sampling and comparing), each a different frame, so it comes
    cold from memory, or with ``warm`` read through first (untimed), as the letterbox has
    just read it when the pipeline tracks."""
    scene = setup.scene(people, 21, crossing=False)
    rng = np.random.default_rng(5)
    seq, images = [], []
    for i in range(frames):
        if image:
            images.append(scene.frame(i)[0])
        kp = scene.keypoints(i).copy()
        kp[..., :2] += rng.normal(0, 1.0, kp[..., :2].shape).astype(np.float32)
        kp[..., 2] = rng.uniform(0.3, 0.9, kp[..., 2].shape)
        seq.append(Poses(kp, np.full(people, 0.8, np.float32), COCO18))
    best = np.full(frames, np.inf)
    for _ in range(max(1, repeat)):
        tracker = PoseTracker(COCO18, frame_size=setup.size)  # as the pipeline's poses say
        for i, p in enumerate(seq):
            if warm:
                images[i].max()
            t0 = time.perf_counter()
            tracker.update(p, i / setup.fps, image=images[i] if image else None)
            best[i] = min(best[i], time.perf_counter() - t0)
    return float(np.median(best[10:])) * 1e3


def write_strip(setup: Setup, path: str, frames: Sequence[int] = (30, 50, 70, 90), people: int = 6,
                seed: int = 5, estimator=None) -> None:
    """Frames of a crossing scene with the tracked people drawn and their IDs written,
    half size, two rows of tiles, as a PNG."""
    import cv2

    from openpose_plus.edge.draw import draw_poses

    scene = setup.scene(people, seed)
    _, _, _, (out,) = _inputs(setup, scene, seed, estimator, max(frames) + 1,
                              trackers=[PoseTracker(COCO18, setup.params)])
    tiles = []
    for i in frames:
        image, _ = scene.frame(i)
        image = (image * 0.55).astype(np.uint8)  # dimmed, so the skeletons stand out
        tile = draw_poses(image, out[i], COCO18, thickness=max(2, image.shape[0] // 180))
        tile = cv2.resize(tile, (tile.shape[1] // 2, tile.shape[0] // 2), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, "%.1f s" % (i / setup.fps), (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(tile)
    half = (len(tiles) + 1) // 2
    tiles += [np.zeros_like(tiles[0])] * (2 * half - len(tiles))
    strip = np.concatenate([np.concatenate(tiles[:half], axis=1), np.concatenate(tiles[half:], axis=1)], axis=0)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def _mean_rows(rows: List[Dict[str, float]]) -> Dict[str, float]:
    """Pooled over seeds: rates weighted by person-frames, switches summed."""
    total = sum(r["num_objects"] for r in rows)
    out = {k: float(sum(r[k] * r["num_objects"] for r in rows) / max(total, 1.0))
           for k in ("idf1", "mota", "precision", "recall", "idf1_perfect_association")}
    out["num_switches"] = float(sum(r["num_switches"] for r in rows))
    out["num_objects"] = float(total)
    out["switches_per_1000"] = 1000.0 * out["num_switches"] / max(total, 1.0)
    return out


def run(args: argparse.Namespace) -> int:
    estimator = None
    NOISE[0] = args.noise
    if args.bundle:
        if not os.path.exists(args.bundle):
            print("bench track: no bundle at %s (pass --bundle '' to skip the model)" % args.bundle, file=sys.stderr)
            return 1
        from openpose_plus.edge.estimator import PoseEstimator

        estimator = PoseEstimator(args.bundle, backend="onnxruntime")
    sources = ("maps", "model") if estimator is not None else ("maps",)
    setups = {source: Setup(args, source) for source in sources}
    label = {"maps": "ground-truth maps%s + noise %.2f, %dx%d" % ((" (parts in view only)" if args.in_view_only else "",
                                                                 args.noise) + tuple(args.size)),
             "model": "model %s, %dx%d" % ((os.path.basename(os.path.normpath(args.bundle or "-")),)
                                           + tuple(args.model_size))}
    report: Dict[str, object] = {"args": {k: v for k, v in vars(args).items() if k not in ("json", "strip")}}
    print("tracking benchmark at %g frames/s; people walk both ways at 0.5-1 body heights/s and cross" % args.fps)
    print("\n| input | crossing people | frames x scenes | person-frames | IDF1 (perfect association) | MOTA "
          "| ID switches | per 1,000 person-frames |")
    print("|---|---|---|---|---|---|---|---|")
    for source in sources:
        st = setups[source]
        print("  identity on %s..." % source, file=sys.stderr)
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        rows = [identity_run(st, seed, args.min_visible, estimator) for seed in seeds]
        m = _mean_rows(rows)
        if args.switches:
            for seed, row in zip(seeds, rows):
                for e in row["switches"]:
                    print("  switch: %s seed %d frame %d person %d track %d -> %d (%s, %d parts in view)" % (
                        source, seed, e["frame"], e["person"], e["from"], e["to"], e["cause"], e["parts_in_view"]),
                        file=sys.stderr)
        report["identity_" + source] = {"pooled": m, "runs": rows}
        print("| %s | %d | %d x %d | %d | %.3f (%.3f) | %.3f | %d | %.2f |" % (
            label[source], st.people, st.frames, len(rows), m["num_objects"], m["idf1"],
            m["idf1_perfect_association"], m["mota"], m["num_switches"], m["switches_per_1000"]))

    print("\n| input | smoothing | jitter standing (px) | lag walking (frames) | error walking (px) |")
    print("|---|---|---|---|---|")
    for source in sources:
        print("  smoothing on %s..." % source, file=sys.stderr)
        res = smoothing_runs(setups[source], estimator, people=5 if source == "maps" else args.model_people)
        report["smoothing_" + source] = res
        raw = res["raw"]["jitter_px"]
        for name, _ in SMOOTHING:
            r = res[name]
            cut = "" if name == "raw" else " (%.1fx less)" % (raw / r["jitter_px"])
            print("| %s | %s | %.2f%s | %.2f | %.2f |" % (label[source], name, r["jitter_px"], cut, r["lag_frames"],
                                                         r["error_px"]))

    print("\n| people | tracking + smoothing, ms per frame | with the frame's colours, frame cold | colours alone "
          "| with the colours, frame in cache |")
    print("|---|---|---|---|---|")
    times, with_image, warm = {}, {}, {}
    for people in (1, 10, 20):
        times[people] = time_per_frame(setups["maps"], people, args.repeat)
        with_image[people] = time_per_frame(setups["maps"], people, args.repeat, image=True)
        warm[people] = time_per_frame(setups["maps"], people, args.repeat, image=True, warm=True)
        print("| %d | %.4f | %.4f | %.4f | %.4f |" % (people, times[people], with_image[people],
                                                     with_image[people] - times[people], warm[people]))
    report["ms_per_frame"] = times
    report["ms_per_frame_with_image"] = with_image
    report["ms_per_frame_with_image_warm"] = warm
    if args.strip:
        write_strip(setups["maps"], args.strip)
        print("\nstrip: %s" % args.strip)
    if estimator is not None:
        estimator.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0
