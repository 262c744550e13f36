"""When a precision costs too much AP: find the layers that cost it and keep them in FP32.

The same search serves INT8 and FP16; what differs is how a trial model is made (a
``Builder``: quantise / convert everything but the excluded layers, or only one layer).
Each candidate layer's sensitivity is measured alone: the model with *only that layer* in
the lower precision, run on a few calibration images, its heatmap and PAF error against
FP32 relative to the maps' own magnitude. Then the most sensitive layers are kept in FP32,
a few more at a time, and AP is measured again, until the AP drop is within the budget or
the fallback limit is reached. The report names them.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .accuracy import ort_map_fn

__all__ = ["Ranking", "FallbackResult", "Builder", "rank_layers", "fall_back", "trial_sizes"]

# builder(out_path, only=None | node name, exclude=node names) -> out_path: a trial model
# with only ``only`` in the lower precision, or everything but ``exclude``.
Builder = Callable[..., str]


@dataclass
class Ranking:
    layers: List[Tuple[str, float]]     # (node name, relative output error), most sensitive first

    def top(self, k: int) -> List[str]:
        return [name for name, _ in self.layers[:k]]


@dataclass
class FallbackResult:
    excluded: List[str]
    model_path: str
    ap: float
    drop_points: float
    within_budget: bool
    trials: List[Dict[str, object]] = field(default_factory=list)


def _relative_error(ref: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> float:
    total = 0.0
    for r, g in zip(ref, got):
        total += float(np.mean(np.abs(g - r))) / (float(np.mean(np.abs(r))) + 1e-6)
    return total


def rank_layers(build: Builder, fp32_path: str, inputs: np.ndarray, candidates: Sequence[str],
                input_name: str, output_names: Tuple[str, str], work_dir: str,
                on_step: Optional[Callable[[int, int, str], None]] = None) -> Ranking:
    """Sensitivity of each of ``candidates`` (node names): output error with only it in the lower precision."""
    ref_fn = ort_map_fn(fp32_path, input_name, output_names)
    reference = [ref_fn(x[None]) for x in inputs]
    trial = os.path.join(work_dir, "sensitivity-trial.onnx")
    scores = []
    for i, name in enumerate(candidates):
        fn = ort_map_fn(build(trial, only=name), input_name, output_names)
        err = float(np.mean([_relative_error(ref, fn(x[None])) for ref, x in zip(reference, inputs)]))
        scores.append((name, err if np.isfinite(err) else float("inf")))
        if on_step is not None:
            on_step(i + 1, len(candidates), name)
    scores.sort(key=lambda t: -t[1])
    return Ranking(scores)


def trial_sizes(limit: int) -> List[int]:
    """How many layers to keep in FP32 at each trial: 1, 2, 3, 4, 6, 9, 13, ... up to ``limit``."""
    sizes, k = [], 1
    while k < limit:
        sizes.append(k)
        k = k + 1 if k < 4 else k + k // 2
    sizes.append(limit)
    return sorted(set(s for s in sizes if 0 < s <= limit))


def fall_back(build: Builder, ranking: Ranking, ap_fn: Callable[[str], float], fp32_ap: float,
              max_drop_points: float, out_path: str, max_layers: int = 16,
              baseline: Optional[Tuple[str, float]] = None, log=None, label: str = "INT8",
              refine: int = 3) -> FallbackResult:
    """Keep the most sensitive layers in FP32 until ``fp32_ap - ap <= max_drop_points`` (AP points).

    ``ap_fn(model_path)`` is the AP (0..1) of a model on the held-out set. Trials grow by
    :func:`trial_sizes`; once one is within budget, up to ``refine`` more halve the gap to
    the last that was not, so no more layers than needed leave the lower precision. The
    best model tried is left at ``out_path`` (the smallest within budget, else the one with
    the highest AP). ``baseline`` is (path, AP) of the full lower-precision model, the
    result when no trial beats it.
    """
    log = log or sys.stderr
    limit = min(max_layers, len(ranking.layers))
    state = _Search(build, ranking, ap_fn, fp32_ap, max_drop_points, out_path, log, label)
    if baseline is not None:
        shutil.copyfile(baseline[0], out_path)
        drop = (fp32_ap - baseline[1]) * 100.0
        state.best = FallbackResult([], out_path, float(baseline[1]), drop, drop <= max_drop_points)
    failed = 0
    for k in trial_sizes(limit) if limit else []:
        if state.trial(k):
            for _ in range(refine):  # the smallest k within budget lies in (failed, k]
                if k - failed <= 1:
                    break
                mid = (failed + k) // 2
                if state.trial(mid):
                    k = mid
                else:
                    failed = mid
            break
        failed = k
    if os.path.exists(state.scratch):
        os.unlink(state.scratch)
    if state.best is None:
        raise ValueError("no layer to keep in FP32 (the %s model converts nothing the search can exclude) "
                         "and no full %s model to fall back on" % (label, label))
    state.best.trials = state.trials
    return state.best


class _Search:
    """The trials of one fallback search and the best model so far."""

    def __init__(self, build: Builder, ranking: Ranking, ap_fn, fp32_ap: float, budget: float, out_path: str,
                 log, label: str) -> None:
        self.build, self.ranking, self.ap_fn = build, ranking, ap_fn
        self.fp32_ap, self.budget, self.out_path, self.log, self.label = fp32_ap, budget, out_path, log, label
        self.scratch = out_path + ".trial.onnx"
        self.best: Optional[FallbackResult] = None
        self.trials: List[Dict[str, object]] = []

    def trial(self, k: int) -> bool:
        """Keep the top ``k`` layers in FP32 and score it; True when within budget."""
        excluded = self.ranking.top(k)
        ap = float(self.ap_fn(self.build(self.scratch, exclude=excluded)))
        drop = (self.fp32_ap - ap) * 100.0
        ok = drop <= self.budget
        self.trials.append({"fp32_layers": k, "AP": ap, "drop_points": drop})
        print("sensitivity: %s with %d layer%s in FP32 -> AP %.4f (drop %.2f points, budget %.2f)"
              % (self.label, k, "" if k == 1 else "s", ap, drop, self.budget), file=self.log)
        best = self.best
        better = (best is None or (ok and (not best.within_budget or k < len(best.excluded)))
                  or (not ok and not best.within_budget and ap > best.ap))
        if better:
            os.replace(self.scratch, self.out_path)
            self.best = FallbackResult(excluded, self.out_path, ap, drop, ok)
        return ok
