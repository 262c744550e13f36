"""edge/synthetic/scene.py: synthetic pictures of people whose keypoints sit on what is drawn."""
import subprocess
import sys

import numpy as np
import pytest

from openpose_plus.edge.synthetic.scene import MovingScene, render_background, render_scene
from openpose_plus.edge.skeleton import Skeleton


def test_render_scene_shapes_and_visibility_codes():
    rng = np.random.default_rng(0)
    img, kp = render_scene(rng, 320, 240, 4)
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert kp.shape == (4, 18, 3) and kp.dtype == np.float32
    assert set(np.unique(kp[..., 2])) <= {0.0, 1.0, 2.0}
    assert (kp[..., 2] == 2).sum() > 10


def test_same_seed_same_picture_other_seed_other_picture():
    a = render_scene(np.random.default_rng(7), 200, 160, 3)
    b = render_scene(np.random.default_rng(7), 200, 160, 3)
    c = render_scene(np.random.default_rng(8), 200, 160, 3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_visible_keypoints_lie_on_their_own_person_and_hidden_ones_under_something_nearer():
    on_self = total = hidden = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        img, kp, owner = render_scene(rng, 256, 192, int(rng.integers(1, 6)), return_owner=True)
        h, w = owner.shape
        for p in range(kp.shape[0]):
            for x, y, v in kp[p]:
                if v == 0:
                    continue
                xi, yi = int(round(float(x))), int(round(float(y)))
                assert 0 <= xi < w and 0 <= yi < h, "a labelled part outside the frame"
                if v == 2:
                    total += 1
                    on_self += owner[yi, xi] == p
                else:
                    hidden += 1
                    assert owner[yi, xi] > p, "an occluded part not under anything nearer"
    assert on_self == total  # every visible part is drawn where its keypoint says
    assert hidden > 0        # and occlusion happens


def test_truncation_and_a_wide_range_of_scales():
    heights, truncated = [], 0
    for seed in range(40):
        _, kp = render_scene(np.random.default_rng(seed), 320, 240, 3)
        for person in kp:
            lab = person[person[:, 2] > 0]
            if len(lab) >= 2:
                heights.append(np.ptp(lab[:, 1]))
            truncated += int((person[:, 2] == 0).sum() > 4)
    assert max(heights) / max(min(heights), 1.0) > 4
    assert truncated > 5


def test_person_height_is_respected():
    for seed in range(5):
        _, kp = render_scene(np.random.default_rng(seed), 640, 480, 1, person_height=100.0)
        ys = kp[0, kp[0, :, 2] > 0, 1]
        assert 60 < np.ptp(ys) < 110


def test_moving_scene_person_height_range():
    scene = MovingScene(320, 240, 6, seed=4, person_height=(0.5 * 240, 0.6 * 240))
    assert all(0.5 * 240 <= w.height <= 0.6 * 240 for w in scene._walkers)
    default = MovingScene(320, 240, 6, seed=4)
    assert all(0.25 * 240 <= w.height <= 0.8 * 240 for w in default._walkers)
    with pytest.raises(ValueError, match="person_height"):
        MovingScene(320, 240, 1, person_height=(100.0, 50.0))


def test_zero_people_and_custom_skeleton():
    img, kp = render_scene(np.random.default_rng(0), 64, 48, 0)
    assert img.shape == (48, 64, 3) and kp.shape == (0, 18, 3)
    tri = Skeleton(name="tri", parts=("a", "b", "c"), limbs=((0, 1), (1, 2)))
    img, kp = render_scene(np.random.default_rng(0), 128, 128, 2, skeleton=tri)
    assert kp.shape == (2, 3, 3)


@pytest.mark.parametrize("args, message", [
    ((0, 48, 1), "positive integers"),
    ((64, 48, -1), "non-negative integer"),
    ((64, 48, 1.5), "non-negative integer"),
])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        render_scene(np.random.default_rng(0), *args)
    with pytest.raises(ValueError, match="person_height"):
        render_scene(np.random.default_rng(0), 64, 48, 1, person_height=(10.0, 5.0))


def test_backgrounds_vary():
    means = [render_background(np.random.default_rng(s), 64, 64).reshape(-1, 3).mean(0) for s in range(12)]
    assert np.std(np.array(means), axis=0).max() > 20


def test_moving_scene_is_deterministic_per_index_and_smooth():
    scene = MovingScene(320, 240, 3, seed=5)
    img0, kp0 = scene.frame(0)
    assert img0.shape == (240, 320, 3) and kp0.shape == (3, 18, 3)
    again = MovingScene(320, 240, 3, seed=5)
    img50, kp50 = again.frame(50)   # random access, in any order, on a new instance
    img0b, kp0b = again.frame(0)
    assert np.array_equal(img0, img0b) and np.array_equal(kp0, kp0b)
    assert np.array_equal(scene.frame(50)[1], kp50)
    # Consecutive frames: small steps; over two seconds: clear motion.
    prev = kp0
    for i in range(1, 20):
        _, kp = scene.frame(i)
        both = (prev[..., 2] > 0) & (kp[..., 2] > 0)
        step = np.hypot(*(kp[..., :2] - prev[..., :2])[both].T)
        assert step.max() < 12, "frame %d jumps %.1f px" % (i, step.max())
        prev = kp
    _, kp60 = scene.frame(60)
    both = (kp0[..., 2] > 0) & (kp60[..., 2] > 0)
    assert np.hypot(*(kp60[..., :2] - kp0[..., :2])[both].T).max() > 5
    assert not np.array_equal(img0, scene.frame(30)[0])
    assert not np.array_equal(MovingScene(320, 240, 3, seed=6).frame(0)[0], img0)
    with pytest.raises(ValueError, match="frame index"):
        scene.frame(-1)


def test_moving_scene_iterates_and_handles_other_skeletons():
    tri = Skeleton(name="tri", parts=("a", "b", "c"), limbs=((0, 1), (1, 2)))
    it = iter(MovingScene(96, 96, 2, seed=1, skeleton=tri))
    frames = [next(it) for _ in range(3)]
    assert all(f[1].shape == (2, 3, 3) for f in frames)
    assert MovingScene(64, 64, 0, seed=0).frame(3)[1].shape == (0, 18, 3)


def test_scene_never_imports_tensorflow():
    code = ("import sys, numpy as np; import openpose_plus.edge.synthetic.scene as s; "
            "s.MovingScene(64, 48, 2, seed=1).frame(3); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
