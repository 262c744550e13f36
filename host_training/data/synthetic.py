"""A synthetic COCO-format keypoint dataset: pictures of articulated people, and their labels.

The layout is COCO 2017's, so the same directory works as ``DATA.coco_dir`` (``train_data =
"coco"``), as custom data, and for ``openpose-plus evaluate --data``::

    OUT/train2017/000000000001.jpg ...
    OUT/val2017/000000000001.jpg ...                       (with --val N)
    OUT/annotations/person_keypoints_train2017.json
    OUT/annotations/person_keypoints_val2017.json

Annotations are standard COCO person keypoints (17 parts, COCO's category and skeleton), so
pycocotools' COCOeval scores them as it scores COCO. Each person has ``keypoints`` (v = 2
visible, 1 hidden behind someone or something, 0 outside the frame), ``num_keypoints``, a
polygon ``segmentation`` of the pixels it shows, that outline's ``area`` and ``bbox``. A
person nothing of whom is seen is left out. Images are drawn by
:func:`openpose_plus.edge.synthetic.scene.render_scene`; image ``i`` depends only on ``(seed, split, i)``,
so a dataset is reproducible and its images can be drawn in parallel.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from openpose_plus.edge.atomic import write_atomic
from openpose_plus.edge.progress import Progress
from openpose_plus.edge.skeleton import COCO17, coco18_to_coco17

__all__ = ["SynthOptions", "COCO_PERSON_CATEGORY", "render_sample", "write_split", "write_dataset"]

COCO_PERSON_CATEGORY: Dict[str, Any] = COCO17.to_coco_category()  # id 1, "person", COCO's 17 keypoints
_SPLIT_SALT = {"train": 0, "val": 1}


@dataclass(frozen=True)
class SynthOptions:
    width: int = 640
    height: int = 480
    min_people: int = 1
    max_people: int = 5
    quality: int = 92
    seed: int = 0
    # Person heights as fractions of the frame height, drawn log-uniformly (render_scene's
    # default range: far-away people and people cut by the border both occur).
    min_height: float = 0.12
    max_height: float = 1.0


def _outline(mask: np.ndarray) -> Tuple[List[List[float]], List[float], float]:
    """COCO polygons, bbox and area of a binary mask."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) >= 3:
            polys.append([float(v) for v in c.reshape(-1)])
    ys, xs = np.nonzero(mask)
    bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    return polys, bbox, float(mask.sum())


def render_sample(opts: SynthOptions, split: str, index: int) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """Image ``index`` of ``split`` and its COCO annotations (without ids)."""
    from openpose_plus.edge.synthetic.scene import render_scene

    rng = np.random.default_rng([opts.seed, _SPLIT_SALT[split], index])
    n = int(rng.integers(opts.min_people, opts.max_people + 1))
    image, kp18, owner = render_scene(rng, opts.width, opts.height, n, return_owner=True,
                                      person_height=(opts.min_height * opts.height, opts.max_height * opts.height))
    kp17 = coco18_to_coco17(kp18)
    anns = []
    for p in range(kp17.shape[0]):
        visible = owner == p
        labelled = int(np.count_nonzero(kp17[p, :, 2] > 0))
        if not visible.any():
            continue  # entirely hidden or outside: nobody could label it
        polys, bbox, area = _outline(visible)
        kps = kp17[p].copy()
        kps[kps[:, 2] <= 0] = 0.0  # COCO writes unlabelled parts as 0, 0, 0
        anns.append({"category_id": 1, "iscrowd": 0, "num_keypoints": labelled,
                     "keypoints": [round(float(v), 2) for v in kps.reshape(-1)],
                     "segmentation": polys, "area": area, "bbox": bbox})
    return image, anns


def _render_and_write(args: Tuple[SynthOptions, str, int, str]) -> Tuple[int, List[Dict[str, Any]]]:
    opts, split, index, path = args
    image, anns = render_sample(opts, split, index)
    ok = cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, opts.quality])
    if not ok:
        raise OSError("cannot write %s" % path)
    return index, anns


def write_split(out: os.PathLike | str, split: str, count: int, opts: SynthOptions, workers: int = 1,
                show_progress: bool = True) -> Path:
    """Write ``count`` images of ``split`` and then (atomically) its annotation file."""
    if split not in _SPLIT_SALT:
        raise ValueError("split must be train or val, got %r" % (split,))
    if count <= 0:
        raise ValueError("--images must be positive, got %d" % count)
    out = Path(out)
    img_dir = out / ("%s2017" % split)
    ann_dir = out / "annotations"
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(opts, split, i, str(img_dir / ("%012d.jpg" % (i + 1)))) for i in range(count)]
    results: Dict[int, List[Dict[str, Any]]] = {}
    prog = Progress(count, label="synth %s" % split, unit="img", enabled=show_progress)
    if workers > 1 and count > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for index, anns in pool.map(_render_and_write, jobs, chunksize=max(1, min(16, count // (4 * workers)))):
                results[index] = anns
                prog.advance()
    else:
        for job in jobs:
            index, anns = _render_and_write(job)
            results[index] = anns
            prog.advance()
    prog.close()
    images, annotations = [], []
    ann_id = 1
    for i in range(count):
        image_id = i + 1
        images.append({"id": image_id, "file_name": "%012d.jpg" % image_id, "width": opts.width,
                       "height": opts.height})
        for a in results[i]:
            annotations.append(dict(a, id=ann_id, image_id=image_id))
            ann_id += 1
    doc = {"info": {"description": "openpose-plus synthetic people", "version": "1.0",
                    "seed": opts.seed, "split": split},
           "licenses": [], "images": images, "annotations": annotations, "categories": [COCO_PERSON_CATEGORY]}
    path = ann_dir / ("person_keypoints_%s2017.json" % split)
    write_atomic(path, json.dumps(doc))
    return path


def write_dataset(out: os.PathLike | str, images: int, val: int = 0, opts: Optional[SynthOptions] = None,
                  workers: int = 1, show_progress: bool = True) -> Dict[str, Path]:
    opts = opts or SynthOptions()
    paths = {"train": write_split(out, "train", images, opts, workers, show_progress)}
    if val:
        paths["val"] = write_split(out, "val", val, opts, workers, show_progress)
    return paths
