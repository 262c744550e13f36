import numpy as np
import pytest

from openpose_plus.edge.geometry import Letterbox, input_to_map, map_to_input


def test_map_cell_centre_convention():
    # Cell (0, 0) at stride 8 covers input pixels 0..7; its centre is 3.5.
    assert map_to_input([[0.0, 0.0]], 8).tolist() == [[3.5, 3.5]]
    np.testing.assert_allclose(map_to_input([[2.0, 1.0, 0.7]], 8), [[19.5, 11.5, 0.7]], rtol=1e-6)
    pts = np.random.default_rng(0).uniform(-5, 50, (10, 3)).astype(np.float32)
    np.testing.assert_allclose(input_to_map(map_to_input(pts, 8), 8), pts, atol=1e-4)


def test_letterbox_wide_frame_pads_top_and_bottom():
    lb = Letterbox.fit(640, 480, 368, 368)
    assert lb.scale == pytest.approx(368 / 640)
    assert lb.resized_size == (368, 276)
    assert (lb.pad_x, lb.pad_y) == (0.0, 46.0)
    # The frame's corners land on the resized image's corners.
    np.testing.assert_allclose(lb.image_to_input([[-0.5, -0.5], [639.5, 479.5]]),
                               [[-0.5, 45.5], [367.5, 321.5]], atol=1e-4)


def test_letterbox_round_trips_and_keeps_scores():
    lb = Letterbox.fit(300, 500, 432, 368)
    pts = np.array([[[10.0, 20.0, 0.9], [299.0, 499.0, 0.0]]], np.float32)
    back = lb.map_to_image(lb.image_to_map(pts, 8), 8)
    np.testing.assert_allclose(back, pts, atol=1e-3)
    assert back[0, 0, 2] == pytest.approx(0.9)


def test_letterbox_refuses_empty_sizes():
    with pytest.raises(ValueError, match="positive"):
        Letterbox.fit(0, 480, 368, 368)
