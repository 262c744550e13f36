import numpy as np
import pytest

from openpose_plus.edge.skeleton import COCO18, Skeleton
from openpose_plus.edge.synthetic.figures import random_scene
from openpose_plus.edge.targets import render_heatmaps, render_pafs, render_targets

LINE = Skeleton("line", ("a", "b"), ((0, 1),))


def test_gaussian_peak_sits_on_the_keypoint():
    kp = np.array([[[10.0, 7.0, 2.0], [20.0, 7.0, 0.0]]], np.float32)
    hm = render_heatmaps(kp, LINE, 16, 32, sigma=1.0)
    assert hm.shape == (3, 16, 32) and hm.dtype == np.float32
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (7, 10)
    assert hm[0, 7, 10] == pytest.approx(1.0)
    assert hm[0, 7, 11] == pytest.approx(np.exp(-0.5), rel=1e-5)
    assert hm[1].max() == 0.0  # an absent part draws nothing
    np.testing.assert_allclose(hm[2], 1.0 - hm[:2].max(axis=0), atol=1e-6)


def test_paf_is_a_unit_vector_band_along_the_limb():
    kp = np.array([[[4.0, 8.0, 2.0], [24.0, 8.0, 2.0]]], np.float32)
    paf = render_pafs(kp, LINE, 16, 32, limb_width=1.0)
    assert paf.shape == (2, 16, 32)
    assert paf[0, 8, 14] == pytest.approx(1.0) and paf[1, 8, 14] == 0.0
    assert paf[0, 9, 14] == pytest.approx(1.0)   # inside the band
    assert paf[0, 10, 14] == 0.0                 # outside it
    norms = np.hypot(paf[0], paf[1])
    assert norms.max() <= 1.0 + 1e-6


def test_overlapping_limbs_average_and_channels_follow_the_table():
    sk = Skeleton("swapped", ("a", "b"), ((0, 1),), paf_channels=((1, 0),))
    kp = np.array([[[4.0, 8.0, 2.0], [24.0, 8.0, 2.0]],
                   [[14.0, 0.0, 2.0], [14.0, 15.0, 2.0]]], np.float32)
    paf = render_pafs(kp, sk, 16, 32, limb_width=1.0)
    # x lives in channel 1 here; where the two limbs cross, their directions average.
    assert paf[1, 8, 4] == pytest.approx(1.0)
    assert paf[1, 8, 14] == pytest.approx(0.5) and paf[0, 8, 14] == pytest.approx(0.5)


def test_coco18_scene_renders_every_channel_and_reuses_buffers():
    rng = np.random.default_rng(3)
    scene = random_scene(rng, 5, 54, 46)
    hm, paf = render_targets(scene, COCO18, 46, 54, sigma=1.0, limb_width=1.0)
    assert hm.shape == (19, 46, 54) and paf.shape == (38, 46, 54)
    assert np.isfinite(hm).all() and np.isfinite(paf).all()
    out = np.empty_like(hm)
    assert render_heatmaps(scene, COCO18, 46, 54, 1.0, out=out) is out
    np.testing.assert_array_equal(out, hm)


def test_no_people_and_bad_arguments():
    hm = render_heatmaps(np.zeros((0, 18, 3)), COCO18, 8, 8, 1.0)
    assert hm[:18].max() == 0 and hm[18].min() == 1.0
    with pytest.raises(ValueError, match=r"\(N, 18, 3\)"):
        render_heatmaps(np.zeros((1, 17, 3)), COCO18, 8, 8, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        render_heatmaps(np.zeros((1, 18, 3)), COCO18, 8, 8, 0.0)
    with pytest.raises(ValueError, match="limb_width"):
        render_pafs(np.zeros((1, 18, 3)), COCO18, 8, 8, -1.0)
    with pytest.raises(ValueError, match="float32"):
        render_pafs(np.zeros((1, 18, 3)), COCO18, 8, 8, 1.0, out=np.zeros((38, 8, 8)))
