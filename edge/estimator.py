"""``PoseEstimator``: a bundle, a backend and the grouping core, one frame at a time.

    est = PoseEstimator("bundle/", backend="auto")
    poses = est.infer(rgb_frame)          # keypoints in image pixels, letterbox undone
    for frame, poses in est.stream("synthetic://"):
        ...

The frame is letterboxed into the backend's own input buffer, the network writes its
maps into the backend's own output buffers, and grouping reads those by address.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple, Union

import numpy as np

from .backends import create_backend
from .backends.base import BufferSet
from .bundle import Bundle, load_bundle
from .preprocess import Preprocessor

__all__ = ["PoseEstimator"]


class PoseEstimator:
    def __init__(self, bundle: Union[str, Bundle], backend: str = "auto", precision: str = "auto",
                 params=None, threads: int = 0, cache_dir: Optional[str] = None,
                 dla_core: Optional[int] = None) -> None:
        from .grouping import GroupParams, Grouper  # the C core: built by `pip install -e .`

        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        b = self.bundle
        if isinstance(params, dict):
            params = GroupParams(**params)
        self.backend = create_backend(b, backend, precision, threads=threads, cache_dir=cache_dir, dla_core=dla_core)
        self.preprocessor = Preprocessor(b.input_width, b.input_height, b.pad_value)
        self.grouper = Grouper(b.skeleton, b.map_height, b.map_width, params)
        self.buffers = self.backend.new_buffers()
        self._sets = [self.buffers]

    @property
    def reason(self) -> str:
        return self.backend.reason

    def new_buffers(self) -> BufferSet:
        return self.backend.new_buffers()

    def buffer_sets(self, n: int) -> List[BufferSet]:
        """``n`` buffer sets for frames in flight, allocated on first request and kept."""
        while len(self._sets) < n:
            self._sets.append(self.backend.new_buffers())
        return self._sets[:n]

    def group(self, buffers: BufferSet):
        """Group the maps where the backend left them (pointers, no copy); map coordinates."""
        sk = self.bundle.skeleton
        return self.grouper.group_ptr(buffers.heat_ptr, buffers.paf_ptr, sk.num_heatmaps, sk.num_pafs,
                                      self.bundle.map_height, self.bundle.map_width)

    def infer(self, frame: np.ndarray, buffers: Optional[BufferSet] = None):
        """Poses of one RGB ``H x W x 3`` uint8 frame, in its pixel coordinates."""
        bufs = buffers or self.buffers
        lb = self.preprocessor(frame, bufs.input)
        self.backend.infer(bufs)
        return self.group(bufs).to_image(lb, self.bundle.stride)

    def stream(self, source, frames: Optional[int] = None) -> Iterator[Tuple[np.ndarray, object]]:
        """``(frame, poses)`` for each frame of ``source`` (a URI or an open source)."""
        from .sources import open_source

        src = open_source(source) if isinstance(source, str) else source
        try:
            n = 0
            for frame in src:
                yield frame.image, self.infer(frame.image)
                n += 1
                if frames is not None and n >= frames:
                    break
        finally:
            if isinstance(source, str):
                src.close()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
