"""COCO keypoint evaluation: perfect maps score AP 1.0, none score 0, bad input is named.

Perfect predictions are the ground truth rendered as maps (the training targets) and fed
through the whole path: letterbox, the edge's C grouping, back to image pixels, COCO-17
results, pycocotools COCOeval.
"""
from __future__ import annotations

import hashlib
import json
import os

import cv2
import numpy as np
import pytest

pytest.importorskip("pycocotools")

from coco_fixtures import person_annotation, write_annotations  # noqa: E402
from openpose_plus.edge.preprocess import Preprocessor  # noqa: E402
from openpose_plus.edge.skeleton import COCO17_TO_COCO18, COCO18, Skeleton, coco17_to_coco18  # noqa: E402
from openpose_plus.edge.synthetic.figures import random_scene  # noqa: E402
from openpose_plus.edge.targets import render_targets  # noqa: E402
from openpose_plus.evaluation.coco import (EvalError, EvalSettings, evaluate,  # noqa: E402
                                                  evaluate_predictions, load_coco,
                                                  to_coco_keypoints)

W, H = 320, 240                 # image size
SETTINGS = dict(input_width=256, input_height=192, stride=8)


def write_val_set(root, n_images=4, seed=0):
    """A COCO-format val set of big, separate people (keypoints from edge.synthetic)."""
    rng = np.random.default_rng(seed)
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, anns = [], []
    for image_id in range(1, n_images + 1):
        while True:
            people = random_scene(rng, int(rng.integers(1, 4)), W, H, person_height=(150, 200))
            # Both shoulders labelled, so COCO's 17 give the neck that joins head and body
            # (without it one person is two fragments, for OpenPose as for us).
            if (people[:, [2, 5], 2] > 0).all():
                break
        picture = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)  # content is irrelevant here
        name = "%012d.jpg" % image_id
        cv2.imwrite(str(root / "val2017" / name), picture)
        images.append({"id": image_id, "file_name": name, "width": W, "height": H})
        anns += [person_annotation(p, len(anns) + 1 + i, image_id) for i, p in enumerate(people)]
    ann_file = root / "annotations" / "person_keypoints_val2017.json"
    write_annotations(ann_file, images, anns)
    return ann_file


def perfect_map_fn(ann_file, image_dir, settings):
    """A 'network' that answers each val image with its ground truth rendered as maps."""
    coco = load_coco(ann_file)
    pre = Preprocessor(settings.input_width, settings.input_height)
    table = {}
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        image = cv2.cvtColor(cv2.imread(str(image_dir / info["file_name"])), cv2.COLOR_BGR2RGB)
        batch = np.zeros((1, settings.input_height, settings.input_width, 3), np.uint8)
        lb = pre(image, batch)
        kp17 = np.array([a["keypoints"] for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id))],
                        np.float32).reshape(-1, 17, 3)
        kp_map = lb.image_to_map(coco17_to_coco18(kp17), settings.stride)
        heat, paf = render_targets(kp_map, COCO18, settings.input_height // 8, settings.input_width // 8,
                                   sigma=7 / 8, limb_width=1.0)
        table[hashlib.sha1(batch.tobytes()).hexdigest()] = (heat[None], paf[None])

    def map_fn(batch):
        return table[hashlib.sha1(batch.tobytes()).hexdigest()]
    return map_fn


def test_perfect_predictions_score_ap_1(tmp_path):
    ann = write_val_set(tmp_path)
    settings = EvalSettings(**SETTINGS)
    summary = evaluate(ann, tmp_path / "val2017", perfect_map_fn(ann, tmp_path / "val2017", settings), settings,
                       out_dir=tmp_path / "eval", draw=2, show_progress=False)
    assert summary["AP"] == pytest.approx(1.0) and summary["AP50"] == pytest.approx(1.0)
    assert summary["AP75"] == pytest.approx(1.0) and summary["AR"] == pytest.approx(1.0)
    coco = load_coco(ann)
    assert summary["people"] == len(coco.getAnnIds()) and summary["images"] == 4
    results = json.loads((tmp_path / "eval" / "keypoint_results.json").read_text())
    assert len(results) == summary["people"] and all(len(r["keypoints"]) == 51 for r in results)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["AP"] == pytest.approx(1.0)
    drawn = sorted(p.name for p in (tmp_path / "eval" / "drawn").iterdir())
    assert drawn == ["000000000001.jpg", "000000000002.jpg"]
    assert cv2.imread(str(tmp_path / "eval" / "drawn" / drawn[0])).shape == (H, W, 3)


def test_empty_predictions_score_0(tmp_path):
    ann = write_val_set(tmp_path, n_images=2)
    coco = load_coco(ann)
    scores = evaluate_predictions(coco, [])
    assert scores["AP"] == 0.0 and scores["AR"] == 0.0 and set(scores) >= {"AP", "AP50", "AP75", "AR"}
    settings = EvalSettings(**SETTINGS)
    h, w = settings.input_height // 8, settings.input_width // 8
    nothing = (np.zeros((1, 19, h, w), np.float32), np.zeros((1, 38, h, w), np.float32))
    summary = evaluate(ann, tmp_path / "val2017", lambda batch: nothing, settings, show_progress=False)
    assert summary["AP"] == 0.0 and summary["people"] == 0


def test_wrong_people_score_below_right_ones(tmp_path):
    ann = write_val_set(tmp_path, n_images=3, seed=1)
    coco = load_coco(ann)
    right, shifted = [], []
    for a in coco.loadAnns(coco.getAnnIds()):
        kp = np.array(a["keypoints"], np.float32).reshape(17, 3)
        right.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1.0})
        kp[:, 0] += 6.0  # every part 6 px off
        shifted.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1.0})
    assert evaluate_predictions(coco, right)["AP"] == pytest.approx(1.0)
    assert 0.0 < evaluate_predictions(coco, shifted)["AP"] < 0.9


def test_coco18_people_become_coco17_rows():
    kp18 = np.zeros((1, 18, 3), np.float32)
    kp18[0, :, 0] = np.arange(18)  # x = the COCO-18 index
    kp18[0, :, 2] = 1.0
    rows = to_coco_keypoints(kp18, COCO18).reshape(1, 17, 3)
    # COCO-17 slot j holds the COCO-18 part that maps to it; the neck (1) is gone.
    expected = [COCO17_TO_COCO18.index(j) for j in range(17)]
    assert rows[0, :, 0].tolist() == expected and 1 not in expected


def test_skeletons_naming_cocos_17_keypoints_are_scored_on_them():
    from openpose_plus.calibration.importers.presets import TRT_POSE_HUMAN
    from openpose_plus.edge.skeleton import BODY25, COCO17_PARTS

    for sk in (BODY25, TRT_POSE_HUMAN):
        kp = np.zeros((1, sk.num_parts, 3), np.float32)
        kp[0, :, 0] = np.arange(sk.num_parts)
        rows = to_coco_keypoints(kp, sk).reshape(1, 17, 3)
        assert [sk.parts[int(i)] for i in rows[0, :, 0]] == list(COCO17_PARTS), sk.name
    custom = Skeleton("hand", ("a", "b"), ((0, 1),))
    assert to_coco_keypoints(np.ones((1, 2, 3), np.float32), custom).shape == (1, 6)


def test_bad_maps_and_images_are_named(tmp_path):
    ann = write_val_set(tmp_path, n_images=2)
    settings = EvalSettings(**SETTINGS)
    h, w = settings.input_height // 8, settings.input_width // 8
    nan = np.full((1, 19, h, w), np.nan, np.float32)
    paf = np.zeros((1, 38, h, w), np.float32)
    with pytest.raises(EvalError, match=r"000000000001.jpg: heatmaps: hold NaN"):
        evaluate(ann, tmp_path / "val2017", lambda b: (nan, paf), settings, show_progress=False)
    with pytest.raises(EvalError, match=r"heatmaps: expected NCHW \(1, 19, 24, 32\), got \(1, 24, 32, 19\)"):
        evaluate(ann, tmp_path / "val2017", lambda b: (np.zeros((1, h, w, 19), np.float32), paf), settings,
                 show_progress=False)
    bad = tmp_path / "val2017" / "000000000002.jpg"
    bad.write_bytes(bad.read_bytes()[:30])
    zeros = (np.zeros((1, 19, h, w), np.float32), paf)
    with pytest.raises(EvalError, match="000000000002.jpg: not a readable image"):
        evaluate(ann, tmp_path / "val2017", lambda b: zeros, settings, show_progress=False)
    settings.bad_image = "skip"
    assert evaluate(ann, tmp_path / "val2017", lambda b: zeros, settings, show_progress=False)["images"] == 1
    broken = tmp_path / "broken.json"
    broken.write_text("{\"images\": [")
    with pytest.raises((EvalError, ValueError), match="broken.json"):
        load_coco(broken)
    with pytest.raises(EvalError, match="annotation file not found"):
        load_coco(tmp_path / "absent.json")


def test_evaluate_cli_scores_a_bundle_on_onnxruntime(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from edge_fixtures import make_bundle

    from openpose_plus.commands import main

    ann = write_val_set(tmp_path / "data", n_images=2)
    bundle = make_bundle(tmp_path, width=96, height=64, heat_bias=0.0)
    rc = main(["evaluate", bundle, "--data", str(tmp_path / "data"), "--draw", "1", "--quiet",
               "--out", str(tmp_path / "eval")])
    assert rc == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.rindex("}") + 1])
    assert summary["images"] == 2 and 0.0 <= summary["AP"] <= 1.0
    assert (tmp_path / "eval" / "metrics.json").is_file() and len(list((tmp_path / "eval" / "drawn").iterdir())) == 1
    assert ann.is_file()
    assert main(["evaluate", str(tmp_path / "nowhere"), "--data", str(tmp_path / "data")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_writes_a_bundles_results_under_the_current_directory(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    import tarfile

    from edge_fixtures import make_bundle

    from openpose_plus.commands import main

    write_val_set(tmp_path / "data", n_images=1)
    bundle = make_bundle(tmp_path / "models", width=96, height=64)
    before = sorted(os.listdir(bundle))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["evaluate", bundle, "--data", str(tmp_path / "data"), "--quiet"]) == 0
    name = os.path.basename(os.path.normpath(bundle))
    assert (work / "out" / "evaluate" / name / "metrics.json").is_file()
    assert sorted(os.listdir(bundle)) == before  # the bundle is an input: nothing written into it
    with tarfile.open(tmp_path / "packed.tar", "w") as tar:
        tar.add(bundle, arcname=".")
    assert main(["evaluate", str(tmp_path / "packed.tar"), "--data", str(tmp_path / "data"), "--quiet"]) == 0
    assert (work / "out" / "evaluate" / "packed" / "metrics.json").is_file()
    assert "results: out/evaluate/packed/keypoint_results.json" in capsys.readouterr().out


def test_scoring_needs_no_tensorflow():
    import subprocess
    import sys
    code = ("import sys, openpose_plus.evaluation.coco as e; "
            "assert 'tensorflow' not in sys.modules, 'evaluate imported tensorflow'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
@pytest.mark.tensorflow
def test_evaluate_cli_on_a_training_run(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from openpose_plus.commands import main
    from openpose_plus.host_training.config import load_config
    from openpose_plus.host_training.train import train

    write_val_set(tmp_path / "data", n_images=2)
    cfg = load_config(None, ["DATA.train_data=\"synthetic\"", "DATA.workers=0", "DATA.synthetic_size=2",
                             "MODEL.name=\"mobilenet\"", "MODEL.input_height=64", "MODEL.input_width=96",
                             "AUGMENT.steps=[]", "TRAIN.batch_size=2", "TRAIN.steps=1",
                             "EVAL.group={peak_threshold = 0.2}",
                             "TRAIN.output_dir=\"%s\"" % (tmp_path / "run")])
    train(cfg)
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "data"), "--quiet", "--draw", "1"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.rindex("}") + 1])
    assert summary["images"] == 2 and 0.0 <= summary["AP"] <= 1.0
    assert (tmp_path / "run" / "eval" / "metrics.json").is_file()
    assert len(list((tmp_path / "run" / "eval" / "drawn").iterdir())) == 1


def test_pictures_show_maps_and_people_where_they_are():
    from openpose_plus.host_training.pictures import heatmap_picture, paf_picture, side_by_side, skeleton_picture

    image = np.full((64, 96, 3), 40, np.uint8)
    people = random_scene(np.random.default_rng(0), 1, 12, 8, person_height=(6, 7))  # map cells
    heat, paf = render_targets(people, COCO18, 8, 12, sigma=0.8, limb_width=1.0)
    hp = heatmap_picture(image, heat.transpose(1, 2, 0))
    pp = paf_picture(image, paf.transpose(1, 2, 0))
    assert hp.shape == pp.shape == image.shape and hp.dtype == np.uint8
    # The neck's peak is coloured; a corner far from everyone is left as it was.
    nx, ny = (people[0, 1, :2] * 8 + 3.5).round().astype(int)
    assert np.abs(hp[ny, nx].astype(int) - 40).sum() > 60
    far = np.unravel_index(heat[:-1].max(axis=0).argmin(), heat.shape[1:])
    fy, fx = far[0] * 8 + 3, far[1] * 8 + 3
    assert np.abs(hp[fy, fx].astype(int) - 40).sum() < 10 and np.abs(pp[fy, fx].astype(int) - 40).sum() < 10
    kp = people.copy()
    kp[..., :2] = kp[..., :2] * 8 + 3.5
    sp = skeleton_picture(image, kp, COCO18)
    assert (sp != image).any(axis=-1).sum() > 100 and (sp[ny - 1:ny + 2, nx - 1:nx + 2] != 40).any()
    assert side_by_side([hp, pp, sp]).shape == (64, 288, 3)
