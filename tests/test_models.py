"""The three networks and the masked L2 loss, on real TensorFlow (CPU, tiny inputs)."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow
tf = pytest.importorskip("tensorflow")

from openpose_plus.edge.skeleton import COCO18, Skeleton  # noqa: E402
from openpose_plus.host_training.loss import masked_l2, pose_loss, weight_decay_loss  # noqa: E402
from openpose_plus.host_training.models import (MODELS, build_model, inference_model,  # noqa: E402
                                                 num_stages, register, split_stages)

HAND = Skeleton("hand", ("wrist", "thumb", "index", "pinky"), ((0, 1), (0, 2), (0, 3)))
TINY = {"vgg": dict(stages=2, width=0.125), "vggtiny": dict(stages=2, width=0.125),
        "mobilenet": dict(stages=2, width=0.25)}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("skeleton", [COCO18, HAND], ids=["coco18", "hand"])
def test_every_network_gives_per_stage_maps_at_stride_8(name, skeleton):
    model = build_model(name, skeleton, 64, 96, **TINY[name])
    assert model.inputs[0].dtype == "uint8" and tuple(model.inputs[0].shape) == (None, 64, 96, 3)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    outputs = model(image)
    assert num_stages(model) == 2 and len(outputs) == 4
    for heat, paf in split_stages(outputs):
        assert heat.shape == (2, 8, 12, skeleton.num_heatmaps) and heat.dtype == tf.float32
        assert paf.shape == (2, 8, 12, skeleton.num_pafs) and paf.dtype == tf.float32
        assert np.isfinite(heat.numpy()).all() and np.isfinite(paf.numpy()).all()
    # Different images give different maps: the input really reaches the heads.
    assert not np.allclose(outputs[-1][0].numpy(), outputs[-1][1].numpy())


def test_normalisation_is_inside_the_model():
    model = build_model("vggtiny", COCO18, 64, 64, stages=1, width=0.125)
    norm = model.get_layer("normalise")
    out = norm(np.array([[[[0, 128, 255]]]], np.uint8)).numpy().ravel()
    np.testing.assert_allclose(out, [-0.5, 0.0, 255 / 256 - 0.5], atol=1e-6)


def test_vgg_is_the_openpose_paper_network():
    model = build_model("vgg", COCO18, 64, 64)
    assert num_stages(model) == 6
    names = {layer.name for layer in model.layers}
    backbone = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
                "conv3_4", "conv4_1", "conv4_2"]  # VGG19's first ten conv layers
    assert set(backbone + ["conv4_3_CPM", "conv4_4_CPM", "conv5_5_CPM_L1", "Mconv7_stage6_L2"]) <= names
    assert model.get_layer("Mconv1_stage2_L1").kernel.shape == (7, 7, 185, 128)  # 38 + 19 + 128 in
    assert model.get_layer("conv5_5_CPM_L2").kernel.shape == (1, 1, 512, 19)
    # CMU's published COCO body model holds 52,311,446 parameters.
    assert model.count_params() == 52311446


def test_inference_model_keeps_the_last_stage_in_either_layout():
    model = build_model("mobilenet", COCO18, 64, 64, stages=2, width=0.25)
    image = np.random.default_rng(1).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    full = model(image)
    nhwc = inference_model(model)
    assert list(nhwc.output_names) == ["heatmaps", "pafs"]
    heat, paf = nhwc(image)  # noqa
    np.testing.assert_allclose(heat.numpy(), full[-2].numpy(), atol=1e-6)
    np.testing.assert_allclose(paf.numpy(), full[-1].numpy(), atol=1e-6)
    heat_c, paf_c = inference_model(model, nchw=True)(image)
    assert heat_c.shape == (1, 19, 8, 8) and paf_c.shape == (1, 38, 8, 8)
    np.testing.assert_allclose(heat_c.numpy(), np.transpose(heat.numpy(), (0, 3, 1, 2)), atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="multiples of 8"):
        build_model("vggtiny", COCO18, 60, 64)
    with pytest.raises(ValueError, match="unknown MODEL.name 'resnet'"):
        build_model("resnet", COCO18, 64, 64)
    with pytest.raises(ValueError, match="stages"):
        build_model("vgg", COCO18, 64, 64, stages=0)


def test_register_adds_a_network():
    def one_stage(skeleton, h, w, **_):
        return build_model("vggtiny", skeleton, h, w, stages=1, width=0.125)
    register("test_tiny_net", one_stage)
    try:
        assert num_stages(build_model("test_tiny_net", HAND, 32, 32)) == 1
        with pytest.raises(ValueError, match="already registered"):
            register("test_tiny_net", one_stage)
    finally:
        MODELS.pop("test_tiny_net")


def test_masked_l2_matches_numpy_and_the_mask_removes_loss():
    rng = np.random.default_rng(2)
    pred = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    target = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    mask = (rng.random((3, 4, 5, 1)) > 0.5).astype(np.float32)
    expected = 0.5 * ((pred - target) ** 2 * mask).sum() / 3
    assert float(masked_l2(pred, target, mask)) == pytest.approx(expected, rel=1e-5)
    # Errors only where the mask is 0 cost nothing; the same errors where it is 1 do.
    bad = target + (1.0 - mask) * 5.0
    assert float(masked_l2(bad, target, mask)) == 0.0
    assert float(masked_l2(target + mask * 5.0, target, mask)) > 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        masked_l2(pred, target[:, :2], mask)


def test_pose_loss_sums_every_stage():
    rng = np.random.default_rng(3)
    heat_t = rng.random((2, 4, 4, 3)).astype(np.float32)
    paf_t = rng.random((2, 4, 4, 2)).astype(np.float32)
    mask = np.ones((2, 4, 4, 1), np.float32)
    outs = [heat_t + 1, paf_t, heat_t, paf_t - 2]
    total, parts = pose_loss(outs, heat_t, paf_t, mask)
    assert sorted(parts) == ["stage1_heatmaps", "stage1_pafs", "stage2_heatmaps", "stage2_pafs"]
    assert float(parts["stage1_heatmaps"]) == pytest.approx(0.5 * 96 / 2)  # 96 cells off by 1
    assert float(parts["stage2_pafs"]) == pytest.approx(0.5 * 4 * 64 / 2)  # 64 cells off by 2
    assert float(parts["stage1_pafs"]) == 0.0
    assert float(total) == pytest.approx(24.0 + 64.0)
    with pytest.raises(ValueError, match="per stage"):
        pose_loss(outs[:3], heat_t, paf_t, mask)


def test_weight_decay_counts_kernels_only():
    model = build_model("vggtiny", HAND, 32, 32, stages=1, width=0.125)
    kernels = [v.numpy() for v in model.trainable_variables if v.name == "kernel"]
    expected = 1e-3 * sum(0.5 * (k ** 2).sum() for k in kernels)
    assert float(weight_decay_loss(model.trainable_variables, 1e-3)) == pytest.approx(expected, rel=1e-5)
    assert float(weight_decay_loss(model.trainable_variables, 0.0)) == 0.0


@pytest.mark.slow  # builds and times every network: ~5 s
def test_bench_train_prints_a_row_per_network(capsys):
    import argparse

    from openpose_plus.benches import train as bench_train

    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    args = parser.parse_args(["--models", "vggtiny", "--size", "64x48", "--steps", "1", "--runs", "1",
                              "--batch-size", "1", "--stages", "1"])
    assert bench_train.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "input 64x48, training batch 1"
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[2:]}
    assert list(rows) == ["vggtiny"]
    assert rows["vggtiny"][0] == pytest.approx(2.11, abs=0.01) and all(v > 0 for v in rows["vggtiny"])
    assert bench_train.run(parser.parse_args(["--models", "resnet"])) == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "65x64"])
