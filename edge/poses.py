"""The people found in one frame: what grouping returns and what the sinks consume."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .geometry import Letterbox
from .skeleton import Skeleton

__all__ = ["Poses"]


@dataclass(frozen=True, eq=False)
class Poses:
    """``keypoints`` is ``(N, K, 3)`` float32 ``x, y, score``; a missing part has score 0
    and ``x = y = 0``. ``scores`` is ``(N,)`` float32, best person first.
    ``peaks_truncated`` / ``people_truncated`` say that a capacity of the grouper
    (``max_peaks`` / ``max_people``) was reached and the weakest were left out.
    ``ids`` is ``(N,)`` int32 track IDs once a :class:`~.tracking.PoseTracker` has seen
    the frame (-1: not tracked, or not yet born), ``None`` when nothing tracks.
    ``frame_size`` is ``(width, height)`` of the frame the keypoints are in, once known
    (:meth:`to_image` sets it; a tracker keeps smoothed parts inside it), else ``None``.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    skeleton: Skeleton
    peaks_truncated: bool = False
    people_truncated: bool = False
    ids: Optional[np.ndarray] = None
    frame_size: Optional[Tuple[int, int]] = None

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        scores = np.asarray(self.scores, dtype=np.float32)
        if kp.ndim != 3 or kp.shape[1:] != (self.skeleton.num_parts, 3):
            raise ValueError("keypoints must be (N, %d, 3) for skeleton %r, got %s"
                             % (self.skeleton.num_parts, self.skeleton.name, kp.shape))
        if scores.shape != (len(kp),):
            raise ValueError("scores must be (%d,), got %s" % (len(kp), scores.shape))
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "scores", scores)
        if self.ids is not None:
            ids = np.asarray(self.ids)
            if ids.shape != (len(kp),) or not (ids.dtype.kind in "iu" or len(ids) == 0):
                raise ValueError("ids must be (%d,) integers, got %s %s" % (len(kp), ids.dtype, ids.shape))
            object.__setattr__(self, "ids", ids.astype(np.int32))
        if self.frame_size is not None:
            if len(self.frame_size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0
                                                    for v in self.frame_size):
                raise ValueError("frame_size must be (width, height), positive integers, got %r" % (self.frame_size,))
            object.__setattr__(self, "frame_size", (int(self.frame_size[0]), int(self.frame_size[1])))

    @classmethod
    def _unchecked(cls, keypoints: np.ndarray, scores: np.ndarray, skeleton: Skeleton,
                   peaks_truncated: bool, people_truncated: bool, ids: Optional[np.ndarray] = None,
                   frame_size: Optional[Tuple[int, int]] = None) -> "Poses":
        """For the grouper's own arrays, already float32 and of the right shapes: the
        checks of ``__post_init__`` would be a third of the Python cost of a frame."""
        self = object.__new__(cls)
        self.__dict__.update(keypoints=keypoints, scores=scores, skeleton=skeleton,
                             peaks_truncated=peaks_truncated, people_truncated=people_truncated, ids=ids,
                             frame_size=frame_size)
        return self

    def __len__(self) -> int:
        return len(self.keypoints)

    def __repr__(self) -> str:
        flags = "".join(", %s" % name for name in ("peaks_truncated", "people_truncated") if getattr(self, name))
        if self.ids is not None:
            flags += ", ids=%s" % self.ids.tolist()
        return "Poses(%d people, skeleton=%r%s)" % (len(self), self.skeleton.name, flags)

    @property
    def truncated(self) -> bool:
        """Whether any capacity overflowed (raise ``max_peaks`` or ``max_people``)."""
        return self.peaks_truncated or self.people_truncated

    def to_image(self, letterbox: Letterbox, stride: int) -> "Poses":
        """The same people in frame pixels: map coordinates through the network input
        (``stride`` input pixels per map cell) and out of the letterbox (whose frame size
        they then carry)."""
        kp = letterbox.map_to_image(self.keypoints, stride)
        kp[..., :2][kp[..., 2] <= 0] = 0.0  # missing parts stay at (0, 0)
        return Poses(kp, self.scores, self.skeleton, self.peaks_truncated, self.people_truncated, self.ids,
                     (letterbox.image_w, letterbox.image_h))

    def draw(self, image: np.ndarray, threshold: float = 0.05, thickness=None, bgr: bool = False) -> np.ndarray:
        """Skeletons drawn onto ``image`` (in place, and returned); see :mod:`.draw`."""
        from .draw import draw_poses  # cv2 is loaded only by those who draw

        return draw_poses(image, self, self.skeleton, threshold, thickness, bgr)

    def to_openpose_json(self) -> dict:
        """The frame as OpenPose's ``--write_json`` writes it (``people[].pose_keypoints_2d``)."""
        from .openpose_json import to_openpose_json

        return to_openpose_json(self)
