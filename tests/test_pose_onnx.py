"""The one builder of random-weight pose networks (benches/_pose_onnx.py): tests and benches."""
import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from openpose_plus.benches._pose_onnx import demo_pose_onnx, pose_onnx  # noqa: E402
from openpose_plus.edge.skeleton import COCO18  # noqa: E402


def _run(model, height, width):
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    return session.run(None, {"image": image})


def test_tiny_and_demo_networks_are_shaped_like_an_export():
    for model in (pose_onnx(96, 64), demo_pose_onnx(96, 64)):
        heat, paf = _run(model, 64, 96)
        assert heat.shape == (1, COCO18.num_heatmaps, 8, 12) and paf.shape == (1, COCO18.num_pafs, 8, 12)
        assert 0 < heat.min() and heat.max() < 1 and -1 <= paf.min() and paf.max() <= 1  # sigmoid, tanh
    # the demo's heads are biased low: sparse peaks, as a trained model's
    assert np.median(_run(demo_pose_onnx(96, 64), 64, 96)[0]) < np.median(_run(pose_onnx(96, 64), 64, 96)[0])
    assert len(demo_pose_onnx(96, 64)) > 20 * len(pose_onnx(96, 64))  # 32-64-128 channels and 4 more convs


def test_same_seed_same_network_other_seed_other_weights():
    assert pose_onnx(32, 32, seed=1) == pose_onnx(32, 32, seed=1)
    assert pose_onnx(32, 32, seed=1) != pose_onnx(32, 32, seed=2)


@pytest.mark.parametrize("size", [(100, 64), (96, 0)])
def test_a_size_that_is_not_a_multiple_of_8_is_refused(size):
    with pytest.raises(ValueError, match="multiple of 8"):
        pose_onnx(*size)
