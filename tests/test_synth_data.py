"""synth-data: a COCO-format dataset of drawn people that pycocotools reads and scores."""
import contextlib
import io
import json

import numpy as np
import pytest

from openpose_plus.commands import main
from openpose_plus.edge.skeleton import COCO17_PARTS, coco18_to_coco17
from openpose_plus.host_training.data.coco import read_keypoint_dataset
from openpose_plus.host_training.data.synthetic import SynthOptions, render_sample, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    rc = main(["synth-data", str(out), "--images", "6", "--val", "3", "--seed", "3", "--size", "160x120",
               "--workers", "1", "--quiet"])
    assert rc == 0
    return out


def test_layout_is_coco_2017(dataset):
    assert sorted(p.name for p in (dataset / "train2017").iterdir()) == ["%012d.jpg" % i for i in range(1, 7)]
    assert len(list((dataset / "val2017").iterdir())) == 3
    for split in ("train", "val"):
        assert (dataset / "annotations" / ("person_keypoints_%s2017.json" % split)).exists()
    assert not list((dataset / "annotations").glob("*.tmp")) and not list((dataset / "annotations").glob(".partial-*"))


def test_annotations_are_valid_coco_keypoints(dataset):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(dataset / "annotations" / "person_keypoints_train2017.json"))
    cat = coco.loadCats(1)[0]
    assert tuple(cat["keypoints"]) == COCO17_PARTS and len(cat["skeleton"]) == 19
    assert len(coco.getImgIds()) == 6
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 6
    for a in anns:
        kps = np.array(a["keypoints"]).reshape(17, 3)
        assert set(np.unique(kps[:, 2])) <= {0, 1, 2}
        assert a["num_keypoints"] == int((kps[:, 2] > 0).sum())
        assert (kps[kps[:, 2] == 0] == 0).all()
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 160 and y + h <= 120 and a["area"] > 0
        assert a["segmentation"] and all(len(poly) >= 6 for poly in a["segmentation"])
        lab = kps[kps[:, 2] > 0]
        if len(lab):  # labelled parts are inside the frame
            assert (lab[:, 0] >= 0).all() and (lab[:, 0] <= 159).all() and (lab[:, 1] <= 119).all()
        # the person's outline is where the mask is: annToMask agrees with the area
        assert abs(coco.annToMask(a).sum() - a["area"]) <= 0.35 * a["area"] + 20


def test_ground_truth_scores_ap_one_with_cocoeval(dataset):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(dataset / "annotations" / "person_keypoints_val2017.json"))
        results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
                   for a in gt.loadAnns(gt.getAnnIds()) if a["num_keypoints"] > 0]
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_the_pipeline_reads_it_as_coco18(dataset):
    ds = read_keypoint_dataset(str(dataset / "annotations" / "person_keypoints_train2017.json"),
                               str(dataset / "train2017"))
    assert ds.skeleton.name == "coco18" and len(ds.records) >= 5
    kp = ds.records[0].keypoints
    assert kp.shape[1:] == (18, 3)
    both = (kp[:, 2, 2] > 0) & (kp[:, 5, 2] > 0)
    np.testing.assert_allclose(kp[both, 1, :2], (kp[both, 2, :2] + kp[both, 5, :2]) / 2, atol=0.02)


def test_same_seed_same_dataset_and_workers_do_not_change_it(tmp_path):
    opts = SynthOptions(width=96, height=96, seed=11)
    a = write_dataset(tmp_path / "a", 4, 0, opts, workers=1, show_progress=False)
    b = write_dataset(tmp_path / "b", 4, 0, opts, workers=2, show_progress=False)
    assert json.loads(a["train"].read_text()) == json.loads(b["train"].read_text())
    for i in range(1, 5):
        name = "train2017/%012d.jpg" % i
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    c = write_dataset(tmp_path / "c", 4, 0, SynthOptions(width=96, height=96, seed=12), show_progress=False)
    assert json.loads(c["train"].read_text())["annotations"] != json.loads(a["train"].read_text())["annotations"]


def test_render_sample_splits_differ_and_neck_is_dropped():
    opts = SynthOptions(width=128, height=96, seed=0)
    tr, _ = render_sample(opts, "train", 0)
    va, _ = render_sample(opts, "val", 0)
    assert not np.array_equal(tr, va)
    kp18 = np.arange(18 * 3, dtype=np.float32).reshape(1, 18, 3)
    kp17 = coco18_to_coco17(kp18)
    assert kp17.shape == (1, 17, 3)
    assert (kp17[0, COCO17_PARTS.index("left_wrist")] == kp18[0, 7]).all()


def test_person_heights_stay_in_the_asked_range():
    opts = SynthOptions(width=200, height=150, min_people=1, max_people=1, seed=4, min_height=0.5, max_height=0.6)
    tops = []
    for i in range(12):
        _, anns = render_sample(opts, "train", i)
        kp = np.asarray(anns[0]["keypoints"], np.float32).reshape(17, 3)
        ys = kp[kp[:, 2] > 0, 1]
        tops.append(float(ys.max() - ys.min()))
    # Keypoints span most of a figure (nose or eyes to ankles); the frame may cut some.
    assert max(tops) <= 0.6 * 150 and np.median(tops) >= 0.5 * 150 * 0.7


def test_cli_refuses_bad_arguments(tmp_path, capsys):
    assert main(["synth-data", str(tmp_path), "--images", "1", "--height", "0.6", "0.3"]) == 2
    assert "--height needs 0 < MIN <= MAX" in capsys.readouterr().err
    assert main(["synth-data", str(tmp_path), "--images", "0"]) == 2
    assert "--images must be positive" in capsys.readouterr().err
    assert main(["synth-data", str(tmp_path), "--images", "1", "--people", "3", "1"]) == 2
    with pytest.raises(SystemExit):
        main(["synth-data", str(tmp_path), "--images", "1", "--size", "big"])


@pytest.mark.tensorflow
def test_bench_data_measures_decode_and_pipeline_rates(dataset, capsys):
    """The benchmark runs end to end on a dataset (its numbers are for the report, not asserted)."""
    pytest.importorskip("tensorflow")
    rc = main(["bench", "data", "--data", str(dataset), "--samples", "8", "--batch-size", "4",
               "--set", "DATA.workers=0", "--set", "MODEL.input_height=96", "--set", "MODEL.input_width=96"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "jpeg decode" in out and "full pipeline" in out and "samples/s" in out
    rates = [float(line.split()[2]) for line in out.splitlines() if line.startswith(("jpeg", "full"))]
    assert len(rates) == 2 and all(r > 0 for r in rates)
