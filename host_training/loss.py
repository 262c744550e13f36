"""The masked L2 loss over every stage (intermediate supervision, as in OpenPose).

Per stage and per branch: half the sum of squared errors over the cells where the mask
is 1, divided by the batch size (OpenPose's Euclidean loss). Cells under the mask's 0
(crowds, people without labels) cost nothing, so finding an unlabelled person is never
punished. Stage losses are summed; they are also returned one by one for logging.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

__all__ = ["masked_l2", "pose_loss", "weight_decay_loss"]


def masked_l2(pred, target, mask) -> tf.Tensor:
    """``0.5 * sum(mask * (pred - target)^2) / batch``; mask ``(B,h,w,1)`` broadcasts over channels."""
    pred = tf.cast(pred, tf.float32)
    target = tf.cast(target, tf.float32)
    mask = tf.cast(mask, tf.float32)
    if pred.shape.rank != 4 or target.shape.rank != 4:
        raise ValueError("maps must be (B, h, w, C); got prediction %s and target %s"
                         % (pred.shape, target.shape))
    if pred.shape[1:].is_fully_defined() and target.shape[1:].is_fully_defined() \
            and pred.shape[1:] != target.shape[1:]:
        raise ValueError("prediction %s and target %s differ in shape" % (pred.shape, target.shape))
    batch = tf.cast(tf.shape(pred)[0], tf.float32)
    return 0.5 * tf.reduce_sum(tf.square(pred - target) * mask) / batch


def pose_loss(outputs: Sequence, heatmaps, pafs, mask) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """Total loss over all stages, and the parts (``stage1_heatmaps``, ``stage1_pafs``, ...).

    ``outputs`` is the network's flat list ``[heat_1, paf_1, heat_2, paf_2, ...]``.
    """
    outputs = list(outputs)
    if not outputs or len(outputs) % 2:
        raise ValueError("expected (heatmaps, pafs) per stage, got %d outputs" % len(outputs))
    parts: Dict[str, tf.Tensor] = {}
    for s in range(len(outputs) // 2):
        parts["stage%d_heatmaps" % (s + 1)] = masked_l2(outputs[2 * s], heatmaps, mask)
        parts["stage%d_pafs" % (s + 1)] = masked_l2(outputs[2 * s + 1], pafs, mask)
    total = tf.add_n(list(parts.values()))
    return total, parts


def weight_decay_loss(variables: List, rate: float) -> tf.Tensor:
    """``rate * sum(||kernel||^2) / 2`` over conv kernels (biases and BN are not decayed)."""
    kernels = [tf.cast(v, tf.float32) for v in variables
               if v.name.rsplit("/", 1)[-1].split(":")[0] in ("kernel", "depthwise_kernel")]
    if rate <= 0 or not kernels:
        return tf.constant(0.0)
    return rate * tf.add_n([tf.nn.l2_loss(k) for k in kernels])
