"""Datasets and the tf.data pipeline: COCO-format reading, ignore masks, bad samples,
determinism, per-rank shards, custom skeletons and coco_and_custom mixing."""
import json
import logging
import os

import cv2
import numpy as np
import pytest

from openpose_plus.edge.geometry import input_to_map
from openpose_plus.edge.skeleton import COCO17_PARTS, COCO18, coco17_to_coco18
from openpose_plus.host_training.data.coco import BadSample, ignore_mask, read_keypoint_dataset
from openpose_plus.host_training.config import load_config
from openpose_plus.host_training.data.custom import CUSTOM_ID_OFFSET, split_batch

pytestmark = pytest.mark.tensorflow
tf = pytest.importorskip("tensorflow")
from openpose_plus.host_training.data.pipeline import build_dataset, dataset_skeleton  # noqa: E402

S = 96  # image and network input size: no letterbox, so image pixels are input pixels
CATEGORY = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17_PARTS),
            "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7]]}


def person17(cx, cy, scale=1.0, drop=()):
    """A COCO-17 person (flat list of 51) about (cx, cy)."""
    offsets = {0: (0, -30), 1: (-3, -33), 2: (3, -33), 3: (-6, -31), 4: (6, -31), 5: (-10, -20), 6: (10, -20),
               7: (-14, -8), 8: (14, -8), 9: (-16, 4), 10: (16, 4), 11: (-6, 4), 12: (6, 4), 13: (-7, 18),
               14: (7, 18), 15: (-8, 32), 16: (8, 32)}
    out = []
    for j in range(17):
        if j in drop:
            out += [0, 0, 0]
        else:
            dx, dy = offsets[j]
            out += [cx + dx * scale, cy + dy * scale, 2]
    return out


def uncompressed_rle(mask):
    """COCO's iscrowd RLE: run lengths of the column-major mask, starting with zeros."""
    flat = mask.flatten(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return {"counts": counts, "size": list(mask.shape)}


def write_dataset(root, n_images=8, category=CATEGORY, people=None, corrupt=(), extra_anns=(), name="train"):
    """A small COCO-format dataset under root: images/ + ann.json. Returns (images dir, ann path)."""
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(1, n_images + 1):
        fname = "%s_%03d.jpg" % (name, i)
        img = rng.integers(0, 255, size=(S, S, 3), dtype=np.uint8)
        if i in corrupt:
            (img_dir / fname).write_bytes(b"\xff\xd8 this is not really a jpeg" + bytes(50))
        else:
            cv2.imwrite(str(img_dir / fname), img)
        images.append({"id": i, "file_name": fname, "width": S, "height": S})
        for kps in (people(i) if people else [person17(30 + 4 * (i % 5), 45)]):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "keypoints": kps,
                         "num_keypoints": sum(1 for v in kps[2::3] if v > 0), "bbox": [0, 0, 10, 10], "area": 100})
    for a in extra_anns:
        anns.append(dict(a, id=len(anns) + 1))
    ann_path = root / ("%s.json" % name)
    ann_path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [category]}))
    return img_dir, ann_path


def cfg_for(images, ann, *extra):
    return load_config(None, [
        'DATA.train_data="custom"', "DATA.your_images=%s" % json.dumps(str(images)),
        "DATA.your_annotations=%s" % json.dumps(str(ann)), "DATA.workers=0",
        "MODEL.input_height=%d" % S, "MODEL.input_width=%d" % S, "TRAIN.batch_size=2"] + list(extra))


# -- COCO-17 -> COCO-18 ---------------------------------------------------------------------

def test_coco17_to_coco18_derives_the_neck():
    kp17 = np.array(person17(50, 50), np.float32).reshape(17, 3)
    kp18 = coco17_to_coco18(kp17)
    assert kp18.shape == (18, 3)
    for i, part in enumerate(COCO18.parts):
        if part != "neck":
            np.testing.assert_array_equal(kp18[i], kp17[COCO17_PARTS.index(part)])
    ls, rs = kp17[COCO17_PARTS.index("left_shoulder")], kp17[COCO17_PARTS.index("right_shoulder")]
    np.testing.assert_allclose(kp18[1], [(ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2, 2])
    one_shoulder = np.array(person17(50, 50, drop=(5,)), np.float32).reshape(17, 3)
    assert coco17_to_coco18(one_shoulder)[1, 2] == 0  # neck absent unless both shoulders are labelled
    hidden = one_shoulder.copy()
    hidden[5] = (40, 30, 1)  # one shoulder labelled but occluded: the neck is labelled, occluded
    assert coco17_to_coco18(hidden)[1, 2] == 1


# -- ignore mask ------------------------------------------------------------------------------

def test_ignore_mask_covers_crowds_and_unlabelled_people(tmp_path):
    crowd = np.zeros((S, S), np.uint8)
    crowd[60:90, 5:35] = 1
    extra = [
        {"image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": uncompressed_rle(crowd),
         "bbox": [5, 60, 30, 30], "area": 900, "num_keypoints": 0, "keypoints": [0] * 51},
        # a person nobody labelled: polygon outline, no keypoints
        {"image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[60, 5, 90, 5, 90, 35, 60, 35]],
         "bbox": [60, 5, 30, 30], "area": 900, "num_keypoints": 0, "keypoints": [0] * 51},
        # and one with only a box
        {"image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [70, 70, 16, 16], "area": 256, "num_keypoints": 0},
    ]
    images, ann = write_dataset(tmp_path, n_images=1, people=lambda i: [person17(40, 45, scale=0.8)],
                                extra_anns=extra)
    ds = read_keypoint_dataset(str(ann), str(images))
    rec = ds.records[0]
    assert rec.keypoints.shape == (1, 18, 3)  # only the labelled person is a target
    m = ignore_mask(rec.ignore, S, S)
    assert m.dtype == np.uint8 and m.shape == (S, S)
    assert (m[60:90, 5:35] == 0).all()                          # the crowd
    assert (m[6:35, 61:90] == 0).all()                          # the outlined unlabelled person
    assert (m[70:86, 70:86] == 0).all()                         # the boxed one
    assert (m[40:50, 40:50] == 255).all()                       # the labelled person counts
    assert (m == 0).sum() < 3 * 31 * 31                         # and nothing much else is ignored

    # Through the pipeline: the mask at map resolution is 0 where those regions are.
    cfg = cfg_for(images, ann, "AUGMENT.steps=[]", "TRAIN.batch_size=1")
    batch = next(iter(build_dataset(cfg, "train")))
    mask = batch["mask"].numpy()[0, :, :, 0]
    assert mask.shape == (S // 8, S // 8)
    assert (mask[8:11, 1:4] == 0).all()       # crowd cells (input 64..87, 8..31)
    assert (mask[1:4, 8:11] == 0).all()       # unlabelled person cells
    assert mask[5, 5] == 1.0                  # the labelled person
    assert 0 < mask[7, 0] <= 1 and mask[0, 0] == 1.0
    # No target peaks where only unlabelled people are.
    heat = batch["heatmaps"].numpy()[0]
    assert heat[1:4, 8:11, :18].max() < 0.05


def test_min_keypoints_moves_sparse_people_into_the_mask(tmp_path):
    images, ann = write_dataset(tmp_path, n_images=1, people=lambda i: [
        person17(30, 45), person17(70, 45, drop=tuple(range(2, 17)))])  # the second has 2 keypoints
    assert read_keypoint_dataset(str(ann), str(images), min_keypoints=1).records[0].keypoints.shape[0] == 2
    rec = read_keypoint_dataset(str(ann), str(images), min_keypoints=5).records[0]
    assert rec.keypoints.shape[0] == 1 and len(rec.ignore) == 1


# -- the batches --------------------------------------------------------------------------------

def test_batches_have_the_documented_contract_and_targets_sit_on_keypoints(tmp_path):
    images, ann = write_dataset(tmp_path, n_images=4)
    cfg = cfg_for(images, ann, "AUGMENT.steps=[]", "DATA.shuffle=false", "TRAIN.batch_size=2")
    batch = next(iter(build_dataset(cfg, "train")))
    assert batch["image"].dtype == tf.uint8 and tuple(batch["image"].shape) == (2, S, S, 3)
    assert batch["heatmaps"].dtype == tf.float32 and tuple(batch["heatmaps"].shape) == (2, 12, 12, 19)
    assert batch["pafs"].dtype == tf.float32 and tuple(batch["pafs"].shape) == (2, 12, 12, 38)
    assert batch["mask"].dtype == tf.float32 and tuple(batch["mask"].shape) == (2, 12, 12, 1)
    assert batch["sample_id"].dtype == tf.int64 and tuple(batch["sample_id"].shape) == (2,)
    ids = batch["sample_id"].numpy()
    assert list(ids) == [CUSTOM_ID_OFFSET + 1, CUSTOM_ID_OFFSET + 2]
    # The image is the file itself (no augmentation, same size).
    first = cv2.cvtColor(cv2.imread(str(images / "train_001.jpg")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(batch["image"].numpy()[0], first)
    # Each labelled part peaks at its keypoint, in the shared map convention.
    kp18 = coco17_to_coco18(np.array(person17(30 + 4, 45), np.float32).reshape(17, 3))
    heat = batch["heatmaps"].numpy()[0]
    for p in range(18):
        mx, my = input_to_map(kp18[p], 8)[:2]
        iy, ix = np.unravel_index(heat[:, :, p].argmax(), heat.shape[:2])
        assert abs(ix - mx) <= 0.5 + 1e-6 and abs(iy - my) <= 0.5 + 1e-6
    assert heat[:, :, 18].min() >= 0 and heat[:, :, 18].max() == pytest.approx(1.0, abs=1e-3)
    paf = batch["pafs"].numpy()[0]
    assert np.abs(paf).max() == pytest.approx(1.0, abs=1e-5)  # unit vectors on limbs
    np.testing.assert_array_equal(batch["mask"].numpy(), 1.0)


def test_same_seed_same_batches_other_seed_other_batches(tmp_path):
    images, ann = write_dataset(tmp_path, n_images=10)

    def first_batches(seed, n=3):
        cfg = cfg_for(images, ann, "TRAIN.seed=%d" % seed, "TRAIN.batch_size=3")
        return [{k: v.numpy() for k, v in b.items()} for b in build_dataset(cfg, "train").take(n)]

    a, b, c = first_batches(1), first_batches(1), first_batches(2)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert any(not np.array_equal(x["image"], z["image"]) for x, z in zip(a, c))
    assert any(not np.array_equal(x["sample_id"], z["sample_id"]) for x, z in zip(a, c))


def test_rank_shards_are_disjoint_and_cover_the_data(tmp_path):
    images, ann = write_dataset(tmp_path, n_images=11)
    cfg = cfg_for(images, ann, "TRAIN.batch_size=1")
    seen = []
    for rank in range(3):
        ids = [int(b["sample_id"].numpy()[0]) for b in build_dataset(cfg, "train", rank=rank, num_ranks=3, repeat=False)]
        assert len(ids) == len(set(ids))
        seen.append(set(ids))
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert set().union(*seen) == {CUSTOM_ID_OFFSET + i for i in range(1, 12)}
    # Each epoch reshuffles the rank's own shard, never reaching into another's.
    ids = [int(i) for b in build_dataset(cfg, "train", rank=1, num_ranks=3).take(12) for i in b["sample_id"].numpy()]
    assert set(ids) == seen[1] and ids[:4] != ids[4:8]
    with pytest.raises(ValueError, match="rank 3 is not in 0..2"):
        build_dataset(cfg, "train", rank=3, num_ranks=3)


@pytest.mark.slow
def test_worker_processes_give_the_same_batches_as_threads(tmp_path):
    images, ann = write_dataset(tmp_path, n_images=6)

    def batches(workers):
        cfg = cfg_for(images, ann, "DATA.workers=%d" % workers, "TRAIN.batch_size=2", "TRAIN.seed=3")
        return [{k: v.numpy() for k, v in b.items()} for b in build_dataset(cfg, "train").take(4)]

    for x, y in zip(batches(0), batches(2)):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


# -- bad samples ------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_corrupt_image_is_named_and_skipped(tmp_path, caplog, workers):
    images, ann = write_dataset(tmp_path, n_images=5, corrupt=(3,))
    cfg = cfg_for(images, ann, 'DATA.bad_sample="skip"', "TRAIN.batch_size=1", "DATA.workers=%d" % workers)
    with caplog.at_level(logging.WARNING, logger="openpose_plus.data"):
        ids = [int(b["sample_id"].numpy()[0]) for b in build_dataset(cfg, "train", repeat=False)]
    assert sorted(ids) == [CUSTOM_ID_OFFSET + i for i in (1, 2, 4, 5)]
    assert any("train_003.jpg" in r.getMessage() and "not a decodable image" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_corrupt_image_is_named_and_refused(tmp_path, workers):
    images, ann = write_dataset(tmp_path, n_images=5, corrupt=(2,))
    cfg = cfg_for(images, ann, 'DATA.bad_sample="error"', "DATA.shuffle=false", "TRAIN.batch_size=1",
                  "DATA.workers=%d" % workers)
    with pytest.raises(Exception) as info:
        for _ in build_dataset(cfg, "train", repeat=False):
            pass
    assert "train_002.jpg" in str(info.value) and "not a decodable image" in str(info.value)


def test_every_sample_bad_is_an_error_not_a_hang(tmp_path):
    images, ann = write_dataset(tmp_path, n_images=2, corrupt=(1, 2))
    cfg = cfg_for(images, ann, 'DATA.bad_sample="skip"', "TRAIN.batch_size=1")
    with pytest.raises(Exception, match="every sample of custom is unusable"):
        next(iter(build_dataset(cfg, "train")))


def test_broken_annotation_is_named_and_skipped_or_refused(tmp_path, caplog):
    def people(i):
        p = person17(40, 45)
        return [p[:-1]] if i == 2 else [p]  # image 2: 50 numbers instead of 51
    images, ann = write_dataset(tmp_path, n_images=4, people=people)
    with caplog.at_level(logging.WARNING, logger="openpose_plus.data"):
        ds = read_keypoint_dataset(str(ann), str(images), bad_sample="skip")
    assert [r.sample_id for r in ds.records] == [1, 3, 4]
    assert len(ds.skipped) == 1 and "train.json" in ds.skipped[0] and "train_002.jpg" in ds.skipped[0]
    assert any("keypoints has 50 values, expected 51" in r.getMessage() for r in caplog.records)
    with pytest.raises(BadSample, match=r"train.json: image 2 \(train_002.jpg\): annotation id 2: keypoints has 50"):
        read_keypoint_dataset(str(ann), str(images), bad_sample="error")
    cfg = cfg_for(images, ann, 'DATA.bad_sample="error"')
    with pytest.raises(BadSample, match="train.json"):
        build_dataset(cfg, "train")


def test_nan_keypoints_and_bad_boxes_are_broken_annotations(tmp_path):
    def people(i):
        p = person17(40, 45)
        if i == 1:
            p[3] = float("nan")
        return [p]
    images, ann = write_dataset(tmp_path, n_images=2, people=people)
    text = ann.read_text().replace("NaN", "NaN")  # json writes NaN, which Python's json reads back
    ann.write_text(text)
    with pytest.raises(BadSample, match="NaN"):
        read_keypoint_dataset(str(ann), str(images), bad_sample="error")


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a COCO annotation file"),
    (b'{"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}', "no category with 'keypoints'"),
])
def test_unreadable_annotation_file_is_named(tmp_path, content, message):
    ann = tmp_path / "ann.json"
    ann.write_bytes(content)
    with pytest.raises(BadSample) as info:
        read_keypoint_dataset(str(ann), str(tmp_path))
    assert "ann.json" in str(info.value) and message in str(info.value)


def test_missing_coco_points_at_the_downloader(tmp_path):
    cfg = load_config(None, ["DATA.coco_dir=%s" % json.dumps(str(tmp_path / "nowhere"))])
    with pytest.raises(FileNotFoundError, match="download-coco"):
        build_dataset(cfg, "train")


def test_annotation_index_cache_is_used(tmp_path):
    images, ann = write_dataset(tmp_path, n_images=3)
    cache = tmp_path / "cache"
    first = read_keypoint_dataset(str(ann), str(images), cache_dir=str(cache))
    assert len(list(cache.glob("index-*.pkl"))) == 1
    again = read_keypoint_dataset(str(ann), str(images), cache_dir=str(cache))
    assert [r.sample_id for r in again.records] == [r.sample_id for r in first.records]
    np.testing.assert_array_equal(again.records[0].keypoints, first.records[0].keypoints)


# -- custom skeletons and mixing ------------------------------------------------------------------------

HAND = {"id": 1, "name": "hand", "supercategory": "hand", "keypoints": ["wrist", "left_tip", "right_tip", "mid"],
        "skeleton": [[1, 4], [4, 2], [4, 3]]}


def test_custom_data_with_its_own_skeleton(tmp_path):
    def hand(i):
        return [[40, 70, 2, 30, 20, 2, 60, 20, 2, 45, 40, 2]]
    images, ann = write_dataset(tmp_path, n_images=4, category=HAND, people=hand)
    cfg = cfg_for(images, ann, 'MODEL.skeleton="from_data"', "AUGMENT.steps=[]")
    sk = dataset_skeleton(cfg)
    assert sk.parts == ("wrist", "left_tip", "right_tip", "mid") and sk.limbs == ((0, 3), (3, 1), (3, 2))
    assert sk.flip_pairs == ((1, 2),)
    batch = next(iter(build_dataset(cfg, "train")))
    assert tuple(batch["heatmaps"].shape) == (2, 12, 12, 5) and tuple(batch["pafs"].shape) == (2, 12, 12, 6)
    iy, ix = np.unravel_index(batch["heatmaps"].numpy()[0, :, :, 0].argmax(), (12, 12))
    assert (ix, iy) == (5, 8)  # the wrist at input (40, 70): map (4.56, 8.31)
    with pytest.raises(BadSample, match='set MODEL.skeleton = "from_data"'):
        dataset_skeleton(cfg_for(images, ann))


def test_coco_and_custom_mix_a_fixed_share_of_each_batch(tmp_path):
    coco = tmp_path / "coco"
    (coco / "annotations").mkdir(parents=True)
    img_dir, ann = write_dataset(tmp_path / "c", n_images=6, name="train2017")
    os.rename(img_dir, coco / "train2017")
    os.rename(ann, coco / "annotations" / "person_keypoints_train2017.json")
    c_img, c_ann = write_dataset(tmp_path / "custom", n_images=5, name="mine")
    cfg = load_config(None, [
        'DATA.train_data="coco_and_custom"', "DATA.coco_dir=%s" % json.dumps(str(coco)),
        "DATA.your_images=%s" % json.dumps(str(c_img)), "DATA.your_annotations=%s" % json.dumps(str(c_ann)),
        "DATA.custom_ratio=0.25", "DATA.workers=0", "MODEL.input_height=%d" % S, "MODEL.input_width=%d" % S,
        "TRAIN.batch_size=4"])
    assert split_batch(4, 0.25) == (3, 1)
    for batch in build_dataset(cfg, "train").take(5):
        ids = batch["sample_id"].numpy()
        assert len(ids) == 4
        assert (ids >= CUSTOM_ID_OFFSET).sum() == 1 and (ids < CUSTOM_ID_OFFSET).sum() == 3
    assert split_batch(8, 0.5) == (4, 4) and split_batch(8, 0.0) == (8, 0) and split_batch(2, 0.01) == (1, 1)


def test_synthetic_training_data_renders_on_the_fly():
    cfg = load_config(None, ['DATA.train_data="synthetic"', "DATA.synthetic_size=6", "DATA.workers=0",
                             "MODEL.input_height=64", "MODEL.input_width=64", "TRAIN.batch_size=3"])
    assert dataset_skeleton(cfg) is COCO18
    batches = list(build_dataset(cfg, "train", repeat=False))
    assert len(batches) == 2
    assert sorted(int(i) for b in batches for i in b["sample_id"].numpy()) == list(range(6))
    assert all(b["heatmaps"].numpy()[..., :18].max() > 0.5 for b in batches)
    val = next(iter(build_dataset(cfg, "val", repeat=False)))
    assert tuple(val["image"].shape)[1:] == (64, 64, 3)


def test_targets_equal_the_edge_renderer_on_every_person():
    """Skipping people who cannot reach the frame changes nothing (edge/targets.py is the reference)."""
    from openpose_plus.edge.targets import render_heatmaps, render_pafs
    from openpose_plus.host_training.data.pipeline import ExampleMaker, SyntheticSource

    cfg = load_config(None, ['DATA.train_data="synthetic"', "MODEL.input_height=64", "MODEL.input_width=96"])
    maker = ExampleMaker(cfg, SyntheticSource(1, 96, 64, 1, 0), COCO18, augment=False)
    rng = np.random.default_rng(0)
    for _ in range(30):
        kp = np.zeros((6, 18, 3), np.float32)
        kp[..., 0] = rng.uniform(-400, 500, size=(6, 1)) + rng.uniform(-40, 40, size=(6, 18))
        kp[..., 1] = rng.uniform(-300, 360, size=(6, 1)) + rng.uniform(-40, 40, size=(6, 18))
        kp[..., 2] = rng.choice([0, 1, 2], size=(6, 18))
        image = np.zeros((64, 96, 3), np.uint8)
        _, heat, paf, mask, sid, ok = maker.targets(image, kp, None, 5)
        ref_kp = input_to_map(kp, 8)
        ref_heat = render_heatmaps(ref_kp, COCO18, 8, 12, cfg.targets.heatmap_sigma)
        ref_heat[ref_heat < np.finfo(np.float32).tiny] = 0
        np.testing.assert_array_equal(heat, ref_heat)
        np.testing.assert_array_equal(paf, render_pafs(ref_kp, COCO18, 8, 12, cfg.targets.paf_width))
        assert ok and sid == 5 and mask.shape == (8, 12, 1)


HVD_SCRIPT = '''
import json, sys

def main():
    import horovod.tensorflow as hvd
    from openpose_plus.host_training.config import load_config
    from openpose_plus.host_training.data.pipeline import build_dataset

    hvd.init()
    cfg = load_config(sys.argv[1])
    ids = [int(i) for b in build_dataset(cfg, "train", rank=hvd.rank(), num_ranks=hvd.size(), repeat=False)
           for i in b["sample_id"].numpy()]
    with open("%s/rank%d.json" % (sys.argv[2], hvd.rank()), "w") as f:
        json.dump({"rank": hvd.rank(), "size": hvd.size(), "ids": ids}, f)

if __name__ == "__main__":
    main()
'''


@pytest.mark.slow
def test_horovod_ranks_read_disjoint_shards_through_worker_processes(tmp_path):
    """Two real Horovod ranks (gloo on loopback), each with its own spawned data workers."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("horovod.tensorflow")
    images, ann = write_dataset(tmp_path / "data", n_images=9)
    cfg = cfg_for(images, ann, "DATA.workers=1", "TRAIN.batch_size=1")
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    (tmp_path / "w.py").write_text(HVD_SCRIPT)
    exe = Path(sys.executable).with_name("horovodrun")
    launcher = [str(exe)] if exe.exists() else [sys.executable, "-m", "horovod.runner.launch"]
    proc = subprocess.run(launcher + ["-np", "2", "-H", "localhost:2", "--gloo", sys.executable, str(tmp_path / "w.py"),
                                      str(tmp_path / "c.toml"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / ("rank%d.json" % r)).read_text()) for r in range(2)]
    assert [r["size"] for r in ranks] == [2, 2]
    a, b = set(ranks[0]["ids"]), set(ranks[1]["ids"])
    assert len(a) == len(ranks[0]["ids"]) and len(b) == len(ranks[1]["ids"])
    assert not (a & b)
    assert a | b == {CUSTOM_ID_OFFSET + i for i in range(1, 10)}
