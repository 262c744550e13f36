"""Random people, params, clocks and skeletons: the tracker never crashes, never writes
outside its buffers (cffi_build/sanitize.sh runs this under ASan/UBSan), and its output
is always sane: IDs unique in a frame, tracked people finite, counters consistent, and an
error changes nothing."""
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openpose_plus.edge._paf import ffi, lib
from openpose_plus.edge.poses import Poses
from openpose_plus.edge.skeleton import Skeleton
from openpose_plus.edge.tracking import PoseTracker, TrackParams

FUZZ = settings(max_examples=int(os.environ.get("OPP_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SPECIALS = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45, -1.0, 1e6, -1e6, 2e6], np.float32)


@st.composite
def params(draw):
    max_age = draw(st.floats(1e-3, 5.0))
    high = draw(st.floats(-1, 1))
    on = draw(st.floats(-1, 1))
    return TrackParams(
        max_tracks=draw(st.integers(1, 12)), max_people=draw(st.integers(1, 12)),
        high_score=high, low_score=draw(st.floats(-2, high)),
        match_similarity=draw(st.floats(0, 1)), weak_match_similarity=draw(st.floats(0, 1)),
        kappa=draw(st.floats(1e-3, 10)), part_threshold=draw(st.floats(-1, 1)),
        min_hits=draw(st.integers(1, 4)), max_age=max_age, smooth=draw(st.booleans()), motion=draw(st.booleans()),
        min_cutoff=draw(st.floats(1e-3, 1000)), beta=draw(st.floats(0, 1e6)), d_cutoff=draw(st.floats(1e-3, 1000)),
        part_on=on, part_off=draw(st.floats(-2, on)), part_hold=draw(st.floats(0, max_age)),
        widen=draw(st.floats(0, 1000)), still_speed=draw(st.floats(0, 1000)),
        assignment=draw(st.sampled_from(["greedy", "optimal"])), appearance=draw(st.floats(0, 1)),
        turn_speed=draw(st.floats(0, 1000)), noise_falloff=draw(st.floats(0, 1000)))


def frame(rng, people, k, kind):
    """People of a random kind: walkers that move a little, noise, huge values, specials."""
    kp = np.zeros((people, k, 3), np.float32)
    if kind == "walk":
        kp[..., :2] = rng.uniform(0, 200, (people, 1, 2)) + rng.normal(0, 5, (people, k, 2))
        kp[..., 2] = rng.uniform(0, 1, (people, k))
    elif kind == "noise":
        kp[...] = rng.normal(0, 100, kp.shape)
    elif kind == "huge":
        kp[...] = rng.normal(0, 1e30, kp.shape)
    else:  # the same point for everyone: ties everywhere
        kp[..., :2] = 5.0
        kp[..., 2] = 0.5
    hit = rng.random(kp.shape) < rng.choice([0.0, 0.02, 0.3])
    kp[hit] = rng.choice(SPECIALS, hit.sum())
    scores = rng.uniform(-0.5, 1.5, people).astype(np.float32)
    scores[rng.random(people) < 0.05] = np.nan
    return kp, scores


@FUZZ
@given(data=st.data())
def test_random_streams_give_sane_tracks(data):
    k = data.draw(st.integers(1, 20))
    p = data.draw(params())
    tracker = PoseTracker(Skeleton("fuzz", tuple("p%d" % i for i in range(k)), (), ()), p)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    t, base = 0.0, rng.uniform(-1e4, 1e4)
    for _ in range(data.draw(st.integers(1, 25))):
        people = int(rng.integers(0, 16))
        kp, scores = frame(rng, people, k, data.draw(st.sampled_from(["walk", "walk", "noise", "huge", "same"])))
        step = data.draw(st.sampled_from([1 / 30, 1 / 30, 1e-9, 0.5, 10.0, 0.0, -1.0]))
        poses = Poses._unchecked(kp, scores, tracker.skeleton, False, False)
        before = tracker._state.copy()
        if step <= 0 and t > 0:
            try:
                tracker.update(poses, base + t + step)
            except ValueError as exc:
                assert "timestamp" in str(exc)
                assert np.array_equal(tracker._state, before)  # refused: nothing changed
                continue
            raise AssertionError("a clock that does not advance must be refused")
        t += max(step, 1e-9)
        frame_size = data.draw(st.sampled_from([None, None, (1, 1), (64, 48), (320, 240), (10 ** 6, 10 ** 6)]))
        # Frames of random sizes and colours (or none: colours are optional), rows strided or not.
        image = data.draw(st.sampled_from([None, (1, 1), (48, 64), (240, 320)]))
        if image is not None:
            image = rng.integers(0, 256, image + (3,), np.uint8)
            if len(image) > 1 and data.draw(st.booleans()):
                image = image[1:, 1:]  # a crop: rows farther apart than its width
        out = tracker.update(poses, base + t, frame_size, image=image)
        assert out.keypoints.shape == kp.shape and out.ids.shape == (people,)
        tracked = out.ids[out.ids >= 0]
        assert len(set(tracked.tolist())) == len(tracked) and (out.ids >= -1).all()
        # With smoothing, a tracked person comes out finite (a part that is not is hidden);
        # without, and for everyone not tracked, the keypoints are copied as they came.
        for i in range(people):
            if out.ids[i] >= 0 and p.smooth:
                assert np.isfinite(out.keypoints[i]).all()
                if tracker.frame_size is not None:  # shown parts in the frame's pixel centres
                    w, h = tracker.frame_size
                    xy = out.keypoints[i, out.keypoints[i, :, 2] != 0, :2]
                    assert ((xy >= 0) & (xy <= np.array([w - 1, h - 1], np.float32))).all()
            elif out.ids[i] < 0 and i >= p.max_people:
                assert np.array_equal(out.keypoints[i], kp[i], equal_nan=True)
        s = tracker.stats()
        assert 0 <= s.live + s.tentative <= p.max_tracks and s.matched <= s.live
        assert s.births - s.deaths == s.live and s.births >= 0
        assert bool(tracker.last_warnings & lib.OPP_WARN_PEOPLE_TRUNCATED) == (people > p.max_people)


@FUZZ
@given(data=st.data())
def test_random_raw_calls_never_crash(data):
    """The C entry points with random sizes, params fields, frame sizes and pointers that are NULL or not."""
    k = data.draw(st.integers(-2, 300))
    p = ffi.new("opp_track_params *")
    lib.opp_default_track_params(p)
    for name, value in data.draw(st.dictionaries(
            st.sampled_from(["max_tracks", "max_people", "min_hits", "smooth", "motion", "assignment"]),
            st.integers(-5, 2000), max_size=3)).items():
        setattr(p, name, value)
    for name, value in data.draw(st.dictionaries(
            st.sampled_from(["kappa", "max_age", "min_cutoff", "beta", "d_cutoff", "part_hold", "high_score",
                             "widen", "still_speed", "appearance", "turn_speed", "noise_falloff"]),
            st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=3)).items():
        setattr(p, name, value)
    size = ffi.new("size_t *")
    rc = lib.opp_tracker_size(k, p, size)
    if rc != lib.OPP_OK:
        assert rc in (lib.OPP_ERR_SKELETON, lib.OPP_ERR_PARAMS)
        return
    assert size[0] < 64 << 20
    given_size = size[0] - data.draw(st.sampled_from([0, 0, 1, 8]))
    state = np.zeros(given_size // 8 + 1, np.float64)
    rc = lib.opp_tracker_init(ffi.cast("void *", state.ctypes.data), given_size, k, p)
    if given_size < size[0]:
        assert rc == lib.OPP_ERR_STATE
        return
    assert rc == lib.OPP_OK
    people = data.draw(st.integers(-1, 30))
    n = max(people, 0)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    # Exactly sized buffers (keypoints in their own allocation: ASan sees a read past them).
    kp = rng.normal(0, 50, (n, k, 3)).astype(np.float32).copy()
    sc = rng.uniform(0, 1, n).astype(np.float32).copy()
    out = np.empty((n, k, 3), np.float32)
    ids = np.empty(n, np.intc)
    frame = data.draw(st.tuples(st.floats(allow_nan=True, allow_infinity=True, width=32),
                                st.floats(allow_nan=True, allow_infinity=True, width=32)))
    rc = lib.opp_tracker_set_frame(ffi.cast("void *", state.ctypes.data), *frame)
    ok = frame == (0.0, 0.0) or all(1.0 <= v <= 1e6 for v in frame)
    assert rc == (lib.OPP_OK if ok else lib.OPP_ERR_ARGUMENT)
    # A frame of random size and row stride (in its own exact allocation, or none).
    w, h = data.draw(st.integers(-1, 70)), data.draw(st.integers(-1, 70))
    stride = max(w, 0) * 3 + data.draw(st.sampled_from([0, 0, 5, -1]))
    pixels = rng.integers(0, 256, max(stride, 0) * max(h, 0) + 1, np.uint8).copy()
    image = data.draw(st.sampled_from([True, True, False]))
    img_ok = not image or (1 <= w and 1 <= h and stride >= 3 * w)
    for t in range(3):
        rc = lib.opp_track_image(ffi.cast("void *", state.ctypes.data), float(t), ffi.from_buffer("float[]", kp),
                                 ffi.from_buffer("float[]", sc), people,
                                 ffi.from_buffer("unsigned char[]", pixels) if image else ffi.NULL, w, h, stride,
                                 ffi.from_buffer("float[]", out), ffi.from_buffer("int[]", ids))
        if people < 0 or not img_ok:
            assert rc == lib.OPP_ERR_ARGUMENT
            continue
        assert rc >= 0
