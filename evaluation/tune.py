"""Grouping parameters searched on a user's own val set (``openpose-plus tune-grouping``,
``calibrate --tune-grouping``).

The network runs once per image and its maps are kept; each trial groups them all again with
other parameters and scores the people with COCOeval, so a trial costs grouping and scoring,
not inference. The search is coordinate descent over :data:`SEARCH_SPACE`, a declared list of
``(GroupParams field, candidates)``: each round tries every candidate of every field with the
others held at the best so far, and keeps a change only when AP rises; it stops after
``rounds`` rounds, or after a round that changed nothing. So it runs at most
``rounds * sum(len(candidates))`` trials, a bound known before it starts. A new GroupParams
field is searched by adding one line to :data:`SEARCH_SPACE`.

The AP reached is measured on the images it was tuned on: a val set of a few dozen images
overstates it; the more images, the nearer it is to what other images will see.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from openpose_plus.edge.geometry import Letterbox
from openpose_plus.edge.grouping import GroupParams
from openpose_plus.edge.preprocess import Preprocessor
from openpose_plus.edge.progress import Progress

from .coco import EvalError, EvalSettings, MapFn, _chw, _read_image, evaluate_predictions, load_coco, make_grouper, \
    maps_to_results

__all__ = ["SEARCH_SPACE", "MapRecord", "Trial", "TuneResult", "collect_maps", "score", "search", "tune",
           "MAX_MAP_BYTES"]

# (field, candidates): one line per searched GroupParams field.
SEARCH_SPACE: Tuple[Tuple[str, Tuple[Any, ...]], ...] = (
    ("peak_threshold", (0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2)),
    ("min_parts", (2, 3, 4, 5, 6, 7)),
    ("min_person_score", (0.0, 0.02, 0.05, 0.1, 0.2)),  # on person_score's scale (evidence: over K + L)
    ("peak_weight", (0.0, 0.25, 0.5, 0.75, 1.0)),
    ("merge_radius", (0.0, 2.0, 3.0, 5.0)),
    ("paf_sample_threshold", (0.0, 0.02, 0.05, 0.1, 0.15)),
    ("min_sample_fraction", (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)),
    ("nms_radius", (1, 2, 3)),
    ("assignment", ("greedy", "optimal")),
)
MAX_MAP_BYTES = 4 << 30  # maps kept for the search; more images than fit are refused, not swapped


@dataclass
class MapRecord:
    """One image's network output, kept for the trials."""

    image_id: int
    letterbox: Letterbox
    heatmaps: np.ndarray  # (K+1, h, w) float32
    pafs: np.ndarray      # (2L, h, w) float32


@dataclass
class Trial:
    changes: Dict[str, Any]   # the fields that differ from the start
    ap: float


@dataclass
class TuneResult:
    params: GroupParams
    ap: float
    start: GroupParams
    start_ap: float
    images: int
    trials: List[Trial] = field(default_factory=list)
    network_ms: float = 0.0   # median per image
    group_ms: float = 0.0     # median per image, with the winning parameters

    def changes(self) -> Dict[str, Any]:
        return _diff(self.start, self.params)

    def record(self, source: str = "tune-grouping", **info: Any) -> Dict[str, Any]:
        """meta.json's grouping table for the winner."""
        out: Dict[str, Any] = {"params": dataclasses.asdict(self.params), "source": source, "AP": self.ap,
                               "AP_before": self.start_ap, "images": self.images, "trials": len(self.trials)}
        out.update(info)
        return out


def _diff(a: GroupParams, b: GroupParams) -> Dict[str, Any]:
    return {f.name: getattr(b, f.name) for f in dataclasses.fields(GroupParams)
            if getattr(a, f.name) != getattr(b, f.name)}


def collect_maps(coco_gt, image_dir, map_fn: MapFn, settings: EvalSettings, max_images: int = 0,
                 show_progress: bool = True, max_bytes: int = MAX_MAP_BYTES) -> Tuple[List[MapRecord], float]:
    """The network's maps of every val image (read, letterboxed, run once); and the median ms per image."""
    image_ids = sorted(coco_gt.getImgIds())
    if max_images:
        image_ids = image_ids[:max_images]
    if not image_ids:
        raise EvalError("the annotation file lists no images")
    sk = settings.skeleton
    h, w = settings.input_height // settings.stride, settings.input_width // settings.stride
    need = len(image_ids) * (sk.num_heatmaps + sk.num_pafs) * h * w * 4
    if need > max_bytes:
        raise EvalError("keeping the maps of %d images takes %.1f GB (more than %.1f GB): tune on fewer images "
                        "(--max-images %d)" % (len(image_ids), need / 1e9, max_bytes / 1e9,
                                               max_bytes // max(1, need // len(image_ids))))
    pre = Preprocessor(settings.input_width, settings.input_height, settings.pad_value)
    batch = np.zeros((1, settings.input_height, settings.input_width, 3), np.uint8)
    records: List[MapRecord] = []
    times: List[float] = []
    progress = Progress(len(image_ids), label="maps", unit="images", every=max(1, len(image_ids) // 10),
                        enabled=show_progress)
    for n, image_id in enumerate(image_ids):
        info = coco_gt.loadImgs(image_id)[0]
        path = "%s/%s" % (image_dir, info["file_name"])
        try:
            image = _read_image(path)
        except EvalError:
            if settings.bad_image != "skip":
                raise
            continue
        letterbox = pre(image, batch)
        t = time.perf_counter()
        heat, paf = map_fn(batch)
        times.append(time.perf_counter() - t)
        # Copies: a backend's map_fn returns its own output buffers, which the next image overwrites.
        records.append(MapRecord(image_id, letterbox, _chw(heat, "%s: heatmaps" % path, sk.num_heatmaps, settings).copy(),
                                 _chw(paf, "%s: pafs" % path, sk.num_pafs, settings).copy()))
        progress.update(n + 1)
    progress.close()
    return records, 1000.0 * float(np.median(times)) if times else 0.0


def score(records: Sequence[MapRecord], coco_gt, settings: EvalSettings, params: GroupParams) -> Tuple[Dict[str, float], float]:
    """COCO metrics of the kept maps grouped with ``params``; and the median grouping ms per image."""
    trial = dataclasses.replace(settings, group=params)
    grouper = make_grouper(trial)
    results: List[Dict[str, Any]] = []
    times: List[float] = []
    for r in records:
        t = time.perf_counter()
        _, rows = maps_to_results(r.heatmaps, r.pafs, r.letterbox, r.image_id, grouper, trial)
        times.append(time.perf_counter() - t)
        results.extend(rows)
    metrics = evaluate_predictions(coco_gt, results, [r.image_id for r in records])
    return metrics, 1000.0 * float(np.median(times)) if times else 0.0


def _check_space(space: Sequence[Tuple[str, Sequence[Any]]]) -> None:
    known = {f.name for f in dataclasses.fields(GroupParams)}
    for name, candidates in space:
        if name not in known:
            raise ValueError("search space: %r is not a GroupParams field (fields: %s)" % (name, ", ".join(sorted(known))))
        if not candidates:
            raise ValueError("search space: %r has no candidates" % name)


def search(records: Sequence[MapRecord], coco_gt, settings: EvalSettings, start: GroupParams,
           space: Sequence[Tuple[str, Sequence[Any]]] = SEARCH_SPACE, rounds: int = 2, show_progress: bool = True,
           on_trial: Optional[Callable[[Trial], None]] = None) -> TuneResult:
    """Coordinate descent from ``start`` over ``space`` (see the module doc); the best AP wins."""
    _check_space(space)
    if rounds < 1:
        raise ValueError("rounds must be at least 1, got %d" % rounds)
    if not records:
        raise EvalError("no images to tune on")
    best, best_ap = start, score(records, coco_gt, settings, start)[0]["AP"]
    start_ap = best_ap
    trials: List[Trial] = [Trial({}, start_ap)]
    scored = {start}  # a setting met again (a later round, a field back at its start) is not scored again
    bound = rounds * sum(len(c) for _, c in space)
    progress = Progress(bound, label="trial", every=max(1, bound // 10), enabled=show_progress)
    done = 0
    for _ in range(rounds):
        improved = False
        for name, candidates in space:
            for value in candidates:
                done += 1
                if getattr(best, name) == value:
                    continue
                try:
                    params = dataclasses.replace(best, **{name: value})
                except ValueError:  # a candidate this GroupParams refuses (e.g. outside a bound)
                    continue
                if params in scored:
                    continue
                scored.add(params)
                ap = score(records, coco_gt, settings, params)[0]["AP"]
                trial = Trial(_diff(start, params), ap)
                trials.append(trial)
                if on_trial:
                    on_trial(trial)
                if ap > best_ap + 1e-9:
                    best, best_ap, improved = params, ap, True
                progress.update(done, AP=best_ap)
        if not improved:
            break
    progress.update(done, AP=best_ap)
    progress.close()
    _, group_ms = score(records, coco_gt, settings, best)
    return TuneResult(best, best_ap, start, start_ap, len(records), trials, group_ms=group_ms)


def tune(annotation_file, image_dir, map_fn: MapFn, settings: EvalSettings, start: Optional[GroupParams] = None,
         max_images: int = 0, rounds: int = 2, space: Sequence[Tuple[str, Sequence[Any]]] = SEARCH_SPACE,
         show_progress: bool = True) -> TuneResult:
    """The whole search on a COCO-format val set: maps once, then :func:`search`."""
    _check_space(space)
    coco_gt = load_coco(annotation_file)
    cats = coco_gt.getCatIds()
    if settings.category_id not in cats and len(cats) == 1:
        settings.category_id = cats[0]
    records, network_ms = collect_maps(coco_gt, image_dir, map_fn, settings, max_images, show_progress)
    result = search(records, coco_gt, settings, start if start is not None else settings.group, space, rounds,
                    show_progress)
    result.network_ms = network_ms
    return result
