"""Ground-truth maps from keypoints: Gaussian part peaks and unit-vector PAF bands.

Training renders its targets with these functions and the grouping tests render their
inputs with them, so what the network learns is exactly what the decoder expects.
All coordinates are map coordinates (see :mod:`openpose_plus.edge.geometry`): cell
``(j, i)`` has its centre at ``(x, y) = (j, i)``.

``keypoints`` is ``(N, K, 3)``: ``x, y, v`` per part; ``v > 0`` means labelled
(COCO's 1 = occluded and 2 = visible both count), ``v <= 0`` means absent.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .skeleton import Skeleton

__all__ = ["render_heatmaps", "render_pafs", "render_targets"]


def _as_keypoints(keypoints, skeleton: Skeleton) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.size == 0:
        return np.zeros((0, skeleton.num_parts, 3), np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (skeleton.num_parts, 3):
        raise ValueError("keypoints must be (N, %d, 3) for skeleton %r, got %s"
                         % (skeleton.num_parts, skeleton.name, kp.shape))
    return kp


def render_heatmaps(keypoints, skeleton: Skeleton, height: int, width: int, sigma: float,
                    out: Optional[np.ndarray] = None) -> np.ndarray:
    """``(K + 1, H, W)`` float32: per part the max over people of a Gaussian of std ``sigma``,
    then the background channel ``1 - max(parts)``."""
    if sigma <= 0:
        raise ValueError("sigma must be positive, got %r" % sigma)
    kp = _as_keypoints(keypoints, skeleton)
    k = skeleton.num_parts
    if out is None:
        out = np.zeros((k + 1, height, width), np.float32)
    else:
        if out.shape != (k + 1, height, width) or out.dtype != np.float32:
            raise ValueError("out must be float32 %s, got %s %s" % ((k + 1, height, width), out.dtype, out.shape))
        out[...] = 0.0
    n = kp.shape[0]
    if n:
        xs = np.arange(width, dtype=np.float32)
        ys = np.arange(height, dtype=np.float32)
        inv = np.float32(-0.5 / (sigma * sigma))
        # Separable Gaussian: one row profile and one column profile per keypoint.
        gx = np.exp(inv * (xs[None, None, :] - kp[:, :, 0:1]) ** 2)  # (N, K, W)
        gy = np.exp(inv * (ys[None, None, :] - kp[:, :, 1:2]) ** 2)  # (N, K, H)
        present = kp[:, :, 2] > 0
        gy = gy * present[:, :, None]
        maps = gy[:, :, :, None] * gx[:, :, None, :]  # (N, K, H, W)
        np.max(maps, axis=0, out=out[:k])
    np.subtract(1.0, out[:k].max(axis=0), out=out[k])
    np.maximum(out[k], 0.0, out=out[k])
    return out


def render_pafs(keypoints, skeleton: Skeleton, height: int, width: int, limb_width: float,
                out: Optional[np.ndarray] = None) -> np.ndarray:
    """``(2L, H, W)`` float32: inside a band of half-width ``limb_width`` around each limb,
    the unit vector from its first part to its second, averaged where people overlap."""
    if limb_width <= 0:
        raise ValueError("limb_width must be positive, got %r" % limb_width)
    kp = _as_keypoints(keypoints, skeleton)
    c = skeleton.num_pafs
    if out is None:
        out = np.zeros((c, height, width), np.float32)
    else:
        if out.shape != (c, height, width) or out.dtype != np.float32:
            raise ValueError("out must be float32 %s, got %s %s" % ((c, height, width), out.dtype, out.shape))
        out[...] = 0.0
    if kp.shape[0] == 0:
        return out
    gx = np.arange(width, dtype=np.float32)[None, None, :]
    gy = np.arange(height, dtype=np.float32)[None, :, None]
    for limb, (a, b) in enumerate(skeleton.limbs):
        ok = (kp[:, a, 2] > 0) & (kp[:, b, 2] > 0)
        pa, pb = kp[ok, a, :2], kp[ok, b, :2]
        d = pb - pa
        length = np.hypot(d[:, 0], d[:, 1])
        keep = length > 1e-6
        if not keep.any():
            continue
        pa, d, length = pa[keep], d[keep], length[keep]
        ux, uy = (d[:, 0] / length)[:, None, None], (d[:, 1] / length)[:, None, None]
        rx = gx - pa[:, 0][:, None, None]
        ry = gy - pa[:, 1][:, None, None]
        along = rx * ux + ry * uy
        across = np.abs(rx * uy - ry * ux)
        band = (along >= -limb_width) & (along <= length[:, None, None] + limb_width) & (across <= limb_width)
        count = band.sum(axis=0)
        if not count.any():
            continue
        cx, cy = skeleton.paf_channels[limb]
        denom = np.maximum(count, 1).astype(np.float32)
        out[cx] = (band * ux).sum(axis=0) / denom
        out[cy] = (band * uy).sum(axis=0) / denom
    return out


def render_targets(keypoints, skeleton: Skeleton, height: int, width: int, sigma: float,
                   limb_width: float) -> Tuple[np.ndarray, np.ndarray]:
    """Heatmaps and PAFs together, the pair the network is trained to produce."""
    return (render_heatmaps(keypoints, skeleton, height, width, sigma),
            render_pafs(keypoints, skeleton, height, width, limb_width))
