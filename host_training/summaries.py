"""TensorBoard logs of a run: scalars (losses per stage, lr, samples/s) and pictures.

Only the chief (Horovod rank 0) makes one. Pictures show the first sample of a batch:
the input, the target and predicted heatmaps, the predicted PAFs, and the people the
edge's grouping finds in the prediction (when the grouping core is built).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from openpose_plus.edge.geometry import map_to_input
from openpose_plus.edge.skeleton import Skeleton

from .pictures import heatmap_picture, paf_picture, skeleton_picture

__all__ = ["RunLog", "group_people"]

log = logging.getLogger("openpose_plus.train")


def group_people(heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton, stride: int,
                 params=None) -> Optional[np.ndarray]:
    """People ``(N, K, 3)`` in input pixels from NHWC maps of one image; None without the C core."""
    try:
        from openpose_plus.edge.grouping import group
    except ImportError as exc:  # the extension is not built: pictures go without skeletons
        log.warning("no grouped skeletons in TensorBoard: %s", exc)
        return None
    heat = np.ascontiguousarray(np.transpose(np.nan_to_num(heatmaps), (2, 0, 1)), np.float32)
    paf = np.ascontiguousarray(np.transpose(np.nan_to_num(pafs), (2, 0, 1)), np.float32)
    poses = group(heat, paf, skeleton, params)
    kp = map_to_input(poses.keypoints, stride)
    kp[..., :2][kp[..., 2] <= 0] = 0.0
    return kp


class RunLog(object):
    def __init__(self, log_dir, skeleton: Skeleton, stride: int) -> None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.skeleton, self.stride = skeleton, stride

    def scalars(self, step: int, values: Dict[str, float]) -> None:
        with self.writer.as_default(step=int(step)):
            for name, value in values.items():
                tf.summary.scalar(name, float(value))

    def pictures(self, step: int, image: np.ndarray, target_heat: np.ndarray, pred_heat: np.ndarray,
                 pred_paf: np.ndarray, target_paf: Optional[np.ndarray] = None) -> None:
        image = np.asarray(image, np.uint8)
        pics = {"input": image,
                "heatmaps/target": heatmap_picture(image, target_heat),
                "heatmaps/predicted": heatmap_picture(image, pred_heat),
                "pafs/predicted": paf_picture(image, pred_paf)}
        if target_paf is not None:
            pics["pafs/target"] = paf_picture(image, target_paf)
        people = group_people(pred_heat, pred_paf, self.skeleton, self.stride)
        if people is not None:
            pics["people/predicted"] = skeleton_picture(image, people, self.skeleton)
        with self.writer.as_default(step=int(step)):
            for name, pic in pics.items():
                tf.summary.image(name, pic[None], max_outputs=1)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
