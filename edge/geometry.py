"""The one coordinate convention, written down once.

The centre of map cell ``(j, i)`` (column j, row i) is input pixel
``(j * stride + stride / 2 - 0.5, i * stride + stride / 2 - 0.5)``, where pixel centres
are at integer coordinates. Targets, grouping and drawing all go through these
functions, so they cannot disagree.

The network input is the camera frame scaled by ``scale`` and placed at offset
``(pad_x, pad_y)`` inside the ``input_w x input_h`` canvas (a letterbox).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ["map_to_input", "input_to_map", "Letterbox"]


def map_to_input(xy, stride: int):
    """Map coordinates -> network-input pixel coordinates (array-like, any shape ``(..., 2+)``)."""
    out = np.array(xy, dtype=np.float32, copy=True)
    out[..., :2] = out[..., :2] * stride + (stride / 2.0 - 0.5)
    return out


def input_to_map(xy, stride: int):
    """Network-input pixel coordinates -> map coordinates (inverse of :func:`map_to_input`)."""
    out = np.array(xy, dtype=np.float32, copy=True)
    out[..., :2] = (out[..., :2] - (stride / 2.0 - 0.5)) / stride
    return out


@dataclass(frozen=True)
class Letterbox:
    """How a frame of ``image_w x image_h`` sits inside the network input (aspect kept)."""

    image_w: int
    image_h: int
    input_w: int
    input_h: int
    scale: float
    pad_x: float
    pad_y: float

    @classmethod
    def fit(cls, image_w: int, image_h: int, input_w: int, input_h: int) -> "Letterbox":
        if min(image_w, image_h, input_w, input_h) <= 0:
            raise ValueError("letterbox sizes must be positive, got image %dx%d into %dx%d"
                             % (image_w, image_h, input_w, input_h))
        scale = min(input_w / image_w, input_h / image_h)
        new_w, new_h = int(round(image_w * scale)), int(round(image_h * scale))
        return cls(image_w, image_h, input_w, input_h, scale,
                   float((input_w - new_w) // 2), float((input_h - new_h) // 2))

    @property
    def resized_size(self) -> Tuple[int, int]:
        """``(w, h)`` of the frame once scaled, before padding."""
        return int(round(self.image_w * self.scale)), int(round(self.image_h * self.scale))

    def image_to_input(self, xy):
        out = np.array(xy, dtype=np.float32, copy=True)
        # Pixel centres: a scaled image's pixel centre u maps to (u + 0.5) * s - 0.5.
        out[..., 0] = (out[..., 0] + 0.5) * self.scale - 0.5 + self.pad_x
        out[..., 1] = (out[..., 1] + 0.5) * self.scale - 0.5 + self.pad_y
        return out

    def input_to_image(self, xy):
        out = np.array(xy, dtype=np.float32, copy=True)
        out[..., 0] = (out[..., 0] - self.pad_x + 0.5) / self.scale - 0.5
        out[..., 1] = (out[..., 1] - self.pad_y + 0.5) / self.scale - 0.5
        return out

    def map_to_image(self, keypoints, stride: int):
        """``(..., 3)`` keypoints ``x, y, score`` in map coordinates -> image pixels (score kept)."""
        return self.input_to_image(map_to_input(keypoints, stride))

    def image_to_map(self, keypoints, stride: int):
        return input_to_map(self.image_to_input(keypoints), stride)
