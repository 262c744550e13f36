import json

import pytest

from openpose_plus.edge.skeleton import COCO17_TO_COCO18, COCO18, Skeleton


def test_coco18_matches_openpose_tables():
    assert COCO18.num_parts == 18 and COCO18.num_limbs == 19
    assert COCO18.num_heatmaps == 19 and COCO18.num_pafs == 38
    # OpenPose's POSE_COCO_MAP_IDX minus the 19 heatmap channels, spot-checked.
    assert COCO18.paf_channels[COCO18.limbs.index((1, 8))] == (0, 1)
    assert COCO18.paf_channels[COCO18.limbs.index((1, 2))] == (12, 13)
    assert COCO18.paf_channels[COCO18.limbs.index((5, 17))] == (26, 27)
    assert (2, 16) in COCO18.limbs and (5, 17) in COCO18.limbs  # the ear-shoulder limbs


def test_flip_permutations_are_involutions_that_swap_sides():
    perm = COCO18.flip_permutation()
    assert [perm[p] for p in perm] == list(range(18))
    for i, name in enumerate(COCO18.parts):
        other = COCO18.parts[perm[i]]
        if name.startswith("left_"):
            assert other == "right_" + name[5:]
        elif not name.startswith("right_"):
            assert other == name
    limbs = COCO18.flip_limb_permutation()
    for l, m in enumerate(limbs):
        a, b = COCO18.limbs[l]
        assert COCO18.limbs[m] == (perm[a], perm[b])


def test_coco17_mapping_names_agree():
    coco17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
              "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
    for i18, i17 in enumerate(COCO17_TO_COCO18):
        if i17 is None:
            assert COCO18.parts[i18] == "neck"
        else:
            assert COCO18.parts[i18] == coco17[i17]


def test_from_coco_category_brings_its_own_skeleton():
    cat = {"id": 1, "name": "hand", "keypoints": ["wrist", "left_tip", "right_tip", "palm"],
           "skeleton": [[1, 4], [4, 2], [4, 3]]}
    sk = Skeleton.from_coco_category(cat)
    assert sk.parts == ("wrist", "left_tip", "right_tip", "palm")
    assert sk.limbs == ((0, 3), (3, 1), (3, 2))
    assert sk.paf_channels == ((0, 1), (2, 3), (4, 5))
    assert sk.flip_pairs == ((1, 2),)
    assert Skeleton.from_coco_category(sk.to_coco_category()) == sk


def test_round_trip_through_json_and_digest():
    again = Skeleton.from_dict(json.loads(json.dumps(COCO18.to_dict())))
    assert again == COCO18 and again.digest() == COCO18.digest()
    assert Skeleton("x", ("a", "b"), ((0, 1),)).digest() != COCO18.digest()


@pytest.mark.parametrize("kwargs, message", [
    (dict(parts=()), "no parts"),
    (dict(parts=("a", "a")), "duplicate"),
    (dict(parts=("a", "b"), limbs=((0, 2),)), "limb 0"),
    (dict(parts=("a", "b"), limbs=((1, 1),)), "limb 0"),
    (dict(parts=("a", "b"), limbs=((0, 1),), paf_channels=((0, 0),)), "exactly once"),
    (dict(parts=("a", "b"), limbs=((0, 1),), paf_channels=((0, 1), (2, 3))), "PAF channel pairs"),
    (dict(parts=("a", "b", "c"), limbs=(), flip_pairs=((0, 1), (1, 2))), "flip pair"),
])
def test_bad_skeletons_are_refused_with_the_reason(kwargs, message):
    base = dict(name="bad", parts=("a", "b"), limbs=())
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Skeleton(**base)


def test_bad_descriptions_are_value_errors():
    with pytest.raises(ValueError):
        Skeleton.from_dict({"name": "x"})
    with pytest.raises(ValueError):
        Skeleton.from_coco_category({"name": "x", "skeleton": [[1, 2]]})


def test_coco17_is_cocos_own_person_category():
    import numpy as np

    from openpose_plus.edge.skeleton import COCO17, COCO17_PARTS, coco17_to_coco18, coco18_to_coco17

    # person_keypoints_val2017.json's category, as COCO publishes it.
    published = {"id": 1, "name": "person", "supercategory": "person",
                 "keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                               "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                               "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"],
                 "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
                              [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]}
    assert COCO17.to_coco_category() == published and COCO17.parts == COCO17_PARTS
    assert Skeleton.from_coco_category(published) == COCO17  # flip pairs found by name agree too
    kp17 = np.random.default_rng(0).uniform(1, 50, (2, 17, 3)).astype(np.float32)
    kp18 = coco17_to_coco18(kp17)
    np.testing.assert_array_equal(coco18_to_coco17(kp18), kp17)  # only the derived neck is dropped
    np.testing.assert_allclose(kp18[:, 1, :2], (kp17[:, 5, :2] + kp17[:, 6, :2]) / 2)


def test_body25_is_openposes_table_and_a_builtin():
    from openpose_plus.edge.skeleton import BODY25, builtin_skeleton

    assert BODY25.num_parts == 25 and BODY25.num_limbs == 26 and BODY25.num_heatmaps == 26
    # OpenPose's getPoseMapIndex(BODY_25): limb 0 (neck - mid hip) at PAF channels 0, 1; limb 1 at 14, 15.
    assert BODY25.limbs[:2] == ((1, 8), (1, 2)) and BODY25.paf_channels[:2] == ((0, 1), (14, 15))
    # COCO-18's parts keep their names; the feet and mid hip are BODY_25's own.
    assert BODY25.parts[:8] == COCO18.parts[:8] and BODY25.index("mid_hip") == 8
    perm = BODY25.flip_permutation()
    assert perm[BODY25.index("left_heel")] == BODY25.index("right_heel")
    assert sorted(BODY25.flip_limb_permutation()) == list(range(26))
    assert builtin_skeleton("body25") is BODY25 and builtin_skeleton("COCO18") is COCO18
    with pytest.raises(ValueError, match="unknown skeleton 'mpi'.*body25, coco18"):
        builtin_skeleton("mpi")
