"""COCO-format keypoint annotations of synthetic people, for tests (test_evaluate.py,
test_calibrate.py): each person drawn in COCO-18 (``edge.synthetic``) written as COCO-17."""
from __future__ import annotations

import json

import numpy as np

from openpose_plus.edge.skeleton import COCO17_TO_COCO18

__all__ = ["person_annotation", "write_annotations"]


def person_annotation(person18: np.ndarray, ann_id: int, image_id: int) -> dict:
    """One COCO-17 annotation of a COCO-18 person (rows x, y, v): its labelled parts (v = 2),
    their box, and an area of 0.6 of it (a person fills about that much of their box)."""
    kp17 = np.zeros((17, 3), np.float32)
    for i18, i17 in enumerate(COCO17_TO_COCO18):
        if i17 is not None and person18[i18, 2] > 0:
            kp17[i17] = (person18[i18, 0], person18[i18, 1], 2)
    seen = kp17[kp17[:, 2] > 0]
    (x0, y0), (x1, y1) = seen[:, :2].min(axis=0), seen[:, :2].max(axis=0)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": kp17.ravel().round(2).tolist(), "num_keypoints": int(len(seen)),
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
            "area": float((x1 - x0) * (y1 - y0) * 0.6)}


def write_annotations(path, images: list, anns: list) -> None:
    """The annotation file: ``images``, ``anns`` and one person category of 17 keypoints."""
    cat = {"id": 1, "name": "person", "supercategory": "person", "keypoints": ["kp%d" % i for i in range(17)],
           "skeleton": [[1, 2]]}
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [cat]}))
