"""Who counts as a person, and in which order: the evidence score, fragments merged, the
limb between confident peaks taken first (the rules that made the grouping hold on a real
network's maps; the README has the measurements)."""
import numpy as np
import pytest

from openpose_plus.edge import COCO18, GroupParams, Grouper, Skeleton, group
from openpose_plus.edge._paf import ffi, lib
from openpose_plus.edge.synthetic.figures import random_pose
from openpose_plus.edge.targets import render_targets

K, L = COCO18.num_parts, COCO18.num_limbs


def render(people, height=46, width=54):
    return render_targets(np.asarray(people, np.float32), COCO18, height, width, 1.0, 1.0)


# -- the person score -------------------------------------------------------------------------

def faint_person_and_confident_fragment():
    """A whole person drawn at half strength (a real network's faint person) beside a
    four-part arm-and-neck fragment at full strength."""
    rng = np.random.default_rng(3)
    whole = random_pose(rng, 16.0, 23.0, 34.0)[None]
    fragment = np.zeros((1, K, 3), np.float32)
    for part, xy in (("neck", (42, 12)), ("left_shoulder", (46, 13)), ("left_elbow", (47, 19)),
                     ("left_wrist", (47, 25))):
        fragment[0, COCO18.index(part)] = (*xy, 2.0)
    hw, pw = render(whole)
    hf, pf = render(fragment)
    return whole[0], np.float32(0.5) * hw + hf, np.float32(0.6) * pw + pf


def test_a_whole_faint_person_outranks_a_confident_fragment():
    whole, heat, paf = faint_person_and_confident_fragment()
    poses = group(heat, paf)
    assert len(poses) == 2
    assert (poses.keypoints[0, :, 2] > 0).sum() == (whole[:, 2] > 0).sum(), "the whole person comes first"
    assert (poses.keypoints[1, :, 2] > 0).sum() == 4
    # Its score is its evidence: peak and limb scores summed over the most a person holds.
    assert 0.3 < poses.scores[0] < 0.8 and poses.scores[1] < 0.3
    # The mean, the score before, puts the fragment first.
    mean = group(heat, paf, params=GroupParams(person_score="mean"))
    assert (mean.keypoints[0, :, 2] > 0).sum() == 4 and mean.scores[0] > mean.scores[1]


# -- fragments merged --------------------------------------------------------------------------

class Assembly:
    """opp_assemble on made-up peaks and connections."""

    def __init__(self, skeleton=COCO18, **params):
        self.sk = skeleton
        self.g = Grouper(skeleton, 46, 54, GroupParams(min_parts=1, min_person_score=0.0, **params))
        self.m = self.g.params.max_peaks
        self.peaks = ffi.new("opp_peak[]", skeleton.num_parts * self.m)
        self.counts = ffi.new("int[]", skeleton.num_parts)
        self.conns = ffi.new("opp_connection[]", max(1, skeleton.num_limbs) * self.m)
        self.conn_counts = ffi.new("int[]", max(1, skeleton.num_limbs))

    def peak(self, part, x, y, score):
        """Adds a peak (strongest first, as step 1 lists them); returns its index."""
        part = self.sk.index(part)
        i = self.counts[part]
        self.peaks[part * self.m + i] = {"x": x, "y": y, "score": score}
        self.counts[part] += 1
        return i

    def connect(self, part_a, a, part_b, b, score=0.9):
        limb = self.sk.limbs.index((self.sk.index(part_a), self.sk.index(part_b)))
        self.conns[limb * self.m + self.conn_counts[limb]] = {"a": a, "b": b, "score": score}
        self.conn_counts[limb] += 1

    def people(self):
        g = self.g
        n = ffi.new("int *")
        rc = lib.opp_assemble(g._skeleton, g._params, self.peaks, self.counts, self.conns, self.conn_counts,
                              g._ws_ptr, g._workspace.nbytes, g._kp_ptr, g._scores_ptr, n)
        assert rc == 0
        k = self.sk.num_parts
        return [{self.sk.parts[i]: tuple(g._keypoints[p, i]) for i in range(k) if g._keypoints[p, i, 2] > 0}
                for p in range(n[0])], g._scores[:n[0]].copy()


def split_person(second_neck_at, radius):
    """A neck found twice: the right shoulder and nose joined to one copy, the left shoulder
    and its arm to the other, as greedy matching does limb by limb."""
    asm = Assembly(merge_radius=radius)
    n0 = asm.peak("neck", 20.0, 10.0, 0.9)
    n1 = asm.peak("neck", *second_neck_at, 0.6)
    asm.connect("neck", n0, "right_shoulder", asm.peak("right_shoulder", 17.0, 10.5, 0.8))
    asm.connect("neck", n0, "nose", asm.peak("nose", 20.0, 7.0, 0.7))
    ls = asm.peak("left_shoulder", 24.0, 11.0, 0.8)
    asm.connect("neck", n1, "left_shoulder", ls)
    asm.connect("left_shoulder", ls, "left_elbow", asm.peak("left_elbow", 25.0, 15.0, 0.7))
    return asm.people()


def test_a_person_split_by_a_part_found_twice_is_merged():
    people, scores = split_person((22.0, 11.0), radius=3.0)
    assert len(people) == 1
    person = people[0]
    assert set(person) == {"neck", "right_shoulder", "nose", "left_shoulder", "left_elbow"}
    assert person["neck"] == (20.0, 10.0, pytest.approx(0.9)), "the stronger copy stays"
    # The weaker copy's score leaves the evidence; every connection stays in it.
    evidence = 0.9 + 0.8 + 0.7 + 0.8 + 0.7 + 4 * 0.9
    assert scores[0] == pytest.approx(evidence / (K + L), rel=1e-6)


@pytest.mark.parametrize("second_neck_at, radius", [((22.0, 11.0), 0.0), ((25.0, 10.0), 3.0)],
                         ids=["merging off", "copies too far apart"])
def test_fragments_stay_apart_unless_their_shared_parts_are_close(second_neck_at, radius):
    people, _ = split_person(second_neck_at, radius)
    assert sorted(len(p) for p in people) == [3, 3]


def test_people_sharing_a_distant_part_are_not_merged():
    # Close necks, but distant right shoulders: two people, whatever the radius.
    asm = Assembly(merge_radius=3.0)
    n0, n1 = asm.peak("neck", 20.0, 10.0, 0.9), asm.peak("neck", 22.0, 10.0, 0.8)
    asm.connect("neck", n0, "right_shoulder", asm.peak("right_shoulder", 17.0, 10.0, 0.9))
    asm.connect("neck", n1, "right_shoulder", asm.peak("right_shoulder", 28.0, 10.0, 0.8))
    people, _ = asm.people()
    assert len(people) == 2


def test_a_connection_between_fragments_merges_them():
    # Two fragments holding the neck twice, then a limb joining them (left ear to left
    # shoulder, a redundant limb, taken last): one person.
    asm = Assembly(merge_radius=3.0)
    n0, n1 = asm.peak("neck", 20.0, 10.0, 0.9), asm.peak("neck", 21.5, 10.5, 0.7)
    ls = asm.peak("left_shoulder", 24.0, 11.0, 0.8)
    nose = asm.peak("nose", 20.0, 7.0, 0.8)
    ear = asm.peak("left_ear", 22.0, 6.0, 0.6)
    asm.connect("neck", n1, "left_shoulder", ls)
    asm.connect("neck", n0, "nose", nose)
    asm.connect("nose", nose, "left_eye", asm.peak("left_eye", 21.0, 6.5, 0.7))
    asm.connect("left_eye", 0, "left_ear", ear)
    asm.connect("left_shoulder", ls, "left_ear", ear)
    people, _ = asm.people()
    assert len(people) == 1 and people[0]["neck"][:2] == (20.0, 10.0)


def test_a_merged_persons_absorbed_copy_follows_it_into_the_next_merge():
    # a is found twice (a0, a1): the fragments {a0, b} and {a1, c} merge on the limb b-c, a1
    # absorbed; then that person joins {d, e} on the limb d-b. The fragment pass after must
    # see a1 as the merged person's, not merge what is already one person (counting its
    # evidence twice).
    chain = Skeleton("chain", ("a", "b", "c", "d", "e"), ((0, 1), (0, 2), (1, 2), (3, 4), (3, 1)))
    asm = Assembly(chain, merge_radius=3.0)
    a0, a1 = asm.peak("a", 10.0, 10.0, 0.9), asm.peak("a", 11.0, 10.0, 0.5)
    b, c = asm.peak("b", 10.0, 14.0, 0.8), asm.peak("c", 14.0, 10.0, 0.7)
    d, e = asm.peak("d", 10.0, 20.0, 0.6), asm.peak("e", 10.0, 25.0, 0.6)
    asm.connect("a", a0, "b", b, 0.5)
    asm.connect("a", a1, "c", c, 0.5)
    asm.connect("b", b, "c", c, 0.5)
    asm.connect("d", d, "e", e, 0.5)
    asm.connect("d", d, "b", b, 0.5)
    people, scores = asm.people()
    assert len(people) == 1 and set(people[0]) == set("abcde") and people[0]["a"][:2] == (10.0, 10.0)
    evidence = 0.9 + 0.8 + 0.7 + 0.6 + 0.6 + 5 * 0.5
    assert scores[0] == pytest.approx(evidence / (5 + 5), rel=1e-6)


# -- the limb between confident peaks first ---------------------------------------------------

TWO = Skeleton("two", ("a", "b"), ((0, 1),))


def limb_and_a_piece_of_it():
    """Part a at x = 5; part b strong at x = 25 and weak at x = 15, on the limb. The PAF runs
    from a to b, a little weaker on the far half, so the piece a -> weak b scores higher
    along the PAF than the whole limb."""
    h, w = 20, 30
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def blob(x, amplitude):
        return amplitude * np.exp(-((xx - x) ** 2 + (yy - 10) ** 2) / 2.0)

    heat = np.stack([blob(5, 0.9), blob(25, 0.9) + blob(15, 0.12)]).astype(np.float32)
    paf = np.zeros((2, h, w), np.float32)
    paf[0, 9:12, 5:16] = 1.0
    paf[0, 9:12, 16:26] = 0.8
    return heat, paf


@pytest.mark.parametrize("assignment", ["greedy", "optimal"])
def test_the_limb_between_confident_peaks_wins_over_a_piece_of_it(assignment):
    heat, paf = limb_and_a_piece_of_it()
    params = dict(min_parts=2, min_person_score=0.0, max_limb_length=30.0, assignment=assignment)
    whole = group(heat, paf, TWO, GroupParams(**params))
    assert len(whole) == 1 and whole.keypoints[0, 1, 0] == pytest.approx(25.0, abs=0.1)
    piece = group(heat, paf, TWO, GroupParams(peak_weight=0.0, **params))
    assert len(piece) == 1 and piece.keypoints[0, 1, 0] == pytest.approx(15.0, abs=0.1)


def test_the_peak_weight_weighs_a_candidate_by_its_weaker_peak():
    heat, paf = limb_and_a_piece_of_it()
    scores = {}
    for weight in (0.0, 0.5, 1.0, 0.3):
        g = Grouper(TWO, 20, 30, GroupParams(peak_weight=weight, max_limb_length=30.0))
        g._find_peaks_in_place(heat)
        matrix = np.zeros((g.params.max_peaks, g.params.max_peaks), np.float32)
        assert lib.opp_score_limb(ffi.from_buffer("float[]", paf), 2, 20, 30, g._skeleton, g._params, 0,
                                  g._peaks_ptr, g._peak_counts_ptr, ffi.from_buffer("float[]", matrix),
                                  g._ws_ptr, g._workspace.nbytes) == 0
        scores[weight] = matrix[0, :2].copy()  # a against b (strong), b (weak)
    weaker = np.minimum(g._peaks[0, 0, 2], g._peaks[1, :2, 2])
    assert (scores[0.0] > 0).all() and 0.1 < weaker.min() < 0.2 and weaker.max() < 1.0
    for weight in (0.5, 1.0, 0.3):
        np.testing.assert_allclose(scores[weight], scores[0.0] * weaker ** weight, rtol=1e-5)
