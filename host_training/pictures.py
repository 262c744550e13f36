"""Small picture helpers for TensorBoard and ``evaluate --draw``: maps and skeletons on images.

All take and return uint8 RGB ``(H, W, 3)``; maps are ``(h, w, C)`` NHWC at the network's
stride and are scaled up to the image so a picture shows where the network looks.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from openpose_plus.edge.draw import draw_poses
from openpose_plus.edge.poses import Poses
from openpose_plus.edge.skeleton import Skeleton

__all__ = ["heatmap_picture", "paf_picture", "skeleton_picture", "side_by_side"]


def _resize_to(m: np.ndarray, image: np.ndarray) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(m, np.float32), (image.shape[1], image.shape[0]),
                      interpolation=cv2.INTER_LINEAR)


def _overlay(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    return (image.astype(np.float32) * (1 - a) + colour.astype(np.float32) * a).astype(np.uint8)


def heatmap_picture(image: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Max over part channels (background excluded), as a colour map over the image."""
    parts = np.nan_to_num(np.asarray(heatmaps, np.float32)[..., :-1]).max(axis=-1)
    m = np.clip(_resize_to(parts, image), 0.0, 1.0)
    colour = cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return _overlay(image, colour, 0.7 * m)


def paf_picture(image: np.ndarray, pafs: np.ndarray) -> np.ndarray:
    """The strongest limb field per pixel: hue = its direction, brightness = its length."""
    p = np.nan_to_num(np.asarray(pafs, np.float32))
    x, y = p[..., 0::2], p[..., 1::2]
    mag = np.hypot(x, y)
    best = mag.argmax(axis=-1)[..., None]
    bx = np.take_along_axis(x, best, -1)[..., 0]
    by = np.take_along_axis(y, best, -1)[..., 0]
    m = np.clip(_resize_to(np.take_along_axis(mag, best, -1)[..., 0], image), 0.0, 1.0)
    hue = (np.degrees(np.arctan2(_resize_to(by, image), _resize_to(bx, image))) % 360) / 2
    hsv = np.stack([hue, np.full_like(hue, 255), m * 255], -1).astype(np.uint8)
    return _overlay(image, cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), m)


def skeleton_picture(image: np.ndarray, keypoints: np.ndarray, skeleton: Skeleton,
                     min_score: float = 1e-6) -> np.ndarray:
    """People ``(N, K, 3)`` (x, y, score in image pixels) drawn by the edge's own drawer."""
    kp = np.asarray(keypoints, np.float32).reshape(-1, skeleton.num_parts, 3)
    poses = Poses(kp, np.ones(len(kp), np.float32), skeleton)
    return draw_poses(np.ascontiguousarray(image, np.uint8).copy(), poses, skeleton, threshold=min_score)


def side_by_side(pictures: Sequence[np.ndarray]) -> np.ndarray:
    """Pictures of one height joined left to right."""
    return np.concatenate([np.asarray(p, np.uint8) for p in pictures], axis=1)
