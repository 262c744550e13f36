"""Poses as OpenPose's ``--write_json`` writes them, so existing consumers read our output.

One file per frame, ``{"version": 1.3, "people": [...]}``; each person has ``person_id``
(``[ID]`` when the poses are tracked, ``[-1]`` otherwise, as OpenPose writes it) and
``pose_keypoints_2d`` as flat ``x, y, confidence`` triples in the skeleton's
order (COCO-18 is OpenPose's COCO model order), a missing part written ``0, 0, 0``, and
the face, hand and 3-D arrays empty.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np

from .atomic import write_atomic

__all__ = ["OPENPOSE_JSON_VERSION", "to_openpose_json", "openpose_json_name", "write_openpose_json",
           "read_openpose_json"]

OPENPOSE_JSON_VERSION = 1.3
_EMPTY_KEYS = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
               "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")


def to_openpose_json(poses) -> Dict[str, object]:
    """A ``Poses`` (keypoints ``(N, K, 3)``) -> OpenPose's per-frame JSON dict."""
    kp = np.asarray(poses.keypoints, dtype=np.float64)
    people: List[Dict[str, object]] = []
    ids = getattr(poses, "ids", None)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        if kp.size:
            raise ValueError("poses keypoints must be (N, K, 3), got shape %s" % (kp.shape,))
        kp = kp.reshape(0, 0, 3)
    for n, person in enumerate(kp):
        flat = person.copy()
        missing = ~(flat[:, 2] > 0) | ~np.isfinite(flat).all(axis=1)
        flat[missing] = 0.0
        entry: Dict[str, object] = {"person_id": [int(ids[n]) if ids is not None else -1],
                                    "pose_keypoints_2d": [round(float(v), 6) for v in flat.reshape(-1)]}
        for key in _EMPTY_KEYS:
            entry[key] = []
        people.append(entry)
    return {"version": OPENPOSE_JSON_VERSION, "people": people}


def openpose_json_name(index: int, prefix: str = "") -> str:
    """OpenPose names a stream's files ``<prefix><12-digit frame>_keypoints.json``."""
    return "%s%012d_keypoints.json" % (prefix, index)


def write_openpose_json(directory: str, index: int, poses, prefix: str = "") -> str:
    """Write one frame's file atomically (temp + rename: a crash never leaves half a file)."""
    path = os.path.join(directory, openpose_json_name(index, prefix))
    return write_atomic(path, json.dumps(to_openpose_json(poses), separators=(",", ":")))


def read_openpose_json(path: str, num_parts: int) -> np.ndarray:
    """An OpenPose JSON file -> ``(N, num_parts, 3)`` keypoints (for tests and consumers)."""
    with open(path) as f:
        data = json.load(f)
    people = data.get("people", [])
    out = np.zeros((len(people), num_parts, 3), np.float32)
    for i, person in enumerate(people):
        out[i] = np.asarray(person["pose_keypoints_2d"], np.float32).reshape(num_parts, 3)
    return out
