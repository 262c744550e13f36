"""How many true people a set of predicted poses recovers: the yardstick of the grouping
benchmark and tests (COCO AP, for trained models, lives in host training's evaluation)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Recovery", "recovery"]


@dataclass(frozen=True)
class Recovery:
    """People recovered, and (for PCK) the labelled parts of the true people and how many
    of them their matched predictions hit."""

    true_people: int
    predicted_people: int
    recovered: int
    true_parts: int = 0
    parts_hit: int = 0

    @property
    def rate(self) -> float:
        return self.recovered / self.true_people if self.true_people else 1.0

    @property
    def pck(self) -> float:
        """Labelled parts found within the radius by the prediction matched to their person."""
        return self.parts_hit / self.true_parts if self.true_parts else 1.0

    @property
    def returned_per_true(self) -> float:
        return self.predicted_people / self.true_people if self.true_people else float(self.predicted_people)

    def __add__(self, other: "Recovery") -> "Recovery":
        return Recovery(self.true_people + other.true_people, self.predicted_people + other.predicted_people,
                        self.recovered + other.recovered, self.true_parts + other.true_parts,
                        self.parts_hit + other.parts_hit)


def recovery(predicted: np.ndarray, truth: np.ndarray, radius: float = 1.5,
             min_fraction: float = 0.75, min_visible: int = 3) -> Recovery:
    """Match predictions ``(P, K, 3)`` (score 0 = missing) to truth ``(T, K, 3)`` (v 0 = absent).

    A true person with at least ``min_visible`` labelled parts is recovered when one
    prediction, used once, has at least ``min_fraction`` of those parts within ``radius``.
    Matching is greedy on the fraction of parts hit, best pairs first; it goes on below
    ``min_fraction`` (down to one part) for the parts count of PCK.
    """
    truth = truth[(truth[:, :, 2] > 0).sum(axis=1) >= min_visible] if len(truth) else truth
    t, p = len(truth), len(predicted)
    labelled = int((truth[:, :, 2] > 0).sum()) if t else 0
    if t == 0 or p == 0:
        return Recovery(t, p, 0, labelled, 0)
    d = np.hypot(predicted[None, :, :, 0] - truth[:, None, :, 0], predicted[None, :, :, 1] - truth[:, None, :, 1])
    hit = (d <= radius) & (truth[:, None, :, 2] > 0) & (predicted[None, :, :, 2] > 0)
    hits = hit.sum(axis=2)  # (T, P)
    frac = hits / (truth[:, :, 2] > 0).sum(axis=1)[:, None]
    recovered = parts_hit = 0
    used_t, used_p = set(), set()
    for flat in np.argsort(-frac, axis=None, kind="stable"):
        i, j = divmod(int(flat), p)
        if frac[i, j] <= 0:
            break
        if i in used_t or j in used_p:
            continue
        used_t.add(i)
        used_p.add(j)
        recovered += frac[i, j] >= min_fraction
        parts_hit += int(hits[i, j])
    return Recovery(t, p, int(recovered), labelled, parts_hit)
