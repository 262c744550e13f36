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
maps into the backend's own output buffers, and grouping reads those by address: the path
of :class:`~openpose_plus.edge.worker.InferenceWorker`, which :meth:`PoseEstimator.infer`
runs on the estimator's own session, buffers and grouper.

For frame-level parallelism (:class:`~openpose_plus.edge.pipeline.Pipeline` with several
inference workers) the estimator is a :class:`~openpose_plus.edge.worker.WorkerPool`:
:meth:`PoseEstimator.workers` hands out workers that each take one frame from letterbox to
poses on one thread, with their own preprocessor, buffer set and grouper, and on the
onnxruntime backend their own session (``cores / N`` intra-op threads each), so workers
never share memory or wait for each other.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .backends import create_backend
from .bundle import Bundle, load_bundle
from .preprocess import Preprocessor
from .worker import InferenceWorker

__all__ = ["PoseEstimator", "InferenceWorker", "cpu_cores"]


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask where there is one, as in a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class PoseEstimator:
    """A bundle run frame by frame: letterbox, backend, grouping.

    ``params`` is the grouping: None for the parameters the bundle carries (the defaults where
    it carries none), a dict of GroupParams fields to change some of them, or a GroupParams.
    ``batch``: frames per network call of a dynamic-batch bundle (0: the bundle's own size);
    every worker's buffer set holds that many (:meth:`InferenceWorker.process_batch`).
    """

    def __init__(self, bundle: Union[str, Bundle], backend: str = "auto", precision: str = "auto",
                 params=None, threads: int = 0, cache_dir: Optional[str] = None,
                 dla_core: Optional[int] = None, track=False, batch: int = 0) -> None:
        from .grouping import GroupParams, Grouper  # the C core: built by `pip install -e .`
        from .tracking import make_tracker

        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        b = self.bundle
        # The bundle's own grouping parameters (those it was scored with), unless told otherwise:
        # a GroupParams replaces them, a dict changes the fields it names.
        if not isinstance(params, GroupParams):
            params = b.group_params(params)
        self.params = params
        self.threads = int(threads)  # onnxruntime intra-op threads per session (0: auto)
        # Frames per network call: a fixed-batch bundle's size; a dynamic one's ``batch`` (its
        # own checked size when 0); 1 for a bundle without a batch dimension.
        self.backend = create_backend(b, backend, precision, threads=threads, cache_dir=cache_dir, dla_core=dla_core,
                                      batch=batch)
        self.batch = self.backend.batch
        self.preprocessor = Preprocessor(b.input_width, b.input_height, b.pad_value)
        self.grouper = Grouper(b.skeleton, b.map_height, b.map_width, params)
        self.buffers = self.backend.new_buffers()
        # infer()'s path: a worker on the estimator's own session, buffers and grouper.
        self._own = InferenceWorker(self.backend, b, self.grouper, self.buffers, self.threads, self.preprocessor)
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
                                           threads=threads, batch=self.batch))
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
        onnx = self.backend.name == "onnxruntime"
        threads = self.worker_threads(n) if onnx else 0
        out: List[InferenceWorker] = []
        for i in range(n):
            backend = self._session(i, threads) if onnx else self.backend
            # The primary session keeps the estimator's own thread count (0: the library's default).
            own = self.threads if onnx and backend is self.backend else threads
            out.append(InferenceWorker(backend, b, Grouper(b.skeleton, b.map_height, b.map_width, self.params),
                                       backend.new_buffers(), own))
        self._workers[n] = out
        return out

    @property
    def reason(self) -> str:
        return self.backend.reason

    def infer(self, frame: np.ndarray, timestamp: Optional[float] = None):
        """Poses of one RGB ``H x W x 3`` uint8 frame, in its pixel coordinates; tracked
        (IDs, smoothed) when the estimator was made with ``track``."""
        poses = self._own.process(frame).poses
        if self.tracker is not None:
            poses = self.tracker.update(poses, time.monotonic() if timestamp is None else timestamp, image=frame)
        return poses

    def stream(self, source, frames: Optional[int] = None) -> Iterator[Tuple[np.ndarray, object]]:
        """``(frame, poses)`` for each frame of ``source`` (a URI or an open source). With
        tracking, the tracks start over (IDs from 1) and follow the source's own time
        (:attr:`Frame.media_time`)."""
        from .sources import open_source

        src = open_source(source) if isinstance(source, str) else source
        if self.tracker is not None:
            # Other footage, other people; and a recording's clock starts again at 0.
            self.tracker.reset()
        try:
            n = 0
            for frame in src:
                yield frame.image, self.infer(frame.image, timestamp=frame.media_time)
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
