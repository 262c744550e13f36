"""Synthetic people: articulated poses that need no dataset and no camera.

The grouping tests and benchmarks pose figures here and render their maps with
:mod:`.targets`; later the synthetic dataset and the ``synthetic://`` source draw the
same figures as images. Poses come out as ``(N, K, 3)`` float32 ``x, y, v`` in whatever
pixel frame the caller asks for (map cells for grouping, image pixels for drawing).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from openpose_plus.edge.skeleton import COCO18, Skeleton

__all__ = ["random_pose", "random_scene", "clip_to_frame"]


def _coco18_pose(rng: np.random.Generator, cx: float, cy: float, height: float) -> np.ndarray:
    """One COCO-18 figure, ``height`` from head top to feet, mid-hip at ``(cx, cy)``."""
    h = height
    pts = np.zeros((18, 2), np.float64)
    lean = rng.normal(0.0, math.radians(8))

    def at(origin, length, angle):  # angle from straight down, counter-clockwise in the image
        return origin + length * np.array([math.sin(angle), math.cos(angle)])

    hip_half = h * rng.uniform(0.06, 0.09)
    shoulder_half = h * rng.uniform(0.10, 0.14)
    torso = h * rng.uniform(0.28, 0.34)
    pelvis = np.array([0.0, 0.0])
    neck = at(pelvis, torso, math.pi + lean)
    side = np.array([math.cos(lean), -math.sin(lean)])  # image-right across the body
    # The person faces the camera: their right side is on the image's left.
    pts[1] = neck
    pts[2] = neck - shoulder_half * side
    pts[5] = neck + shoulder_half * side
    pts[8] = pelvis - hip_half * side
    pts[11] = pelvis + hip_half * side
    for shoulder, elbow, wrist, sign in ((2, 3, 4, -1.0), (5, 6, 7, 1.0)):
        a1 = lean + sign * rng.uniform(math.radians(-15), math.radians(160))
        a2 = a1 + sign * rng.uniform(math.radians(-20), math.radians(140))
        pts[elbow] = at(pts[shoulder], h * rng.uniform(0.15, 0.19), a1)
        pts[wrist] = at(pts[elbow], h * rng.uniform(0.13, 0.17), a2)
    for hip, knee, ankle, sign in ((8, 9, 10, -1.0), (11, 12, 13, 1.0)):
        a1 = lean + sign * rng.uniform(math.radians(-10), math.radians(40))
        a2 = a1 + sign * rng.uniform(math.radians(-50), math.radians(10))
        pts[knee] = at(pts[hip], h * rng.uniform(0.22, 0.26), a1)
        pts[ankle] = at(pts[knee], h * rng.uniform(0.22, 0.26), a2)
    head_tilt = lean + rng.normal(0.0, math.radians(10))
    nose = at(neck, h * rng.uniform(0.10, 0.13), math.pi + head_tilt)
    up = np.array([-math.sin(head_tilt), -math.cos(head_tilt)])
    across = np.array([math.cos(head_tilt), -math.sin(head_tilt)])
    turn = rng.uniform(-1.0, 1.0)  # -1: profile to the image's left, 1: to its right
    pts[0] = nose
    pts[14] = nose + h * (0.035 * up + (-0.035 + 0.02 * turn) * across)   # right eye
    pts[15] = nose + h * (0.035 * up + (0.035 + 0.02 * turn) * across)    # left eye
    pts[16] = nose + h * (0.015 * up + (-0.07 + 0.03 * turn) * across)    # right ear
    pts[17] = nose + h * (0.015 * up + (0.07 + 0.03 * turn) * across)     # left ear
    vis = np.full(18, 2.0)
    if turn > 0.6:       # turned so far that the far side of the face is hidden
        vis[[14, 16]] = 0.0
    elif turn < -0.6:
        vis[[15, 17]] = 0.0
    pts += np.array([cx, cy])
    return np.concatenate([pts, vis[:, None]], axis=1).astype(np.float32)


def _tree_pose(rng: np.random.Generator, skeleton: Skeleton, cx: float, cy: float,
               height: float) -> np.ndarray:
    """Any skeleton: walk its limbs from part 0, each part a random step from its parent."""
    k = skeleton.num_parts
    pts = np.full((k, 3), np.nan, np.float64)
    pts[0] = (0.0, 0.0, 2.0)
    frontier = [0]
    while frontier:
        nxt = []
        for p in frontier:
            for a, b in skeleton.limbs:
                for src, dst in ((a, b), (b, a)):
                    if src == p and np.isnan(pts[dst, 0]):
                        ang = rng.uniform(0, 2 * math.pi)
                        step = height * rng.uniform(0.15, 0.3)
                        pts[dst] = (pts[src, 0] + step * math.cos(ang), pts[src, 1] + step * math.sin(ang), 2.0)
                        nxt.append(dst)
        frontier = nxt
    unreached = np.isnan(pts[:, 0])
    pts[unreached] = 0.0  # parts no limb reaches are placed at the root and left absent
    pts[unreached, 2] = 0.0
    # Centre the figure's box on (cx, cy) so that ``height`` bounds it.
    span = np.ptp(pts[~unreached, :2], axis=0).max() if (~unreached).sum() > 1 else 1.0
    s = height / max(span, 1e-6) if span > height else 1.0
    mid = (pts[~unreached, :2].max(axis=0) + pts[~unreached, :2].min(axis=0)) / 2
    pts[:, :2] = (pts[:, :2] - mid) * s + (cx, cy)
    return pts.astype(np.float32)


def random_pose(rng: np.random.Generator, cx: float, cy: float, height: float,
                skeleton: Skeleton = COCO18) -> np.ndarray:
    """One ``(K, 3)`` figure about ``(cx, cy)`` of roughly ``height`` pixels."""
    if skeleton == COCO18:
        pose = _coco18_pose(rng, cx, cy, height)
        pose[:, 1] += height * 0.05  # mid-hip sits a little below the figure's centre
        return pose
    return _tree_pose(rng, skeleton, cx, cy, height)


def clip_to_frame(poses: np.ndarray, width: float, height: float) -> np.ndarray:
    """Mark parts outside ``[0, width - 1] x [0, height - 1]`` absent (truncated by the border)."""
    out = poses.copy()
    x, y = out[..., 0], out[..., 1]
    outside = (x < 0) | (y < 0) | (x > width - 1) | (y > height - 1)
    out[..., 2][outside] = 0.0
    return out


def random_scene(rng: np.random.Generator, num_people: int, width: float, height: float,
                 skeleton: Skeleton = COCO18, person_height: Optional[Tuple[float, float]] = None,
                 overlap: bool = False, clip: bool = True) -> np.ndarray:
    """``num_people`` figures in a ``width x height`` frame, ``(N, K, 3)``.

    Without ``overlap`` the frame is cut into a grid with a cell per person and each
    figure is jittered inside its cell, so people touch but rarely cover each other;
    with it, centres are uniform over the frame. ``person_height`` is a range in pixels
    (default: about 90 % of a grid cell's height).
    """
    if num_people <= 0:
        return np.zeros((0, skeleton.num_parts, 3), np.float32)
    cols = max(1, int(round(math.sqrt(num_people * width / height))))
    rows = int(math.ceil(num_people / cols))
    cell_w, cell_h = width / cols, height / rows
    if person_height is None:
        person_height = (0.75 * cell_h, 0.95 * cell_h)
    cells = rng.permutation(rows * cols)[:num_people]
    poses = []
    for cell in cells:
        ph = rng.uniform(*person_height)
        if overlap:
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        else:
            r, c = divmod(int(cell), cols)
            cx = (c + 0.5 + rng.uniform(-0.15, 0.15)) * cell_w
            cy = (r + 0.5 + rng.uniform(-0.1, 0.1)) * cell_h
        poses.append(random_pose(rng, cx, cy, ph, skeleton))
    scene = np.stack(poses)
    return clip_to_frame(scene, width, height) if clip else scene



def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    idx = np.arange(n, dtype=np.float64)
    m = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma) ** 2)
    return m / m.sum(axis=1, keepdims=True)


def smooth_noise(rng: np.random.Generator, shape: Tuple[int, ...], std: float,
                 sigma: float = 1.0) -> np.ndarray:
    """Gaussian noise blurred over the last two axes (``sigma`` cells), rescaled to ``std``:
    the kind of low-frequency error a real network's maps carry, unlike white noise."""
    white = rng.standard_normal(shape)
    if sigma > 0:
        white = _blur_matrix(shape[-2], sigma) @ white @ _blur_matrix(shape[-1], sigma).T
    scale = white.std()
    return (white * (std / scale if scale > 0 else 0.0)).astype(np.float32)
