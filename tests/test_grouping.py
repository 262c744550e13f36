"""Grouping round trips: render known people into maps, group them, get the same people back."""
import os
import sys

import numpy as np
import pytest

from openpose_plus.edge import COCO18, GroupParams, Grouper, Poses, Skeleton, group
from openpose_plus.edge import grouping
from openpose_plus.edge._paf import ffi, lib
from openpose_plus.edge.geometry import Letterbox
from openpose_plus.edge.synthetic.figures import clip_to_frame, random_pose, random_scene
from openpose_plus.edge.targets import render_targets

SIGMA, LIMB_WIDTH = 1.0, 1.0  # map pixels
ASSIGNMENTS = ("greedy", "optimal")


def render(people, skeleton, height, width):
    return render_targets(people, skeleton, height, width, SIGMA, LIMB_WIDTH)


def expected_people(people, skeleton, min_parts=GroupParams().min_parts):
    """The people grouping can find: each figure split into the connected pieces of its
    visible parts (a truncated figure may fall apart), pieces of >= min_parts parts."""
    pieces = []
    for person in people:
        visible = person[:, 2] > 0
        label = -np.ones(skeleton.num_parts, int)
        for start in np.flatnonzero(visible):
            if label[start] >= 0:
                continue
            label[start], stack = start, [start]
            while stack:
                p = stack.pop()
                for a, b in skeleton.limbs:
                    for u, v in ((a, b), (b, a)):
                        if u == p and visible[v] and label[v] < 0:
                            label[v] = start
                            stack.append(v)
        for root in np.unique(label[label >= 0]):
            keep = label == root
            if keep.sum() >= min_parts:
                piece = np.zeros_like(person)
                piece[keep, :2] = person[keep, :2]
                piece[keep, 2] = 1.0
                pieces.append(piece)
    return pieces


def match(expected, predicted):
    """Greedy pairing by mean distance over the parts both have: [(e, p)]."""
    costs = []
    for e, person in enumerate(expected):
        for p, guess in enumerate(predicted):
            both = (person[:, 2] > 0) & (guess[:, 2] > 0)
            if both.any():
                d = np.hypot(*(person[both, :2] - guess[both, :2]).T).mean()
                costs.append((d, e, p))
    pairs, used_e, used_p = [], set(), set()
    for _, e, p in sorted(costs):
        if e not in used_e and p not in used_p:
            pairs.append((e, p))
            used_e.add(e)
            used_p.add(p)
    return pairs


def assert_same_people(expected, poses, tol=0.5):
    assert len(poses) == len(expected), "found %d people, expected %d" % (len(poses), len(expected))
    pairs = match(expected, poses.keypoints)
    assert len(pairs) == len(expected)
    for e, p in pairs:
        truth, guess = expected[e], poses.keypoints[p]
        np.testing.assert_array_equal(guess[:, 2] > 0, truth[:, 2] > 0, "person %d has other parts" % e)
        seen = truth[:, 2] > 0
        err = np.hypot(*(truth[seen, :2] - guess[seen, :2]).T)
        assert err.max() <= tol, "person %d: keypoint off by %.3f map px" % (e, err.max())


def blur(a):
    """Separable 3-tap box blur over the last two axes (no scipy)."""
    for axis in (-1, -2):
        a = (np.roll(a, 1, axis) + a + np.roll(a, -1, axis)) / 3.0
    return a


# -- round trips ---------------------------------------------------------------

# Map size per people count: people in random_scene fill a grid cell, so crowds get
# bigger maps to keep same parts of neighbours resolvable (> ~3 sigma apart).
SIZES = {1: (46, 54), 5: (46, 54), 10: (92, 108), 20: (128, 160)}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("num_people", sorted(SIZES))
@pytest.mark.parametrize("seed", range(3))
def test_people_come_back(num_people, assignment, seed):
    height, width = SIZES[num_people]
    rng = np.random.default_rng(1000 * num_people + seed)
    people = random_scene(rng, num_people, width, height)
    poses = group(*render(people, COCO18, height, width), params=GroupParams(assignment=assignment))
    assert_same_people(expected_people(people, COCO18), poses)
    assert not poses.truncated
    assert np.all(np.diff(poses.scores) <= 0), "people come best first"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("seed", range(4))
def test_overlapping_people(assignment, seed):
    # Two figures whose boxes overlap by about half, limbs crossing; same parts stay
    # further apart than the Gaussians' reach, which keeps them separable at all.
    rng = np.random.default_rng(seed)
    height, width = 60, 80
    while True:
        people = np.stack([random_pose(rng, 32.0, 30.0, 40.0), random_pose(rng, 46.0, 30.0, 40.0)])
        gap = np.hypot(*(people[0, :, :2] - people[1, :, :2]).T)
        if gap.min() > 4 * SIGMA:
            break
    people = clip_to_frame(people, width, height)
    poses = group(*render(people, COCO18, height, width), params=GroupParams(assignment=assignment))
    assert_same_people(expected_people(people, COCO18), poses)


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_people_cut_by_the_border(side):
    height, width = 46, 54
    rng = np.random.default_rng(len(side))
    cx, cy = {"left": (2.0, 23.0), "right": (51.0, 23.0), "top": (27.0, 4.0), "bottom": (27.0, 42.0)}[side]
    people = np.stack([random_pose(rng, cx, cy, 36.0), random_pose(rng, 27.0, 23.0, 30.0)])
    people = clip_to_frame(people, width, height)
    assert (people[0, :, 2] == 0).any(), "the first figure should be cut"
    poses = group(*render(people, COCO18, height, width))
    assert_same_people(expected_people(people, COCO18), poses)


def test_a_lone_part_is_dropped_unless_min_parts_is_1():
    people = np.zeros((1, COCO18.num_parts, 3), np.float32)
    people[0, COCO18.index("nose")] = (20.3, 11.6, 2.0)
    maps = render(people, COCO18, 46, 54)
    assert len(group(*maps)) == 0
    poses = group(*maps, params=GroupParams(min_parts=1, min_person_score=0.0))
    assert_same_people(expected_people(people, COCO18, min_parts=1), poses)


def test_fragments_follow_min_parts():
    # A two-part fragment (a forearm) next to a whole person.
    rng = np.random.default_rng(5)
    people = np.stack([random_pose(rng, 20.0, 23.0, 36.0), np.zeros((18, 3), np.float32)])
    people[1, 6] = (44.0, 10.0, 2.0)
    people[1, 7] = (46.5, 15.0, 2.0)
    maps = render(people, COCO18, 46, 54)
    assert_same_people(expected_people(people, COCO18, 3), group(*maps))
    assert_same_people(expected_people(people, COCO18, 2), group(*maps, params=GroupParams(min_parts=2)))


def custom_skeleton():
    """A 7-part COCO-style category, with its PAF channels in a shuffled order."""
    category = {"name": "quadruped", "keypoints": ["head", "neck", "tail", "left_front", "right_front",
                                                   "left_back", "right_back"],
                "skeleton": [[1, 2], [2, 3], [2, 4], [2, 5], [3, 6], [3, 7]]}
    base = Skeleton.from_coco_category(category)
    channels = np.random.default_rng(0).permutation(base.num_pafs).reshape(-1, 2)
    return Skeleton(base.name, base.parts, base.limbs, tuple(map(tuple, channels)), base.flip_pairs)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("seed", range(3))
def test_custom_skeleton_with_its_own_paf_order(assignment, seed):
    skeleton = custom_skeleton()
    assert skeleton.paf_channels != tuple((2 * i, 2 * i + 1) for i in range(skeleton.num_limbs))
    rng = np.random.default_rng(seed)
    people = random_scene(rng, 4, 80, 60, skeleton=skeleton)
    poses = group(*render(people, skeleton, 60, 80), skeleton=skeleton,
                  params=GroupParams(assignment=assignment))
    assert poses.skeleton is skeleton
    assert_same_people(expected_people(people, skeleton), poses)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("seed", range(3))
def test_smooth_noise(assignment, seed):
    # Gaussian noise of sigma 0.05 on every channel, blurred into blobs like a network's.
    rng = np.random.default_rng(seed)
    people = random_scene(rng, 5, 54, 46)
    heat, paf = render(people, COCO18, 46, 54)
    heat = (heat + blur(rng.normal(0, 0.05, heat.shape))).astype(np.float32)
    paf = (paf + blur(rng.normal(0, 0.05, paf.shape))).astype(np.float32)
    poses = group(heat, paf, params=GroupParams(assignment=assignment))
    assert_same_people(expected_people(people, COCO18), poses)


def test_heatmaps_without_background_channel():
    rng = np.random.default_rng(3)
    people = random_scene(rng, 3, 54, 46)
    heat, paf = render(people, COCO18, 46, 54)
    poses = group(heat[:-1].copy(), paf)  # a buffer that ends with the last part
    assert_same_people(expected_people(people, COCO18), poses)


def test_skeleton_without_limbs_groups_lone_parts():
    dots = Skeleton("dots", ("a", "b"), ())
    heat = np.zeros((3, 8, 8), np.float32)
    heat[0, 3, 3] = 0.9
    poses = group(heat, np.zeros((0, 8, 8), np.float32), skeleton=dots, params=GroupParams(min_parts=1))
    np.testing.assert_array_equal(poses.keypoints, np.float32([[[3, 3, 0.9], [0, 0, 0]]]))


# -- peaks -----------------------------------------------------------------------

def test_subpixel_peaks_are_exact_for_gaussians():
    rng = np.random.default_rng(0)
    truth = np.zeros((6, 1, 3), np.float32)
    truth[:, 0, :2] = rng.uniform(3, 20, (6, 2))
    truth[:, 0, 2] = 2.0
    one_part = Skeleton("dot", ("dot",), ())
    grouper = Grouper(one_part, 24, 24, GroupParams(min_parts=1))
    for person in truth:
        heat, paf = render(person[None], one_part, 24, 24)
        (peaks,) = grouper.find_peaks(heat)
        assert peaks.shape == (1, 3)
        np.testing.assert_allclose(peaks[0, :2], person[0, :2], atol=1e-3)
        assert peaks[0, 2] == heat[0].max()


def test_find_peaks_lists_strongest_first():
    heat = np.zeros((19, 20, 20), np.float32)
    heat[3, 5, 5], heat[3, 10, 12], heat[3, 15, 3] = 0.5, 0.9, 0.7
    peaks = Grouper(COCO18, 20, 20).find_peaks(heat)
    assert [len(p) for p in peaks] == [0, 0, 0, 3] + [0] * 14
    np.testing.assert_array_equal(peaks[3], np.float32([[12, 10, 0.9], [3, 15, 0.7], [5, 5, 0.5]]))


def test_plateau_gives_one_peak():
    heat = np.zeros((19, 10, 10), np.float32)
    heat[0, 4:6, 3:7] = 0.8
    assert len(Grouper(COCO18, 10, 10).find_peaks(heat)[0]) == 1


# -- the Python API --------------------------------------------------------------

def test_grouper_hands_the_c_code_the_arrays_own_memory(monkeypatch):
    rng = np.random.default_rng(1)
    heat, paf = render(random_scene(rng, 2, 54, 46), COCO18, 46, 54)
    heat.flags.writeable = False  # read-only output buffers are fine too
    grouper = Grouper(COCO18, 46, 54)
    seen = []
    real = grouper._group

    def spy(heat_ptr, heat_channels, paf_ptr, paf_channels):
        seen.append((int(ffi.cast("uintptr_t", heat_ptr)), int(ffi.cast("uintptr_t", paf_ptr))))
        return real(heat_ptr, heat_channels, paf_ptr, paf_channels)

    monkeypatch.setattr(grouper, "_group", spy)
    poses = grouper.group(heat, paf)
    assert seen == [(heat.ctypes.data, paf.ctypes.data)]
    assert len(poses) == 2


def test_group_ptr_reads_raw_buffers():
    rng = np.random.default_rng(2)
    heat, paf = render(random_scene(rng, 3, 54, 46), COCO18, 46, 54)
    grouper = Grouper(COCO18, 46, 54)
    by_ptr = grouper.group_ptr(heat.ctypes.data, paf.ctypes.data, heat.shape[0], paf.shape[0], 46, 54)
    by_array = grouper.group(heat, paf)
    np.testing.assert_array_equal(by_ptr.keypoints, by_array.keypoints)
    np.testing.assert_array_equal(by_ptr.scores, by_array.scores)


def test_grouper_reuses_its_buffers_and_returns_fresh_results():
    rng = np.random.default_rng(4)
    grouper = Grouper(COCO18, 46, 54)
    workspace = grouper._workspace.ctypes.data
    first = grouper.group(*render(random_scene(rng, 2, 54, 46), COCO18, 46, 54))
    kept = first.keypoints.copy()
    second = grouper.group(*render(random_scene(rng, 4, 54, 46), COCO18, 46, 54))
    assert grouper._workspace.ctypes.data == workspace
    assert (len(first), len(second)) == (2, 4)
    np.testing.assert_array_equal(first.keypoints, kept)
    assert grouper.workspace_bytes > 0


def test_poses_shapes_and_missing_parts():
    people = np.zeros((1, 18, 3), np.float32)
    rng = np.random.default_rng(8)
    people[0] = random_pose(rng, 27.0, 23.0, 36.0)
    people[0, [4, 7], 2] = 0  # no wrists
    poses = group(*render(people, COCO18, 46, 54))
    assert poses.keypoints.shape == (1, 18, 3) and poses.keypoints.dtype == np.float32
    assert poses.scores.shape == (1,) and poses.scores.dtype == np.float32
    assert np.all(poses.keypoints[0, [4, 7]] == 0)
    assert 0 < poses.scores[0] <= 1.5


def test_to_image_maps_through_the_letterbox_and_keeps_missing_parts_at_zero():
    kp = np.array([[[10.0, 5.0, 0.9], [0.0, 0.0, 0.0]]], np.float32)
    skeleton = Skeleton("pair", ("a", "b"), ((0, 1),))
    poses = Poses(kp, np.array([0.8], np.float32), skeleton, peaks_truncated=True)
    box = Letterbox.fit(640, 480, 432, 368)
    image = poses.to_image(box, stride=8)
    np.testing.assert_allclose(image.keypoints[0, 0], box.map_to_image(kp[0, 0], 8), rtol=1e-6)
    np.testing.assert_array_equal(image.keypoints[0, 1], [0, 0, 0])
    assert image.peaks_truncated and image.truncated and image.skeleton is skeleton
    np.testing.assert_array_equal(image.scores, poses.scores)


def test_poses_checks_shapes():
    with pytest.raises(ValueError, match="keypoints"):
        Poses(np.zeros((1, 17, 3)), np.zeros(1), COCO18)
    with pytest.raises(ValueError, match="scores"):
        Poses(np.zeros((2, 18, 3)), np.zeros(1), COCO18)
    assert len(Poses(np.zeros((0, 18, 3)), np.zeros(0), COCO18)) == 0


def test_public_names():
    import openpose_plus.edge as edge
    for name in ("group", "GroupParams", "Grouper", "Poses", "COCO18", "Skeleton"):
        assert name in edge.__all__ and getattr(edge, name) is not None
    assert edge.Grouper is Grouper and edge.group is group


def test_python_defaults_match_the_c_defaults():
    c = ffi.new("opp_params *")
    lib.opp_default_params(c)
    py = GroupParams()
    for name in ("nms_radius", "max_peaks", "paf_samples", "min_parts", "max_people"):
        assert getattr(c, name) == getattr(py, name), name
    for name in ("peak_threshold", "paf_sample_threshold", "min_sample_fraction", "max_limb_length",
                 "min_person_score"):
        assert getattr(c, name) == pytest.approx(getattr(py, name)), name
    assert c.assignment == grouping._ASSIGNMENTS[py.assignment]


def test_version():
    assert lib.opp_version() == lib.OPP_VERSION
    assert lib.OPP_VERSION == lib.OPP_VERSION_MAJOR * 10000 + lib.OPP_VERSION_MINOR * 100 + lib.OPP_VERSION_PATCH
    assert grouping.native_version() == "%d.%d.%d" % (lib.OPP_VERSION_MAJOR, lib.OPP_VERSION_MINOR,
                                                      lib.OPP_VERSION_PATCH)


def test_runs_against_the_requested_core():
    path = os.environ.get("OPP_PAF_MODULE")
    if not path:
        pytest.skip("OPP_PAF_MODULE not set: the installed extension is under test")
    assert sys.modules["openpose_plus.edge._paf"].__file__ == path


def test_array_subclasses_take_the_checked_path_and_group_the_same(tmp_path):
    """``group`` checks plain float32 arrays in one expression; anything else (here a
    memmap of saved maps) goes through the full checks, and must give the same people."""
    rng = np.random.default_rng(12)
    heat, paf = render(random_scene(rng, 3, 54, 46), COCO18, 46, 54)
    grouper = Grouper(COCO18, 46, 54)
    saved = np.memmap(tmp_path / "heat.f32", np.float32, "w+", shape=heat.shape)
    saved[:] = heat
    assert type(saved) is not np.ndarray
    plain, mapped = grouper.group(heat, paf), grouper.group(saved, paf)
    assert len(plain) == 3
    np.testing.assert_array_equal(mapped.keypoints, plain.keypoints)
    np.testing.assert_array_equal(mapped.scores, plain.scores)
    assert plain.keypoints.dtype == np.float32 and plain.scores.dtype == np.float32


def test_maps_over_2_24_cells_group_like_small_ones():
    """Above 2^24 cells the C core indexes the map in integers (below it, in float,
    which is faster and exact there): a wide 1030x16384 map must give the same people
    as the 12-row strip they were drawn in. 48 limbs in a few rows make the core take
    its off-support lookups, the path that differs."""
    pair = Skeleton("pair", ("a", "b"), ((0, 1),))
    width, strip_h, big_h, row = 16384, 12, 1030, 500
    assert big_h * width > 2 ** 24 > strip_h * width
    people = np.zeros((48, 2, 3), np.float32)
    people[:, :, 0] = (100 + 300 * np.arange(48))[:, None] + np.float32([0.0, 1.5])
    people[:, :, 1] = [4.2, 6.7]
    people[:, :, 2] = 2
    heat, paf = render(people, pair, strip_h, width)
    params = GroupParams(min_parts=2, max_limb_length=10.0, max_peaks=64, max_people=64)
    small = Grouper(pair, strip_h, width, params).group(heat, paf)
    big_heat = np.zeros((heat.shape[0], big_h, width), np.float32)
    big_paf = np.zeros((paf.shape[0], big_h, width), np.float32)
    big_heat[:, row:row + strip_h], big_paf[:, row:row + strip_h] = heat, paf
    big = Grouper(pair, big_h, width, params).group(big_heat, big_paf)
    assert len(small) == len(big) == 48
    order_s, order_b = np.argsort(small.keypoints[:, 0, 0]), np.argsort(big.keypoints[:, 0, 0])
    shifted = big.keypoints[order_b].copy()
    shifted[:, :, 1] -= row
    np.testing.assert_allclose(shifted, small.keypoints[order_s], atol=1e-3)
    np.testing.assert_allclose(small.keypoints[order_s, :, :2], people[:, :, :2], atol=0.05)
    np.testing.assert_allclose(big.scores[order_b], small.scores[order_s], atol=1e-4)
