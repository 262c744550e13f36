"""One frame's path from image to poses, and the contract the frame loop runs it by.

    image ──► Preprocessor (letterbox into the backend's input buffer)
          ──► Backend.infer (the network writes the heatmaps and PAFs into its output buffers)
          ──► Grouper.group_ptr (reads those buffers by address) ──► Poses, in frame pixels

:class:`InferenceWorker` is that path for one thread: its own preprocessor state, buffer set
and grouper, so grouping reads the very buffer its backend wrote and the next frame cannot
overwrite it before grouping is done. :class:`FrameWorker` is all the pipeline knows of it:
``process(image) -> Processed`` (the poses and each step's time), :class:`FrameError` for
an unusable image and :class:`GroupingError` for maps grouping could not read; both lose
that frame only. Anything else (a backend that fails) is the worker's end.
:class:`WorkerPool` is what the pipeline asks of an estimator: how many workers suit this
machine, and that many workers. ``PoseEstimator.infer`` runs the same ``process``.

Batches (several streams, one network call): :meth:`InferenceWorker.process_batch` letterboxes
up to :attr:`InferenceWorker.batch` images into the slots of its one batched buffer set, runs
the network once on them, and groups each slot where the network wrote it (an offset into the
batch's buffer, no copy); each image gets its own :class:`Processed` or its own error, so an
unusable frame loses that frame only, never its batch.
"""
from __future__ import annotations

import time
from typing import Callable, List, Optional, Protocol, Sequence, Union

import numpy as np

from .preprocess import FrameError, Preprocessor

__all__ = ["FrameWorker", "WorkerPool", "Processed", "InferenceWorker", "FrameError", "GroupingError"]


class GroupingError(RuntimeError):
    """Grouping could not read one frame's maps (e.g. its workspace was too small); that frame is lost."""


class Processed:
    """What a worker made of one frame: its poses in frame pixels and each step's time (ms)."""

    __slots__ = ("poses", "preprocess_ms", "infer_ms", "group_ms", "batch")

    def __init__(self, poses, preprocess_ms: float, infer_ms: float, group_ms: float, batch: int = 1) -> None:
        self.poses = poses
        self.preprocess_ms = preprocess_ms
        self.infer_ms = infer_ms    # the network call, shared by every frame of its batch
        self.group_ms = group_ms
        self.batch = batch          # frames in the network call this one was part of


class FrameWorker(Protocol):
    """Takes frames on one thread from image to poses: one at a time (``process``), and, where
    it has them, ``batch`` frames in one network call (``process_batch``, as
    :class:`InferenceWorker`; the pipeline asks a worker without ``batch`` for one at a time)."""

    threads: int  # intra-op threads of its network session (0: the library's default)

    def process(self, image: np.ndarray) -> Processed:
        """Poses of one RGB ``H x W x 3`` uint8 image; FrameError / GroupingError lose this frame only."""
        ...


class WorkerPool(Protocol):
    """What the pipeline needs from an estimator."""

    def auto_workers(self) -> int:
        """How many workers suit this machine and backend."""
        ...

    def workers(self, n: int) -> Sequence[FrameWorker]:
        """``n`` workers that never share buffers (made once and kept: ask again, get the same)."""
        ...


class InferenceWorker:
    """One frame at a time from letterbox to poses: :meth:`preprocess`, :meth:`infer`, :meth:`group`.

    Everything it writes is its own (buffer set, grouper workspace, preprocessor state), and
    grouping reads the very output buffer its backend wrote, so a worker's buffers are never
    reused before grouping is done with them (the next frame starts after ``group`` returns).
    ``clock`` times the steps (a profiler sets ``time.thread_time`` for CPU time).
    """

    clock: Callable[[], float] = staticmethod(time.perf_counter)

    def __init__(self, backend, bundle, grouper, buffers, threads: int,
                 preprocessor: Optional[Preprocessor] = None) -> None:
        self.backend = backend
        self.bundle = bundle
        self.grouper = grouper
        self.buffers = buffers
        self.threads = threads  # onnxruntime intra-op threads of its session (0: the library's default)
        self.preprocessor = preprocessor or Preprocessor(bundle.input_width, bundle.input_height, bundle.pad_value)
        sk = bundle.skeleton
        self.stride = bundle.stride
        self._maps = (sk.num_heatmaps, sk.num_pafs, bundle.map_height, bundle.map_width)

    @property
    def batch(self) -> int:
        """Frames one network call of this worker takes (its buffer set's batch)."""
        return self.buffers.batch

    def preprocess(self, image: np.ndarray, slot: int = 0):
        """Letterbox ``image`` into slot ``slot`` of this worker's input buffer; the
        :class:`.geometry.Letterbox` used."""
        return self.preprocessor(image, self.buffers.input[slot])

    def infer(self, n: int = 1) -> None:
        """The network on the first ``n`` slots (a full batch is asked as ``infer(buffers)``, so
        a backend written before batches, which takes no ``n``, still runs batch-1 bundles)."""
        if n >= self.buffers.batch:
            self.backend.infer(self.buffers)
        else:
            self.backend.infer(self.buffers, n)

    def group(self, slot: int = 0):
        """Poses in map coordinates, read where this worker's backend left slot ``slot``'s maps."""
        bufs = self.buffers
        return self.grouper.group_ptr(bufs.heat_ptr_at(slot), bufs.paf_ptr_at(slot), *self._maps)

    def process(self, image: np.ndarray) -> Processed:
        clock = self.clock
        t0 = clock()
        try:
            lb = self.preprocess(image)
        except FrameError:
            raise
        except Exception as exc:  # letterboxing fails only on the frame itself: lose it, not the stream
            raise FrameError("frame cannot be letterboxed (%s: %s)" % (type(exc).__name__, exc)) from exc
        t1 = clock()
        self.infer()
        t2 = clock()
        try:
            poses = self.group().to_image(lb, self.stride)
        except (ValueError, RuntimeError) as exc:  # e.g. a full workspace: this frame is lost, not the stream
            raise GroupingError("grouping failed: %s" % exc) from exc
        t3 = clock()
        return Processed(poses, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

    def process_batch(self, images: Sequence[np.ndarray]) -> List[Union[Processed, Exception]]:
        """Each image's :class:`Processed`, or its :class:`FrameError` / :class:`GroupingError`,
        in order, from one network call. Anything else (the backend failing) is raised."""
        n = len(images)
        if not 1 <= n <= self.batch:
            raise ValueError("process_batch: %d images for a batch of %d" % (n, self.batch))
        clock = self.clock
        out: List[Union[Processed, Exception]] = []
        boxes = []
        for slot, image in enumerate(images):
            t0 = clock()
            try:
                boxes.append(self.preprocess(image, slot))
                out.append(Processed(None, (clock() - t0) * 1e3, 0.0, 0.0, n))
            except FrameError as exc:  # its slot holds a stale picture; its maps are never read
                boxes.append(None)
                out.append(exc)
        t1 = clock()
        if any(lb is not None for lb in boxes):
            self.infer(n)
        infer_ms = (clock() - t1) * 1e3
        for slot, lb in enumerate(boxes):
            done = out[slot]
            if lb is None or not isinstance(done, Processed):
                continue
            t2 = clock()
            try:
                done.poses = self.group(slot).to_image(lb, self.stride)
            except (ValueError, RuntimeError) as exc:
                out[slot] = GroupingError("grouping failed: %s" % exc)
                continue
            done.infer_ms, done.group_ms = infer_ms, (clock() - t2) * 1e3
        return out
