"""Synthetic scenes: articulated people drawn as pictures, with their keypoints.

The synthetic dataset (``openpose-plus synth-data``) and the ``synthetic://`` camera
source both draw here, so a model trained on the dataset sees the same kind of picture
the offline pipeline feeds it. Figures come from :mod:`.synthetic` (``random_pose``);
this module gives them bodies: limbs of varied width, clothes with colour and texture,
a head with eyes, on varied backgrounds with clutter, several people at a wide range of
scales, occluding each other and cut by the frame's border.

Keypoints are ``(N, K, 3)`` float32 ``x, y, v`` in image pixels (pixel centres at
integer coordinates, as :mod:`.geometry`), with COCO's visibility: ``v = 2`` labelled
and visible, ``1`` labelled but hidden behind another person or a foreground object,
``0`` not labelled (outside the frame, or a far-side face part).

Only numpy and OpenCV; never TensorFlow (the device imports this).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np

try:
    import cv2
except ImportError as _exc:  # pragma: no cover - the edge extra installs opencv
    cv2 = None  # type: ignore[assignment]
    _CV2_ERROR = _exc
else:
    _CV2_ERROR = None

from openpose_plus.edge.skeleton import COCO18, Skeleton
from .figures import clip_to_frame, random_pose

__all__ = ["render_scene", "MovingScene", "render_background", "draw_people"]

_SHIFT = 4                 # cv2 fixed-point bits: sub-pixel placement of every shape
_ONE = 1 << _SHIFT
_OCCLUDER = 1 << 20        # owner value of foreground objects (above any person)

# Label values in a figure's label crop; each maps to one of the person's colours.
_SKIN, _TOP, _BOTTOM, _SHOES, _EYES, _HAIR = 1, 2, 3, 4, 5, 6
HeightSpec = Union[None, float, Tuple[float, float]]


def _need_cv2() -> None:
    if cv2 is None:
        raise ImportError("openpose_plus.edge.synthetic.scene needs OpenCV (pip install opencv-python-headless): %s"
                          % _CV2_ERROR)


def _check_size(width: int, height: int) -> Tuple[int, int]:
    w, h = int(width), int(height)
    if w <= 0 or h <= 0 or w != width or h != height:
        raise ValueError("scene size must be positive integers, got %rx%r" % (width, height))
    return w, h


# -- backgrounds ---------------------------------------------------------------

def _random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> Tuple[int, int, int]:
    c = rng.integers(lo, hi, size=3)
    return int(c[0]), int(c[1]), int(c[2])


def render_background(rng: np.random.Generator, width: int, height: int, clutter: Optional[int] = None) -> np.ndarray:
    """A varied ``height x width x 3`` uint8 RGB background: gradient, blotches, stripes or
    checks, with clutter shapes (non-people the network must learn to ignore) and grain."""
    _need_cv2()
    w, h = _check_size(width, height)
    kind = int(rng.integers(0, 4))
    if kind == 0:    # linear gradient between two colours at a random angle
        a, b = np.array(_random_colour(rng), np.float32), np.array(_random_colour(rng), np.float32)
        ang = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xs * math.cos(ang) / w + ys * math.sin(ang) / h
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = a + (b - a) * t[..., None]
    elif kind == 1:  # low-frequency colour blotches (a coarse random field, smoothly upsampled)
        coarse = rng.uniform(0, 255, size=(int(rng.integers(2, 7)), int(rng.integers(2, 7)), 3)).astype(np.float32)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    elif kind == 2:  # stripes at a random angle and period
        a, b = np.array(_random_colour(rng), np.float32), np.array(_random_colour(rng), np.float32)
        ang = rng.uniform(0, math.pi)
        period = rng.uniform(6, max(8.0, min(w, h) / 3))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (xs * math.cos(ang) + ys * math.sin(ang)) / period)
        img = a + (b - a) * t[..., None]
    else:            # checks, like a tiled floor or a wall
        a, b = np.array(_random_colour(rng), np.float32), np.array(_random_colour(rng), np.float32)
        cell = max(2, int(rng.uniform(8, max(9.0, min(w, h) / 4))))
        ys, xs = np.mgrid[0:h, 0:w]
        t = (((xs // cell) + (ys // cell)) % 2).astype(np.float32)
        img = a + (b - a) * t[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    n = int(rng.integers(0, 9)) if clutter is None else int(clutter)
    for _ in range(n):
        _draw_clutter(rng, img)
    grain = rng.uniform(0, 8)
    if grain > 1:
        noise = rng.normal(0.0, grain, size=(h // 2 + 1, w // 2 + 1, 3)).astype(np.float32)
        noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img


def _draw_clutter(rng: np.random.Generator, img: np.ndarray, owner: Optional[np.ndarray] = None,
                  owner_value: int = 0) -> None:
    """One random shape (box, disc, ellipse, bar or line), also stamped into ``owner``."""
    h, w = img.shape[:2]
    colour = _random_colour(rng)
    s = min(w, h)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    kind = int(rng.integers(0, 5))
    targets = [(img, colour)] + ([(owner, int(owner_value))] if owner is not None else [])
    for canvas, value in targets:
        if kind == 0:
            bw, bh = rng.uniform(0.05, 0.3) * s, rng.uniform(0.05, 0.3) * s
            p1 = (int((cx - bw / 2) * _ONE), int((cy - bh / 2) * _ONE))
            p2 = (int((cx + bw / 2) * _ONE), int((cy + bh / 2) * _ONE))
            cv2.rectangle(canvas, p1, p2, value, -1, cv2.LINE_8, _SHIFT)
        elif kind == 1:
            cv2.circle(canvas, (int(cx * _ONE), int(cy * _ONE)), int(rng.uniform(0.02, 0.12) * s * _ONE),
                       value, -1, cv2.LINE_8, _SHIFT)
        elif kind == 2:
            axes = (int(rng.uniform(0.03, 0.15) * s * _ONE), int(rng.uniform(0.02, 0.08) * s * _ONE))
            cv2.ellipse(canvas, (int(cx * _ONE), int(cy * _ONE)), axes, float(rng.uniform(0, 180)), 0, 360,
                        value, -1, cv2.LINE_8, _SHIFT)
        elif kind == 3:  # a pole or a table edge: long, fairly thick
            _draw_bar(rng, canvas, value, cx, cy, s, (0.2, 0.6), (0.01, 0.05))
        else:  # a thin stick, the kind of thing a PAF could mistake for a limb
            _draw_bar(rng, canvas, value, cx, cy, s, (0.05, 0.2), (0.005, 0.02))


def _draw_bar(rng: np.random.Generator, canvas: np.ndarray, value, cx: float, cy: float, s: float,
              half_length: Tuple[float, float], thickness: Tuple[float, float]) -> None:
    """A straight bar through (cx, cy) at a random angle; lengths are fractions of ``s``."""
    ang = rng.uniform(0, math.pi)
    half = rng.uniform(*half_length) * s
    dx, dy = half * math.cos(ang), half * math.sin(ang)
    cv2.line(canvas, (int((cx - dx) * _ONE), int((cy - dy) * _ONE)), (int((cx + dx) * _ONE), int((cy + dy) * _ONE)),
             value, max(1, int(rng.uniform(*thickness) * s)), cv2.LINE_8, _SHIFT)


# -- people ----------------------------------------------------------------------

class _Style(object):
    """How one person looks: body width, colours of skin/top/bottom/shoes/hair, clothes texture."""

    __slots__ = ("width", "palette", "texture", "tex_period", "tex_angle", "tex_amp", "sleeves", "head")

    def __init__(self, rng: np.random.Generator) -> None:
        self.width = float(rng.uniform(0.035, 0.085))  # limb thickness as a share of the height
        skin = np.array([rng.uniform(60, 255), 0, 0], np.float32)
        skin[1] = skin[0] * rng.uniform(0.6, 0.85)
        skin[2] = skin[1] * rng.uniform(0.6, 0.9)
        palette = np.zeros((8, 3), np.float32)
        palette[_SKIN] = skin
        palette[_TOP] = _random_colour(rng)
        palette[_BOTTOM] = _random_colour(rng)
        palette[_SHOES] = _random_colour(rng, 0, 90)
        palette[_EYES] = _random_colour(rng, 0, 60)
        palette[_HAIR] = _random_colour(rng, 0, 120) if rng.random() < 0.8 else _random_colour(rng)
        self.palette = palette
        self.texture = int(rng.integers(0, 4))    # plain, stripes, noise, checks
        self.tex_period = float(rng.uniform(3, 12))
        self.tex_angle = float(rng.uniform(0, math.pi))
        self.tex_amp = float(rng.uniform(0.15, 0.45))
        self.sleeves = bool(rng.random() < 0.6)  # long sleeves: forearms in the top's colour
        self.head = float(rng.uniform(0.065, 0.085))


def _fx(p) -> Tuple[int, int]:
    return int(round(float(p[0]) * _ONE)), int(round(float(p[1]) * _ONE))


def _draw_coco18(labels: np.ndarray, kp: np.ndarray, height: float, style: _Style) -> None:
    """Draw a COCO-18 figure into ``labels`` (a crop; ``kp`` already in crop coordinates)."""
    v = kp[:, 2] > 0
    t = max(1, int(round(style.width * height)))

    def line(a: int, b: int, label: int, thick: int) -> None:
        if v[a] and v[b]:
            cv2.line(labels, _fx(kp[a]), _fx(kp[b]), label, thick, cv2.LINE_8, _SHIFT)

    def disc(p: int, label: int, radius: float) -> None:
        if v[p]:
            # At least one pixel: a keypoint's nearest pixel is then always the figure's own.
            cv2.circle(labels, _fx(kp[p]), max(_ONE, int(radius * _ONE)), label, -1, cv2.LINE_8, _SHIFT)

    # Legs first, then the torso over them, then arms in front, then the head.
    for hip, knee, ankle in ((8, 9, 10), (11, 12, 13)):
        line(hip, knee, _BOTTOM, int(t * 1.25))
        line(knee, ankle, _BOTTOM, int(t * 1.1))
        disc(ankle, _SHOES, t * 0.75)
    if v[[2, 5, 11, 8]].all():
        quad = np.array([_fx(kp[i]) for i in (2, 5, 11, 8)], np.int32)
        cv2.fillConvexPoly(labels, quad, _TOP, cv2.LINE_8, _SHIFT)
    line(2, 8, _TOP, t)
    line(5, 11, _TOP, t)
    line(2, 5, _TOP, t)
    line(8, 11, _BOTTOM, t)
    line(1, 0, _SKIN, max(1, int(t * 0.7)))
    for shoulder, elbow, wrist in ((2, 3, 4), (5, 6, 7)):
        line(shoulder, elbow, _TOP, t)
        line(elbow, wrist, _TOP if style.sleeves else _SKIN, max(1, int(t * 0.85)))
        disc(wrist, _SKIN, t * 0.6)
    # Round joints, so thin limbs of small people still cover their keypoints.
    for joint, label in ((2, _TOP), (5, _TOP), (3, _TOP), (6, _TOP), (8, _BOTTOM), (11, _BOTTOM),
                         (9, _BOTTOM), (12, _BOTTOM), (1, _TOP)):
        disc(joint, label, t * 0.5)
    if v[0]:
        r = style.head * height
        centre = kp[0, :2] + np.array([0.0, -0.25 * r])
        cv2.circle(labels, _fx(centre), int(r * _ONE), _SKIN, -1, cv2.LINE_8, _SHIFT)
        hair = centre + np.array([0.0, -0.45 * r])
        cv2.ellipse(labels, _fx(hair), (int(r * _ONE), int(0.6 * r * _ONE)), 0.0, 180, 360,
                    _HAIR, -1, cv2.LINE_8, _SHIFT)
        for eye in (14, 15):
            disc(eye, _EYES, max(0.6, 0.14 * r))
        for ear in (16, 17):
            disc(ear, _SKIN, 0.22 * r)


def _draw_generic(labels: np.ndarray, kp: np.ndarray, skeleton: Skeleton, height: float, style: _Style) -> None:
    v = kp[:, 2] > 0
    t = max(1, int(round(style.width * height)))
    for i, (a, b) in enumerate(skeleton.limbs):
        if v[a] and v[b]:
            cv2.line(labels, _fx(kp[a]), _fx(kp[b]), _TOP if i % 2 == 0 else _BOTTOM, t, cv2.LINE_8, _SHIFT)
    for p in np.flatnonzero(v):
        cv2.circle(labels, _fx(kp[p]), max(_ONE, int(0.6 * t * _ONE)), _SKIN, -1, cv2.LINE_8, _SHIFT)


def _texture(style: _Style, h: int, w: int, x0: int, y0: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Brightness factor of the clothes (1 = plain) at the crop pixels ``(ys, xs)`` of an
    ``h x w`` crop at ``(x0, y0)``: only the pixels the clothes cover are computed."""
    if style.texture == 0:
        return np.ones(len(ys), np.float32)
    fy, fx = (ys + y0).astype(np.float32), (xs + x0).astype(np.float32)
    if style.texture == 1:
        u = fx * math.cos(style.tex_angle) + fy * math.sin(style.tex_angle)
        pat = np.sin(2 * math.pi * u / style.tex_period)
    elif style.texture == 2:
        # Seeded from the style so a person keeps its pattern from frame to frame.
        g = np.random.default_rng(int(style.tex_period * 1000))
        small = g.uniform(-1, 1, size=(max(1, h // 3), max(1, w // 3))).astype(np.float32)
        pat = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)[ys, xs]
    else:
        p = max(2, int(style.tex_period))
        pat = ((((fx // p) + (fy // p)) % 2) * 2 - 1).astype(np.float32)
    return 1.0 + style.tex_amp * pat


def _paint_person(img: np.ndarray, owner: np.ndarray, order: int, kp: np.ndarray, skeleton: Skeleton,
                  height: float, style: _Style) -> None:
    """Draw one person over ``img`` and stamp ``order`` into ``owner`` where it covers."""
    H, W = img.shape[:2]
    present = kp[:, 2] > 0
    if not present.any():
        return
    pts = kp[present, :2]
    margin = height * 0.2 + 4
    x0 = int(max(0, math.floor(pts[:, 0].min() - margin)))
    y0 = int(max(0, math.floor(pts[:, 1].min() - margin)))
    x1 = int(min(W, math.ceil(pts[:, 0].max() + margin) + 1))
    y1 = int(min(H, math.ceil(pts[:, 1].max() + margin) + 1))
    if x1 <= x0 or y1 <= y0:
        return  # entirely outside the frame
    labels = np.zeros((y1 - y0, x1 - x0), np.uint8)
    local = kp.copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    if skeleton == COCO18:
        _draw_coco18(labels, local, height, style)
    else:
        _draw_generic(labels, local, skeleton, height, style)
    # Colours only where the person is (a third of the crop, or less): the frame rate of
    # synthetic:// is mostly this.
    mask = labels > 0
    lab = labels[mask]
    if not len(lab):
        return
    colour = style.palette[lab]  # (n, 3) float32, in the row-major order of mask
    cloth = (lab == _TOP) | (lab == _BOTTOM)
    if style.texture and cloth.any():
        ys, xs = np.nonzero((labels == _TOP) | (labels == _BOTTOM))  # the same pixels, same order
        colour[cloth] *= _texture(style, labels.shape[0], labels.shape[1], x0, y0, ys, xs)[:, None]
    img[y0:y1, x0:x1][mask] = np.clip(colour, 0, 255).astype(np.uint8)
    owner[y0:y1, x0:x1][mask] = order


def _label_visibility(kp: np.ndarray, owner: np.ndarray, order: int) -> None:
    """A labelled part under something drawn later (a nearer person, an occluder) becomes v = 1."""
    H, W = owner.shape
    for p in range(kp.shape[0]):
        if kp[p, 2] <= 0:
            continue
        x, y = int(round(float(kp[p, 0]))), int(round(float(kp[p, 1])))
        if 0 <= x < W and 0 <= y < H and owner[y, x] > order:
            kp[p, 2] = 1.0


def draw_people(img: np.ndarray, poses: np.ndarray, heights: Sequence[float], styles: Sequence[_Style],
                skeleton: Skeleton = COCO18, occluders: Optional[np.random.Generator] = None,
                num_occluders: int = 0, owner: Optional[np.ndarray] = None) -> np.ndarray:
    """Draw ``poses`` (N, K, 3) in list order (later = nearer) onto ``img`` in place and return
    their keypoints with COCO visibility (1 where hidden, 0 outside the frame).

    ``owner`` (int32 HxW, optional) receives per pixel the index of the person seen there,
    -1 for background and a large value for foreground occluders."""
    _need_cv2()
    H, W = img.shape[:2]
    if owner is None:
        owner = np.empty((H, W), np.int32)
    owner[...] = -1
    for order, (pose, ph, style) in enumerate(zip(poses, heights, styles)):
        _paint_person(img, owner, order, pose, skeleton, float(ph), style)
    if occluders is not None:
        for _ in range(num_occluders):
            _draw_clutter(occluders, img, owner, _OCCLUDER)
    out = np.array(poses, np.float32, copy=True).reshape(len(poses), skeleton.num_parts, 3)
    for order in range(out.shape[0]):
        _label_visibility(out[order], owner, order)
    out = clip_to_frame(out, W, H) if out.shape[0] else out
    out[..., 2] = np.where(out[..., 2] > 0, out[..., 2], 0.0)
    return out


def _height_range(spec: HeightSpec, frame_h: int) -> Tuple[float, float]:
    if spec is None:
        return 0.12 * frame_h, 1.0 * frame_h
    if isinstance(spec, (int, float)):
        if spec <= 0:
            raise ValueError("person_height must be positive, got %r" % spec)
        return float(spec), float(spec)
    lo, hi = float(spec[0]), float(spec[1])
    if not 0 < lo <= hi:
        raise ValueError("person_height range must be 0 < lo <= hi, got %r" % (spec,))
    return lo, hi


def render_scene(rng: np.random.Generator, width: int, height: int, num_people: int,
                 skeleton: Skeleton = COCO18, person_height: HeightSpec = None, return_owner: bool = False):
    """One picture of ``num_people`` people and their keypoints.

    ``person_height`` is a fixed height in pixels or a ``(lo, hi)`` range sampled
    log-uniformly (default: 12 % to 100 % of the frame height, so tiny far-away people and
    people cut by the border both occur). Returns ``(image uint8 HxWx3 RGB, keypoints
    (N, K, 3) float32)``; nearer (taller) people are drawn over farther ones. With
    ``return_owner`` a third item, int32 HxW, says which person each pixel shows (-1 none),
    for segmentations and boxes.
    """
    _need_cv2()
    w, h = _check_size(width, height)
    if int(num_people) != num_people or num_people < 0:
        raise ValueError("num_people must be a non-negative integer, got %r" % (num_people,))
    lo, hi = _height_range(person_height, h)
    img = render_background(rng, w, h)
    heights = np.exp(rng.uniform(math.log(lo), math.log(hi), size=int(num_people)))
    heights.sort()  # far (small) people first, so near ones cover them
    poses, styles = [], []
    for ph in heights:
        for _attempt in range(6):
            # Mostly inside the frame; sometimes off an edge, so truncation is common.
            edge = rng.random() < 0.2
            cx = rng.uniform(-0.1 * w, 1.1 * w) if edge else rng.uniform(0.05 * w, 0.95 * w)
            cy_lo, cy_hi = 0.35 * ph, h - 0.3 * ph
            cy = rng.uniform(cy_lo, cy_hi) if cy_hi > cy_lo else rng.uniform(0.3 * h, 0.8 * h)
            pose = random_pose(rng, cx, cy, ph, skeleton)
            inside = clip_to_frame(pose[None], w, h)[0, :, 2] > 0
            if inside.sum() >= 3:
                break
        poses.append(pose)
        styles.append(_Style(rng))
    stack = np.stack(poses) if poses else np.zeros((0, skeleton.num_parts, 3), np.float32)
    n_occ = int(rng.integers(0, 3)) if rng.random() < 0.3 else 0
    owner = np.empty((h, w), np.int32)
    kp = draw_people(img, stack, heights, styles, skeleton, occluders=rng, num_occluders=n_occ, owner=owner)
    if return_owner:
        return img, kp.astype(np.float32), owner
    return img, kp.astype(np.float32)


# -- animation -------------------------------------------------------------------

def _at(origin: np.ndarray, length: float, angle: float) -> np.ndarray:
    # Angle from straight down, counter-clockwise in the image (as edge.synthetic).
    return origin + length * np.array([math.sin(angle), math.cos(angle)])


class _Walker(object):
    """One animated person: fixed proportions and look, a path, and gait/wave rhythms."""

    def __init__(self, rng: np.random.Generator, frame_w: int, frame_h: int, skeleton: Skeleton,
                 heights: Tuple[float, float]) -> None:
        self.height = float(math.exp(rng.uniform(math.log(heights[0]), math.log(heights[1]))))
        self.style = _Style(rng)
        self.x0 = float(rng.uniform(0, frame_w))
        self.speed = float(rng.uniform(15, 60) * (1 if rng.random() < 0.5 else -1)) * self.height / frame_h
        self.y = float(rng.uniform(0.4 * self.height, max(0.45 * self.height + 1, frame_h - 0.45 * self.height)))
        self.gait = float(rng.uniform(0.8, 1.6))   # strides per second
        self.phase = float(rng.uniform(0, 2 * math.pi))
        self.wave = bool(rng.random() < 0.5)
        self.wave_rate = float(rng.uniform(0.5, 1.2))
        self.lean = float(rng.normal(0.0, math.radians(4)))
        h = self.height
        self.torso = h * rng.uniform(0.28, 0.34)
        self.shoulder_half = h * rng.uniform(0.10, 0.14)
        self.hip_half = h * rng.uniform(0.06, 0.09)
        self.upper_arm = h * rng.uniform(0.15, 0.19)
        self.forearm = h * rng.uniform(0.13, 0.17)
        self.thigh = h * rng.uniform(0.22, 0.26)
        self.shin = h * rng.uniform(0.22, 0.26)
        self.neck_len = h * rng.uniform(0.10, 0.13)
        self.turn = float(rng.uniform(-0.5, 0.5))
        self.span = frame_w + 2 * 0.5 * h  # walk off one side, come back in on the other
        self.margin = 0.5 * h
        if skeleton != COCO18:
            self.base = random_pose(rng, 0.0, 0.0, h, skeleton)
            self.wobble = rng.uniform(0.01, 0.04, size=(skeleton.num_parts, 2)) * h
            self.wobble_phase = rng.uniform(0, 2 * math.pi, size=(skeleton.num_parts, 2))

    def position(self, t: float) -> float:
        return (self.x0 + self.speed * t + self.margin) % self.span - self.margin

    def lap(self, t: float) -> int:
        """How many times this walker has left the frame and come back in on the other side."""
        return int(math.floor((self.x0 + self.speed * t + self.margin) / self.span))

    def stand_still(self) -> None:
        """No walking, no gait, no waving: the same pose in every frame."""
        self.speed = 0.0
        self.gait = 0.0
        self.wave = False

    def pose(self, t: float, skeleton: Skeleton) -> np.ndarray:
        cx = self.position(t)
        w = 2 * math.pi * self.gait * t + self.phase
        if skeleton != COCO18:
            out = self.base.copy()
            out[:, :2] += self.wobble * np.sin(w + self.wobble_phase)
            out[:, 0] += cx
            out[:, 1] += self.y
            return out
        pts = np.zeros((18, 2), np.float64)
        lean = self.lean + 0.03 * math.sin(2 * w)
        pelvis = np.array([0.0, 0.0])
        neck = _at(pelvis, self.torso, math.pi + lean)
        side = np.array([math.cos(lean), -math.sin(lean)])
        pts[1] = neck
        pts[2], pts[5] = neck - self.shoulder_half * side, neck + self.shoulder_half * side
        pts[8], pts[11] = pelvis - self.hip_half * side, pelvis + self.hip_half * side
        swing = math.radians(25) * math.sin(w)
        for hip, knee, ankle, s in ((8, 9, 10, 1.0), (11, 12, 13, -1.0)):
            a1 = lean + s * swing
            bend = math.radians(35) * max(0.0, math.sin(w + (0 if s > 0 else math.pi) + 0.8))
            pts[knee] = _at(pts[hip], self.thigh, a1)
            pts[ankle] = _at(pts[knee], self.shin, a1 - bend * (1 if self.speed >= 0 else -1))
        for shoulder, elbow, wrist, s in ((2, 3, 4, -1.0), (5, 6, 7, 1.0)):
            if self.wave and s < 0:  # the right arm waves above the head
                wr = 2 * math.pi * self.wave_rate * t + self.phase
                a1 = lean - math.radians(130) + math.radians(15) * math.sin(wr)
                a2 = a1 - math.radians(25) + math.radians(35) * math.sin(2 * wr)
            else:  # arms swing against the legs
                a1 = lean + s * math.radians(8) - s * swing * 0.8
                a2 = a1 + s * math.radians(15)
            pts[elbow] = _at(pts[shoulder], self.upper_arm, a1)
            pts[wrist] = _at(pts[elbow], self.forearm, a2)
        h = self.height
        tilt = lean + math.radians(6) * math.sin(0.5 * w)
        nose = _at(neck, self.neck_len, math.pi + tilt)
        up = np.array([-math.sin(tilt), -math.cos(tilt)])
        across = np.array([math.cos(tilt), -math.sin(tilt)])
        turn = self.turn
        pts[0] = nose
        pts[14] = nose + h * (0.035 * up + (-0.035 + 0.02 * turn) * across)
        pts[15] = nose + h * (0.035 * up + (0.035 + 0.02 * turn) * across)
        pts[16] = nose + h * (0.015 * up + (-0.07 + 0.03 * turn) * across)
        pts[17] = nose + h * (0.015 * up + (0.07 + 0.03 * turn) * across)
        pts += np.array([cx, self.y + 0.05 * h])
        out = np.concatenate([pts, np.full((18, 1), 2.0)], axis=1)
        return out.astype(np.float32)


class MovingScene(object):
    """People walking across a fixed background, some waving: a camera that needs no camera.

    ``person_height`` is as :func:`render_scene`'s, in pixels (a fixed height or a
    ``(lo, hi)`` range sampled log-uniformly); by default 25 % to 80 % of the frame height.

    ``frame(index)`` is a pure function of ``(seed, index)``: the same index always gives
    the same picture, frames in order move smoothly (``fps`` frames per second of motion),
    and any index can be asked for first. :meth:`ids` says who is who in each frame.

    ``crossing``: people walk at a walking pace (0.5-1 body height per second), half of
    them each way, on a floor seen in perspective (the taller, nearer ones lower in the
    frame), so they cross, and nearer people hide farther ones for a while (the hard case
    for tracking); heights default to 20-40 % of the frame's. ``standing``: nobody moves
    (the case for measuring jitter). Neither changes what the other arguments draw.
    """

    def __init__(self, width: int, height: int, num_people: int, seed: int = 0,
                 skeleton: Skeleton = COCO18, fps: float = 30.0,
                 person_height: HeightSpec = None, crossing: bool = False, standing: bool = False) -> None:
        _need_cv2()
        self.width, self.height = _check_size(width, height)
        default = (0.2, 0.4) if crossing else (0.25, 0.8)
        heights = (default[0] * self.height, default[1] * self.height) if person_height is None \
            else _height_range(person_height, self.height)
        if int(num_people) != num_people or num_people < 0:
            raise ValueError("num_people must be a non-negative integer, got %r" % (num_people,))
        if fps <= 0:
            raise ValueError("fps must be positive, got %r" % (fps,))
        self.num_people = int(num_people)
        self.seed = int(seed)
        self.skeleton = skeleton
        self.fps = float(fps)
        rng = np.random.default_rng(self.seed)
        self.background = render_background(rng, self.width, self.height)
        self.background.setflags(write=False)
        walkers = [_Walker(rng, self.width, self.height, skeleton, heights) for _ in range(self.num_people)]
        if crossing:
            # Its own random stream: the walkers above are the same with or without it.
            extra = np.random.default_rng([self.seed, 1])
            lo, hi = heights
            for i, w in enumerate(walkers):
                depth = (w.height - lo) / (hi - lo) if hi > lo else 0.5  # 0 far .. 1 near
                w.y = self.height * (0.62 + 0.3 * depth) - 0.5 * w.height  # feet on the floor
                w.speed = float(extra.uniform(0.5, 1.0)) * w.height * (1 if i % 2 == 0 else -1)
        if standing:
            for w in walkers:
                w.stand_still()
        for i, w in enumerate(walkers):
            w.identity = i
        walkers.sort(key=lambda w: w.height)  # far (small) first
        self._walkers = walkers

    def frame(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(image uint8 HxWx3 RGB, keypoints (N, K, 3) float32)`` of frame ``index``."""
        if int(index) != index or index < 0:
            raise ValueError("frame index must be a non-negative integer, got %r" % (index,))
        t = int(index) / self.fps
        img = self.background.copy()
        if not self._walkers:
            return img, np.zeros((0, self.skeleton.num_parts, 3), np.float32)
        poses = np.stack([w.pose(t, self.skeleton) for w in self._walkers])
        kp = draw_people(img, poses, [w.height for w in self._walkers], [w.style for w in self._walkers],
                         self.skeleton)
        return img, kp

    def ids(self, index: int) -> np.ndarray:
        """``(N,)`` int64 identities of the people of ``frame(index)``, in its keypoint order.

        A walker keeps its identity while in view; one who walks off one side and comes
        back on the other is somebody new (no tracker could know better)."""
        t = int(index) / self.fps
        return np.array([w.identity * 100000 + w.lap(t) % 100000 for w in self._walkers], np.int64)

    def keypoints(self, index: int) -> np.ndarray:
        """The true ``(N, K, 3)`` keypoints of frame ``index`` before drawing (every part
        ``v = 2``, none clipped): cheap, for ground-truth maps and smoothness checks."""
        t = int(index) / self.fps
        if not self._walkers:
            return np.zeros((0, self.skeleton.num_parts, 3), np.float32)
        return np.stack([w.pose(t, self.skeleton) for w in self._walkers])

    def __iter__(self):
        i = 0
        while True:
            yield self.frame(i)
            i += 1
