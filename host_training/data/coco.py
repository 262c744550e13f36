"""COCO-format person keypoints: an annotation file read into records, one per image.

Works for COCO 2017 itself and for any COCO-format keypoint dataset (custom data, the
synthetic generator's output). Annotations are indexed with pycocotools; masks are
rasterised with ``pycocotools.mask``.

* COCO's 17 keypoints become COCO-18 (OpenPose order): the neck is the mid-shoulder point
  when both shoulders are labelled (visibility the lower of the two), absent otherwise.
* A dataset whose category has its own keypoints keeps them (``Skeleton.from_coco_category``)
  when the config says ``MODEL.skeleton = "from_data"``.
* Crowd regions, and people with fewer than ``min_keypoints`` labelled keypoints, become the
  ignore mask (0 = the loss ignores these pixels), as in the OpenPose training recipe: the
  network is not punished for finding people nobody labelled.
* A broken annotation (wrong keypoint count, NaN, bad box) is reported with the file name and
  annotation id; ``bad_sample="skip"`` drops that image with a warning, ``"error"`` stops.
  A corrupt image is found when it is decoded: :func:`load_sample` raises :class:`BadSample`
  naming the file, and the pipeline skips or stops by the same choice.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import pickle
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from openpose_plus.edge.skeleton import COCO17_PARTS, COCO18, Skeleton, coco17_to_coco18

__all__ = ["BadSample", "Record", "KeypointDataset", "read_keypoint_dataset", "resolve_skeleton", "load_sample",
           "decode_image", "ignore_mask"]

log = logging.getLogger("openpose_plus.data")


class BadSample(ValueError):
    """A sample that cannot be used; ``path`` names the file (image or annotation file)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__("%s: %s" % (path, reason))
        self.path = path
        self.reason = reason

    def __reduce__(self):  # crosses from worker processes intact (the default would lose the args)
        return (BadSample, (self.path, self.reason))


@dataclass
class Record:
    """One image and what is known about its people (image pixels, the dataset's skeleton)."""

    sample_id: int
    image_path: str
    width: int
    height: int
    keypoints: np.ndarray                      # (N, K, 3) float32 x, y, v
    ignore: List[Any] = field(default_factory=list)  # COCO segmentations (polygons / RLE) or [x, y, w, h] boxes


@dataclass
class KeypointDataset:
    """Records of one annotation file, the skeleton they are in, and what was skipped."""

    annotation_file: str
    image_dir: str
    skeleton: Skeleton
    records: List[Record]
    skipped: List[str] = field(default_factory=list)


def _person_category(data: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    cats = [c for c in data.get("categories") or () if isinstance(c, Mapping) and c.get("keypoints")]
    if not cats:
        raise BadSample(path, "no category with 'keypoints' (not a COCO keypoint annotation file)")
    person = [c for c in cats if c.get("name") == "person"]
    return (person or cats)[0]


def resolve_skeleton(category: Mapping[str, Any], mode: str = "coco18", source: str = "") -> Tuple[Skeleton, bool]:
    """The training skeleton of a dataset and whether its keypoints are COCO-17 (to convert).

    ``mode`` is MODEL.skeleton: ``coco18`` (the data must be COCO-17 or COCO-18) or
    ``from_data`` (a custom category keeps its own parts).
    """
    names = tuple(str(n) for n in category.get("keypoints") or ())
    if names == COCO17_PARTS:
        return COCO18, True
    if names == COCO18.parts:
        return COCO18, False
    if mode == "coco18":
        raise BadSample(source or "annotations", "category %r has %d keypoints that are neither COCO-17 nor "
                        "COCO-18; set MODEL.skeleton = \"from_data\" to train on its own skeleton"
                        % (category.get("name"), len(names)))
    return Skeleton.from_coco_category(category), False


def _check_annotation(ann: Mapping[str, Any], k: int) -> Optional[str]:
    """Why an annotation is unusable, or None."""
    kps = ann.get("keypoints")
    if kps is not None:
        if not isinstance(kps, list) or len(kps) != 3 * k:
            return "keypoints has %s values, expected %d" % (len(kps) if isinstance(kps, list) else "no list of", 3 * k)
        try:
            vals = [float(x) for x in kps]
        except (TypeError, ValueError):
            return "keypoints holds a non-number"
        if not all(math.isfinite(x) for x in vals):
            return "keypoints holds NaN or infinity"
    bbox = ann.get("bbox")
    if bbox is not None:
        try:
            b = [float(x) for x in bbox]
        except (TypeError, ValueError):
            return "bbox is not four numbers"
        if len(b) != 4 or not all(math.isfinite(x) for x in b) or b[2] < 0 or b[3] < 0:
            return "bbox is not [x, y, w, h] with w, h >= 0"
    seg = ann.get("segmentation")
    if seg is not None and not isinstance(seg, (list, dict)):
        return "segmentation is neither polygons nor RLE"
    return None


def _cache_path(cache_dir: str, ann_file: str, key: Tuple[Any, ...]) -> str:
    st = os.stat(ann_file)
    blob = repr((os.path.abspath(ann_file), st.st_size, st.st_mtime_ns) + key).encode()
    return os.path.join(cache_dir, "index-%s.pkl" % hashlib.sha256(blob).hexdigest()[:20])


def _read_annotations(annotation_file: str) -> Mapping[str, Any]:
    """The annotation file's JSON, with its ``images`` and ``annotations`` lists, or BadSample naming it."""
    try:
        with open(annotation_file, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise BadSample(annotation_file, "cannot read annotation file: %s" % (exc.strerror or exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadSample(annotation_file, "not valid JSON: %s" % exc) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise BadSample(annotation_file, "not a COCO annotation file (needs 'images' and 'annotations' lists)")
    return data


def _coco_index(data: Mapping[str, Any], annotation_file: str):
    from pycocotools.coco import COCO  # host-only dependency, imported where used

    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            coco.createIndex()
    except (KeyError, TypeError) as exc:
        raise BadSample(annotation_file, "malformed COCO index (%s: %s)" % (type(exc).__name__, exc)) from None
    return coco


@dataclass
class _Image:
    """One image entry read from the index: its people, its ignore regions, or what is wrong."""

    width: int
    height: int
    file_name: str
    people: List[np.ndarray] = field(default_factory=list)
    ignore: List[Any] = field(default_factory=list)
    problem: Optional[str] = None


def _image_entry(info: Any) -> _Image:
    try:
        width, height, file_name = int(info["width"]), int(info["height"]), str(info["file_name"])
    except (KeyError, TypeError, ValueError):
        name = str(info.get("file_name", "?")) if isinstance(info, Mapping) else "?"
        return _Image(0, 0, name, problem="image entry lacks file_name/width/height")
    image = _Image(width, height, file_name)
    if width <= 0 or height <= 0:
        image.problem = "image size %dx%d" % (width, height)
    return image


def _read_image(coco, img_id: int, cat_id: Any, k: int, min_keypoints: int) -> _Image:
    """An image's labelled people (``(k, 3)`` arrays); crowds and people with too few keypoints
    become ignore regions; the first broken annotation is the image's problem."""
    image = _image_entry(coco.imgs[img_id])
    if image.problem is not None:
        return image
    for ann in coco.imgToAnns.get(img_id, ()):
        if cat_id is not None and ann.get("category_id") != cat_id:
            continue
        why = _check_annotation(ann, k)
        if why:
            image.problem = "annotation id %s: %s" % (ann.get("id"), why)
            return image
        kps = ann.get("keypoints")
        n_labelled = int(ann.get("num_keypoints", 0) or 0)
        if kps is not None and not ann.get("num_keypoints"):
            n_labelled = int(np.count_nonzero(np.asarray(kps, np.float32)[2::3] > 0))
        if ann.get("iscrowd") or kps is None or n_labelled < min_keypoints:
            region = ann.get("segmentation") or ann.get("bbox")
            if region:
                image.ignore.append(region)
            continue
        image.people.append(np.asarray(kps, np.float32).reshape(k, 3))
    return image


def _load_cache(path: Optional[str]) -> Optional[KeypointDataset]:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return None


def _save_cache(path: str, ds: KeypointDataset) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp%d" % os.getpid()
        with open(tmp, "wb") as f:
            pickle.dump(ds, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:  # a cache is a convenience; training goes on without it
        log.warning("cannot write annotation cache %s: %s", path, exc)


def read_keypoint_dataset(annotation_file: str, image_dir: str, skeleton_mode: str = "coco18",
                          bad_sample: str = "skip", min_keypoints: int = 1, id_offset: int = 0,
                          cache_dir: str = "") -> KeypointDataset:
    """Every image with at least one usable labelled person, as :class:`Record` s.

    An unreadable annotation file is always an error naming it; a broken annotation inside it
    drops its image (``bad_sample="skip"``, with a warning naming file and annotation id) or
    raises :class:`BadSample` (``"error"``).
    """
    if bad_sample not in ("skip", "error"):
        raise ValueError("bad_sample must be 'skip' or 'error', got %r" % (bad_sample,))
    cache = None
    if cache_dir:
        try:
            cache = _cache_path(cache_dir, annotation_file, (image_dir, skeleton_mode, bad_sample,
                                                             min_keypoints, id_offset, 1))
        except OSError:
            pass  # the annotation file itself is missing: reading it says so
    cached = _load_cache(cache)
    if cached is not None:
        return cached
    data = _read_annotations(annotation_file)
    category = _person_category(data, annotation_file)
    skeleton, from17 = resolve_skeleton(category, skeleton_mode, annotation_file)
    coco = _coco_index(data, annotation_file)
    k_file, cat_id = len(category["keypoints"]), category.get("id")
    skipped: List[str] = []
    records: List[Record] = []
    for img_id in sorted(coco.imgs):
        image = _read_image(coco, img_id, cat_id, k_file, min_keypoints)
        if image.problem is not None:
            if bad_sample == "error":
                raise BadSample(annotation_file, "image %s (%s): %s" % (img_id, image.file_name, image.problem))
            where = "%s (image %s, %s)" % (annotation_file, img_id, image.file_name)
            log.warning("skipping %s: %s", where, image.problem)
            skipped.append("%s: %s" % (where, image.problem))
            continue
        if not image.people:
            continue
        kp = np.stack(image.people)
        kp[..., 2] = np.where(kp[..., 2] > 0, kp[..., 2], 0.0)
        if from17:
            kp = coco17_to_coco18(kp)
        records.append(Record(int(img_id) + id_offset, os.path.join(image_dir, image.file_name), image.width,
                              image.height, kp.astype(np.float32), image.ignore))
    ds = KeypointDataset(annotation_file, image_dir, skeleton, records, skipped)
    if cache is not None:
        _save_cache(cache, ds)
    return ds


def ignore_mask(regions: Sequence[Any], width: int, height: int) -> Optional[np.ndarray]:
    """uint8 ``height x width``: 0 inside any region (polygons, RLE or a bbox), 255 elsewhere;
    None when there are no regions (every pixel counts)."""
    if not regions:
        return None
    from pycocotools import mask as mask_utils

    covered = np.zeros((height, width), np.uint8)
    for region in regions:
        if isinstance(region, dict) or (isinstance(region, list) and region and isinstance(region[0], list)):
            rles = mask_utils.frPyObjects(region, height, width)
            m = mask_utils.decode(rles)
            if m.ndim == 3:
                m = m.max(axis=2)
        else:  # a bare [x, y, w, h] box: a person with neither keypoints nor outline
            x, y, w, h = (float(v) for v in region)
            m = np.zeros((height, width), np.uint8)
            x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
            m[y0:int(math.ceil(y + h)), x0:int(math.ceil(x + w))] = 1
        covered |= m.astype(np.uint8)
    return np.where(covered > 0, 0, 255).astype(np.uint8)


def decode_image(path: str) -> np.ndarray:
    """uint8 HxWx3 RGB, or :class:`BadSample` naming the file."""
    try:
        buf = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise BadSample(path, "cannot read image: %s" % (exc.strerror or exc)) from None
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise BadSample(path, "not a decodable image (corrupt or truncated)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_sample(record: Record) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """``(image RGB, keypoints (N, K, 3), ignore mask or None)`` of one record."""
    image = decode_image(record.image_path)
    h, w = image.shape[:2]
    if (w, h) != (record.width, record.height):
        raise BadSample(record.image_path, "image is %dx%d but its annotation says %dx%d"
                        % (w, h, record.width, record.height))
    return image, record.keypoints, ignore_mask(record.ignore, w, h)
