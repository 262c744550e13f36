"""Export: a real Keras network -> tf2onnx -> a checked bundle; onnxruntime must match TensorFlow.

Bundle corruption checks (missing/altered/truncated files, newer format) live in
test_bundle.py; here is what export adds: the graph's interface (uint8 NHWC in, NCHW maps
out, no Transpose at the edges), the TF-vs-ORT gate, meta.json's export facts, and the CLI
from a real training run directory.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow
pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")

import keras  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402

from openpose_plus.edge.bundle import load_bundle  # noqa: E402
from openpose_plus.commands import main  # noqa: E402
from openpose_plus.edge.skeleton import COCO18  # noqa: E402
from openpose_plus.host_training.export import (ExportError, compare_with_tensorflow, edge_transposes,  # noqa: E402
                                                export_model, normalisation_of)
from openpose_plus.host_training.models import build_model, inference_model  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)  # untrained but deterministic: agreement, not AP, is the point
    model = build_model("mobilenet", COCO18, SIZE, SIZE, stages=1)  # one stage: a smaller graph, a faster test
    out = tmp_path_factory.mktemp("export") / "bundle"
    result = export_model(model, str(out), COCO18, config="digest-of-the-training-config", pad_value=128,
                          num_check_images=2)
    return model, result


def test_onnxruntime_matches_tensorflow_on_new_images(exported):
    model, result = exported
    assert result.images_checked == 2 and max(result.max_abs_diff) <= 1e-4
    bundle = load_bundle(result.bundle)
    session = ort.InferenceSession(bundle.model_path(), providers=["CPUExecutionProvider"])
    infer = inference_model(model)
    rng = np.random.default_rng(7)
    for _ in range(2):  # images export did not see
        x = rng.integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
        heat, paf = session.run([bundle.heatmaps_name, bundle.pafs_name], {bundle.input_name: x})
        t_heat, t_paf = (np.transpose(np.asarray(t), (0, 3, 1, 2)) for t in infer([x], training=False))
        assert heat.shape == (1, 19, SIZE // 8, SIZE // 8) and paf.shape == (1, 38, SIZE // 8, SIZE // 8)
        assert np.abs(heat - t_heat).max() <= 1e-4 and np.abs(paf - t_paf).max() <= 1e-4
        assert np.abs(t_heat).max() > 1e-2  # the comparison is of real signal, not of zeros


def test_graph_interface_is_the_bundle_contract(exported):
    _, result = exported
    proto = onnx.load(os.path.join(result.bundle, "model.onnx"))
    onnx.checker.check_model(proto)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [13]
    (inp,) = proto.graph.input
    assert inp.name == "image" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, SIZE, SIZE, 3]
    assert [o.name for o in proto.graph.output] == ["heatmaps", "pafs"]
    assert edge_transposes(proto) == []
    producers = {out: n.op_type for n in proto.graph.node for out in n.output}
    consumers = [n.op_type for n in proto.graph.node if "image" in n.input]
    assert consumers == ["Cast"] and producers["heatmaps"] != "Transpose" and producers["pafs"] != "Transpose"
    assert proto.ir_version <= 8


def test_meta_json_says_what_the_graph_does(exported):
    model, result = exported
    b = load_bundle(result.bundle)
    assert (b.input_width, b.input_height, b.stride, b.pad_value) == (SIZE, SIZE, 8, 128)
    assert b.skeleton == COCO18 and (b.heatmaps_name, b.pafs_name) == ("heatmaps", "pafs")
    assert b.training_config_digest == "digest-of-the-training-config"
    norm = b.meta["normalisation"]
    assert norm == {"mean": [128.0] * 3, "std": [256.0] * 3, "in_graph": True}
    assert normalisation_of(model) == (norm["mean"], norm["std"])
    exp = b.meta["extra"]["export"]
    assert exp["opset"] == 13 and exp["tolerance"] == 1e-4 and exp["images_checked"] == 2
    assert exp["max_abs_diff_vs_tensorflow"]["heatmaps"] == result.max_abs_diff[0]
    assert set(b.meta["files"]) == {"model.onnx"}


def test_a_graph_that_disagrees_with_tensorflow_fails_the_export(exported):
    model, result = exported
    onnx_bytes = open(os.path.join(result.bundle, "model.onnx"), "rb").read()
    images = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    infer = inference_model(model)
    assert max(compare_with_tensorflow(infer, onnx_bytes, images)) <= 1e-4
    head = model.get_layer("initial_pafs_2")  # the PAF head: the network changes after export
    weights = head.get_weights()
    try:
        # A bias shift moves every PAF value by 1e-2, 100x the tolerance, whatever the untrained
        # weights are (scaling them by 1.001 once moved the maps by less than 1e-4).
        head.set_weights([weights[0], weights[1] + 1e-2])
        with pytest.raises(ExportError, match="onnxruntime disagrees with TensorFlow.*pafs .*not trusted"):
            compare_with_tensorflow(infer, onnx_bytes, images)
    finally:
        head.set_weights(weights)


def test_bad_export_requests_are_refused(exported, tmp_path):
    model, _ = exported
    with pytest.raises(ExportError, match="opset 11 is too old"):
        export_model(model, str(tmp_path / "b"), COCO18, opset=11)
    with pytest.raises(ExportError, match="check image 0"):
        export_model(model, str(tmp_path / "b"), COCO18, images=[np.zeros((10, 10, 3), np.uint8)])
    assert not (tmp_path / "b").exists()
    x = keras.Input((SIZE, SIZE, 3), dtype="uint8", name="image")
    bare = keras.Model(x, [keras.layers.Conv2D(19, 8, strides=8)(keras.layers.Rescaling(1.0)(x)),
                           keras.layers.Conv2D(38, 8, strides=8)(keras.layers.Rescaling(1.0)(x))])
    with pytest.raises(ExportError, match="no 'normalise' layer"):
        export_model(bare, str(tmp_path / "b"), COCO18)


@pytest.mark.slow
def test_export_cli_from_a_training_run(tmp_path, capsys):
    from openpose_plus.host_training.checkpoints import CHECKPOINT_DIR, build_network, write_run_files
    from openpose_plus.host_training.config import load_config

    cfg = load_config(overrides=["MODEL.name=vggtiny", "MODEL.input_width=64", "MODEL.input_height=48"])
    run = tmp_path / "run"
    write_run_files(run, cfg, COCO18)
    keras.utils.set_random_seed(3)
    model = build_network(cfg, COCO18)
    prefix = tf.train.Checkpoint(model=model).save(str(run / CHECKPOINT_DIR / "ckpt"))
    rc = main(["export", prefix, "--out", str(tmp_path / "out"), "--tar", "--check-images", "2"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bundle"].endswith("out.tar") and summary["images_checked"] == 2
    b = load_bundle(summary["bundle"])
    assert b.training_config_digest == cfg.digest() and (b.input_width, b.input_height) == (64, 48)
    assert b.pad_value == cfg.augment.pad_value and b.meta["extra"]["source"]["model"] == "vggtiny"
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    assert "neither a training run directory" in capsys.readouterr().err
    assert main(["export", str(run / CHECKPOINT_DIR / "ckpt-99"), "--out", str(tmp_path / "x")]) == 1
    assert "no such checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
