"""COCO keypoint evaluation: images -> maps -> people -> COCO results -> AP.

Everything here is independent of TensorFlow: the network is a callable ``map_fn`` that
takes a letterboxed uint8 batch ``(1, H, W, 3)`` and returns ``(heatmaps, pafs)`` NCHW
float32 ``(1, K+1, h, w)`` and ``(1, 2L, h, w)`` (an unbatched ``(C, h, w)`` is accepted
too). So a Keras model, an ONNX file in onnxruntime, or a calibrated FP16/INT8 graph are
all scored the same way, by the same code the device runs: letterboxing by
:class:`openpose_plus.edge.preprocess.Preprocessor`, grouping by the edge's C core, and
the coordinate convention of :mod:`openpose_plus.edge.geometry`.

COCO-18 people go back to COCO's 17 keypoints (the neck, which COCO does not label, is
dropped), and so does any skeleton that names all 17 of COCO's keypoints (BODY_25, trt_pose's
18 parts: its other parts are dropped); a custom skeleton's keypoints are written in its own
order, and scored with a uniform OKS sigma unless given.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from openpose_plus.edge.draw import draw_poses
from openpose_plus.edge.geometry import Letterbox
from openpose_plus.edge.grouping import Grouper, GroupParams
from openpose_plus.edge.poses import Poses
from openpose_plus.edge.preprocess import Preprocessor
from openpose_plus.edge.progress import Progress
from openpose_plus.edge.skeleton import COCO17_PARTS, COCO17_TO_COCO18, COCO18, Skeleton

__all__ = ["MapFn", "EvalSettings", "EvalError", "METRICS", "load_coco", "to_coco_keypoints",
           "poses_to_results", "maps_to_results", "predict", "evaluate_predictions", "evaluate",
           "group_params"]

log = logging.getLogger("openpose_plus.evaluate")

MapFn = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]

# COCOeval's keypoint stats, in its order.
METRICS = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50", "AR75", "AR_medium", "AR_large")
UNIFORM_SIGMA = 0.05  # OKS sigma for custom skeletons: between COCO's face (0.025) and hip (0.107) values


class EvalError(ValueError):
    """Evaluation input that cannot be used (bad maps, unreadable image, bad annotations)."""


@dataclass
class EvalSettings:
    input_width: int
    input_height: int
    stride: int = 8
    skeleton: Skeleton = COCO18
    group: GroupParams = field(default_factory=GroupParams)
    pad_value: int = 0
    category_id: int = 1
    bad_image: str = "error"   # "error" | "skip": an unreadable image stops, or is skipped and named

    @property
    def map_size(self) -> Tuple[int, int]:
        """``(w, h)`` of the maps the grouper reads: the network's own. (Maps are not scaled up
        first, as OpenPose does: the core's sub-cell refinement already places parts, and on a
        real network's maps scaling by 2-8 cost 1.5-170 ms an image for no AP.)"""
        return (self.input_width // self.stride, self.input_height // self.stride)


def group_params(values: Dict[str, Any]) -> GroupParams:
    """EVAL.group (a table of GroupParams fields) -> GroupParams, naming an unknown field."""
    try:
        return GroupParams(**dict(values))
    except TypeError as exc:
        raise EvalError("EVAL.group: %s (fields: %s)" % (exc, ", ".join(GroupParams.__dataclass_fields__))) from None


def load_coco(annotation_file):
    """pycocotools' COCO of a keypoint annotation file, quietly, with a clear error when unusable."""
    from pycocotools.coco import COCO

    path = str(annotation_file)
    if not os.path.isfile(path):
        raise EvalError("%s: annotation file not found" % path)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(path)
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise EvalError("%s: not a COCO annotation file (%s: %s)" % (path, type(exc).__name__, exc)) from None


# -- people -> COCO results ------------------------------------------------------------------

def coco17_parts(skeleton: Skeleton) -> Optional[List[int]]:
    """The skeleton's part index of each of COCO's 17 keypoints (COCO's order), or None when it
    does not name them all (a custom skeleton, scored in its own order)."""
    if skeleton == COCO18:
        order = [0] * 17
        for i18, i17 in enumerate(COCO17_TO_COCO18):
            if i17 is not None:
                order[i17] = i18
        return order
    index = {name: i for i, name in enumerate(skeleton.parts)}
    if skeleton.num_parts > 17 and all(name in index for name in COCO17_PARTS):
        return [index[name] for name in COCO17_PARTS]
    return None


def to_coco_keypoints(keypoints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """``(N, K, 3)`` image-pixel keypoints -> ``(N, 3 * K')`` COCO keypoint rows (COCO's 17
    where the skeleton has them: :func:`coco17_parts`)."""
    kp = np.asarray(keypoints, np.float32).reshape(-1, skeleton.num_parts, 3)
    order = coco17_parts(skeleton)
    if order is not None:
        kp = kp[:, order]
    return np.ascontiguousarray(kp).reshape(kp.shape[0], kp.shape[1] * 3)


def poses_to_results(poses: Poses, image_id: int, category_id: int = 1) -> List[Dict[str, Any]]:
    """COCO keypoint results of people already in image pixels."""
    rows = to_coco_keypoints(poses.keypoints, poses.skeleton)
    return [{"image_id": int(image_id), "category_id": int(category_id),
             "keypoints": [round(float(v), 3) for v in row], "score": float(score)}
            for row, score in zip(rows, poses.scores)]


def _chw(maps: np.ndarray, name: str, channels: int, settings: EvalSettings) -> np.ndarray:
    m = np.asarray(maps)
    if m.ndim == 4:
        if m.shape[0] != 1:
            raise EvalError("%s: expected one image's maps, got a batch of %d" % (name, m.shape[0]))
        m = m[0]
    h, w = settings.input_height // settings.stride, settings.input_width // settings.stride
    if m.shape != (channels, h, w):
        raise EvalError("%s: expected NCHW (1, %d, %d, %d), got %s" % (name, channels, h, w, np.shape(maps)))
    if not np.isfinite(m).all():
        raise EvalError("%s: hold NaN or infinity" % name)
    return np.ascontiguousarray(m, np.float32)


def maps_to_results(heatmaps: np.ndarray, pafs: np.ndarray, letterbox: Letterbox, image_id: int,
                    grouper: Grouper, settings: EvalSettings, where: str = "") -> Tuple[Poses, List[Dict[str, Any]]]:
    """One image's NCHW maps -> its people in image pixels, and their COCO results."""
    sk = settings.skeleton
    where = where or "image %d" % image_id
    heat = _chw(heatmaps, "%s: heatmaps" % where, sk.num_heatmaps, settings)
    paf = _chw(pafs, "%s: pafs" % where, sk.num_pafs, settings)
    poses = grouper.group(heat, paf).to_image(letterbox, settings.stride)
    return poses, poses_to_results(poses, image_id, settings.category_id)


def make_grouper(settings: EvalSettings) -> Grouper:
    w, h = settings.map_size
    return Grouper(settings.skeleton, h, w, settings.group)


# -- a whole val set --------------------------------------------------------------------------

def _read_image(path: str) -> np.ndarray:
    data = np.fromfile(path, np.uint8) if os.path.isfile(path) else None
    if data is None:
        raise EvalError("%s: image not found" % path)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise EvalError("%s: not a readable image (corrupt or truncated)" % path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def predict(coco_gt, image_dir, map_fn: MapFn, settings: EvalSettings, max_images: int = 0,
            draw: int = 0, draw_dir=None, show_progress: bool = True) -> Tuple[List[Dict[str, Any]], List[int]]:
    """Run ``map_fn`` over the images of ``coco_gt``; returns (COCO results, evaluated image ids).

    The first ``draw`` images are saved to ``draw_dir`` with the people drawn on them.
    """
    image_ids = sorted(coco_gt.getImgIds())
    if max_images:
        image_ids = image_ids[:max_images]
    if not image_ids:
        raise EvalError("the annotation file lists no images")
    pre = Preprocessor(settings.input_width, settings.input_height, settings.pad_value)
    batch = np.zeros((1, settings.input_height, settings.input_width, 3), np.uint8)
    grouper = make_grouper(settings)
    results: List[Dict[str, Any]] = []
    done: List[int] = []
    if draw:
        if draw_dir is None:
            raise EvalError("drawing %d pictures needs a folder to draw them in" % draw)
        Path(draw_dir).mkdir(parents=True, exist_ok=True)
    progress = Progress(len(image_ids), label="image", every=max(1, len(image_ids) // 20), enabled=show_progress)
    for n, image_id in enumerate(image_ids):
        info = coco_gt.loadImgs(image_id)[0]
        path = os.path.join(str(image_dir), info["file_name"])
        try:
            image = _read_image(path)
        except EvalError as exc:
            if settings.bad_image != "skip":
                raise
            log.warning("skipping %s", exc)
            continue
        letterbox = pre(image, batch)
        heat, paf = map_fn(batch)
        poses, rows = maps_to_results(heat, paf, letterbox, image_id, grouper, settings, where=path)
        results.extend(rows)
        done.append(image_id)
        if len(done) <= draw:
            picture = draw_poses(image.copy(), poses, settings.skeleton)
            out = os.path.join(str(draw_dir), "%s.jpg" % Path(info["file_name"]).stem)
            cv2.imwrite(out, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        progress.update(n + 1, people=len(results))
    progress.close()
    return results, done


def evaluate_predictions(coco_gt, predictions: Sequence[Dict[str, Any]], image_ids: Optional[Sequence[int]] = None,
                         sigmas: Optional[Sequence[float]] = None) -> Dict[str, float]:
    """COCOeval keypoint AP/AR of COCO-format ``predictions`` against ``coco_gt``.

    ``image_ids`` limits scoring to the images that were run (default: all of coco_gt's).
    No predictions at all scores 0 everywhere.
    """
    from pycocotools.cocoeval import COCOeval

    ids = sorted(image_ids) if image_ids is not None else sorted(coco_gt.getImgIds())
    if not predictions:
        return {m: 0.0 for m in METRICS}
    lengths = {len(p.get("keypoints", ())) for p in predictions}
    if len(lengths) != 1:
        raise EvalError("predictions hold keypoint rows of different lengths: %s" % sorted(lengths))
    k = lengths.pop() // 3
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(list(predictions))
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.imgIds = ids
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        elif k != 17:
            ev.params.kpt_oks_sigmas = np.full(k, UNIFORM_SIGMA)
        if len(ev.params.kpt_oks_sigmas) != k:
            raise EvalError("%d OKS sigmas for %d keypoints" % (len(ev.params.kpt_oks_sigmas), k))
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # COCOeval reports -1 where nothing could be scored (no ground truth in that range).
    return {m: float(max(v, 0.0)) for m, v in zip(METRICS, ev.stats)}


def evaluate(annotation_file, image_dir, map_fn: MapFn, settings: EvalSettings, out_dir=None,
             max_images: int = 0, draw: int = 0, show_progress: bool = True) -> Dict[str, Any]:
    """The whole evaluation; writes ``keypoint_results.json`` and ``metrics.json`` to ``out_dir``."""
    coco_gt = load_coco(annotation_file)
    cats = coco_gt.getCatIds()
    if settings.category_id not in cats and len(cats) == 1:
        settings.category_id = cats[0]  # a custom dataset's one category, whatever its id
    out = Path(out_dir) if out_dir else None
    start = time.perf_counter()
    results, ids = predict(coco_gt, image_dir, map_fn, settings, max_images, draw,
                           (out / "drawn") if out else None, show_progress)
    seconds = time.perf_counter() - start  # reading, letterbox, network, grouping, drawing
    metrics = evaluate_predictions(coco_gt, results, ids)
    summary: Dict[str, Any] = dict(metrics, images=len(ids), people=len(results),
                                   ms_per_image=round(1000.0 * seconds / max(1, len(ids)), 2))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "keypoint_results.json").write_text(json.dumps(results))
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    return summary
