"""The training input pipeline: samples -> augmentation -> targets -> ``tf.data`` batches.

Interface (shared with the networks and the training loop; keep it stable)::

    ds = build_dataset(cfg, split="train", rank=0, num_ranks=1, repeat=True)
    for batch in ds:            # a dict per batch, NHWC (training layout)
        batch["image"]          # uint8   (B, H, W, 3)  RGB at MODEL.input_height x input_width
        batch["heatmaps"]       # float32 (B, h, w, K + 1)  parts then background, h = H / stride
        batch["pafs"]           # float32 (B, h, w, 2L)     channel layout of Skeleton.paf_channels
        batch["mask"]           # float32 (B, h, w, 1)      1 = the loss counts, 0 = ignore
        batch["sample_id"]      # int64   (B,)              stable id of the source sample
    skeleton = dataset_skeleton(cfg)   # COCO18, or the custom data's own

``B`` is TRAIN.batch_size per rank (train batches are always full; a val epoch may end
with a short one). Targets are rendered by :mod:`openpose_plus.edge.targets` at map
resolution, in the coordinate convention of :mod:`openpose_plus.edge.geometry`, so the
training targets are exactly what the edge's grouping expects.

How it runs: each source's samples are sorted by id and dealt to ranks (``ids[rank::num_ranks]``)
before any shuffling or augmentation, so ranks see disjoint samples. Each epoch a rank
shuffles its own shard with a generator seeded by ``(TRAIN.seed, epoch, rank)``; a sample's
augmentation draws from ``(TRAIN.seed, epoch, sample_id)``. Decode + augment + targets run
in numpy/OpenCV in DATA.workers worker processes (default: this machine's cores shared among
its local Horovod ranks), in order, with a bounded queue; or, with ``DATA.workers = 0``,
inside ``tf.numpy_function`` with parallel calls (``deterministic=True``). Then batch and
prefetch. Both ways give bit-identical batches, and the same seed gives the same batches.
Worker processes are *spawned* (never forked from a process running TensorFlow), so a
training script must keep its top level under ``if __name__ == "__main__":``.

A corrupt image is reported with its file name; DATA.bad_sample = "skip" drops it with a
warning (once per file), "error" stops with an error that names it.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from openpose_plus.edge.geometry import input_to_map
from openpose_plus.edge.skeleton import COCO18, Skeleton
from openpose_plus.edge.targets import render_heatmaps, render_pafs

from .augment import Augmenter
from .coco import BadSample, KeypointDataset, Record, load_sample, read_keypoint_dataset
from openpose_plus.host_training.config import Config
from .custom import CUSTOM_ID_OFFSET, check_mixable, custom_skeleton, mix_batches, split_batch

__all__ = ["build_dataset", "dataset_skeleton", "Source", "KeypointSource", "SyntheticSource", "make_sources",
           "Example", "ExampleMaker"]

log = logging.getLogger("openpose_plus.data")

SYNTHETIC_VAL_ID_OFFSET = 1 << 36
_TINY = np.finfo(np.float32).tiny


# -- sources: where samples come from --------------------------------------------------------

class Source(object):
    """A list of samples, each with a stable int64 id: ``load(i)`` gives the i-th sample as
    ``(image uint8 RGB, keypoints (N, K, 3) image px, mask uint8 or None)``."""

    name = "source"
    skeleton: Skeleton = COCO18
    ids: np.ndarray = np.zeros(0, np.int64)

    def load(self, index: int) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        raise NotImplementedError

    def describe(self, index: int) -> str:
        return "%s sample %d" % (self.name, int(self.ids[index]))

    def __len__(self) -> int:
        return int(self.ids.size)


class KeypointSource(Source):
    """Records of a COCO-format keypoint file (COCO 2017, custom data, synth-data output)."""

    def __init__(self, dataset: KeypointDataset, name: str) -> None:
        self.name = name
        self.skeleton = dataset.skeleton
        self.records: List[Record] = sorted(dataset.records, key=lambda r: r.sample_id)
        self.ids = np.array([r.sample_id for r in self.records], np.int64)
        self.skipped = list(dataset.skipped)

    def load(self, index: int):
        return load_sample(self.records[index])

    def describe(self, index: int) -> str:
        return self.records[index].image_path


class SyntheticSource(Source):
    """People rendered on the fly by :func:`openpose_plus.edge.synthetic.scene.render_scene`; sample ``i``
    is always the same picture (seeded by DATA.synthetic_seed and the id)."""

    def __init__(self, size: int, width: int, height: int, max_people: int, seed: int, id_offset: int = 0,
                 name: str = "synthetic", person_height: Tuple[float, float] = (0.12, 1.0)) -> None:
        self.name = name
        self.person_height = (float(person_height[0]) * height, float(person_height[1]) * height)
        self.skeleton = COCO18
        self.ids = np.arange(size, dtype=np.int64) + id_offset
        self.width, self.height, self.max_people, self.seed = width, height, max_people, seed

    def load(self, index: int):
        from openpose_plus.edge.synthetic.scene import render_scene

        rng = np.random.default_rng([self.seed, int(self.ids[index])])
        n = int(rng.integers(1, self.max_people + 1))
        image, kp = render_scene(rng, self.width, self.height, n, person_height=self.person_height)
        return image, kp, None


def _coco_paths(cfg: Config, split: str) -> Tuple[str, str]:
    sub = "train2017" if split == "train" else "val2017"
    return (os.path.join(cfg.data.coco_dir, "annotations", "person_keypoints_%s.json" % sub),
            os.path.join(cfg.data.coco_dir, sub))


def _keypoint_source(cfg: Config, ann: str, images: str, name: str, id_offset: int = 0) -> KeypointSource:
    if not os.path.exists(ann):
        raise FileNotFoundError("%s: annotation file not found (%s)%s" % (
            ann, name, "; fetch COCO with `openpose-plus download-coco`" if name.startswith("coco") else ""))
    ds = read_keypoint_dataset(ann, images, cfg.model.skeleton, cfg.data.bad_sample, cfg.data.min_keypoints,
                               id_offset=id_offset, cache_dir=cfg.data.cache_dir)
    if ds.skipped:
        log.warning("%s: skipped %d image(s) with broken annotations", ann, len(ds.skipped))
    if not ds.records:
        raise ValueError("%s: no image with a labelled person (%s)" % (ann, name))
    return KeypointSource(ds, name)


def make_sources(cfg: Config, split: str = "train") -> List[Source]:
    """The sources of a split: one, or (coco_and_custom training) COCO then custom."""
    d = cfg.data
    if split not in ("train", "val"):
        raise ValueError("split must be 'train' or 'val', got %r" % (split,))
    if d.train_data == "synthetic":
        if split == "val" and not d.val_annotations:
            return [SyntheticSource(max(1, min(d.synthetic_size, 200)), cfg.model.input_width,
                                    cfg.model.input_height, d.synthetic_people, d.synthetic_seed + 1,
                                    id_offset=SYNTHETIC_VAL_ID_OFFSET, name="synthetic-val",
                                    person_height=tuple(d.synthetic_height))]
        if split == "train":
            return [SyntheticSource(d.synthetic_size, cfg.model.input_width, cfg.model.input_height,
                                    d.synthetic_people, d.synthetic_seed, person_height=tuple(d.synthetic_height))]
    if split == "val":
        if d.val_annotations:
            return [_keypoint_source(cfg, d.val_annotations, d.val_images or os.path.dirname(d.val_annotations),
                                     "val")]
        if d.train_data in ("coco", "coco_and_custom"):
            ann, img = _coco_paths(cfg, "val")
            return [_keypoint_source(cfg, ann, img, "coco-val")]
        raise ValueError("DATA.val_annotations: required for a validation split of %r data" % d.train_data)
    sources: List[Source] = []
    if d.train_data in ("coco", "coco_and_custom"):
        ann, img = _coco_paths(cfg, "train")
        sources.append(_keypoint_source(cfg, ann, img, "coco"))
    if d.train_data in ("custom", "coco_and_custom"):
        sources.append(_keypoint_source(cfg, d.your_annotations, d.your_images, "custom", CUSTOM_ID_OFFSET))
    return sources


def dataset_skeleton(cfg: Config) -> Skeleton:
    """The skeleton the network is trained in: COCO18, or the custom data's own category's."""
    d = cfg.data
    if d.train_data in ("custom", "coco_and_custom"):
        sk = custom_skeleton(d.your_annotations, cfg.model.skeleton)
        if d.train_data == "coco_and_custom":
            check_mixable(sk)
        return sk
    return COCO18


# -- one example: decode, augment, targets ------------------------------------------------------

Example = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.int64, np.bool_]


class ExampleMaker(object):
    """Turns ``(sample index, epoch)`` of a source into one training example (numpy)."""

    def __init__(self, cfg: Config, source: Source, skeleton: Skeleton, augment: bool) -> None:
        m = cfg.model
        self.source = source
        self.skeleton = skeleton
        self.stride = m.stride
        self.size = (m.input_width, m.input_height)
        self.map_size = (m.input_width // m.stride, m.input_height // m.stride)
        self.sigma = cfg.targets.heatmap_sigma
        self.paf_width = cfg.targets.paf_width
        self.seed = cfg.train.seed
        self.bad_sample = cfg.data.bad_sample
        self.augmenter = Augmenter(cfg.augment.steps if augment else [], skeleton, self.size, cfg.augment.pad_value)
        self._bad: Dict[int, str] = {}
        self._lock = threading.Lock()

    def __call__(self, index: int, epoch: int) -> Example:
        """The example, or (bad sample, "skip") a placeholder with ``ok`` False to filter out."""
        ex, why = self.try_make(int(index), int(epoch))
        return ex if ex is not None else self._skipped(int(self.source.ids[int(index)]), why)

    def targets(self, image: np.ndarray, kp: np.ndarray, mask: Optional[np.ndarray], sid: int) -> Example:
        import cv2

        mw, mh = self.map_size
        kp_map = input_to_map(kp, self.stride) if kp.size else np.zeros((0, self.skeleton.num_parts, 3), np.float32)
        kp_map = self._near_frame(kp_map, mw, mh)
        heat = render_heatmaps(kp_map, self.skeleton, mh, mw, self.sigma)
        paf = render_pafs(kp_map, self.skeleton, mh, mw, self.paf_width)
        # TensorFlow's threads flush denormals to zero and worker processes do not: flush them
        # here, so both ways of running give bit-identical targets.
        heat[heat < _TINY] = 0.0
        if mask is None:
            m = np.ones((mh, mw, 1), np.float32)
        else:
            # Each map cell covers stride x stride input pixels: average them.
            m = cv2.resize(mask, (mw, mh), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0
        # Maps stay channel-first, as rendered: worker processes transpose while copying into
        # shared memory; the in-TensorFlow path transposes whole batches.
        return (np.ascontiguousarray(image, np.uint8), heat, paf, m, np.int64(sid), np.bool_(True))

    def _near_frame(self, kp: np.ndarray, mw: int, mh: int) -> np.ndarray:
        """Only the people whose maps can reach the frame (a crop leaves many outside). Exact:
        a dropped person's Gaussians are below float32's smallest normal number in the frame
        (flushed to 0 anyway) and its limb bands lie outside it."""
        if kp.shape[0] == 0:
            return kp
        lab = kp[..., 2] > 0
        big = np.float32(1e9)
        x0 = np.where(lab, kp[..., 0], big).min(axis=1)
        y0 = np.where(lab, kp[..., 1], big).min(axis=1)
        x1 = np.where(lab, kp[..., 0], -big).max(axis=1)
        y1 = np.where(lab, kp[..., 1], -big).max(axis=1)
        m = max(14.0 * self.sigma, self.paf_width) + 1.0
        keep = lab.any(axis=1) & (x1 >= -m) & (x0 <= mw - 1 + m) & (y1 >= -m) & (y0 <= mh - 1 + m)
        return kp[keep]

    def _skipped(self, sid: int, why: str) -> Example:
        with self._lock:
            first = sid not in self._bad
            self._bad[sid] = why
            all_bad = len(self._bad) >= len(self.source)
        if first:
            log.warning("skipping bad sample %s (DATA.bad_sample = \"skip\")", why)
        if all_bad:
            raise BadSample(why.split(": ")[0], "every sample of %s is unusable; last: %s" % (self.source.name, why))
        mw, mh = self.map_size
        w, h = self.size
        return (np.zeros((h, w, 3), np.uint8), np.zeros((self.skeleton.num_heatmaps, mh, mw), np.float32),
                np.zeros((self.skeleton.num_pafs, mh, mw), np.float32), np.zeros((mh, mw, 1), np.float32),
                np.int64(sid), np.bool_(False))

    @property
    def bad_samples(self) -> Dict[int, str]:
        with self._lock:
            return dict(self._bad)

    def __getstate__(self) -> Dict[str, Any]:  # worker processes get a copy (a lock does not pickle)
        state = dict(self.__dict__)
        del state["_lock"]
        state["_bad"] = {}
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def try_make(self, index: int, epoch: int) -> Tuple[Optional[Example], str]:
        """``(example, "")``, or ``(None, why)`` for a bad sample under bad_sample = "skip"."""
        sid = int(self.source.ids[index])
        try:
            image, kp, mask = self.source.load(index)
            kp = self._check(index, kp)
        except BadSample as exc:
            if self.bad_sample == "error":
                raise
            return None, str(exc)
        rng = np.random.default_rng([self.seed, int(epoch), sid])
        image, kp, mask = self.augmenter(image, kp, mask, rng)
        return self.targets(image, kp, mask, sid), ""

    def _check(self, index: int, kp: Any) -> np.ndarray:
        kp = np.asarray(kp, np.float32)
        if kp.size and (kp.ndim != 3 or kp.shape[1:] != (self.skeleton.num_parts, 3)):
            raise BadSample(self.source.describe(index), "keypoints have shape %s, expected (N, %d, 3)"
                            % (kp.shape, self.skeleton.num_parts))
        if not np.isfinite(kp).all():
            raise BadSample(self.source.describe(index), "keypoints hold NaN or infinity")
        return kp


# -- worker processes ----------------------------------------------------------------------------
# numpy's many small operations (PAF bands, 19 limbs) hold the GIL, so threads barely scale;
# processes do. Each worker holds one ExampleMaker and writes its examples straight into
# slots of one shared-memory block (pickling ~1 MB per example through a pipe cost the main
# process more CPU than the work itself); only ids and error texts travel back. The main
# process keeps order with a bounded queue and copies each example once, into its batch.

_WORKER: Dict[str, Any] = {}


class _Slots(object):
    """A shared-memory block of equal slots, each holding one example's arrays."""

    def __init__(self, layout: Sequence[Tuple[Tuple[int, ...], Any]], count: int, name: Optional[str] = None):
        from multiprocessing import shared_memory

        self.layout = [(tuple(shape), np.dtype(dt)) for shape, dt in layout]
        self.offsets, off = [], 0
        for shape, dt in self.layout:
            self.offsets.append(off)
            off += -(-int(np.prod(shape)) * dt.itemsize // 64) * 64  # 64-byte aligned
        self.slot_bytes, self.count = off, count
        if name is None:
            self.shm = shared_memory.SharedMemory(create=True, size=max(1, off * count))
        else:
            self.shm = shared_memory.SharedMemory(name=name)

    def views(self, slot: int) -> List[np.ndarray]:
        base = slot * self.slot_bytes
        return [np.ndarray(shape, dt, buffer=self.shm.buf, offset=base + o)
                for (shape, dt), o in zip(self.layout, self.offsets)]

    def close(self, unlink: bool = False) -> None:
        try:
            self.shm.close()
        except BufferError:  # a view is still alive somewhere; the mapping goes with the process
            pass
        if unlink:
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass


def _worker_init(maker: ExampleMaker, shm_name: str, layout: Any, count: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per worker process; no oversubscription
    _WORKER["maker"] = maker
    _WORKER["slots"] = _Slots(layout, count, name=shm_name)


def _worker_chunk(items: Sequence[Tuple[int, int, int]]) -> List[Tuple[int, bool, str]]:
    maker: ExampleMaker = _WORKER["maker"]
    slots: _Slots = _WORKER["slots"]
    out = []
    for index, epoch, slot in items:
        ex, why = maker.try_make(index, epoch)
        if ex is not None:
            for dst, src in zip(slots.views(slot), ex[:4]):
                # Maps come channel-first as rendered; the slot is channel-last (NHWC).
                np.copyto(dst, src if src.shape == dst.shape else src.transpose(1, 2, 0))
        out.append((int(maker.source.ids[index]), ex is not None, why))
    return out


def auto_workers() -> int:
    """Cores per local rank (Horovod/MPI tell how many ranks share this machine)."""
    local = 1
    for var in ("HOROVOD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"):
        try:
            local = max(local, int(os.environ.get(var, "1")))
        except ValueError:
            pass
    return max(1, (os.cpu_count() or 1) // local)


def _result(pool: Any, res: Any) -> Any:
    """``res.get()``, but an error instead of a hang when a worker process dies (a Pool would
    silently replace it and wait for its lost task forever)."""
    import multiprocessing

    pids = {p.pid for p in pool._pool}
    while True:
        try:
            return res.get(timeout=2.0)
        except multiprocessing.TimeoutError:
            if not pool._result_handler.is_alive():
                raise RuntimeError("the data worker pool lost its result handler (a result that "
                                   "cannot be unpickled?)") from None
            dead = [p for p in pool._pool if p.exitcode is not None]
            if dead or {p.pid for p in pool._pool} != pids:
                code = dead[0].exitcode if dead else "?"
                raise RuntimeError("a data worker process died (exit code %s); if this script has no "
                                   "`if __name__ == \"__main__\":` guard, add one (worker processes are "
                                   "spawned and import the main module)" % code) from None


def _process_batches(maker: ExampleMaker, items, workers: int, layout: Sequence[Tuple[Tuple[int, ...], Any]],
                     batch_size: int, drop_remainder: bool, shard_size: int, chunk: int = 4):
    """Batches (lists of arrays image, heatmaps, pafs, mask, sample_id) of the examples of
    ``items`` (index, epoch), made by ``workers`` processes, in order."""
    import collections
    import itertools
    import multiprocessing

    depth = 4 * workers
    slots = _Slots(layout, (depth + 1) * chunk)
    free = list(range(slots.count))
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs TensorFlow
    pool = ctx.Pool(workers, initializer=_worker_init, initargs=(maker, slots.shm.name, layout, slots.count))
    pending: "collections.deque" = collections.deque()
    it = iter(items)
    warned: set = set()
    good = 0

    def new_batch() -> List[np.ndarray]:
        return [np.empty((batch_size,) + shape, dt) for shape, dt in slots.layout] + [np.empty(batch_size, np.int64)]

    out, k = new_batch(), 0
    try:
        while True:
            while len(pending) < depth:
                todo = list(itertools.islice(it, chunk))
                if not todo:
                    break
                used = [free.pop() for _ in todo]
                tasks = [(i, e, slot) for (i, e), slot in zip(todo, used)]
                pending.append((pool.apply_async(_worker_chunk, (tasks,)), used))
            if not pending:
                break
            res, used = pending.popleft()
            for (sid, ok, why), slot in zip(_result(pool, res), used):
                if not ok:
                    if sid not in warned:
                        warned.add(sid)
                        log.warning("skipping bad sample %s (DATA.bad_sample = \"skip\")", why)
                        if len(warned) >= shard_size and good == 0:
                            raise BadSample(why.split(": ")[0], "every sample of %s is unusable; last: %s"
                                            % (maker.source.name, why))
                    continue
                good += 1
                for dst, src in zip(out, slots.views(slot)):
                    dst[k] = src
                out[4][k] = sid
                k += 1
                if k == batch_size:
                    yield out
                    out, k = new_batch(), 0
            free.extend(used)
        if k and not drop_remainder:
            yield [a[:k] for a in out]
    finally:
        pool.terminate()
        pool.join()
        slots.close(unlink=True)


# -- tf.data -------------------------------------------------------------------------------------

def shard_indices(n: int, rank: int, num_ranks: int) -> np.ndarray:
    """Indices (into a source sorted by id) that belong to ``rank``: disjoint, covering all."""
    if num_ranks < 1 or not 0 <= rank < num_ranks:
        raise ValueError("rank %r is not in 0..%r" % (rank, num_ranks - 1))
    return np.arange(rank, n, num_ranks, dtype=np.int64)


def _index_stream(shard: np.ndarray, seed: int, rank: int, shuffle: bool, repeat: bool):
    def gen():
        epoch = 0
        while True:
            order = shard
            if shuffle:
                order = shard[np.random.default_rng([seed, epoch, rank]).permutation(shard.size)]
            for i in order:
                yield int(i), epoch
            epoch += 1
            if not repeat:
                return
    return gen


def _to_nhwc(b):
    import tensorflow as tf

    out = dict(b)
    out["heatmaps"] = tf.transpose(b["heatmaps"], (0, 2, 3, 1))
    out["pafs"] = tf.transpose(b["pafs"], (0, 2, 3, 1))
    return out


def _is_ok(e):
    return e["ok"]


def _drop_ok(e):
    return {k: v for k, v in e.items() if k != "ok"}


def _batches(cfg: Config, source: Source, skeleton: Skeleton, split: str, rank: int, num_ranks: int,
             repeat: bool, batch_size: int, drop_remainder: bool):
    """A tf.data stream of NHWC batches from one source."""
    import tensorflow as tf

    if source.skeleton.digest() != skeleton.digest():
        raise ValueError("%s data is in skeleton %r but the model trains %r (MODEL.skeleton)"
                         % (source.name, source.skeleton.name, skeleton.name))
    shard = shard_indices(len(source), rank, num_ranks)
    if shard.size == 0:
        raise ValueError("%s has %d samples: too few for %d ranks" % (source.name, len(source), num_ranks))
    train = split == "train"
    maker = ExampleMaker(cfg, source, skeleton, augment=train)
    gen = _index_stream(shard, cfg.train.seed, rank, train and cfg.data.shuffle, repeat)
    H, W, s = cfg.model.input_height, cfg.model.input_width, cfg.model.stride
    h, w = H // s, W // s
    layout = [((H, W, 3), np.uint8), ((h, w, skeleton.num_heatmaps), np.float32),
              ((h, w, skeleton.num_pafs), np.float32), ((h, w, 1), np.float32)]
    workers = auto_workers() if cfg.data.workers < 0 else cfg.data.workers
    if workers > 0:
        b = batch_size if drop_remainder else None
        spec = {"image": tf.TensorSpec((b, H, W, 3), tf.uint8),
                "heatmaps": tf.TensorSpec((b, h, w, skeleton.num_heatmaps), tf.float32),
                "pafs": tf.TensorSpec((b, h, w, skeleton.num_pafs), tf.float32),
                "mask": tf.TensorSpec((b, h, w, 1), tf.float32),
                "sample_id": tf.TensorSpec((b,), tf.int64)}

        def batches():
            for arrays in _process_batches(maker, gen(), workers, layout, batch_size, drop_remainder, shard.size):
                yield dict(zip(("image", "heatmaps", "pafs", "mask", "sample_id"), arrays))

        return tf.data.Dataset.from_generator(batches, output_signature=spec)

    idx = tf.data.Dataset.from_generator(
        gen, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64)))

    def make(i, epoch):
        out = tf.numpy_function(maker, [i, epoch], [tf.uint8, tf.float32, tf.float32, tf.float32, tf.int64, tf.bool],
                                stateful=False)
        return {"image": tf.ensure_shape(out[0], (H, W, 3)),
                "heatmaps": tf.ensure_shape(out[1], (skeleton.num_heatmaps, h, w)),
                "pafs": tf.ensure_shape(out[2], (skeleton.num_pafs, h, w)),
                "mask": tf.ensure_shape(out[3], (h, w, 1)),
                "sample_id": tf.ensure_shape(out[4], ()),
                "ok": tf.ensure_shape(out[5], ())}

    calls = cfg.data.parallel_calls or tf.data.AUTOTUNE
    ds = idx.map(make, num_parallel_calls=calls, deterministic=True)
    ds = ds.filter(_is_ok).map(_drop_ok).batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(_to_nhwc, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def build_dataset(cfg: Config, split: str = "train", rank: int = 0, num_ranks: int = 1, repeat: bool = True):
    """Batches of training examples for one rank (see the module docstring for the contract)."""
    import tensorflow as tf

    skeleton = dataset_skeleton(cfg)
    sources = make_sources(cfg, split)
    batch = cfg.train.batch_size
    train = split == "train"
    if len(sources) == 2:
        if not repeat:
            raise ValueError("coco_and_custom mixing needs repeat=True (the two sources differ in length)")
        n_coco, n_custom = split_batch(batch, cfg.data.custom_ratio)
        parts = [_batches(cfg, src, skeleton, split, rank, num_ranks, repeat, n, True)
                 for src, n in zip(sources, (n_coco, n_custom)) if n > 0]
        ds = parts[0] if len(parts) == 1 else mix_batches(parts[0], parts[1])
    else:
        ds = _batches(cfg, sources[0], skeleton, split, rank, num_ranks, repeat, batch, train)
    ds = ds.prefetch(cfg.data.prefetch or tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)
