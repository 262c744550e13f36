"""Draw poses on a frame: a colour per limb (OpenPose's palette), a dot per part; tracked
poses (``poses.ids``) get one colour per person ID instead, and the ID written by the head."""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .skeleton import COCO18, Skeleton

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None  # type: ignore[assignment]

__all__ = ["limb_colours", "id_colour", "draw_poses"]

# OpenPose's 18 body colours (RGB), reused cyclically for other skeletons.
_PALETTE = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
            (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
            (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))


def limb_colours(skeleton: Skeleton) -> List[Tuple[int, int, int]]:
    return [_PALETTE[i % len(_PALETTE)] for i in range(skeleton.num_limbs)]


def id_colour(track_id: int) -> Tuple[int, int, int]:
    """A bright RGB colour for a person ID: hues a golden angle apart, so IDs that follow
    each other look different (the live page uses the same rule)."""
    hue = (int(track_id) * 137.508) % 360.0
    h = hue / 60.0
    x = 1.0 - abs(h % 2.0 - 1.0)
    r, g, b = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(h) % 6]
    # 0.35..1 of full brightness: light enough to read on dark pixels, never grey
    return tuple(int(round(255 * (0.35 + 0.65 * v))) for v in (r, g, b))  # type: ignore[return-value]


def draw_poses(image: np.ndarray, poses, skeleton: Skeleton = COCO18, threshold: float = 0.05,
               thickness: Optional[int] = None, bgr: bool = False) -> np.ndarray:
    """Draw ``poses`` (keypoints in ``image``'s pixels) onto ``image`` in place; returns it.

    Colours are RGB; ``bgr=True`` for an image in OpenCV's BGR order.
    """
    if cv2 is None:  # pragma: no cover
        raise ImportError("drawing needs OpenCV (pip install opencv-python-headless)")
    kp = np.asarray(poses.keypoints, np.float32)
    if kp.size == 0:
        return image
    if kp.shape[1] != skeleton.num_parts:
        raise ValueError("poses have %d parts, skeleton %r has %d" % (kp.shape[1], skeleton.name, skeleton.num_parts))
    t = thickness or max(1, int(round(min(image.shape[:2]) / 160)))
    colours = limb_colours(skeleton)
    if bgr:
        colours = [c[::-1] for c in colours]
    shift = 4  # sub-pixel placement
    scale = float(1 << shift)
    ok = (kp[..., 2] > threshold) & np.isfinite(kp).all(axis=-1)
    # Keep the coordinates cv2 gets in int range (a far-off point must not overflow).
    kp = np.clip(np.nan_to_num(kp), -1e5, 1e5)
    ids = getattr(poses, "ids", None)
    for n in range(kp.shape[0]):
        tracked = ids is not None and ids[n] >= 0
        person = id_colour(int(ids[n])) if tracked else None
        if person is not None and bgr:
            person = person[::-1]
        for li, (a, b) in enumerate(skeleton.limbs):
            if ok[n, a] and ok[n, b]:
                pa = (int(kp[n, a, 0] * scale), int(kp[n, a, 1] * scale))
                pb = (int(kp[n, b, 0] * scale), int(kp[n, b, 1] * scale))
                cv2.line(image, pa, pb, person or colours[li], t, cv2.LINE_AA, shift)
        for p in range(kp.shape[1]):
            if ok[n, p]:
                c = person or colours[p % len(colours)]
                cv2.circle(image, (int(kp[n, p, 0] * scale), int(kp[n, p, 1] * scale)), int((t + 1) * scale),
                           c, -1, cv2.LINE_AA, shift)
        if tracked and ok[n].any():
            _label(image, str(int(ids[n])), kp[n, ok[n], :2], t, person)
    return image


def _label(image: np.ndarray, text: str, points: np.ndarray, t: int, colour) -> None:
    """``text`` above the topmost of ``points``, on a dark box so it reads on any picture."""
    size = max(0.35, t * 0.3)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, max(1, t // 2))
    top = points[np.argmin(points[:, 1])]
    x = int(np.clip(top[0] - w / 2, 0, max(0, image.shape[1] - w - 2)))
    y = int(np.clip(top[1] - 3 * t - 2, h + 2, image.shape[0] - base - 1))
    cv2.rectangle(image, (x - 2, y - h - 2), (x + w + 2, y + base), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, colour, max(1, t // 2), cv2.LINE_AA)
