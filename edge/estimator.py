"""``PoseEstimator``: a bundle, a backend and the grouping core, one frame at a time.

    est = PoseEstimator("bundle/", backend="auto")
    poses = est.infer(rgb_frame)          # keypoints in image pixels, letterbox undone
    for frame, poses in est.stream("synthetic://"):
        ...

With ``track=True`` (or a :class:`~.tracking.TrackParams`, or a dict of its fields)
``infer`` and ``stream`` give each person an ID kept across frames (``poses.ids``) and
smooth the keypoints; ``infer`` then takes the frame's ``timestamp`` (seconds; the
current monotonic time if not given). Off by default: one picture is one picture.

The frame is letterboxed into the backend's own input buffer, the network writes its
maps into the backend's own output buffers, and grouping reads those by address.

For frame-level parallelism (:class:`~openpose_plus.edge.pipeline.Pipeline` with several
inference workers) :meth:`PoseEstimator.workers` hands out :class:`InferenceWorker` s: each
takes one frame from letterbox to poses on one thread, with its own preprocessor, buffer
set and grouper, and on the onnxruntime backend its own session (``cores / N`` intra-op
threads each), so workers never share memory or wait for each other.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .backends import create_backend
from .backends.base import BufferSet
from .bundle import Bundle, load_bundle
from .preprocess import Preprocessor

__all__ = ["PoseEstimator", "InferenceWorker", "cpu_cores"]


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask where there is one, as in a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class InferenceWorker:
    """One frame at a time from letterbox to poses: ``preprocess``, ``infer``, ``group``.

    Everything it writes is its own (buffer set, grouper workspace, preprocessor state), and
    grouping reads the very output buffer its backend wrote, so a worker's buffers are never
    reused before grouping is done with them (the next frame starts after ``group`` returns).
    """

    def __init__(self, backend, bundle: Bundle, grouper, buffers: BufferSet, threads: int) -> None:
        self.backend = backend
        self.bundle = bundle
        self.grouper = grouper
        self.buffers = buffers
        self.threads = threads  # onnxruntime intra-op threads of its session (0: the library's default)
        self.preprocessor = Preprocessor(bundle.input_width, bundle.input_height, bundle.pad_value)

    def preprocess(self, frame: np.ndarray):
        return self.preprocessor(frame, self.buffers.input)

    def infer(self) -> None:
        self.backend.infer(self.buffers)

    def group(self):
        """Poses in map coordinates, read where this worker's backend left the maps."""
        b, sk = self.bundle, self.bundle.skeleton
        bufs = self.buffers
        return self.grouper.group_ptr(bufs.heat_ptr, bufs.paf_ptr, sk.num_heatmaps, sk.num_pafs,
                                      b.map_height, b.map_width)


class PoseEstimator:
    def __init__(self, bundle: Union[str, Bundle], backend: str = "auto", precision: str = "auto",
                 params=None, threads: int = 0, cache_dir: Optional[str] = None,
                 dla_core: Optional[int] = None, track=False) -> None:
        from .grouping import GroupParams, Grouper  # the C core: built by `pip install -e .`
        from .tracking import make_tracker

        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        b = self.bundle
        if isinstance(params, dict):
            params = GroupParams(**params)
        self.params = params
        self.threads = int(threads)  # onnxruntime intra-op threads per session (0: auto)
        self.backend = create_backend(b, backend, precision, threads=threads, cache_dir=cache_dir, dla_core=dla_core)
        self.preprocessor = Preprocessor(b.input_width, b.input_height, b.pad_value)
        self.grouper = Grouper(b.skeleton, b.map_height, b.map_width, params)
        self.buffers = self.backend.new_buffers()
        self._sets = [self.buffers]
        self.tracker = make_tracker(b.skeleton, track)  # for infer() and stream(); a Pipeline has its own
        # Worker sessions by intra-op thread count, made on first request and kept (a reload
        # or a second benchmark run reuses them); the primary session serves where it fits.
        self._sessions: Dict[int, list] = {}
        self._workers: Dict[int, List[InferenceWorker]] = {}

    # -- frame-level parallelism ----------------------------------------------------------
    @property
    def cpu_backend(self) -> bool:
        """onnxruntime running on the CPU (where more workers use more cores)."""
        providers = getattr(self.backend, "providers", None) or []
        return self.backend.name == "onnxruntime" and bool(providers) and providers[0] == "CPUExecutionProvider"

    def auto_workers(self) -> int:
        """Inference workers for ``"auto"``: one per core on the CPU backend, else 1 (one GPU
        engine; a Jetson with DLA + GPU asks for 2 explicitly)."""
        if not self.cpu_backend:
            return 1
        cores = cpu_cores()
        return cores if not self.threads else max(1, cores // self.threads)

    def worker_threads(self, n: int) -> int:
        """Intra-op threads per worker session: ``threads`` if given, else cores / ``n``."""
        return self.threads or max(1, cpu_cores() // max(1, n))

    def _session(self, i: int, threads: int):
        have = self._sessions.setdefault(threads, [])
        if not have and (self.threads == threads or (not self.threads and threads == cpu_cores())):
            have.append(self.backend)  # the primary already has this thread count
        while len(have) <= i:
            from .backends.onnxruntime_backend import OnnxRuntimeBackend

            have.append(OnnxRuntimeBackend(self.bundle, self.backend.precision, providers=list(self.backend.providers),
                                           threads=threads))
        return have[i]

    def workers(self, n: int) -> List[InferenceWorker]:
        """``n`` inference workers, each with its own buffers and grouper, and on onnxruntime
        its own session of :meth:`worker_threads` threads. Made on first request, then kept.

        Backends with one execution context (TensorRT) are shared by the workers: their
        inferences take turns while preprocessing and grouping of other frames overlap."""
        from .grouping import Grouper

        if n < 1:
            raise ValueError("workers: n must be at least 1, got %d" % n)
        got = self._workers.get(n)
        if got is not None:
            return got
        b = self.bundle
        threads = self.worker_threads(n) if self.backend.name == "onnxruntime" else 0
        out: List[InferenceWorker] = []
        for i in range(n):
            backend = self._session(i, threads) if self.backend.name == "onnxruntime" else self.backend
            out.append(InferenceWorker(backend, b, Grouper(b.skeleton, b.map_height, b.map_width, self.params),
                                       backend.new_buffers(), threads))
        self._workers[n] = out
        return out

    def primary_worker(self) -> InferenceWorker:
        """The estimator's own session, buffers and grouper as a worker (the sequential loop)."""
        w = self._workers.get(0)
        if w is None:
            w = [InferenceWorker(self.backend, self.bundle, self.grouper, self.buffers, self.threads)]
            w[0].preprocessor = self.preprocessor
            self._workers[0] = w
        return w[0]

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

    def infer(self, frame: np.ndarray, buffers: Optional[BufferSet] = None, timestamp: Optional[float] = None):
        """Poses of one RGB ``H x W x 3`` uint8 frame, in its pixel coordinates; tracked
        (IDs, smoothed) when the estimator was made with ``track``."""
        bufs = buffers or self.buffers
        lb = self.preprocessor(frame, bufs.input)
        self.backend.infer(bufs)
        poses = self.group(bufs).to_image(lb, self.bundle.stride)
        if self.tracker is not None:
            poses = self.tracker.update(poses, time.monotonic() if timestamp is None else timestamp)
        return poses

    def stream(self, source, frames: Optional[int] = None) -> Iterator[Tuple[np.ndarray, object]]:
        """``(frame, poses)`` for each frame of ``source`` (a URI or an open source)."""
        from .sources import open_source

        src = open_source(source) if isinstance(source, str) else source
        try:
            n = 0
            for frame in src:
                yield frame.image, self.infer(frame.image, timestamp=frame.timestamp)
                n += 1
                if frames is not None and n >= frames:
                    break
        finally:
            if isinstance(source, str):
                src.close()

    def close(self) -> None:
        for sessions in self._sessions.values():
            for be in sessions:
                if be is not self.backend:
                    be.close()
        self._sessions.clear()
        self._workers.clear()
        self.backend.close()

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
