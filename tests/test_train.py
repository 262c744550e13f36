"""Training on real TensorFlow: a tiny network overfits synthetic people; runs resume; logs.

Everything is small (64x64 inputs, vggtiny, a handful of images) so it runs on a CPU.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow
tf = pytest.importorskip("tensorflow")

from openpose_plus.edge.skeleton import COCO18, Skeleton  # noqa: E402
from openpose_plus.host_training.checkpoints import RunError, load_trained_model  # noqa: E402
from openpose_plus.host_training.config import load_config  # noqa: E402
from openpose_plus.host_training.models import num_stages  # noqa: E402
from openpose_plus.host_training.train import (TrainingError, learning_rate_at,  # noqa: E402
                                               train)


def tiny_config(out, *extra):
    return load_config(None, [
        "DATA.train_data=\"synthetic\"", "DATA.workers=0", "DATA.synthetic_size=4", "DATA.synthetic_people=2",
        "MODEL.name=\"vggtiny\"", "MODEL.input_height=64", "MODEL.input_width=64", "MODEL.stages=1",
        "AUGMENT.steps=[]", "TRAIN.batch_size=4", "TRAIN.learning_rate=1e-3", "TRAIN.weight_decay=0.0",
        "TRAIN.lr_schedule.kind=\"constant\"", "TRAIN.log_every=5", "TRAIN.image_every=1000",
        "TRAIN.checkpoint_every=1000", "TRAIN.output_dir=\"%s\"" % out, *extra])


def read_events(log_dir):
    """{tag: [(step, kind)]} from the TensorBoard event files of a run."""
    tags = {}
    for path in Path(log_dir).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                kind = value.metadata.plugin_data.plugin_name or "?"
                tags.setdefault(value.tag, []).append((event.step, kind))
    return tags


@pytest.mark.slow
def test_tiny_network_overfits_a_handful_of_synthetic_images(tmp_path):
    cfg = tiny_config(tmp_path / "run", "TRAIN.steps=160", "TRAIN.log_every=40", "TRAIN.image_every=80",
                      "TRAIN.checkpoint_every=80", "MODEL.stages=2")
    stream = io.StringIO()
    result = train(cfg, stream=stream)
    losses = result.losses
    assert len(losses) == 160 and all(math.isfinite(v) for v in losses)
    start, end = np.mean(losses[:3]), np.mean(losses[-5:])
    assert start / end >= 5.0, "loss only fell from %.3f to %.3f" % (start, end)

    run = tmp_path / "run"
    assert load_config(run / "config.toml") == cfg  # the resolved config is kept beside the checkpoints
    assert Skeleton.from_dict(json.loads((run / "skeleton.json").read_text())) == COCO18
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-160.index", "ckpt-80.index"]
    tags = read_events(run / "logs")
    for tag in ("loss/total", "loss/stage1_heatmaps", "loss/stage2_pafs", "lr", "samples_per_s"):
        assert [s for s, _ in tags[tag]] == [40, 80, 120, 160], tag
    for tag in ("input", "heatmaps/target", "heatmaps/predicted", "pafs/predicted", "people/predicted"):
        assert [s for s, k in tags[tag]] == [80, 160] and tags[tag][0][1] == "images", tag
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("step 160/160 [") and "loss" in lines[-1] and "samples_s" in lines[-1]
    assert len(lines) == 4  # a line every TRAIN.log_every steps into a non-terminal stream

    # The trained network comes back out of the run with the same outputs.
    model, cfg2, skeleton = load_trained_model(run)
    assert cfg2 == cfg and skeleton == COCO18 and num_stages(model) == 2
    from openpose_plus.host_training.data.pipeline import build_dataset
    batch = next(iter(build_dataset(cfg, "train")))
    heat = model(batch["image"])[-2].numpy()
    err = np.abs(heat - batch["heatmaps"].numpy())
    assert err.mean() < 0.1


@pytest.mark.slow  # ~10 s of CPU
def test_resume_continues_from_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    first = train(tiny_config(run, "TRAIN.steps=4", "TRAIN.checkpoint_every=2"), stream=io.StringIO())
    assert (first.first_step, first.last_step) == (0, 4)
    model, _, _ = load_trained_model(run)
    saved = [v.numpy().copy() for v in model.trainable_variables]

    seen = []

    def on_step(step, batch, loss):
        seen.append(step)

    resumed_cfg = tiny_config(run, "TRAIN.steps=6", "TRAIN.resume=true", "TRAIN.learning_rate=1e-9")
    second = train(resumed_cfg, on_step=on_step, stream=io.StringIO())
    assert (second.first_step, second.last_step) == (4, 6) and seen == [4, 5]
    # A near-zero rate: the resumed run started from the saved weights, not from a fresh init.
    for a, b in zip(saved, [v.numpy() for v in second.model.trainable_variables]):
        np.testing.assert_allclose(a, b, atol=1e-4)
    ckpt = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64))
    ckpt.read(str(run / "checkpoints" / "ckpt-6")).expect_partial()
    assert int(ckpt.step.numpy()) == 6


def test_learning_rate_warms_up_then_is_scaled_and_decays():
    cfg = load_config(None, ["TRAIN.learning_rate=0.01", "TRAIN.steps=1000", "TRAIN.lr_schedule.warmup_steps=10",
                             "TRAIN.lr_schedule.kind=\"step\"", "TRAIN.lr_schedule.decay_steps=100",
                             "TRAIN.lr_schedule.decay_rate=0.5"]).train
    assert learning_rate_at(cfg, 0, ranks=4) == pytest.approx(0.004)
    assert learning_rate_at(cfg, 9, ranks=4) == pytest.approx(0.04)  # x4 ranks once warm
    assert learning_rate_at(cfg, 109, ranks=4) == pytest.approx(0.04)
    assert learning_rate_at(cfg, 110, ranks=4) == pytest.approx(0.02)
    assert learning_rate_at(cfg, 9, ranks=1) == pytest.approx(0.01)
    cos = load_config(None, ["TRAIN.learning_rate=0.01", "TRAIN.steps=1000", "TRAIN.scale_lr=false",
                             "TRAIN.lr_schedule.kind=\"cosine\"", "TRAIN.lr_schedule.decay_steps=100",
                             "TRAIN.lr_schedule.min_lr=0.001"]).train
    assert learning_rate_at(cos, 0, ranks=8) == pytest.approx(0.01)
    assert learning_rate_at(cos, 50, ranks=8) == pytest.approx(0.0055)
    assert learning_rate_at(cos, 500, ranks=8) == pytest.approx(0.001)


@pytest.mark.slow
def test_mixed_precision_trains_with_float32_outputs(tmp_path):
    import keras
    result = train(tiny_config(tmp_path / "run", "TRAIN.steps=2", "TRAIN.mixed_precision=true"),
                   stream=io.StringIO())
    assert len(result.losses) == 2 and all(math.isfinite(v) for v in result.losses)
    assert keras.mixed_precision.global_policy().name == "float32"  # the global policy is put back
    model, _, _ = load_trained_model(tmp_path / "run")
    assert model.outputs[-1].dtype == "float32"


@pytest.mark.slow  # ~5 s of CPU in-process, more with workers
@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "2 workers"])
def test_a_corrupt_image_is_named_and_skipped_or_refused(tmp_path, workers):
    from openpose_plus.host_training.data.synthetic import SynthOptions, write_dataset

    data = tmp_path / "data"
    write_dataset(data, 4, opts=SynthOptions(width=64, height=64, min_people=1, max_people=2), show_progress=False)
    bad = data / "train2017" / "000000000002.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated JPEG
    common = ["DATA.train_data=\"custom\"", "DATA.your_images=\"%s\"" % (data / "train2017"),
              "DATA.your_annotations=\"%s\"" % (data / "annotations" / "person_keypoints_train2017.json"),
              "DATA.shuffle=false", "TRAIN.steps=2", "TRAIN.batch_size=2", "DATA.workers=%d" % workers]
    with pytest.raises(TrainingError, match=r"failed at step 0: BadSample: \S*000000000002.jpg: not a decodable"):
        train(tiny_config(tmp_path / "refuse", "DATA.bad_sample=\"error\"", *common), stream=io.StringIO())
    seen = []
    result = train(tiny_config(tmp_path / "skip", "DATA.bad_sample=\"skip\"", *common), stream=io.StringIO(),
                   on_step=lambda step, batch, loss: seen.extend(batch["sample_id"].tolist()))
    assert result.last_step == 2 and len(seen) == 4


def test_data_that_does_not_fit_the_network_is_an_error(tmp_path):
    # Maps of a 64x64 input, images of 72x64: the run stops before training, saying why.
    from openpose_plus.host_training import train as train_module

    cfg = tiny_config(tmp_path / "run", "TRAIN.steps=1")
    bigger = tiny_config(tmp_path / "run", "TRAIN.steps=1", "MODEL.input_height=72")
    real = train_module.build_dataset
    try:
        train_module.build_dataset = lambda c, *a, **k: real(bigger, *a, **k)
        with pytest.raises(TrainingError, match=r"heatmaps are \(9, 8, 19\) per sample but network"):
            train(cfg, stream=io.StringIO())
    finally:
        train_module.build_dataset = real


def test_load_trained_model_names_what_is_missing(tmp_path):
    with pytest.raises(RunError, match="not a training run directory"):
        load_trained_model(tmp_path / "nothing")
    (tmp_path / "run").mkdir()
    with pytest.raises(RunError, match="no config.toml"):
        load_trained_model(tmp_path / "run")


@pytest.mark.slow  # ~5 s of CPU
def test_train_cli_runs_from_a_config_file(tmp_path, capsys):
    from openpose_plus.commands import main

    cfg = tiny_config(tmp_path / "run", "TRAIN.steps=2")
    path = tmp_path / "train.toml"
    path.write_text(cfg.to_toml())
    assert main(["train", "--config", str(path), "--set", "TRAIN.steps=3"]) == 0
    assert "trained steps 0..3" in capsys.readouterr().out
    assert main(["train", "--config", str(path), "--set", "TRAIN.bogus=1"]) == 2
    assert "TRAIN.bogus: unknown key" in capsys.readouterr().err
