"""The skeleton: the one place that says which parts a body has and how they connect.

Everything else (targets, network heads, the C grouping core, drawing, COCO export)
takes a :class:`Skeleton` as data, so a custom dataset with its own keypoints works
end to end without recompiling anything.

Channel layout, shared by the network, the targets and the grouping core:

* heatmaps: ``num_parts`` part channels in skeleton order, then one background channel;
* PAFs: ``2 * num_limbs`` channels; limb ``l`` reads its x component from channel
  ``paf_channels[l][0]`` and its y component from ``paf_channels[l][1]``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ["Skeleton", "COCO18", "COCO17", "COCO17_PARTS", "COCO17_TO_COCO18", "coco17_to_coco18", "coco18_to_coco17",
           "BODY25", "BUILTIN", "builtin_skeleton"]


@dataclass(frozen=True)
class Skeleton:
    """Part names, limbs as part pairs, the PAF channel pair of each limb, flip pairs."""

    name: str
    parts: Tuple[str, ...]
    limbs: Tuple[Tuple[int, int], ...]
    paf_channels: Tuple[Tuple[int, int], ...] = field(default=())
    flip_pairs: Tuple[Tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        parts = tuple(str(p) for p in self.parts)
        limbs = tuple((int(a), int(b)) for a, b in self.limbs)
        paf = tuple((int(x), int(y)) for x, y in self.paf_channels)
        if not paf:
            # Default layout: limb l owns channels 2l (x) and 2l+1 (y).
            paf = tuple((2 * i, 2 * i + 1) for i in range(len(limbs)))
        flips = tuple((int(a), int(b)) for a, b in self.flip_pairs)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "limbs", limbs)
        object.__setattr__(self, "paf_channels", paf)
        object.__setattr__(self, "flip_pairs", flips)
        self._validate()

    def _validate(self) -> None:
        k, n_limbs = len(self.parts), len(self.limbs)
        if k == 0:
            raise ValueError("skeleton %r has no parts" % self.name)
        if len(set(self.parts)) != k:
            raise ValueError("skeleton %r has duplicate part names" % self.name)
        for i, (a, b) in enumerate(self.limbs):
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise ValueError("skeleton %r: limb %d joins parts (%d, %d), "
                                 "which is not a pair of distinct parts in 0..%d" % (self.name, i, a, b, k - 1))
        if len(self.paf_channels) != n_limbs:
            raise ValueError("skeleton %r: %d limbs but %d PAF channel pairs"
                             % (self.name, n_limbs, len(self.paf_channels)))
        flat = [c for pair in self.paf_channels for c in pair]
        if sorted(flat) != list(range(2 * n_limbs)):
            raise ValueError("skeleton %r: PAF channels must use each of 0..%d exactly once"
                             % (self.name, 2 * n_limbs - 1))
        seen = set()
        for a, b in self.flip_pairs:
            if not (0 <= a < k and 0 <= b < k) or a == b or a in seen or b in seen:
                raise ValueError("skeleton %r: bad flip pair (%d, %d)" % (self.name, a, b))
            seen.update((a, b))

    # -- sizes ---------------------------------------------------------------
    @property
    def num_parts(self) -> int:
        return len(self.parts)

    @property
    def num_limbs(self) -> int:
        return len(self.limbs)

    @property
    def num_heatmaps(self) -> int:
        """Part channels plus the background channel."""
        return len(self.parts) + 1

    @property
    def num_pafs(self) -> int:
        return 2 * len(self.limbs)

    # -- derived tables ------------------------------------------------------
    def index(self, part: str) -> int:
        return self.parts.index(part)

    def flip_permutation(self) -> List[int]:
        """``perm[i]`` is the part that part ``i`` becomes in a horizontally mirrored image."""
        perm = list(range(self.num_parts))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def flip_limb_permutation(self) -> List[int]:
        """``perm[l]`` is the limb that limb ``l`` becomes in a mirrored image (same direction)."""
        parts = self.flip_permutation()
        lookup = {limb: i for i, limb in enumerate(self.limbs)}
        perm = []
        for a, b in self.limbs:
            j = lookup.get((parts[a], parts[b]))
            if j is None:
                raise ValueError("skeleton %r: limb (%d, %d) has no mirror image among the limbs"
                                 % (self.name, a, b))
            perm.append(j)
        return perm

    # -- serialisation (meta.json, COCO categories) ---------------------------
    def to_dict(self) -> Dict[str, object]:
        return {
            "name": self.name,
            "parts": list(self.parts),
            "limbs": [list(x) for x in self.limbs],
            "paf_channels": [list(x) for x in self.paf_channels],
            "flip_pairs": [list(x) for x in self.flip_pairs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> "Skeleton":
        try:
            return cls(name=str(d["name"]), parts=tuple(d["parts"]),  # type: ignore[arg-type]
                       limbs=tuple(tuple(x) for x in d["limbs"]),  # type: ignore[union-attr]
                       paf_channels=tuple(tuple(x) for x in d.get("paf_channels", ())),  # type: ignore[union-attr]
                       flip_pairs=tuple(tuple(x) for x in d.get("flip_pairs", ())))  # type: ignore[union-attr]
        except (KeyError, TypeError) as exc:
            raise ValueError("not a skeleton description: %s" % exc) from None

    def digest(self) -> str:
        """A short stable hash, so a bundle and a device can tell whether they agree."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def from_coco_category(cls, category: Mapping[str, object],
                           flip_pairs: Optional[Iterable[Tuple[int, int]]] = None) -> "Skeleton":
        """A skeleton from a COCO-format category (``keypoints`` names, 1-based ``skeleton`` pairs).

        Left/right flip pairs are found by name (``left_x``/``right_x``, ``l_x``/``r_x``,
        ``LX``/``RX``) unless given.
        """
        try:
            parts = tuple(str(p) for p in category["keypoints"])  # type: ignore[union-attr]
            pairs = category.get("skeleton") or ()
            limbs = tuple((int(a) - 1, int(b) - 1) for a, b in pairs)  # type: ignore[union-attr,misc]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("COCO category has no usable 'keypoints'/'skeleton': %s" % exc) from None
        flips = tuple(flip_pairs) if flip_pairs is not None else _flip_pairs_by_name(parts)
        return cls(name=str(category.get("name", "custom")), parts=parts, limbs=limbs, flip_pairs=flips)

    def to_coco_category(self, category_id: int = 1, supercategory: str = "person") -> Dict[str, object]:
        return {"id": category_id, "name": self.name, "supercategory": supercategory,
                "keypoints": list(self.parts),
                "skeleton": [[a + 1, b + 1] for a, b in self.limbs]}


_SIDE_PREFIXES = (("left_", "right_"), ("l_", "r_"), ("L", "R"), ("left", "right"))


def _flip_pairs_by_name(parts: Sequence[str]) -> Tuple[Tuple[int, int], ...]:
    index = {p: i for i, p in enumerate(parts)}
    pairs = []
    used = set()
    for i, p in enumerate(parts):
        for left, right in _SIDE_PREFIXES:
            if p.startswith(left) and len(p) > len(left):
                j = index.get(right + p[len(left):])
                if j is not None and i not in used and j not in used:
                    pairs.append((i, j))
                    used.update((i, j))
                break
    return tuple(pairs)


# OpenPose's COCO body model: 18 parts, 19 limbs (the last two are the redundant
# ear-shoulder connections), and OpenPose's PAF channel table (POSE_COCO_MAP_IDX with
# the 19 heatmap channels subtracted), so the CMU weights load without reordering.
COCO18 = Skeleton(
    name="coco18",
    parts=("nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
           "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
           "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
           "left_eye", "right_ear", "left_ear"),
    limbs=((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
           (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
           (2, 16), (5, 17)),
    paf_channels=((12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1),
                  (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35),
                  (32, 33), (36, 37), (18, 19), (26, 27)),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)),
)

# COCO 2017's person keypoints, in its order, and its 19 skeleton lines (the dataset's own
# category; COCO-format annotations, results and the synthetic generator's files use it).
COCO17_PARTS: Tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle")
COCO17 = Skeleton(
    name="person",
    parts=COCO17_PARTS,
    limbs=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
           (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
)

# COCO's 17 keypoints in COCO-18 order: entry i is the COCO-17 index of COCO-18 part i;
# None marks the neck, which COCO does not label (it is the mid-shoulder point).
COCO17_TO_COCO18: Tuple[Optional[int], ...] = tuple(
    None if part == "neck" else COCO17_PARTS.index(part) for part in COCO18.parts)


def coco17_to_coco18(kp17: np.ndarray) -> np.ndarray:
    """``(..., 17, 3)`` COCO keypoints -> ``(..., 18, 3)`` COCO-18 with the neck derived: the
    mid-shoulder point when both shoulders are labelled (visibility the lower), else absent."""
    kp17 = np.asarray(kp17, np.float32)
    out = np.zeros(kp17.shape[:-2] + (18, 3), np.float32)
    for i, j in enumerate(COCO17_TO_COCO18):
        if j is not None:
            out[..., i, :] = kp17[..., j, :]
    ls, rs = kp17[..., 5, :], kp17[..., 6, :]
    both = (ls[..., 2] > 0) & (rs[..., 2] > 0)
    neck = out[..., 1, :]
    neck[..., 0] = np.where(both, (ls[..., 0] + rs[..., 0]) / 2, 0.0)
    neck[..., 1] = np.where(both, (ls[..., 1] + rs[..., 1]) / 2, 0.0)
    neck[..., 2] = np.where(both, np.minimum(ls[..., 2], rs[..., 2]), 0.0)
    return out


def coco18_to_coco17(kp18: np.ndarray) -> np.ndarray:
    """``(..., 18, 3)`` COCO-18 -> ``(..., 17, 3)`` COCO (the neck is dropped)."""
    kp18 = np.asarray(kp18, np.float32)
    out = np.zeros(kp18.shape[:-2] + (17, 3), np.float32)
    for i, j in enumerate(COCO17_TO_COCO18):
        if j is not None:
            out[..., j, :] = kp18[..., i, :]
    return out


# OpenPose's BODY_25 model (pose_iter_584000): COCO-18's parts with a mid-hip (8) and six
# foot points, 26 limbs (POSE_BODY_25 pairs, the last two of the ears' shoulders among them)
# and its PAF channel table (getPoseMapIndex(BODY_25)), so its network's output is read as
# published: 26 heatmaps (25 parts, then background), then 52 PAF channels.
BODY25 = Skeleton(
    name="body25",
    parts=("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
           "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle",
           "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
           "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
           "right_heel"),
    limbs=((1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11),
           (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (2, 17),
           (5, 18), (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24)),
    paf_channels=((0, 1), (14, 15), (22, 23), (16, 17), (18, 19), (24, 25), (26, 27), (6, 7),
                  (2, 3), (4, 5), (8, 9), (10, 11), (12, 13), (30, 31), (32, 33), (36, 37),
                  (34, 35), (38, 39), (20, 21), (28, 29), (40, 41), (42, 43), (44, 45), (46, 47),
                  (48, 49), (50, 51)),
    flip_pairs=((2, 5), (3, 6), (4, 7), (9, 12), (10, 13), (11, 14), (15, 16), (17, 18),
                (19, 22), (20, 23), (21, 24)),
)

# The skeletons known by name (``--skeleton body25``); any other comes as a file.
BUILTIN: Dict[str, Skeleton] = {"coco18": COCO18, "body25": BODY25}


def builtin_skeleton(name: str) -> Skeleton:
    """A built-in skeleton by name; ``ValueError`` naming the known ones otherwise."""
    try:
        return BUILTIN[name.lower()]
    except KeyError:
        raise ValueError("unknown skeleton %r (built in: %s; or a skeleton JSON file)"
                         % (name, ", ".join(sorted(BUILTIN)))) from None
