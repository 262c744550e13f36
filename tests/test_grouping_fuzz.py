"""Random maps, params and skeletons: the core never crashes and its output is always sane."""
import itertools
import os
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openpose_plus.edge import GroupParams, Grouper, Skeleton
from openpose_plus.edge._paf import ffi, lib
from openpose_plus.edge.synthetic.figures import random_scene
from openpose_plus.edge.targets import render_targets

# 150 examples a test in make test; make fuzz raises it (OPP_FUZZ_EXAMPLES) for a long run.
FUZZ = settings(max_examples=int(os.environ.get("OPP_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SPECIALS = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45, -1.0], np.float32)


@st.composite
def skeletons(draw):
    k = draw(st.integers(1, 6))
    pairs = [(a, b) for a in range(k) for b in range(k) if a != b]
    limbs = draw(st.lists(st.sampled_from(pairs), max_size=8)) if pairs else []
    channels = draw(st.permutations(range(2 * len(limbs))))
    return Skeleton("fuzz", tuple("p%d" % i for i in range(k)), tuple(limbs),
                    tuple(zip(channels[::2], channels[1::2])))


params = st.builds(
    GroupParams,
    peak_threshold=st.floats(0, 2), nms_radius=st.integers(0, 3), max_peaks=st.integers(1, 12),
    paf_samples=st.integers(2, 12), paf_sample_threshold=st.floats(-1, 1),
    min_sample_fraction=st.floats(0, 1), max_limb_length=st.floats(0, 50),
    assignment=st.sampled_from(["greedy", "optimal"]), min_parts=st.integers(1, 4),
    min_person_score=st.floats(-1, 1), max_people=st.integers(1, 8),
    person_score=st.sampled_from(["evidence", "mean"]), peak_weight=st.floats(0, 1),
    merge_radius=st.sampled_from([0.0, 1.0, 3.0, 10.0, 1e30]))


@st.composite
def maps(draw, skeleton):
    """Heatmaps and PAFs of a random kind, sprinkled with NaN, Inf, huge and negative values."""
    h, w = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    kind = draw(st.sampled_from(["scene", "noise", "huge", "constant", "spikes"]))
    shape_h, shape_p = (skeleton.num_parts + 1, h, w), (skeleton.num_pafs, h, w)
    if kind == "scene":
        people = random_scene(rng, int(rng.integers(1, 6)), w, h, skeleton=skeleton)
        heat, paf = render_targets(people, skeleton, h, w, 1.0, 1.0)
    elif kind == "constant":
        heat, paf = np.full(shape_h, rng.uniform(-1, 2)), np.full(shape_p, rng.uniform(-1, 1))
    elif kind == "spikes":
        heat, paf = (rng.random(shape_h) < 0.05) * rng.uniform(0, 1, shape_h), rng.uniform(-1, 1, shape_p)
    else:
        scale = 1e30 if kind == "huge" else 1.0
        heat, paf = rng.normal(0, scale, shape_h), rng.normal(0, scale, shape_p)
    heat, paf = heat.astype(np.float32), paf.astype(np.float32)
    fraction = draw(st.sampled_from([0.0, 0.01, 0.3]))
    for a in (heat, paf):
        hit = rng.random(a.shape) < fraction
        a[hit] = rng.choice(SPECIALS, hit.sum())
    if draw(st.booleans()):
        # No background channel, in a buffer of its own: the last part's last row then
        # ends the allocation, where the sanitizer build notices any read past it.
        heat = heat[:-1].copy()
    return heat, paf


@FUZZ
@given(data=st.data())
def test_random_maps_give_sane_people(data):
    skeleton = data.draw(skeletons())
    p = data.draw(params)
    heat, paf = data.draw(maps(skeleton))
    h, w = heat.shape[1:]
    grouper = Grouper(skeleton, h, w, p)
    peaks = grouper.find_peaks(heat)
    poses = grouper.group(heat, paf)

    assert len(poses) <= p.max_people
    assert all(len(part) <= p.max_peaks for part in peaks)
    assert np.isfinite(poses.keypoints).all() and np.isfinite(poses.scores).all()
    assert np.all(np.diff(poses.scores) <= 0)
    assert np.all(poses.scores >= np.float32(p.min_person_score))
    present = poses.keypoints[:, :, 2] > 0
    assert np.all(present.sum(axis=1) >= p.min_parts)
    assert np.all(poses.keypoints[~present] == 0), "a missing part is (0, 0, 0)"
    x, y = poses.keypoints[..., 0][present], poses.keypoints[..., 1][present]
    assert np.all((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1))
    # Every part is one of the peaks, and no peak is used twice.
    for k in range(skeleton.num_parts):
        available = Counter(map(tuple, peaks[k].tolist()))
        used = Counter(map(tuple, poses.keypoints[present[:, k], k].tolist()))
        assert not used - available, "part %d: a person has a peak that was not found, or shares one" % k


def best_matching(matrix):
    """Brute force: the largest total of positive entries, each row and column once."""
    rows, cols = matrix.shape
    best = 0.0
    for perm in itertools.permutations(range(max(rows, cols)), rows):
        best = max(best, sum(matrix[i, j] for i, j in enumerate(perm) if j < cols and matrix[i, j] > 0))
    return best


@FUZZ
@given(rows=st.integers(0, 6), cols=st.integers(0, 6), seed=st.integers(0, 2 ** 32 - 1),
       density=st.floats(0, 1))
def test_assignment_is_a_matching_and_optimal_is_best(rows, cols, seed, density):
    rng = np.random.default_rng(seed)
    m = 8
    matrix = np.where(rng.random((rows, cols)) < density, rng.choice([0.1, 0.5, 0.9], (rows, cols))
                      + rng.random((rows, cols)) * 0.01, 0.0).astype(np.float32)
    p = ffi.new("opp_params *")
    lib.opp_default_params(p)
    p.max_peaks = m
    scores = ffi.new("float[]", m * m)
    for i in range(rows):
        for j in range(cols):
            scores[i * m + j] = float(matrix[i, j])
    size = ffi.new("size_t *")
    sk = ffi.new("opp_skeleton *", {"num_parts": 1, "num_limbs": 0})
    assert lib.opp_workspace_size(sk, p, 1, 1, size) == 0
    ws = ffi.new("char[]", size[0])
    totals = {}
    for method in (lib.OPP_ASSIGN_GREEDY, lib.OPP_ASSIGN_OPTIMAL):
        p.assignment = method
        out = ffi.new("opp_connection[]", m)
        n = ffi.new("int *")
        assert lib.opp_assign_limb(p, scores, rows, cols, out, n, ws, size[0]) == 0
        pairs = [(out[i].a, out[i].b, out[i].score) for i in range(n[0])]
        assert len({a for a, _, _ in pairs}) == len(pairs) == len({b for _, b, _ in pairs}), "one-to-one"
        for a, b, s in pairs:
            assert 0 <= a < rows and 0 <= b < cols and s == matrix[a, b] > 0
        totals[method] = sum(float(s) for _, _, s in pairs)
    assert totals[lib.OPP_ASSIGN_OPTIMAL] >= totals[lib.OPP_ASSIGN_GREEDY] - 1e-5
    assert abs(totals[lib.OPP_ASSIGN_OPTIMAL] - best_matching(matrix.astype(np.float64))) < 1e-4


def reference_peaks(plane, params):
    """Step 1 by its definition, cell by cell: a finite value above the threshold that is the
    maximum of its window (earlier cells in row-major order win ties; non-finite cells do not
    suppress), refined by the log-parabola; strongest first, ties in row-major order."""
    h, w = plane.shape
    r, found = params.nms_radius, []
    for y in range(h):
        for x in range(w):
            v = plane[y, x]
            if not (np.isfinite(v) and v > np.float32(params.peak_threshold)):
                continue
            beaten = False
            for yy in range(max(0, y - r), min(h, y + r + 1)):
                for xx in range(max(0, x - r), min(w, x + r + 1)):
                    n = plane[yy, xx]
                    earlier = (yy, xx) < (y, x)
                    if (yy, xx) != (y, x) and np.isfinite(n) and (n >= v if earlier else n > v):
                        beaten = True
            if beaten:
                continue

            def offset(lo, mid, hi):
                if lo > 0 and mid > 0 and hi > 0:
                    lo, mid, hi = (float(np.log(np.float32(z))) for z in (lo, mid, hi))
                den = float(lo) - 2.0 * float(mid) + float(hi)
                return 0.0 if not den < 0 else min(0.5, max(-0.5, 0.5 * (float(lo) - float(hi)) / den))

            px, py = float(x), float(y)
            if 0 < x < w - 1 and np.isfinite(plane[y, x - 1]) and np.isfinite(plane[y, x + 1]):
                px += offset(plane[y, x - 1], v, plane[y, x + 1])
            if 0 < y < h - 1 and np.isfinite(plane[y - 1, x]) and np.isfinite(plane[y + 1, x]):
                py += offset(plane[y - 1, x], v, plane[y + 1, x])
            found.append((px, py, float(v)))
    found.sort(key=lambda p: -p[2])  # stable: equal scores stay in row-major order
    return found[:params.max_peaks]


@FUZZ
@given(h=st.integers(1, 40), w=st.integers(1, 70), seed=st.integers(0, 2 ** 32 - 1),
       kind=st.sampled_from(["blobs", "noise", "plateaus"]), fraction=st.sampled_from([0.0, 0.02, 0.2]),
       threshold=st.sampled_from([0.0, 0.15, 0.5]), radius=st.integers(0, 3), max_peaks=st.sampled_from([3, 64]))
def test_find_peaks_matches_its_definition(h, w, seed, kind, fraction, threshold, radius, max_peaks):
    """The pre-filters of step 1 (blocks across row ends, the nearest-neighbour tests) never
    change its result, also next to NaN and +-Inf, on plateaus and in maps narrower than a block."""
    rng = np.random.default_rng(seed)
    if kind == "blobs":
        yy, xx = np.mgrid[0:h, 0:w]
        plane = np.zeros((h, w))
        for _ in range(int(rng.integers(1, 8))):
            cy, cx, s = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.5, 2.0)
            plane += rng.uniform(0.1, 1.2) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    elif kind == "plateaus":
        plane = rng.integers(0, 4, (h, w)) * 0.25
    else:
        plane = rng.normal(0.1, 0.3, (h, w))
    plane = plane.astype(np.float32)
    hit = rng.random(plane.shape) < fraction
    plane[hit] = rng.choice(SPECIALS, hit.sum())
    skeleton = Skeleton("one", ("p",), (), ())
    params = GroupParams(peak_threshold=threshold, nms_radius=radius, max_peaks=max_peaks)
    got = Grouper(skeleton, h, w, params).find_peaks(plane[None].copy())[0]
    want = reference_peaks(plane, params)
    assert len(got) == len(want)
    np.testing.assert_array_equal(got[:, 2], np.float32([p[2] for p in want]))
    np.testing.assert_allclose(got[:, :2], np.float32([p[:2] for p in want]).reshape(-1, 2), atol=1e-4)


def _random_peaks(rng, k, m, height, width, bad):
    """Per part up to m peaks inside the map (x, y, score); with ``bad``, maybe a few outside
    it, NaN, or a count out of range."""
    peaks = ffi.new("opp_peak[]", k * m)
    counts = ffi.new("int[]", k)
    for part in range(k):
        counts[part] = int(rng.integers(0, m + 1))
        for i in range(counts[part]):
            peaks[part * m + i] = {"x": float(rng.uniform(0, width - 1)), "y": float(rng.uniform(0, height - 1)),
                                   "score": float(rng.uniform(0, 1))}
    if bad and k:
        part = int(rng.integers(0, k))
        what = rng.integers(0, 3)
        if what == 0:
            counts[part] = int(rng.choice([-1, m + 1]))
        elif counts[part]:
            peaks[part * m] = {"x": float(rng.choice([np.nan, -0.01, width - 1 + 0.01, np.inf])), "y": 0.0,
                               "score": 1.0}
    return peaks, counts


@FUZZ
@given(data=st.data())
def test_score_limb_takes_any_peaks_and_writes_only_its_block(data):
    """opp_score_limb with peaks a caller made up (some invalid), on maps full of NaN, Inf
    and huge values: an error code for bad arguments, else finite, non-negative scores
    in the counts[A] x counts[B] block of the matrix and nothing written outside it."""
    skeleton = data.draw(skeletons().filter(lambda s: s.num_limbs > 0))
    p = data.draw(params)
    heat, paf = data.draw(maps(skeleton))
    h, w = paf.shape[1:]
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    bad = data.draw(st.booleans())
    core = Grouper(skeleton, h, w, p)  # its C skeleton, params and workspace serve the step too
    m = p.max_peaks
    peaks, counts = _random_peaks(rng, skeleton.num_parts, m, h, w, bad)
    limb = data.draw(st.integers(-1, skeleton.num_limbs))
    matrix = np.full(m * m, -7.0, np.float32)
    rc = lib.opp_score_limb(ffi.from_buffer("float[]", paf), paf.shape[0], h, w, core._skeleton, core._params,
                            limb, peaks, counts, ffi.from_buffer("float[]", matrix), core._ws_ptr,
                            core.workspace_bytes)
    valid_counts = all(0 <= counts[i] <= m for i in range(skeleton.num_parts))
    inside = valid_counts and all(
        0 <= peaks[k * m + i].x <= w - 1 and 0 <= peaks[k * m + i].y <= h - 1
        for k in range(skeleton.num_parts) for i in range(counts[k]))
    if not (0 <= limb < skeleton.num_limbs and inside):
        assert rc == lib.OPP_ERR_ARGUMENT
        assert (matrix == -7.0).all()
        return
    assert rc == lib.OPP_OK
    a, b = skeleton.limbs[limb]
    block = matrix.reshape(m, m)[:counts[a], :counts[b]]
    assert np.isfinite(block).all() and (block >= 0).all()
    outside = matrix.reshape(m, m).copy()
    outside[:counts[a], :counts[b]] = -7.0
    assert (outside == -7.0).all()


@FUZZ
@given(data=st.data())
def test_assemble_takes_any_connections_and_returns_real_peaks(data):
    """opp_assemble with connections a caller made up: repeated peaks, conflicting limbs,
    peaks with NaN or infinite scores. An error code for indices out of range; otherwise
    at most max_people people, each part one of that part's peaks, no peak in two people."""
    skeleton = data.draw(skeletons())
    p = data.draw(params)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    h, w = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    core = Grouper(skeleton, h, w, p)
    k, m, nl = skeleton.num_parts, p.max_peaks, skeleton.num_limbs
    peaks, counts = _random_peaks(rng, k, m, h, w, bad=False)
    for part in range(k):
        for i in range(counts[part]):
            if rng.random() < 0.05:
                peaks[part * m + i].score = float(rng.choice([np.nan, np.inf, -np.inf, 3e38]))
    conns = ffi.new("opp_connection[]", max(1, nl) * m)
    conn_counts = ffi.new("int[]", max(1, nl))
    bad = data.draw(st.booleans())
    for l, (a, b) in enumerate(skeleton.limbs):
        if counts[a] and counts[b]:
            conn_counts[l] = int(rng.integers(0, m + 1))
        for i in range(conn_counts[l]):
            conns[l * m + i] = {"a": int(rng.integers(0, counts[a])), "b": int(rng.integers(0, counts[b])),
                                "score": float(rng.uniform(-1, 2))}
    if bad and nl:
        l = int(rng.integers(0, nl))
        conn_counts[l] = max(conn_counts[l], 1)
        conns[l * m] = {"a": int(rng.choice([-1, m])), "b": 0, "score": 0.5}
    kp = np.full((p.max_people, k, 3), -7.0, np.float32)
    scores = np.full(p.max_people, -7.0, np.float32)
    n = ffi.new("int *")
    rc = lib.opp_assemble(core._skeleton, core._params, peaks, counts, conns, conn_counts, core._ws_ptr,
                          core.workspace_bytes, ffi.from_buffer("float[]", kp), ffi.from_buffer("float[]", scores), n)
    if bad and nl:
        assert rc == lib.OPP_ERR_ARGUMENT
        return
    assert rc in (lib.OPP_OK, lib.OPP_WARN_PEOPLE_TRUNCATED)
    assert 0 <= n[0] <= p.max_people
    assert not np.isnan(scores[:n[0]]).any(), "a NaN peak score must not make a NaN person"
    used = set()
    for person in kp[:n[0]]:
        parts = np.flatnonzero(person[:, 2] != 0)
        assert len(parts) >= min(p.min_parts, 1)
        for part in parts:
            # Peaks may share a position (a 1-pixel map): any unused one of them will do.
            matches = [i for i in range(counts[part]) if (peaks[part * m + i].x, peaks[part * m + i].y)
                       == (person[part, 0], person[part, 1])]
            assert matches, "part %d of a person is not one of its peaks" % part
            free = [i for i in matches if (part, i) not in used]
            assert free, "a peak in two people"
            used.add((part, free[0]))
    assert (kp[n[0]:] == -7.0).all() and (scores[n[0]:] == -7.0).all()
