"""CMU OpenPose weight import into ``vgg``: caffemodel (current and V1 layers) and PyTorch names.

The test writes its weight files itself: a caffemodel encoded byte by byte in the protobuf
wire format (independently of the reader, which uses the protobuf library), and .npz
state_dicts with the names of the two common PyTorch conversions.
"""
from __future__ import annotations


import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow
tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from openpose_plus.edge.skeleton import COCO18, Skeleton  # noqa: E402
from openpose_plus.host_training.models import build_model  # noqa: E402
from caffe_wire import caffemodel_bytes  # noqa: E402
from openpose_plus.host_training.weights import (TORCH_NUMBERED, WeightsError,  # noqa: E402
                                                 load_openpose_weights, read_caffemodel)


# -- CMU's COCO body network, written out independently of the model code ----------------------

def cmu_layers(stages: int = 6):
    """(name, out, in, kernel) of every conv in pose_deploy_linevec.prototxt."""
    convs = [("conv1_1", 64, 3, 3), ("conv1_2", 64, 64, 3), ("conv2_1", 128, 64, 3), ("conv2_2", 128, 128, 3),
             ("conv3_1", 256, 128, 3), ("conv3_2", 256, 256, 3), ("conv3_3", 256, 256, 3), ("conv3_4", 256, 256, 3),
             ("conv4_1", 512, 256, 3), ("conv4_2", 512, 512, 3), ("conv4_3_CPM", 256, 512, 3),
             ("conv4_4_CPM", 128, 256, 3)]
    for b, n in ((1, 38), (2, 19)):
        convs += [("conv5_1_CPM_L%d" % b, 128, 128, 3), ("conv5_2_CPM_L%d" % b, 128, 128, 3),
                  ("conv5_3_CPM_L%d" % b, 128, 128, 3), ("conv5_4_CPM_L%d" % b, 512, 128, 1),
                  ("conv5_5_CPM_L%d" % b, n, 512, 1)]
    for s in range(2, stages + 1):
        for b, n in ((1, 38), (2, 19)):
            convs += [("Mconv1_stage%d_L%d" % (s, b), 128, 185, 7)]
            convs += [("Mconv%d_stage%d_L%d" % (i, s, b), 128, 128, 7) for i in range(2, 6)]
            convs += [("Mconv6_stage%d_L%d" % (s, b), 128, 128, 1), ("Mconv7_stage%d_L%d" % (s, b), n, 128, 1)]
    return convs


def random_blobs(layers, seed=0):
    rng = np.random.default_rng(seed)
    return {name: [(rng.standard_normal((o, i, k, k)) * 0.01).astype(np.float32),
                   rng.standard_normal(o).astype(np.float32)] for name, o, i, k in layers}


def blobs_of(model):
    """A network's own conv weights, in caffe layout (for reduced-width files)."""
    out = {}
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            k, b = layer.get_weights()
            out[layer.name] = [np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1))), b]
    return out


def conv1_reference(kernel_caffe, bias, rgb_image, y, x):
    """conv1_1 + ReLU at one interior pixel as CMU's network computes it: BGR, x / 256 - 0.5."""
    bgr = rgb_image[..., ::-1].astype(np.float64) / 256.0 - 0.5
    patch = bgr[y - 1:y + 2, x - 1:x + 2, :]  # (kh, kw, c)
    out = np.einsum("ocij,ijc->o", kernel_caffe.astype(np.float64), patch) + bias
    return np.maximum(out, 0.0)


def check_loaded(model, blobs):
    for name, (w, b) in blobs.items():
        try:
            layer = model.get_layer(name)
        except ValueError:
            continue
        kernel, bias = layer.get_weights()
        expect = np.transpose(w, (2, 3, 1, 0))
        if name == "conv1_1":
            expect = expect[:, :, ::-1, :]
        np.testing.assert_array_equal(kernel, expect, err_msg=name)
        np.testing.assert_array_equal(bias, b, err_msg=name)


# -- tests ---------------------------------------------------------------------------------------

@pytest.mark.slow  # 209 MB of weights: ~10 s on an idle 2-core machine
def test_full_cmu_caffemodel_loads_into_vgg(tmp_path):
    layers = cmu_layers()
    blobs = random_blobs(layers)
    path = tmp_path / "pose_iter_440000.caffemodel"
    path.write_bytes(caffemodel_bytes(blobs))
    assert sum(w.size + b.size for w, b in blobs.values()) == 52311446

    model = build_model("vgg", COCO18, 64, 64)
    report = load_openpose_weights(model, path)
    assert len(report.loaded) == len(layers) == 12 + 10 + 5 * 14
    assert not report.missing and not report.skipped and not report.unused
    check_loaded(model, blobs)

    # The imported first layer computes what CMU's computes on the BGR image.
    rgb = np.random.default_rng(5).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    conv1 = keras.Model(model.inputs, model.get_layer("conv1_1").output)(rgb).numpy()[0]
    for y, x in ((5, 7), (30, 41), (62, 1)):
        ref = conv1_reference(blobs["conv1_1"][0], blobs["conv1_1"][1], rgb[0], y, x)
        np.testing.assert_allclose(conv1[y, x], ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("v1", [False, True], ids=["layer", "V1 layers"])
def test_caffemodel_reader_reads_both_layer_forms(tmp_path, v1):
    model = build_model("vgg", COCO18, 32, 32, stages=2, width=0.125)
    blobs = blobs_of(build_model("vgg", COCO18, 32, 32, stages=2, width=0.125))
    path = tmp_path / "net.caffemodel"
    path.write_bytes(caffemodel_bytes(blobs, v1=v1))
    read = read_caffemodel(path)
    assert sorted(read) == sorted(blobs) and "relu1_1" not in read
    for name in blobs:
        np.testing.assert_array_equal(read[name][0], blobs[name][0])
    load_openpose_weights(model, path)
    check_loaded(model, blobs)


def test_numbered_pytorch_state_dict_npz(tmp_path):
    blobs = random_blobs(cmu_layers(stages=3), seed=1)
    caffe_to_torch = {v: k for k, v in TORCH_NUMBERED.items()}
    state = {}
    for name, (w, b) in blobs.items():
        state["module." + caffe_to_torch[name] + ".weight"] = w  # DataParallel prefix, as often saved
        state["module." + caffe_to_torch[name] + ".bias"] = b
    assert "module.model0.25.weight" in state and "module.model3_2.12.bias" in state
    path = tmp_path / "pose_model.npz"
    np.savez(path, **state)
    model = build_model("vgg", COCO18, 32, 32, stages=3)
    report = load_openpose_weights(model, path)
    assert len(report.loaded) == len(blobs)
    check_loaded(model, blobs)


def test_named_pytorch_state_dict_npz(tmp_path):
    model = build_model("vgg", COCO18, 32, 32, stages=2, width=0.125)
    blobs = blobs_of(build_model("vgg", COCO18, 32, 32, stages=2, width=0.125))
    state = {}
    for name, (w, b) in blobs.items():
        block = "model0" if not name.startswith(("conv5", "Mconv")) else \
            "model%s_%s" % ("1" if name.startswith("conv5") else name.split("stage")[1][0], name[-1])
        state["%s.%s.weight" % (block, name)] = w
        state["%s.%s.bias" % (block, name)] = b
    assert "model1_1.conv5_1_CPM_L1.weight" in state and "model2_2.Mconv7_stage2_L2.bias" in state
    path = tmp_path / "body_pose_model.npz"
    np.savez(path, **state)
    load_openpose_weights(model, path)
    check_loaded(model, blobs)


@pytest.mark.slow  # two VGG networks: ~5 s
def test_custom_skeleton_keeps_its_own_heads_when_asked(tmp_path):
    hand = Skeleton("hand", ("wrist", "thumb", "index"), ((0, 1), (0, 2)))
    blobs = random_blobs(cmu_layers(stages=2), seed=2)
    path = tmp_path / "cmu.caffemodel"
    path.write_bytes(caffemodel_bytes(blobs))
    model = build_model("vgg", hand, 32, 32, stages=2)
    before = model.get_layer("conv5_5_CPM_L1").get_weights()[0].copy()
    with pytest.raises(WeightsError, match=r"layer conv5_5_CPM_L\d has shapes \[\(1, 1, 512, \d\), \(\d,\)\] in the network but"):
        load_openpose_weights(model, path)
    # Nothing was assigned by the failed import.
    np.testing.assert_array_equal(model.get_layer("conv5_5_CPM_L1").get_weights()[0], before)
    assert not np.array_equal(model.get_layer("conv1_1").get_weights()[1], blobs["conv1_1"][1])
    report = load_openpose_weights(model, path, skip_mismatched=True)
    assert sorted(report.skipped) == sorted(["conv5_5_CPM_L1", "conv5_5_CPM_L2", "Mconv1_stage2_L1",
                                             "Mconv1_stage2_L2", "Mconv7_stage2_L1", "Mconv7_stage2_L2"])
    np.testing.assert_array_equal(model.get_layer("conv4_2").get_weights()[1], blobs["conv4_2"][1])


def test_bad_files_are_named(tmp_path):
    model = build_model("vgg", COCO18, 32, 32, stages=2, width=0.125)
    blobs = blobs_of(model)
    good = caffemodel_bytes(blobs)
    truncated = tmp_path / "cut.caffemodel"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(WeightsError, match="cut.caffemodel: not a caffemodel, or truncated"):
        load_openpose_weights(model, truncated)
    partial = tmp_path / "partial.caffemodel"
    partial.write_bytes(caffemodel_bytes({k: v for k, v in blobs.items() if not k.startswith("Mconv")}))
    with pytest.raises(WeightsError, match="14 of the network.s layers are not in the file: Mconv1_stage2_L1"):
        load_openpose_weights(model, partial)
    assert load_openpose_weights(model, partial, allow_missing=True).missing
    with pytest.raises(WeightsError, match="no such weight file"):
        load_openpose_weights(model, tmp_path / "absent.caffemodel")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(WeightsError, match="junk.npz: not a readable .npz"):
        load_openpose_weights(model, junk)
    foreign = tmp_path / "resnet.npz"
    np.savez(foreign, **{"layer1.0.conv1.weight": np.zeros((1, 1, 1, 1), np.float32)})
    with pytest.raises(WeightsError, match="no OpenPose layer names"):
        load_openpose_weights(model, foreign)
    with pytest.raises(WeightsError, match="needs torch"):
        (tmp_path / "pose.pth").write_bytes(b"\x80\x02")
        load_openpose_weights(model, tmp_path / "pose.pth")
    with pytest.raises(WeightsError, match="unknown weight format"):
        (tmp_path / "w.h5").write_bytes(b"x")
        load_openpose_weights(model, tmp_path / "w.h5")


def test_model_pretrained_takes_cmu_weights_or_a_run(tmp_path):
    from openpose_plus.host_training.train import TrainingError, load_pretrained

    source = build_model("vgg", COCO18, 32, 32, stages=2, width=0.125)
    path = tmp_path / "cmu.caffemodel"
    path.write_bytes(caffemodel_bytes(blobs_of(source)))
    model = build_model("vgg", COCO18, 32, 32, stages=2, width=0.125)
    assert "loaded 36 layers" in load_pretrained(model, str(path))
    check_loaded(model, blobs_of(source))

    # A run directory: its latest checkpoint.
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=source), str(tmp_path / "run" / "checkpoints"), 2)
    manager.save()
    fresh = build_model("vgg", COCO18, 32, 32, stages=2, width=0.125)
    assert load_pretrained(fresh, str(tmp_path / "run")).endswith("ckpt-1")
    for a, b in zip(source.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(TrainingError, match="holds no checkpoint"):
        (tmp_path / "empty").mkdir()
        load_pretrained(fresh, str(tmp_path / "empty"))
