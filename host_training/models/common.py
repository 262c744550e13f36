"""Pieces every network shares: the uint8 input with normalisation inside, and stage heads.

The bundle contract is that the exported graph takes plain uint8 RGB NHWC, so the
arithmetic that turns pixels into network inputs lives here, inside the model.
Every network returns a flat list ``[heat_1, paf_1, heat_2, paf_2, ...]`` of NHWC float32
maps at stride 8, one pair per stage, so the loss can supervise every stage.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import keras
from keras import layers

from openpose_plus.edge.skeleton import Skeleton

STRIDE = 8

__all__ = ["STRIDE", "image_input", "normalise", "conv", "stage_outputs", "split_stages",
           "scaled", "check_input_size"]


def check_input_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0 or height % STRIDE or width % STRIDE:
        raise ValueError("network input size must be positive multiples of %d, got %dx%d (HxW)"
                         % (STRIDE, height, width))


def image_input(height: int, width: int) -> keras.KerasTensor:
    check_input_size(height, width)
    return keras.Input(shape=(height, width, 3), dtype="uint8", name="image")


def normalise(x):
    # CMU OpenPose's own preprocessing (x / 256 - 0.5), so its weights import unchanged.
    return layers.Rescaling(1.0 / 256.0, offset=-0.5, name="normalise")(x)


def conv(x, filters: int, kernel: int, name: str, relu: bool = True, dilation: int = 1,
         strides: int = 1):
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", dilation_rate=dilation,
                         activation="relu" if relu else None, name=name)(x)


def scaled(channels: int, width: float, minimum: int = 8) -> int:
    """Channel count scaled by a width multiplier, kept a multiple of 8 (hardware friendly)."""
    return max(minimum, int(round(channels * width / 8.0)) * 8)


def stage_outputs(heat, paf, stage: int) -> Tuple[object, object]:
    """Name a stage's maps and make them float32 (mixed precision keeps the body in float16)."""
    h = layers.Activation("linear", dtype="float32", name="stage%d_heatmaps" % stage)(heat)
    p = layers.Activation("linear", dtype="float32", name="stage%d_pafs" % stage)(paf)
    return h, p


def split_stages(outputs: Sequence) -> List[Tuple[object, object]]:
    """``[heat_1, paf_1, heat_2, paf_2, ...]`` -> ``[(heat_1, paf_1), ...]``."""
    outputs = list(outputs)
    if len(outputs) % 2:
        raise ValueError("a pose network has (heatmaps, pafs) per stage; got %d outputs" % len(outputs))
    return [(outputs[i], outputs[i + 1]) for i in range(0, len(outputs), 2)]


def head_sizes(skeleton: Skeleton) -> Tuple[int, int]:
    return skeleton.num_heatmaps, skeleton.num_pafs
