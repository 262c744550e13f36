import numpy as np

from openpose_plus.edge.skeleton import COCO18, Skeleton
from openpose_plus.edge.synthetic.figures import clip_to_frame, random_pose, random_scene


def test_coco18_figure_is_anatomically_ordered():
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = random_pose(rng, 100.0, 100.0, 120.0)
        assert p.shape == (18, 3)
        assert p[0, 1] < p[1, 1] < p[8, 1]       # nose above neck above hip
        assert p[2, 0] < p[5, 0]                 # facing the camera: right shoulder on the left
        ext = np.ptp(p[p[:, 2] > 0, :2], axis=0)
        assert 60 < ext[1] < 160                 # about the height asked for


def test_scene_is_deterministic_and_mostly_separate():
    a = random_scene(np.random.default_rng(7), 10, 120, 100)
    b = random_scene(np.random.default_rng(7), 10, 120, 100)
    np.testing.assert_array_equal(a, b)
    necks = a[:, 1, :2]
    d = np.hypot(*(necks[:, None] - necks[None]).transpose(2, 0, 1))
    assert d[np.triu_indices(10, 1)].min() > 3.0


def test_clipping_marks_parts_outside_the_frame_absent():
    p = np.array([[[-1.0, 5.0, 2.0], [5.0, 5.0, 2.0], [5.0, 10.0, 2.0]]], np.float32)
    c = clip_to_frame(p, 10, 10)
    assert c[0, :, 2].tolist() == [0.0, 2.0, 0.0]
    assert p[0, 0, 2] == 2.0  # the input is left alone


def test_any_skeleton_gets_a_connected_figure():
    sk = Skeleton("star", ("c", "a", "b", "d", "lonely"), ((0, 1), (0, 2), (2, 3)))
    p = random_pose(np.random.default_rng(0), 50.0, 50.0, 40.0, sk)
    assert p[:4, 2].tolist() == [2.0] * 4 and p[4, 2] == 0.0
    assert np.ptp(p[:4, :2], axis=0).max() <= 40.0 + 1e-3
