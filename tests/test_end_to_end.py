"""The whole chain, through the CLI a user types, with real parts and no mocks.

``synth-data`` -> ``train`` (one process, and two Horovod ranks over gloo) -> ``export`` ->
``calibrate --precision int8`` -> ``run synthetic://... --write-json``. The network is tiny
and trains a few steps, so nothing here asks it to find people: the point is that every
command takes what the one before it wrote. Whether a *trained* model finds people is asked
of the shipped demo bundle (``models/demo/``), when the repository has one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.tensorflow
pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("horovod.tensorflow")

from test_horovod import horovodrun  # noqa: E402  (how the Horovod test finds horovodrun)

from openpose_plus.edge.bundle import load_bundle  # noqa: E402
from openpose_plus.edge.openpose_json import OPENPOSE_JSON_VERSION  # noqa: E402
from openpose_plus.edge.skeleton import COCO18  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO_BUNDLE = REPO / "models" / "demo"
CLI = [sys.executable, "-m", "openpose_plus.commands"]  # what the `openpose-plus` script runs
FRAMES = 50
TRAIN_IMAGES, VAL_IMAGES = 8, 4
STEPS = 3

TRAIN_TOML = textwrap.dedent('''
    # A tiny network on the synthetic COCO-layout set: a few steps, to prove the chain, not to learn.
    [DATA]
    train_data = "coco"
    coco_dir = "{data}"
    workers = 0

    [MODEL]
    name = "mobilenet"
    input_width = 64
    input_height = 64
    width = 0.25
    stages = 1

    [AUGMENT]
    steps = [{{name = "flip", prob = 0.5}}]

    [TRAIN]
    batch_size = 2
    steps = {steps}
    learning_rate = 1e-3
    log_every = 1
    checkpoint_every = {steps}
    image_every = 1000
    output_dir = "{out}"

    [TRAIN.lr_schedule]
    kind = "constant"
''')


def cli(*args, cwd: Path, timeout: float = 300, prefix=None) -> subprocess.CompletedProcess:
    """Run ``openpose-plus ARGS`` (or ``PREFIX + python -m ... ARGS``); fail showing its output unless rc 0."""
    cmd = (list(prefix) if prefix else []) + CLI + [str(a) for a in args]
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(cmd, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, "%s exited %d\n--- stdout\n%s\n--- stderr\n%s" % (
        " ".join(cmd), proc.returncode, proc.stdout[-3000:], proc.stderr[-5000:])
    return proc


def check_openpose_json(directory: Path, frames: int, width: int, height: int, skeleton=COCO18):
    """Every frame's file is OpenPose's format; returns the people per frame, keypoints checked in-frame."""
    files = sorted(directory.glob("*_keypoints.json"))
    assert [f.name for f in files] == ["%012d_keypoints.json" % i for i in range(frames)]
    counts = []
    for f in files:
        doc = json.loads(f.read_text())
        assert doc["version"] == OPENPOSE_JSON_VERSION and isinstance(doc["people"], list), f.name
        for person in doc["people"]:
            kp = person["pose_keypoints_2d"]
            assert len(kp) == skeleton.num_parts * 3 and all(isinstance(v, (int, float)) for v in kp), f.name
            for x, y, c in zip(kp[0::3], kp[1::3], kp[2::3]):
                if c > 0:  # a found keypoint lies in the frame (missing ones are 0, 0, 0)
                    assert 0 <= x <= width and 0 <= y <= height, (f.name, x, y)
        counts.append(len(doc["people"]))
    return counts


@pytest.mark.slow
def test_synthetic_data_to_trained_exported_calibrated_running_model(tmp_path):
    # 1. A synthetic COCO-format dataset.
    data = tmp_path / "data"
    cli("synth-data", data, "--images", TRAIN_IMAGES, "--val", VAL_IMAGES, "--size", "96x96", "--people", 1, 2,
        "--height", 0.5, 0.95, "--seed", 3, "--workers", 1, "--quiet", cwd=tmp_path)
    val_images, val_ann = data / "val2017", data / "annotations" / "person_keypoints_val2017.json"
    assert len(list((data / "train2017").iterdir())) == TRAIN_IMAGES
    assert len(list(val_images.iterdir())) == VAL_IMAGES and val_ann.is_file()

    # 2. Train on it: one process, then two Horovod ranks over gloo on loopback.
    config = tmp_path / "train.toml"
    config.write_text(TRAIN_TOML.format(data=data, steps=STEPS, out=tmp_path / "unused"))
    single, parallel = tmp_path / "run-single", tmp_path / "run-hvd"
    proc = cli("train", "--config", config, "--set", 'TRAIN.output_dir="%s"' % single, cwd=tmp_path)
    assert "trained steps 0..%d" % STEPS in proc.stdout
    proc = cli("train", "--config", config, "--set", 'TRAIN.output_dir="%s"' % parallel, "--parallel", cwd=tmp_path,
               prefix=horovodrun() + ["-np", "2", "-H", "localhost:2", "--gloo"], timeout=420)
    assert "trained steps 0..%d" % STEPS in proc.stdout  # rank 0 reports (the other rank prints nothing)
    for run in (single, parallel):
        assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-%d.index" % STEPS], run
        assert (run / "config.toml").is_file() and (run / "skeleton.json").is_file()
    assert 'train_mode = "parallel"' in (parallel / "config.toml").read_text()

    # 3. Export the Horovod run (its latest checkpoint) to a bundle.
    bundle = tmp_path / "bundle"
    proc = cli("export", parallel, "--out", bundle, "--check-images", 2, cwd=tmp_path)
    summary = json.loads(proc.stdout)
    assert Path(summary["bundle"]) == bundle and summary["images_checked"] == 2
    b = load_bundle(str(bundle))
    assert (b.input_width, b.input_height, b.stride) == (64, 64, 8) and b.skeleton == COCO18
    assert b.models == {"fp32": "model.onnx"} and b.calibration_cache_path is None
    assert b.meta["extra"]["source"]["model"] == "mobilenet"

    # 4. INT8 calibration on the synthetic val images, AP measured on the held-out set.
    # Untrained, the network's AP is ~0 at every precision: the budget is opened so that the
    # (meaningless) AP difference cannot send it into the sensitivity search.
    cli("calibrate", bundle, "--images", val_images, "--num-images", VAL_IMAGES, "--precision", "int8",
        "--method", "minmax", "--val-images", val_images, "--val-annotations", val_ann,
        "--max-ap-drop", 100, "--quiet", cwd=tmp_path)
    b = load_bundle(str(bundle))  # the rewritten bundle passes its own check
    assert b.models == {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
    assert (bundle / "model.int8.onnx").is_file() and (bundle / "calibration.cache").is_file()
    assert b.calibration_cache_path and "int8" in b.precisions
    assert set(b.accuracy) == {"fp32", "fp16", "int8"} and all("AP" in a for a in b.accuracy.values())
    int8 = b.meta["extra"]["calibration"]["int8"]
    assert int8["status"] == "ok" and int8["num_images"] == VAL_IMAGES and int8["method"] == "minmax"

    # 5. The edge runtime runs the INT8 model on rendered people, writing OpenPose JSON.
    out = tmp_path / "json"
    proc = cli("run", "synthetic://160x120?people=2&seed=1", "--bundle", bundle, "--backend", "onnxruntime",
               "--precision", "int8", "--frames", FRAMES, "--write-json", out, "--quiet", cwd=tmp_path)
    run_summary = json.loads(proc.stderr.strip().splitlines()[-1])
    assert run_summary["frames"] == FRAMES and not run_summary["frame_errors"] and not any(
        run_summary["sink_errors"].values())
    check_openpose_json(out, FRAMES, 160, 120)  # people or none: a 3-step network is no detector


@pytest.mark.slow
@pytest.mark.skipif(not (DEMO_BUNDLE / "meta.json").is_file(),
                    reason="no shipped demo bundle at models/demo/ (`make demo-model` trains one)")
def test_shipped_demo_bundle_finds_the_people_it_was_trained_for(tmp_path):
    out = tmp_path / "json"
    width, height = 320, 240  # the demo's frames: 1-3 synthetic people
    proc = cli("run", "synthetic://%dx%d?people=2&seed=5" % (width, height), "--bundle", DEMO_BUNDLE,
               "--frames", FRAMES, "--write-json", out, "--quiet", cwd=tmp_path)
    assert json.loads(proc.stderr.strip().splitlines()[-1])["frames"] == FRAMES
    counts = check_openpose_json(out, FRAMES, width, height, load_bundle(str(DEMO_BUNDLE)).skeleton)
    with_people = sum(c >= 1 for c in counts)
    assert with_people >= 0.8 * FRAMES, "people found in only %d of %d frames: %s" % (with_people, FRAMES, counts)
