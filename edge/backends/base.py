"""The one interface every inference backend offers.

A backend owns *buffer sets*: a uint8 NHWC input array the preprocessor letterboxes into
and the heatmap/PAF output arrays the network writes, all allocated once, each with a batch
dimension of :attr:`Backend.batch` frames (1 unless the bundle batches, :mod:`..batch`).
``infer(bufs, n)`` runs the network on the first ``n`` frames of ``bufs.input`` (all of them
for a fixed batch) and leaves their maps in ``bufs.heatmaps`` / ``bufs.pafs``, whose memory is
what the grouping core reads: frame ``i``'s maps at :meth:`BufferSet.heat_ptr_at` (an offset
into the one buffer, no copy). A pipeline that keeps several batches in flight asks for
several buffer sets.
"""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

__all__ = ["BackendError", "BufferSet", "Backend"]


class BackendError(RuntimeError):
    """A backend that cannot run here or cannot run this bundle; the message says why."""


class BufferSet:
    """One frame's worth of network I/O. ``handle`` is the backend's own binding for it."""

    __slots__ = ("input", "heatmaps", "pafs", "handle")

    def __init__(self, input: np.ndarray, heatmaps: np.ndarray, pafs: np.ndarray, handle: Any = None) -> None:
        self.input = input        # (B, H, W, 3) uint8
        self.heatmaps = heatmaps  # (B, K+1, h, w) float32, C-contiguous
        self.pafs = pafs          # (B, 2L, h, w) float32, C-contiguous
        self.handle = handle

    @property
    def batch(self) -> int:
        return int(self.input.shape[0])

    @property
    def heat_ptr(self) -> int:
        return int(self.heatmaps.ctypes.data)

    @property
    def paf_ptr(self) -> int:
        return int(self.pafs.ctypes.data)

    def heat_ptr_at(self, i: int) -> int:
        """Where frame ``i``'s heatmaps start: an offset into the batch's one buffer."""
        return int(self.heatmaps.ctypes.data) + i * self.heatmaps.strides[0]

    def paf_ptr_at(self, i: int) -> int:
        return int(self.pafs.ctypes.data) + i * self.pafs.strides[0]

    @property
    def image(self) -> np.ndarray:
        """The input as one ``H x W x 3`` image (a view)."""
        return self.input[0]


class Backend:
    """Base class: subclasses set ``name``/``precision``/``reason`` and implement the rest."""

    name = "base"

    def __init__(self, bundle, precision: str, batch: int = 0) -> None:
        self.bundle = bundle
        self.precision = precision
        self.reason = ""
        self._buffers: List[BufferSet] = []
        # Frames per buffer set: a fixed-batch bundle's own size; a dynamic one's ``batch``
        # (its checked size when 0); 1 for a bundle that does not batch.
        spec = bundle.batch
        if batch < 0:
            raise BackendError("batch must be 0 (the bundle's) or more, got %r" % (batch,))
        self.batch = spec.buffers_for(batch)
        self.dynamic_batch = spec.dynamic

    # shapes every backend agrees on, from the bundle
    @property
    def input_shape(self):
        return (self.batch, self.bundle.input_height, self.bundle.input_width, 3)

    @property
    def heatmap_shape(self):
        return (self.batch, self.bundle.skeleton.num_heatmaps, self.bundle.map_height, self.bundle.map_width)

    @property
    def paf_shape(self):
        return (self.batch, self.bundle.skeleton.num_pafs, self.bundle.map_height, self.bundle.map_width)

    def frames_to_run(self, n: Optional[int]) -> int:
        """Frames one call runs for ``n`` filled ones: ``n`` on a dynamic batch, every frame of a
        fixed one (the rest are stale and their maps ignored)."""
        if n is None:
            return self.batch
        if not 1 <= n <= self.batch:
            raise BackendError("infer: %r frames asked of a batch of %d" % (n, self.batch))
        return int(n) if self.dynamic_batch else self.batch

    def new_buffers(self) -> BufferSet:  # pragma: no cover - abstract
        raise NotImplementedError

    def infer(self, buffers: BufferSet, n: Optional[int] = None) -> None:  # pragma: no cover - abstract
        """Run the first ``n`` frames of ``buffers`` (None: all)."""
        raise NotImplementedError

    def close(self) -> None:
        self._buffers.clear()

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
