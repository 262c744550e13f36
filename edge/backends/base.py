"""The one interface every inference backend offers.

A backend owns *buffer sets*: a uint8 NHWC input array the preprocessor letterboxes into
and the heatmap/PAF output arrays the network writes, all allocated once. ``infer(bufs)``
runs the network on ``bufs.input`` and leaves the maps in ``bufs.heatmaps`` / ``bufs.pafs``,
whose memory is what the grouping core reads (by address, no copy). A pipeline that keeps
several frames in flight asks for several buffer sets.
"""
from __future__ import annotations

from typing import Any, List

import numpy as np

__all__ = ["BackendError", "BufferSet", "Backend"]


class BackendError(RuntimeError):
    """A backend that cannot run here or cannot run this bundle; the message says why."""


class BufferSet:
    """One frame's worth of network I/O. ``handle`` is the backend's own binding for it."""

    __slots__ = ("input", "heatmaps", "pafs", "handle")

    def __init__(self, input: np.ndarray, heatmaps: np.ndarray, pafs: np.ndarray, handle: Any = None) -> None:
        self.input = input        # (1, H, W, 3) uint8
        self.heatmaps = heatmaps  # (1, K+1, h, w) float32, C-contiguous
        self.pafs = pafs          # (1, 2L, h, w) float32, C-contiguous
        self.handle = handle

    @property
    def heat_ptr(self) -> int:
        return int(self.heatmaps.ctypes.data)

    @property
    def paf_ptr(self) -> int:
        return int(self.pafs.ctypes.data)

    @property
    def image(self) -> np.ndarray:
        """The input as one ``H x W x 3`` image (a view)."""
        return self.input[0]


class Backend:
    """Base class: subclasses set ``name``/``precision``/``reason`` and implement the rest."""

    name = "base"

    def __init__(self, bundle, precision: str) -> None:
        self.bundle = bundle
        self.precision = precision
        self.reason = ""
        self._buffers: List[BufferSet] = []

    # shapes every backend agrees on, from the bundle
    @property
    def input_shape(self):
        return (1, self.bundle.input_height, self.bundle.input_width, 3)

    @property
    def heatmap_shape(self):
        return (1, self.bundle.skeleton.num_heatmaps, self.bundle.map_height, self.bundle.map_width)

    @property
    def paf_shape(self):
        return (1, self.bundle.skeleton.num_pafs, self.bundle.map_height, self.bundle.map_width)

    def new_buffers(self) -> BufferSet:  # pragma: no cover - abstract
        raise NotImplementedError

    def infer(self, buffers: BufferSet) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        self._buffers.clear()

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
