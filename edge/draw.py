"""Draw poses on a frame: a colour per limb (OpenPose's palette), a dot per part."""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .skeleton import COCO18, Skeleton

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None  # type: ignore[assignment]

__all__ = ["limb_colours", "draw_poses"]

# OpenPose's 18 body colours (RGB), reused cyclically for other skeletons.
_PALETTE = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
            (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
            (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))


def limb_colours(skeleton: Skeleton) -> List[Tuple[int, int, int]]:
    return [_PALETTE[i % len(_PALETTE)] for i in range(skeleton.num_limbs)]


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
    for n in range(kp.shape[0]):
        for li, (a, b) in enumerate(skeleton.limbs):
            if ok[n, a] and ok[n, b]:
                pa = (int(kp[n, a, 0] * scale), int(kp[n, a, 1] * scale))
                pb = (int(kp[n, b, 0] * scale), int(kp[n, b, 1] * scale))
                cv2.line(image, pa, pb, colours[li], t, cv2.LINE_AA, shift)
        for p in range(kp.shape[1]):
            if ok[n, p]:
                c = colours[p % len(colours)]
                cv2.circle(image, (int(kp[n, p, 0] * scale), int(kp[n, p, 1] * scale)), int((t + 1) * scale),
                           c, -1, cv2.LINE_AA, shift)
    return image
