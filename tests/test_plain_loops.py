"""The C core's fast paths give its plain loops' results bit for bit.

Each step states its idea plainly and keeps its fast path beside it (cffi_build/paf_peaks.c,
paf_limb_scores.c): peaks by a block pre-filter and nearest-neighbour tests instead of every
cell against its whole window; limb scores by rejecting pairs through an off-support map
instead of scoring every pair in full. ``-DOPP_PLAIN_LOOPS`` builds the core without them.
Both builds group the same maps (synthetic people clean, noisy, overlapping and crowded;
maps with broad blobs and weak fields; maps with NaN and Inf) under parameter sets that
take each branch (radius 0-3, 2-21 samples, every fraction, thresholds near zero,
truncation), and every byte they write must agree: status, people, scores, peaks and every
limb's score matrix. A build whose off-support test is not conservative must be caught.
"""
from __future__ import annotations

import numpy as np
import pytest

from core_builds import Core, build_core
from openpose_plus.edge import _paf
from openpose_plus.edge.grouping import GroupParams
from openpose_plus.edge.skeleton import COCO18
from openpose_plus.edge.synthetic.figures import random_scene, smooth_noise
from openpose_plus.edge.targets import render_targets


pytestmark = pytest.mark.toolchain  # compiles the core again, with the C compiler


@pytest.fixture(scope="module")
def plain():
    return build_core("_paf_plain", ["-DOPP_PLAIN_LOOPS"])


PARAMS = {
    "default": GroupParams(),
    "optimal": GroupParams(assignment="optimal"),
    "before-0.2": GroupParams(peak_threshold=0.15, min_parts=3, min_person_score=0.2, person_score="mean",
                              peak_weight=0.0, merge_radius=0.0),
    "radius-0": GroupParams(nms_radius=0, peak_threshold=0.3, max_peaks=16),
    "radius-2": GroupParams(nms_radius=2, paf_samples=5),
    "radius-3": GroupParams(nms_radius=3, peak_threshold=0.05),
    "many-samples": GroupParams(paf_samples=21, min_sample_fraction=0.6),
    "every-sample": GroupParams(min_sample_fraction=1.0),                 # no fail allowed
    "no-fraction": GroupParams(min_sample_fraction=0.0),                  # the fast path cannot reject
    "two-samples": GroupParams(paf_samples=2),                            # no inner sample
    "four-samples": GroupParams(paf_samples=4, min_sample_fraction=0.5),  # fewer inner than head samples
    "tiny-threshold": GroupParams(paf_sample_threshold=1e-5),             # below the map's floor
    "high-threshold": GroupParams(paf_sample_threshold=0.5, max_limb_length=6.0),
    "truncating": GroupParams(max_peaks=4, max_people=3, min_parts=1),
    "peak-weights": GroupParams(peak_weight=0.3, merge_radius=6.0, person_score="mean"),
}


SIZES = ((46, 54), (60, 80), (23, 27), (9, 7))


def _scenes(rng: np.random.Generator, height: int, width: int):
    """(name, heatmaps, pafs): synthetic people, blob-and-field maps, and maps with NaN/Inf."""
    for people in (1, 5, 12, 25) if height * width >= 2000 else (1, 3):
        for overlap in (False, True):
            truth = random_scene(rng, people, width, height, overlap=overlap)
            heat, paf = render_targets(truth, COCO18, height, width, 1.0, 1.0)
            for noise in (0.0, 0.04, 0.07):
                h = heat + smooth_noise(rng, heat.shape, noise) if noise else heat
                p = paf + smooth_noise(rng, paf.shape, noise) if noise else paf
                yield "people %d overlap %s noise %.2f" % (people, overlap, noise), h, p
    # A flood: noise above the thresholds everywhere (the fast path must stand aside), on
    # small maps only (every pair of 64 peaks a part is scored: slow).
    if height * width <= 1000:
        yield "flood", heat + smooth_noise(rng, heat.shape, 0.15), paf + smooth_noise(rng, paf.shape, 0.15)
    # Broad blobs and weak, wide fields, as a real network's maps are.
    truth = random_scene(rng, 8, width, height, overlap=True)
    heat, paf = render_targets(truth, COCO18, height, width, 2.0, 2.5)
    yield "broad", 0.6 * heat + smooth_noise(rng, heat.shape, 0.03), 0.4 * paf + smooth_noise(rng, paf.shape, 0.03)
    # Plateaus (ties) and non-finite values.
    h = np.round(heat * 4) / 4
    p = paf.copy()
    for maps in (h, p):
        flat = maps.reshape(-1)
        for value in (np.nan, np.inf, -np.inf):
            flat[rng.integers(0, flat.size, flat.size // 200)] = value
    yield "plateaus and non-finite", h, p


@pytest.fixture(scope="module")
def scenes():
    """Every size's scenes, rendered once for all parameter sets, as float32 C arrays."""
    rng = np.random.default_rng(11)
    return {size: [(what, np.ascontiguousarray(h, np.float32), np.ascontiguousarray(p, np.float32))
                   for what, h, p in _scenes(rng, *size)] for size in SIZES}


# The sets that score the most pairs in full (1-3 s each) run in the slow tier; the fast tier
# keeps every other branch: the default, each NMS radius, few and fewer inner samples, no fail
# allowed, truncation, the optimal assignment.
SLOW = {"tiny-threshold", "no-fraction", "peak-weights", "many-samples"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in PARAMS])
def test_fast_paths_match_the_plain_loops_bit_for_bit(plain, scenes, name):
    params = PARAMS[name]
    for (height, width), maps in scenes.items():
        fast, slow = Core(_paf, params, height, width), Core(plain, params, height, width)
        for what, h, p in maps:
            assert fast.run(h, p) == slow.run(h, p), (name, height, width, what)


@pytest.mark.slow
def test_the_comparison_catches_a_fast_path_that_rejects_too_much(plain, scenes):
    """An off-support test that is not conservative (cells count as off up to twice the
    threshold) must make the builds differ on these scenes: the comparison has teeth, and the
    scenes do take the fast path."""
    mutant = build_core("_paf_mutant", ["-DOFF_MARGIN=4.0f"])
    params = PARAMS["default"]
    broken, slow = Core(mutant, params, 46, 54), Core(plain, params, 46, 54)
    differs = [what for what, h, p in scenes[46, 54] if broken.run(h, p) != slow.run(h, p)]
    assert differs, "a non-conservative off-support map went unnoticed"
