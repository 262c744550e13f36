"""Who is who: person IDs across frames and steady keypoints, through the C core
(``cffi_build/track.c``; the method is described in ``openpose_plus_paf.h``, "Tracking").

    tracker = PoseTracker(COCO18)
    for frame in source:
        poses = tracker.update(estimator.infer(frame.image), frame.timestamp)
        poses.ids          # (N,) int32: the same person keeps the same ID; -1 not yet born

A :class:`PoseTracker` follows one stream: it matches each frame's people to its tracks
by keypoint similarity (with a motion prediction per track, confident people first,
then weak ones, as ByteTrack), hands out IDs once a track has been seen in
``min_hits`` frames, and lets a track coast for ``max_age`` seconds unseen (while its
prediction is in the frame). With
``smooth`` each keypoint goes through a One Euro filter, with hysteresis on whether a
part is shown. Timestamps are the source's (seconds, increasing), so dropped frames and
variable rates are handled. The state is one buffer made here, once; a frame is one C
call plus the two output arrays.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple, Union

import numpy as np

from ._paf import ffi, lib
from .grouping import check_status
from .poses import Poses
from .skeleton import Skeleton

__all__ = ["TrackParams", "TrackStats", "PoseTracker", "make_tracker"]

_F32 = np.dtype(np.float32)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_ASSIGNMENTS = {"greedy": lib.OPP_ASSIGN_GREEDY, "optimal": lib.OPP_ASSIGN_OPTIMAL}


@dataclass(frozen=True)
class TrackParams:
    """Tracking and smoothing parameters (the fields of the C ``opp_track_params``).

    Matching: people scoring at least ``high_score`` match first (similarity at least
    ``match_similarity``) and may start tracks; people between ``low_score`` and
    ``high_score`` match the confirmed tracks left, more strictly
    (``weak_match_similarity``; ``low_score`` = ``high_score`` turns it off). ``kappa`` is
    the least keypoint falloff as a share of the person's size: it widens to
    ``noise_falloff`` times the detections' noise, measured as the tracker runs (the median
    offset of steady matches' parts from their tracks' predictions), where that is wider, up
    to 3 ``kappa`` (a real network's keypoints scatter more than ground-truth maps'; 0 keeps
    ``kappa``; :meth:`PoseTracker.stats` gives the falloff in use). A track moves by the
    median move of its parts, gets an ID after ``min_hits`` matched frames and dies
    ``max_age`` seconds after its last match, or once its predicted pose has left the frame
    (whoever comes in there later is somebody else), or where, at an edge of the frame and
    heading out through it faster than ``turn_speed`` sizes per second, its match would turn
    it back (that is somebody coming in where its person went out; 0 turns this off); a
    confident person who would start a track is first offered to the tracks lost for a
    while, their falloff widened by ``widen`` per second unseen. Smoothing (``smooth``): One
    Euro with ``min_cutoff`` and ``d_cutoff`` in Hz and ``beta`` in Hz per person-size per
    second; ``motion`` predicts with the track's velocity, shrunk for a track slower than
    ``still_speed`` sizes per second (a standing person's velocity is noise). A hidden part
    shows above ``part_on``, a shown one stays above ``part_off`` and is held ``part_hold``
    seconds when it goes missing. ``assignment`` pairs people and tracks in each pass:
    ``"optimal"`` (the pairing that explains the most parts in all) or ``"greedy"`` (the
    best pair first). ``appearance`` (0..1) is the share of a pairing's worth given by how
    alike the person's colours (sampled from the frame at their parts, when ``update`` gets
    the frame) and the track's remembered ones are: two people crossing are told apart by
    their clothes; 0 (or no frame) matches by geometry alone. The defaults are tuned by
    ``bench track``.
    """

    max_tracks: int = 64
    max_people: int = 64
    high_score: float = 0.2
    low_score: float = 0.05
    match_similarity: float = 0.2
    weak_match_similarity: float = 0.6
    kappa: float = 0.1
    part_threshold: float = 0.0
    min_hits: int = 2
    max_age: float = 2.0
    smooth: bool = True
    motion: bool = True
    min_cutoff: float = 0.3
    beta: float = 2.0
    d_cutoff: float = 1.0
    part_on: float = 0.2
    part_off: float = 0.1
    part_hold: float = 0.5
    widen: float = 1.5
    still_speed: float = 0.3
    assignment: str = "optimal"
    appearance: float = 0.8
    turn_speed: float = 0.25
    noise_falloff: float = 8.0

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError("TrackParams.%s must be %s, got %r" % (name, rule, getattr(self, name)))

        if self.assignment not in _ASSIGNMENTS:
            raise bad("assignment", "one of %s" % ", ".join(map(repr, _ASSIGNMENTS)))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "assignment":
                continue
            if f.type in ("bool", bool):
                if not isinstance(value, (bool, np.bool_)):
                    raise bad(f.name, "true or false")
            elif f.type in ("int", int):
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise bad(f.name, "an integer")
            elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not abs(value) <= _FLOAT32_MAX:  # the C side holds it in a float
                raise bad(f.name, "a finite number")
        for name, low, high in (("max_tracks", 1, lib.OPP_MAX_TRACKS), ("max_people", 1, lib.OPP_MAX_TRACKS),
                                ("min_hits", 1, 1000)):
            if not low <= getattr(self, name) <= high:
                raise bad(name, "an integer in %d..%d" % (low, high))
        for name in ("match_similarity", "weak_match_similarity"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "in [0, 1]")
        if not 1e-3 <= self.kappa <= 10.0:
            raise bad("kappa", "in [0.001, 10]")
        for name, high in (("max_age", 3600.0), ("min_cutoff", 1000.0), ("d_cutoff", 1000.0)):
            if not 0.0 < getattr(self, name) <= high:
                raise bad(name, "in (0, %g]" % high)
        if not 0.0 <= self.beta <= 1e6:
            raise bad("beta", "in [0, 1e6]")
        if self.low_score > self.high_score:
            raise bad("low_score", "<= high_score (%r)" % self.high_score)
        if self.part_off > self.part_on:
            raise bad("part_off", "<= part_on (%r)" % self.part_on)
        if not 0.0 <= self.part_hold <= self.max_age:
            raise bad("part_hold", "in [0, max_age]")
        if not 0.0 <= self.appearance <= 1.0:
            raise bad("appearance", "in [0, 1]")
        for name in ("widen", "still_speed", "turn_speed", "noise_falloff"):
            if not 0.0 <= getattr(self, name) <= 1000.0:
                raise bad(name, "in [0, 1000]")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "TrackParams":
        """From a config table; an unknown key is refused with the known ones named."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError("unknown tracking key %r (known: %s)" % (unknown[0], ", ".join(sorted(known))))
        return cls(**data)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TrackStats:
    """``live``: confirmed tracks alive (seen or coasting); ``tentative``: waiting for
    ``min_hits``; ``matched``: confirmed tracks seen in the last frame; ``births`` and
    ``deaths``: confirmed tracks begun and ended; ``frames``: frames tracked; ``falloff``:
    the similarity's falloff in use, as a share of a person's size (``kappa``, or wider
    where the detections are noisy: ``TrackParams.noise_falloff``)."""

    live: int
    tentative: int
    matched: int
    births: int
    deaths: int
    frames: int
    falloff: float


def _check(rc: int) -> int:
    return check_status(rc, lib.opp_track_strerror, lib.OPP_ERR_STATE)  # a state we sized: our bug


class PoseTracker:
    """IDs and smoothing for one stream of :class:`Poses`. The C calls run without the GIL;
    a lock keeps ``update`` (the frame loop) and ``stats`` (a metrics scrape, on another
    thread) from touching the state at once."""

    def __init__(self, skeleton: Skeleton, params: Optional[TrackParams] = None,
                 frame_size: Optional[Tuple[int, int]] = None) -> None:
        params = TrackParams() if params is None else params
        if not isinstance(params, TrackParams):
            raise TypeError("params must be a TrackParams, got %s" % type(params).__name__)
        self.skeleton, self.params = skeleton, params
        self._params = ffi.new("opp_track_params *", {
            f.name: (int(getattr(params, f.name)) if f.type in ("bool", bool)
                     else _ASSIGNMENTS[params.assignment] if f.name == "assignment" else getattr(params, f.name))
            for f in dataclasses.fields(params)})
        size = ffi.new("size_t *")
        _check(lib.opp_tracker_size(skeleton.num_parts, self._params, size))
        # float64 elements: the buffer is 8-byte aligned, as OPP_TRACKER_ALIGN asks.
        self._state = np.zeros(-(-size[0] // 8), np.float64)
        self._state_ptr = ffi.cast("void *", self._state.ctypes.data)
        self._stats = ffi.new("opp_track_stats *")
        self._lock = threading.Lock()
        self.last_warnings = 0
        self.frame_size: Optional[Tuple[int, int]] = None  # what the C state holds: None unbounded
        self._initial_frame = frame_size
        self.reset()

    @property
    def state_bytes(self) -> int:
        return self._state.nbytes

    def reset(self) -> None:
        """Forget every track (IDs start again from 1); the frame size given at construction holds again."""
        with self._lock:
            _check(lib.opp_tracker_init(self._state_ptr, self._state.nbytes, self.skeleton.num_parts, self._params))
            self.frame_size = None
            self._set_frame(self._initial_frame)

    def _set_frame(self, frame_size: Optional[Tuple[int, int]]) -> None:
        """The C state's frame bounds (under the lock): smoothed parts stay in the frame."""
        if frame_size is None or frame_size == self.frame_size:
            return
        try:
            w, h = frame_size
        except (TypeError, ValueError):
            raise ValueError("frame_size must be (width, height), got %r" % (frame_size,)) from None
        _check(lib.opp_tracker_set_frame(self._state_ptr, float(w), float(h)))
        self.frame_size = (w, h)

    def update(self, poses: Poses, timestamp: float, frame_size: Optional[Tuple[int, int]] = None,
               image: Optional[np.ndarray] = None) -> Poses:
        """``poses`` of the frame taken at ``timestamp`` (seconds, after the last frame's)
        -> the same people, in the same order, with ``ids`` and smoothed keypoints.

        ``image``, the ``H x W x 3`` uint8 frame the keypoints are in (pixel coordinates),
        lets the tracker tell people apart by their colours too (``TrackParams.appearance``);
        without it, geometry alone. Its rows may be strided (a crop); its pixels must not be.

        Smoothed keypoints stay inside the frame: ``frame_size`` ``(width, height)`` if
        given, else ``poses.frame_size`` (an estimator's poses carry it), else the last
        size seen (or the constructor's); with none ever known, they are not bounded."""
        kp = poses.keypoints
        n = len(kp)
        if kp.shape[1:] != (self.skeleton.num_parts, 3):
            raise ValueError("poses have %d parts, this tracker's skeleton %r has %d"
                             % (kp.shape[1] if kp.ndim == 3 else -1, self.skeleton.name, self.skeleton.num_parts))
        if kp.dtype != _F32 or not kp.flags.c_contiguous:
            kp = np.ascontiguousarray(kp, np.float32)
        scores = poses.scores
        if scores.dtype != _F32 or not scores.flags.c_contiguous:
            scores = np.ascontiguousarray(scores, np.float32)
        out = np.empty_like(kp)
        ids = np.empty(n, np.int32)
        img, w, h, stride = ffi.NULL, 0, 0, 0
        if image is not None and self.params.appearance > 0:
            image = _rgb_rows(image)
            h, w, stride = image.shape[0], image.shape[1], image.strides[0]
            img = ffi.cast("const unsigned char *", image.ctypes.data)
        with self._lock:
            self._set_frame(frame_size if frame_size is not None else poses.frame_size)
            rc = lib.opp_track_image(self._state_ptr, float(timestamp), ffi.from_buffer("float[]", kp),
                                     ffi.from_buffer("float[]", scores), n, img, w, h, stride,
                                     ffi.from_buffer("float[]", out), ffi.from_buffer("int[]", ids))
        if rc < 0:
            _check(rc)
        self.last_warnings = rc
        return Poses._unchecked(out, poses.scores, poses.skeleton, poses.peaks_truncated, poses.people_truncated,
                                ids, poses.frame_size)

    def stats(self) -> TrackStats:
        with self._lock:
            _check(lib.opp_tracker_stats(self._state_ptr, self._stats))
            s = self._stats
            return TrackStats(s.live, s.tentative, s.matched, s.births, s.deaths, s.frames, float(s.falloff))


def _unreadable(image) -> Optional[str]:
    """Why the tracker cannot read ``image``'s colours, or None: it takes a uint8
    ``H x W x 3`` array with sides of 1..65535."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        return "image must be an H x W x 3 uint8 array, got %s" % (
            "%s %s" % (image.dtype, image.shape) if isinstance(image, np.ndarray) else type(image).__name__)
    if not (1 <= image.shape[0] <= 65535 and 1 <= image.shape[1] <= 65535):
        return "image sides must be 1..65535, got %dx%d" % (image.shape[1], image.shape[0])
    return None


def _rgb_rows(image: np.ndarray) -> np.ndarray:
    """``image`` as the C side reads it: uint8 ``H x W x 3``, pixels packed, rows at a
    positive stride (a crop of a larger frame passes as it is; anything else is copied)."""
    why = _unreadable(image)
    if why is not None:
        raise ValueError(why)
    if image.strides[1:] != (3, 1) or image.strides[0] < 3 * image.shape[1]:
        image = np.ascontiguousarray(image)
    return image


def make_tracker(skeleton: Skeleton, track: Union[bool, None, TrackParams, Mapping[str, object], "PoseTracker"]
                 ) -> Optional[PoseTracker]:
    """What ``track=`` of the estimator and the pipeline means: False/None no tracker,
    True the defaults, a :class:`TrackParams` or a dict of its fields, or a tracker."""
    if track is None or track is False:
        return None
    if isinstance(track, PoseTracker):
        return track
    if track is True:
        return PoseTracker(skeleton)
    if isinstance(track, TrackParams):
        return PoseTracker(skeleton, track)
    if isinstance(track, Mapping):
        return PoseTracker(skeleton, TrackParams.from_dict(track))
    raise TypeError("track must be a bool, a TrackParams, a dict or a PoseTracker, got %s" % type(track).__name__)


def track_frame(tracker: Optional[PoseTracker], track, poses, timestamp: float,
                frame_size: Optional[Tuple[int, int]] = None, image: Optional[np.ndarray] = None):
    """One frame through a stream's tracker: ``(tracker, poses)``.

    ``frame_size`` ``(width, height)`` bounds the smoothed keypoints (default: the size the
    poses carry, :attr:`Poses.frame_size`, which the estimator's poses have); ``image``, the
    frame the poses are in, adds the people's colours to the matching.

    The tracker is made from the first frame's skeleton (:func:`make_tracker` reads ``track``)
    and handed back to be kept; without tracking the poses pass unchanged. ValueError (a
    clock that went back) leaves it to the caller, whose frame then goes out untracked."""
    if track is None or track is False:
        return tracker, poses
    if tracker is None:
        tracker = make_tracker(poses.skeleton, track)
    # A frame the colours cannot be read from costs the cue, not the IDs.
    if image is not None and _unreadable(image) is not None:
        image = None
    return tracker, tracker.update(poses, timestamp, frame_size, image)
