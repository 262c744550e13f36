"""Augmentation: every step keeps keypoints (and the ignore mask) on the same image content.

Each part is painted as a blob of its own colour; after augmenting, the pixel under each
transformed keypoint must still be that part's colour (or, after a mirror, the colour of
the part it swapped with: a mirrored left wrist is a right wrist).
"""
import itertools

import cv2
import numpy as np
import pytest

from openpose_plus.edge.skeleton import COCO18, Skeleton
from openpose_plus.host_training.data.augment import Augmenter, check_step, register_step, registered_steps

# 25 well separated colours (0/127/255 per channel) without black (background), the pad grey
# and white (the ignore region).
PALETTE = np.array([c for c in itertools.product((0, 127, 255), repeat=3)
                    if c not in ((0, 0, 0), (127, 127, 127), (255, 255, 255))][:18], np.uint8)
W, H = 320, 240
RADIUS = 9


def blob_sample():
    """An image with a coloured blob per COCO-18 part, keypoints at their centres, and an
    ignore square painted white."""
    img = np.zeros((H, W, 3), np.uint8)
    kp = np.zeros((1, 18, 3), np.float32)
    for p in range(18):
        r, c = divmod(p, 6)
        x, y = 40.0 + 48 * c + (p % 3) * 0.3, 50.0 + 60 * r + 0.25
        kp[0, p] = (x, y, 2)
        cv2.circle(img, (int(round(x * 16)), int(round(y * 16))), RADIUS * 16, tuple(int(v) for v in PALETTE[p]),
                   -1, cv2.LINE_8, 4)
    mask = np.full((H, W), 255, np.uint8)
    img[195:235, 10:50] = 255
    mask[195:235, 10:50] = 0
    return img, kp, mask


def nearest_part(pixel):
    d = np.abs(PALETTE.astype(int) - np.asarray(pixel, int)).sum(axis=1)
    return int(d.argmin()), int(d.min())


def check_content(img, kp, mask, size, expect_mapping=None):
    """Every in-frame keypoint sits on its blob: returns the mapping used (identity or flipped)."""
    perm = COCO18.flip_permutation()
    seen = []
    for p in range(18):
        x, y = kp[0, p, :2]
        xi, yi = int(round(float(x))), int(round(float(y)))
        if not (3 <= xi < size[0] - 3 and 3 <= yi < size[1] - 3):
            continue
        part, dist = nearest_part(img[yi, xi])
        assert dist <= 12, "part %d at (%.1f, %.1f) sits on %s, not on a blob" % (p, x, y, img[yi, xi])
        seen.append((p, part))
        if mask is not None:
            assert mask[yi, xi] == 255, "the mask does not count at part %d" % p
    assert seen, "no keypoint stayed in the frame"
    identity = all(p == part for p, part in seen)
    flipped = all(perm[p] == part for p, part in seen)
    assert identity or flipped, "keypoints moved off their content: %s" % seen
    if expect_mapping == "flipped":
        assert flipped and not identity
    elif expect_mapping == "identity":
        assert identity
    # The ignore square (white) moved with the image: where it is white, the mask ignores.
    if mask is not None:
        white = np.all(img == 255, axis=2).astype(np.uint8)
        white = cv2.erode(white, np.ones((3, 3), np.uint8))
        if white.any():
            assert (mask[white > 0] < 128).all()
    return "flipped" if flipped and not identity else "identity"


@pytest.mark.parametrize("steps", [
    [{"name": "random_scale", "min_scale": 0.6, "max_scale": 1.4}],
    [{"name": "random_rotate", "max_degrees": 40.0}],
    [{"name": "crop_pad", "center": "person", "jitter": 40.0}],
    [{"name": "crop_pad", "center": "random", "jitter": 0.0}],
    [{"name": "flip", "prob": 1.0}],
    [],  # nothing but the final letterbox into the input size
    [{"name": "random_scale", "min_scale": 0.7, "max_scale": 1.3}, {"name": "random_rotate", "max_degrees": 30.0},
     {"name": "crop_pad", "center": "person", "jitter": 20.0}, {"name": "flip", "prob": 0.5}],
    # a pixel step between affine ones forces a warp in the middle
    [{"name": "random_rotate", "max_degrees": 20.0}, {"name": "blur", "prob": 0.0},
     {"name": "random_scale", "min_scale": 0.8, "max_scale": 1.2}, {"name": "crop_pad", "center": "center"}],
], ids=["scale", "rotate", "crop_person", "crop_random", "flip", "letterbox", "chain", "chain_with_pixel_step"])
def test_every_geometric_step_keeps_keypoints_on_their_content(steps):
    img, kp, mask = blob_sample()
    size = (256, 200)
    aug = Augmenter(steps, COCO18, size)
    mappings = set()
    for seed in range(12):
        out, okp, omask = aug(img, kp, mask, np.random.default_rng(seed))
        assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
        assert omask.shape == (size[1], size[0])
        assert okp.shape == kp.shape and (okp[..., 2] == kp[..., 2]).all()
        mappings.add(check_content(out, okp, omask, size))
    if steps and steps[-1].get("name") == "flip" and steps[-1].get("prob") == 0.5:
        assert mappings == {"identity", "flipped"}  # both branches were exercised


def test_flip_swaps_left_and_right_parts():
    img, kp, mask = blob_sample()
    aug = Augmenter([{"name": "flip", "prob": 1.0}], COCO18, (W, H))
    out, okp, omask = aug(img, kp, mask, np.random.default_rng(0))
    check_content(out, okp, omask, (W, H), expect_mapping="flipped")
    lw, rw = COCO18.index("left_wrist"), COCO18.index("right_wrist")
    # The new right wrist is the old left wrist, mirrored: x -> (W - 1) - x.
    assert okp[0, rw, 0] == pytest.approx(W - 1 - kp[0, lw, 0])
    assert okp[0, rw, 1] == pytest.approx(kp[0, lw, 1])
    assert okp[0, lw, 0] == pytest.approx(W - 1 - kp[0, rw, 0])
    nose, neck = COCO18.index("nose"), COCO18.index("neck")  # centre parts keep their names
    assert okp[0, nose, 0] == pytest.approx(W - 1 - kp[0, nose, 0])
    assert okp[0, neck, 0] == pytest.approx(W - 1 - kp[0, neck, 0])
    assert np.array_equal(out, img[:, ::-1])  # an exact mirror, no resampling blur
    assert np.array_equal(omask, mask[:, ::-1])


def test_flip_uses_a_custom_skeletons_pairs():
    sk = Skeleton.from_coco_category({"name": "hand", "keypoints": ["palm", "left_tip", "right_tip"],
                                      "skeleton": [[1, 2], [1, 3]]})
    kp = np.array([[[50, 50, 2], [20, 10, 2], [80, 10, 1]]], np.float32)
    img = np.zeros((100, 100, 3), np.uint8)
    aug = Augmenter([{"name": "flip", "prob": 1.0}], sk, (100, 100))
    _, okp, _ = aug(img, kp, None, np.random.default_rng(0))
    np.testing.assert_allclose(okp[0], [[49, 50, 2], [19, 10, 1], [79, 10, 2]])


def test_pixel_steps_keep_keypoints_and_change_pixels():
    img, kp, mask = blob_sample()
    for steps in ([{"name": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 20.0}],
                  [{"name": "blur", "prob": 1.0, "max_sigma": 2.0}]):
        aug = Augmenter(steps, COCO18, (W, H))
        out, okp, omask = aug(img, kp, mask, np.random.default_rng(3))
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img)
        np.testing.assert_array_equal(okp, kp)
        np.testing.assert_array_equal(omask, mask)


def test_no_mask_means_every_pixel_counts_and_stays_none():
    img, kp, _ = blob_sample()
    aug = Augmenter([{"name": "random_rotate", "max_degrees": 30.0}, {"name": "crop_pad"}], COCO18, (128, 128))
    out, okp, omask = aug(img, kp, None, np.random.default_rng(1))
    assert omask is None and out.shape == (128, 128, 3)


def test_padding_counts_in_the_mask_and_is_grey():
    img, kp, mask = blob_sample()
    aug = Augmenter([{"name": "random_scale", "min_scale": 0.5, "max_scale": 0.5},
                     {"name": "crop_pad", "center": "center", "jitter": 0.0}], COCO18, (W, H), pad_value=128)
    out, okp, omask = aug(img, kp, mask, np.random.default_rng(0))
    # Scaled to half and centred in a full-size canvas: a grey frame around, where the loss counts.
    assert (out[2, :] == 128).all() and (out[:, 2] == 128).all()
    assert (omask[2, :] == 255).all()
    check_content(out, okp, omask, (W, H))


def test_same_rng_same_result_and_seeds_differ():
    img, kp, mask = blob_sample()
    aug = Augmenter([{"name": "random_scale"}, {"name": "random_rotate"}, {"name": "crop_pad"}, {"name": "flip"},
                     {"name": "color_jitter"}, {"name": "blur", "prob": 0.5}], COCO18, (200, 200))
    a = aug(img, kp, mask, np.random.default_rng(5))
    b = aug(img, kp, mask, np.random.default_rng(5))
    c = aug(img, kp, mask, np.random.default_rng(6))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_a_user_registers_a_step():
    @register_step("test_invert")
    def invert(image, keypoints, mask, rng, amount=1.0):
        return (255 - image).astype(np.uint8), keypoints, mask

    assert "test_invert" in registered_steps()
    check_step({"name": "test_invert", "amount": 0.5})
    with pytest.raises(ValueError, match="unknown parameter 'strength'"):
        check_step({"name": "test_invert", "strength": 1})
    img, kp, mask = blob_sample()
    out, okp, _ = Augmenter([{"name": "test_invert"}], COCO18, (W, H))(img, kp, mask, np.random.default_rng(0))
    assert np.array_equal(out, 255 - img) and np.array_equal(okp, kp)
    # and a config may name it
    from openpose_plus.host_training.config import load_config

    assert load_config(None, ['AUGMENT.steps=[{name = "test_invert"}]']).augment.steps[0]["name"] == "test_invert"


def test_registering_a_step_without_defaults_is_refused():
    with pytest.raises(TypeError, match="needs a default"):
        @register_step("test_bad")
        def bad(image, keypoints, mask, rng, level):
            return image, keypoints, mask


def test_large_shrink_is_area_filtered_and_still_aligned():
    img, kp, mask = blob_sample()
    big = cv2.resize(img, (W * 4, H * 4), interpolation=cv2.INTER_NEAREST)
    bkp = kp.copy()
    bkp[..., :2] = (kp[..., :2] + 0.5) * 4 - 0.5
    bmask = cv2.resize(mask, (W * 4, H * 4), interpolation=cv2.INTER_NEAREST)
    aug = Augmenter([], COCO18, (W, H))  # letterbox by 1/4: the area-filtered path
    out, okp, omask = aug(big, bkp, bmask, np.random.default_rng(0))
    np.testing.assert_allclose(okp[..., :2], kp[..., :2], atol=1e-3)
    check_content(out, okp, omask, (W, H), expect_mapping="identity")


def test_color_jitter_keeps_greys_grey_and_order_of_brightness():
    from openpose_plus.host_training.data.augment import color_jitter

    ramp = np.repeat(np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], 3, axis=2), 4, axis=0)
    for seed in range(10):
        out, _, _ = color_jitter(ramp, None, None, np.random.default_rng(seed), brightness=0.3, contrast=0.3,
                                 saturation=0.5)
        o = out.astype(int)
        assert np.abs(o[..., 0] - o[..., 1]).max() <= 1 and np.abs(o[..., 1] - o[..., 2]).max() <= 1  # greys stay grey
        assert (np.diff(o[0, :, 1]) >= 0).all()  # brighter stays brighter
    same, _, _ = color_jitter(ramp, None, None, np.random.default_rng(0), brightness=0.0, contrast=0.0,
                              saturation=0.0)
    np.testing.assert_array_equal(same, ramp)
