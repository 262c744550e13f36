"""Bad input is an error, never a crash: the Python checks, every C error code, bad maps."""
import math

import numpy as np
import pytest

from openpose_plus.edge import COCO18, GroupParams, Grouper, group
from openpose_plus.edge._paf import ffi, lib

H, W = 20, 24
K, L = COCO18.num_parts, COCO18.num_limbs


def maps(height=H, width=W):
    return np.zeros((K + 1, height, width), np.float32), np.zeros((2 * L, height, width), np.float32)


# -- Python-level checks ----------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("peak_threshold", float("nan")), ("peak_threshold", "0.1"), ("peak_threshold", -0.1),
    ("peak_threshold", 1e300), ("nms_radius", -1),
    ("nms_radius", 1.5), ("nms_radius", True), ("max_peaks", 0), ("max_peaks", 10 ** 6),
    ("paf_samples", 1), ("paf_sample_threshold", float("inf")), ("min_sample_fraction", 1.5),
    ("min_sample_fraction", -0.1), ("max_limb_length", -1.0), ("assignment", "hungarian"),
    ("min_parts", 0), ("min_person_score", float("nan")), ("max_people", 0),
    ("person_score", "sum"), ("peak_weight", -0.1), ("peak_weight", 1.5), ("peak_weight", float("nan")),
    ("merge_radius", -1.0), ("merge_radius", float("inf")),
])
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        GroupParams(**{field: value})


def test_numpy_numbers_are_fine():
    GroupParams(peak_threshold=np.float32(0.2), max_peaks=np.int64(8), min_person_score=np.float64(0.3))


@pytest.mark.parametrize("height, width", [(0, 10), (10, 0), (-1, 10), (10 ** 6, 10), (2.5, 10)])
def test_bad_map_size(height, width):
    with pytest.raises(ValueError, match="height|width"):
        Grouper(COCO18, height, width)


def test_params_must_be_group_params():
    with pytest.raises(TypeError):
        Grouper(COCO18, H, W, params={"max_peaks": 3})


def bad_heatmaps():
    heat, _ = maps()
    yield "float32", heat.astype(np.float64)
    yield "float32", heat.astype(">f4")  # foreign byte order
    yield "float32", heat.astype(np.float16)
    yield "channels, height, width", heat[0]
    yield "channels, height, width", heat[None]
    yield "this grouper is for", np.zeros((K + 1, H + 1, W), np.float32)
    yield "this grouper is for", np.zeros((K + 1, H, W - 1), np.float32)
    yield "channels", np.zeros((K - 1, H, W), np.float32)
    yield "channels", np.zeros((K + 2, H, W), np.float32)
    yield "C-contiguous", np.zeros((K + 1, W, H), np.float32).transpose(0, 2, 1)
    yield "C-contiguous", np.zeros((K + 1, H, 2 * W), np.float32)[:, :, ::2]
    raw = np.zeros((K + 1) * H * W * 4 + 1, np.uint8)
    yield "aligned", raw[1:].view(np.float32).reshape(K + 1, H, W)
    yield "numpy array", heat.tolist()


@pytest.mark.parametrize("reason, heat", list(bad_heatmaps()), ids=lambda x: x if isinstance(x, str) else "")
def test_bad_heatmaps_are_refused(reason, heat):
    _, paf = maps()
    with pytest.raises(ValueError, match=reason):
        Grouper(COCO18, H, W).group(heat, paf)


@pytest.mark.parametrize("paf", [
    np.zeros((2 * L - 1, H, W), np.float32), np.zeros((2 * L + 2, H, W), np.float32),
    np.zeros((2 * L, H, W), np.float64), np.zeros((2 * L, H, W), np.float32)[:, ::-1],
])
def test_bad_pafs_are_refused(paf):
    heat, _ = maps()
    with pytest.raises(ValueError, match="pafs"):
        Grouper(COCO18, H, W).group(heat, paf)


def test_group_convenience_checks_the_shape():
    with pytest.raises(ValueError, match="channels, height, width"):
        group(np.zeros((H, W), np.float32), np.zeros((2 * L, H, W), np.float32))


def test_group_ptr_checks_what_it_can():
    grouper = Grouper(COCO18, H, W)
    heat, paf = maps()
    with pytest.raises(ValueError, match="maps are"):
        grouper.group_ptr(heat.ctypes.data, paf.ctypes.data, K + 1, 2 * L, H + 1, W)
    with pytest.raises(ValueError, match="channel count"):
        grouper.group_ptr(heat.ctypes.data, paf.ctypes.data, K + 3, 2 * L, H, W)
    with pytest.raises(ValueError, match="channel count"):
        grouper.group_ptr(heat.ctypes.data, paf.ctypes.data, K + 1, 2 * L - 2, H, W)
    with pytest.raises(ValueError, match="NULL"):
        grouper.group_ptr(0, paf.ctypes.data, K + 1, 2 * L, H, W)
    with pytest.raises(ValueError, match="NULL"):
        grouper.group_ptr(heat.ctypes.data, 0, K + 1, 2 * L, H, W)


# -- C-level error codes -----------------------------------------------------------

class C:
    """Valid arguments for every entry point; tests break one at a time."""

    def __init__(self, skeleton=COCO18, height=H, width=W):
        self.limb_parts = ffi.new("int[]", [p for limb in skeleton.limbs for p in limb])
        self.limb_pafs = ffi.new("int[]", [c for pair in skeleton.paf_channels for c in pair])
        self.sk = ffi.new("opp_skeleton *", {"num_parts": skeleton.num_parts, "num_limbs": skeleton.num_limbs,
                                             "limb_parts": self.limb_parts, "limb_pafs": self.limb_pafs})
        self.p = ffi.new("opp_params *")
        lib.opp_default_params(self.p)
        self.h, self.w = height, width
        self.heat = np.zeros((skeleton.num_parts + 1, height, width), np.float32)
        self.paf = np.zeros((2 * skeleton.num_limbs, height, width), np.float32)
        size = ffi.new("size_t *")
        assert lib.opp_workspace_size(self.sk, self.p, height, width, size) == 0
        self.ws_size = size[0]
        self.ws = ffi.new("char[]", self.ws_size)
        m, k = self.p.max_peaks, skeleton.num_parts
        self.kp = ffi.new("float[]", self.p.max_people * k * 3)
        self.scores = ffi.new("float[]", self.p.max_people)
        self.n = ffi.new("int *")
        self.peaks = ffi.new("opp_peak[]", k * m)
        self.counts = ffi.new("int[]", k)
        self.matrix = ffi.new("float[]", m * m)
        self.conns = ffi.new("opp_connection[]", max(1, skeleton.num_limbs) * m)
        self.conn_counts = ffi.new("int[]", max(1, skeleton.num_limbs))

    def fptr(self, a):
        return ffi.cast("float *", a.ctypes.data)

    def group(self, **kw):
        a = dict(heat=self.fptr(self.heat), hc=self.heat.shape[0], paf=self.fptr(self.paf), pc=self.paf.shape[0],
                 h=self.h, w=self.w, sk=self.sk, p=self.p, ws=self.ws, ws_size=self.ws_size, kp=self.kp,
                 scores=self.scores, n=self.n)
        a.update(kw)
        return lib.opp_group(a["heat"], a["hc"], a["paf"], a["pc"], a["h"], a["w"], a["sk"], a["p"], a["ws"],
                             a["ws_size"], a["kp"], a["scores"], a["n"])

    def peaks_(self, **kw):
        a = dict(heat=self.fptr(self.heat), hc=self.heat.shape[0], h=self.h, w=self.w, sk=self.sk, p=self.p,
                 peaks=self.peaks, counts=self.counts)
        a.update(kw)
        return lib.opp_find_peaks(a["heat"], a["hc"], a["h"], a["w"], a["sk"], a["p"], a["peaks"], a["counts"])

    def score(self, **kw):
        a = dict(paf=self.fptr(self.paf), pc=self.paf.shape[0], h=self.h, w=self.w, sk=self.sk, p=self.p, limb=0,
                 peaks=self.peaks, counts=self.counts, matrix=self.matrix, ws=self.ws, ws_size=self.ws_size)
        a.update(kw)
        return lib.opp_score_limb(a["paf"], a["pc"], a["h"], a["w"], a["sk"], a["p"], a["limb"], a["peaks"],
                                  a["counts"], a["matrix"], a["ws"], a["ws_size"])

    def assign(self, **kw):
        a = dict(p=self.p, matrix=self.matrix, na=0, nb=0, conns=self.conns, n=self.n, ws=self.ws,
                 ws_size=self.ws_size)
        a.update(kw)
        return lib.opp_assign_limb(a["p"], a["matrix"], a["na"], a["nb"], a["conns"], a["n"], a["ws"], a["ws_size"])

    def assemble(self, **kw):
        a = dict(sk=self.sk, p=self.p, peaks=self.peaks, counts=self.counts, conns=self.conns,
                 conn_counts=self.conn_counts, ws=self.ws, ws_size=self.ws_size, kp=self.kp, scores=self.scores,
                 n=self.n)
        a.update(kw)
        return lib.opp_assemble(a["sk"], a["p"], a["peaks"], a["counts"], a["conns"], a["conn_counts"], a["ws"],
                                a["ws_size"], a["kp"], a["scores"], a["n"])


def test_valid_calls_succeed():
    c = C()
    assert c.peaks_() == 0
    assert c.score() == 0
    assert c.assign() == 0
    for i in range(L):
        c.conn_counts[i] = 0
    assert c.assemble() == 0
    assert c.group() == 0 and c.n[0] == 0


@pytest.mark.parametrize("step", ["group", "peaks_", "score", "assign", "assemble"])
def test_null_pointers(step):
    c = C()
    call = getattr(c, step)
    names = {"group": ["heat", "paf", "sk", "p", "ws", "kp", "scores", "n"],
             "peaks_": ["heat", "sk", "p", "peaks", "counts"],
             "score": ["paf", "sk", "p", "peaks", "counts", "matrix", "ws"],
             "assign": ["p", "matrix", "conns", "n", "ws"],
             "assemble": ["sk", "p", "peaks", "counts", "conns", "conn_counts", "ws", "kp", "scores", "n"]}[step]
    for name in names:
        assert call(**{name: ffi.NULL}) == lib.OPP_ERR_NULL_POINTER, name


def test_workspace_too_small():
    c = C()
    assert c.group(ws_size=c.ws_size - 1) == lib.OPP_ERR_WORKSPACE
    assert c.score(ws_size=10) == lib.OPP_ERR_WORKSPACE
    assert c.assign(ws_size=10) == lib.OPP_ERR_WORKSPACE
    assert c.assemble(ws_size=10) == lib.OPP_ERR_WORKSPACE
    assert c.group(ws_size=0) == lib.OPP_ERR_WORKSPACE


def test_workspace_may_have_any_alignment():
    c = C()
    shifted = ffi.new("char[]", c.ws_size + 8)
    for offset in range(1, 8):
        assert c.group(ws=shifted + offset) == 0


@pytest.mark.parametrize("h, w", [(0, W), (H, 0), (-5, W), (lib.OPP_MAX_SIDE + 1, W), (H, lib.OPP_MAX_SIDE + 1)])
def test_bad_sizes(h, w):
    c = C()
    assert c.group(h=h, w=w) == lib.OPP_ERR_SIZE
    assert c.peaks_(h=h, w=w) == lib.OPP_ERR_SIZE
    assert c.score(h=h, w=w) == lib.OPP_ERR_SIZE
    assert lib.opp_workspace_size(c.sk, c.p, h, w, ffi.new("size_t *")) == lib.OPP_ERR_SIZE


def test_channel_mismatch():
    c = C()
    for hc in (K - 1, K + 2, 0):
        assert c.group(hc=hc) == lib.OPP_ERR_CHANNELS
        assert c.peaks_(hc=hc) == lib.OPP_ERR_CHANNELS
    for pc in (2 * L - 1, 2 * L + 1, 0):
        assert c.group(pc=pc) == lib.OPP_ERR_CHANNELS
        assert c.score(pc=pc) == lib.OPP_ERR_CHANNELS
    assert c.group(hc=K) == 0  # no background channel is fine


def _every_entry_returns(c, code, steps):
    """``steps`` of the core (C's methods) and opp_workspace_size all return ``code``."""
    for step in steps:
        assert getattr(c, step)() == code, step
    assert lib.opp_workspace_size(c.sk, c.p, H, W, ffi.new("size_t *")) == code


@pytest.mark.parametrize("mutate", [
    lambda c: setattr(c.sk, "num_parts", 0),
    lambda c: setattr(c.sk, "num_parts", lib.OPP_MAX_PARTS + 1),
    lambda c: setattr(c.sk, "num_limbs", -1),
    lambda c: setattr(c.sk, "num_limbs", lib.OPP_MAX_LIMBS + 1),
    lambda c: c.limb_parts.__setitem__(3, K),       # part index out of range
    lambda c: c.limb_parts.__setitem__(0, -1),
    lambda c: c.limb_parts.__setitem__(1, c.limb_parts[0]),  # limb joins a part to itself
    lambda c: c.limb_pafs.__setitem__(5, 2 * L),     # PAF channel out of range
    lambda c: c.limb_pafs.__setitem__(0, -3),
], ids=["no parts", "too many parts", "negative limbs", "too many limbs", "part too big", "part negative",
        "self limb", "paf too big", "paf negative"])
def test_bad_skeleton(mutate):
    c = C()
    mutate(c)
    _every_entry_returns(c, lib.OPP_ERR_SKELETON, ("group", "peaks_", "assemble"))


def test_skeleton_without_limb_tables():
    c = C()
    c.sk.limb_parts = ffi.NULL
    assert c.group() == lib.OPP_ERR_NULL_POINTER
    c.sk.num_limbs = 0  # then the tables are not needed, nor are PAFs
    assert c.group(pc=0, paf=ffi.NULL) == 0


@pytest.mark.parametrize("field, value", [
    ("peak_threshold", math.nan), ("peak_threshold", math.inf), ("peak_threshold", -0.01), ("nms_radius", -1),
    ("nms_radius", lib.OPP_MAX_NMS_RADIUS + 1), ("max_peaks", 0), ("max_peaks", lib.OPP_MAX_PEAKS + 1),
    ("paf_samples", 1), ("paf_samples", lib.OPP_MAX_PAF_SAMPLES + 1), ("paf_sample_threshold", math.nan),
    ("min_sample_fraction", -0.01), ("min_sample_fraction", 1.01), ("min_sample_fraction", math.nan),
    ("max_limb_length", -1.0), ("max_limb_length", math.inf), ("assignment", 2), ("assignment", -1),
    ("min_parts", 0), ("min_person_score", -math.inf), ("max_people", 0),
    ("max_people", lib.OPP_MAX_PEOPLE + 1), ("person_score", 2), ("person_score", -1),
    ("peak_weight", -0.01), ("peak_weight", 1.01), ("peak_weight", math.nan),
    ("merge_radius", -0.5), ("merge_radius", math.inf), ("merge_radius", math.nan),
])
def test_bad_params(field, value):
    c = C()
    setattr(c.p, field, value)
    _every_entry_returns(c, lib.OPP_ERR_PARAMS, ("group", "peaks_", "score", "assign", "assemble"))


def test_step_arguments_out_of_range():
    c = C()
    assert c.score(limb=-1) == lib.OPP_ERR_ARGUMENT
    assert c.score(limb=L) == lib.OPP_ERR_ARGUMENT
    c.counts[2] = c.p.max_peaks + 1
    assert c.score() == lib.OPP_ERR_ARGUMENT
    assert c.assemble() == lib.OPP_ERR_ARGUMENT
    c.counts[2] = -1
    assert c.score() == lib.OPP_ERR_ARGUMENT
    assert c.assign(na=-1) == lib.OPP_ERR_ARGUMENT
    assert c.assign(nb=c.p.max_peaks + 1) == lib.OPP_ERR_ARGUMENT


def test_score_refuses_peaks_outside_the_map():
    c = C()
    c.counts[1] = 1
    for x, y in ((-0.5, 3.0), (W - 0.5, 3.0), (3.0, H), (math.nan, 3.0)):
        c.peaks[1 * c.p.max_peaks] = {"x": x, "y": y, "score": 1.0}
        assert c.score() == lib.OPP_ERR_ARGUMENT, (x, y)


def test_assemble_refuses_bad_connections():
    c = C()
    c.counts[1], c.counts[2] = 2, 1  # limb 0 joins part 1 to part 2
    for i in range(2):
        c.peaks[c.p.max_peaks + i] = {"x": 1.0 + i, "y": 1.0, "score": 0.9}
    c.peaks[2 * c.p.max_peaks] = {"x": 5.0, "y": 1.0, "score": 0.9}
    c.conn_counts[0] = 1
    for a, b, s, ok in ((1, 0, 0.8, True), (2, 0, 0.8, False), (0, 1, 0.8, False), (-1, 0, 0.8, False),
                        (0, 0, math.nan, False)):
        c.conns[0] = {"a": a, "b": b, "score": s}
        assert c.assemble() == (0 if ok else lib.OPP_ERR_ARGUMENT), (a, b, s)
    c.conn_counts[0] = c.p.max_peaks + 1
    assert c.assemble() == lib.OPP_ERR_ARGUMENT
    c.conn_counts[0] = -1
    assert c.assemble() == lib.OPP_ERR_ARGUMENT


def test_strerror_knows_every_code():
    codes = [lib.OPP_OK, lib.OPP_WARN_PEAKS_TRUNCATED, lib.OPP_WARN_PEOPLE_TRUNCATED,
             lib.OPP_WARN_PEAKS_TRUNCATED | lib.OPP_WARN_PEOPLE_TRUNCATED, lib.OPP_ERR_NULL_POINTER,
             lib.OPP_ERR_SIZE, lib.OPP_ERR_CHANNELS, lib.OPP_ERR_SKELETON, lib.OPP_ERR_PARAMS,
             lib.OPP_ERR_WORKSPACE, lib.OPP_ERR_ARGUMENT]
    texts = [ffi.string(lib.opp_strerror(code)).decode() for code in codes]
    assert len(set(texts)) == len(codes) and all(texts)
    assert "unknown" in ffi.string(lib.opp_strerror(-999)).decode()
    lib.opp_default_params(ffi.NULL)  # a no-op, not a crash


def test_c_errors_become_python_exceptions(monkeypatch):
    from openpose_plus.edge import grouping
    with pytest.raises(ValueError, match="skeleton"):
        grouping._check(lib.OPP_ERR_SKELETON)
    with pytest.raises(RuntimeError, match="workspace"):
        grouping._check(lib.OPP_ERR_WORKSPACE)
    assert grouping._check(lib.OPP_WARN_PEAKS_TRUNCATED) == lib.OPP_WARN_PEAKS_TRUNCATED


# -- bad maps ----------------------------------------------------------------------

def scene_maps(seed=0, people=3):
    from openpose_plus.edge.synthetic.figures import random_scene
    from openpose_plus.edge.targets import render_targets
    rng = np.random.default_rng(seed)
    return render_targets(random_scene(rng, people, W * 2, H * 2), COCO18, H * 2, W * 2, 1.0, 1.0)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 3e38, -3e38])
def test_non_finite_and_huge_maps(value):
    heat, paf = scene_maps()
    grouper = Grouper(COCO18, 2 * H, 2 * W, GroupParams(min_parts=1))
    for where in ("heatmaps", "pafs", "both", "everywhere"):
        h, p = heat.copy(), paf.copy()
        rng = np.random.default_rng(1)
        if where == "everywhere":
            h[:], p[:] = value, value
        else:
            for a in ([h] if where == "heatmaps" else [p] if where == "pafs" else [h, p]):
                a[rng.random(a.shape) < 0.1] = value
        poses = grouper.group(h, p)
        assert np.isfinite(poses.keypoints).all() and np.isfinite(poses.scores).all(), where
        if where == "everywhere" and not np.isfinite(value):
            assert len(poses) == 0  # non-finite values are never peaks


def test_nan_heatmap_values_are_never_peaks():
    heat, _ = maps()
    heat[0] = np.nan
    heat[0, 5, 5] = 0.9  # a real peak among NaNs still counts
    peaks = Grouper(COCO18, H, W).find_peaks(heat)
    np.testing.assert_array_equal(peaks[0], np.float32([[5, 5, 0.9]]))


def test_more_peaks_than_capacity_is_reported_and_bounded():
    heat, paf = maps(32, 32)
    # Every other cell of every other row: 256 isolated peaks a part, all different.
    heat[:K, ::2, ::2] = np.linspace(0.5, 1.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    params = GroupParams(max_peaks=16, min_parts=1, min_person_score=0.0, max_people=10)
    grouper = Grouper(COCO18, 32, 32, params)
    peaks = grouper.find_peaks(heat)
    assert all(len(p) == 16 for p in peaks)
    # The strongest were kept, strongest first.
    assert peaks[0][0, 2] == heat[0].max() and np.all(np.diff(peaks[0][:, 2]) <= 0)
    poses = grouper.group(heat, paf)
    assert poses.peaks_truncated and poses.people_truncated and poses.truncated
    assert len(poses) == 10 and np.all(np.diff(poses.scores) <= 0)


def test_more_people_than_capacity_keeps_the_best():
    heat, paf = maps()
    for i, value in enumerate((0.3, 0.9, 0.5, 0.7)):
        heat[0, 4, 2 + 5 * i] = value
    poses = Grouper(COCO18, H, W, GroupParams(min_parts=1, min_person_score=0.0, max_people=2)).group(heat, paf)
    assert poses.people_truncated and not poses.peaks_truncated
    # A lone part's evidence: its peak's score over the most a person holds, K + L.
    np.testing.assert_allclose(poses.scores, np.float32([0.9, 0.7]) / (K + L), rtol=1e-6)
