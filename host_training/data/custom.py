"""Custom data: COCO-format keypoint datasets of your own, alone or mixed with COCO.

``DATA.train_data = "custom"`` trains on ``DATA.your_images`` + ``DATA.your_annotations``.
If its category lists COCO's 17 keypoints (or COCO-18's) it is trained as COCO-18; if it
has keypoints of its own and ``MODEL.skeleton = "from_data"``, the network, the targets and
the grouping all use that skeleton (parts and limbs from the category; left/right flip pairs
found by name).

``DATA.train_data = "coco_and_custom"`` mixes the two: of each batch of ``B`` samples,
``round(B * DATA.custom_ratio)`` come from the custom data and the rest from COCO, exactly,
in every batch (both must then be in COCO-18).
"""
from __future__ import annotations

import json
from typing import Any, Dict, Tuple

from openpose_plus.edge.skeleton import COCO18, Skeleton

from .coco import BadSample, _person_category, resolve_skeleton

__all__ = ["CUSTOM_ID_OFFSET", "custom_category", "custom_skeleton", "split_batch", "mix_batches"]

# Custom sample ids live above every COCO image id, so ids stay unique in a mixed run.
CUSTOM_ID_OFFSET = 1 << 40

_category_cache: Dict[Tuple[str, float], Any] = {}


def custom_category(annotation_file: str) -> Any:
    """The keypoint category of a COCO-format file (read once per file version)."""
    import os

    try:
        key = (os.path.abspath(annotation_file), os.stat(annotation_file).st_mtime)
    except OSError as exc:
        raise BadSample(annotation_file, "cannot read annotation file: %s" % (exc.strerror or exc)) from None
    if key not in _category_cache:
        try:
            with open(annotation_file, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadSample(annotation_file, "not valid JSON: %s" % exc) from None
        if not isinstance(data, dict):
            raise BadSample(annotation_file, "not a COCO annotation file")
        _category_cache[key] = _person_category(data, annotation_file)
    return _category_cache[key]


def custom_skeleton(annotation_file: str, mode: str) -> Skeleton:
    """The skeleton custom data trains in, under MODEL.skeleton ``mode``."""
    return resolve_skeleton(custom_category(annotation_file), mode, annotation_file)[0]


def split_batch(batch_size: int, custom_ratio: float) -> Tuple[int, int]:
    """``(from COCO, from custom)`` per batch; each side gets at least one sample unless the
    ratio is exactly 0 or 1."""
    n_custom = int(round(batch_size * custom_ratio))
    if 0 < custom_ratio < 1 and batch_size >= 2:
        n_custom = min(max(n_custom, 1), batch_size - 1)
    return batch_size - n_custom, n_custom


def mix_batches(coco_batches, custom_batches):
    """One batch from each stream (sized by :func:`split_batch`), concatenated: every batch has
    exactly its share of custom samples. Both streams must repeat."""
    import tensorflow as tf

    def concat(x, y):
        return {k: tf.concat([x[k], y[k]], axis=0) for k in x}

    return tf.data.Dataset.zip((coco_batches, custom_batches)).map(
        concat, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def same_skeleton(a: Skeleton, b: Skeleton) -> bool:
    return a.digest() == b.digest()


def check_mixable(custom: Skeleton) -> None:
    if not same_skeleton(custom, COCO18):
        raise ValueError("DATA.train_data = \"coco_and_custom\" needs custom data in COCO-17/COCO-18 keypoints; "
                         "this category has its own skeleton %r" % custom.name)
