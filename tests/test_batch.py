"""Bundles with a batch dimension: the graph gets one and is checked, meta.json says so, the
backends run a batch in one call, and each frame's maps are read where the network wrote them."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge_fixtures import tiny_pose_onnx  # noqa: E402
from openpose_plus.edge.backends import BackendError  # noqa: E402
from openpose_plus.edge.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from openpose_plus.edge.batch import (ONE, BatchError, BatchSpec, batched_model, check_batch,  # noqa: E402
                                      parse_batch, with_batch)
from openpose_plus.edge.bundle import BundleError, load_bundle, write_bundle  # noqa: E402
from openpose_plus.edge.estimator import PoseEstimator  # noqa: E402
from openpose_plus.edge.synthetic.scene import render_scene  # noqa: E402


def scenes(n, w=96, h=64, seed=3):
    rng = np.random.default_rng(seed)
    return [render_scene(rng, w, h, 2)[0] for _ in range(n)]


def write(tmp_path, model, spec, name="b"):
    return write_bundle(os.path.join(str(tmp_path), name), model, input_size=(96, 64), stride=8,
                        mean=(127.5,) * 3, std=(127.5,) * 3, batch=spec)


def test_batch_specs_parse_and_are_refused_clearly():
    assert parse_batch("4") == BatchSpec(4, False)
    assert parse_batch("dynamic") == BatchSpec(8, True)
    assert parse_batch(" Dynamic:3 ") == BatchSpec(3, True)
    assert parse_batch(1) == ONE
    for bad in ("0", "dyn", "dynamic:x", "4:4", "-2", "2000"):
        with pytest.raises(BatchError, match="batch"):
            parse_batch(bad)


def test_meta_says_the_batch_and_a_bad_one_is_named(tmp_path):
    single = tiny_pose_onnx()
    path = write(tmp_path, with_batch(single, BatchSpec(4, True)), BatchSpec(4, True))
    b = load_bundle(path)
    assert b.batch == BatchSpec(4, True) and b.meta["batch"] == {"size": 4, "dynamic": True}
    assert load_bundle(write(tmp_path, single, ONE, "one")).batch == ONE  # absent: one image per call
    assert "batch" not in load_bundle(os.path.join(str(tmp_path), "one")).meta
    meta_path = os.path.join(path, "meta.json")
    meta = json.load(open(meta_path))
    meta["batch"] = {"size": "four"}
    json.dump(meta, open(meta_path, "w"))
    with pytest.raises(BundleError, match="batch size should be an integer"):
        load_bundle(path)


def test_a_dynamic_graph_runs_two_images_as_each_alone():
    single = tiny_pose_onnx()
    spec = BatchSpec(4, True)
    batched, diff = batched_model(single, spec, "image", scenes(2))
    assert diff <= 1e-4
    dims = [d.dim_param or d.dim_value for d in onnx.load_model_from_string(batched).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 64, 96, 3]
    fixed, _ = batched_model(single, BatchSpec(3, False), "image", scenes(1))
    assert onnx.load_model_from_string(fixed).graph.output[0].type.tensor_type.shape.dim[0].dim_value == 3
    assert batched_model(single, ONE, "image", scenes(1)) == (single, None)


def _with_batch_one_reshape(model: bytes) -> bytes:
    """The network with a flatten-and-back on its heatmaps that hard-codes batch 1, as converters write."""
    m = onnx.load_model_from_string(model)
    g = m.graph
    out = g.output[0]
    k, h, w = (d.dim_value for d in out.type.tensor_type.shape.dim[1:])
    for node in g.node:
        node.output[:] = ["heat_raw" if o == out.name else o for o in node.output]
    g.initializer.extend([numpy_helper.from_array(np.array([1, k, h * w], np.int64), "flat_shape"),
                          numpy_helper.from_array(np.array([1, k, h, w], np.int64), "map_shape")])
    g.node.extend([helper.make_node("Reshape", ["heat_raw", "flat_shape"], ["heat_flat"], name="flatten_heat"),
                   helper.make_node("Reshape", ["heat_flat", "map_shape"], [out.name], name="unflatten_heat")])
    return m.SerializeToString()


def _mixing(model: bytes) -> bytes:
    """A graph that runs at any batch but mixes its frames (subtracts the batch mean)."""
    m = onnx.load_model_from_string(model)
    g = m.graph
    out = g.output[1]
    for node in g.node:
        node.output[:] = ["paf_raw" if o == out.name else o for o in node.output]
    g.node.extend([helper.make_node("ReduceMean", ["paf_raw"], ["paf_mean"], axes=[0], keepdims=1),
                   helper.make_node("Sub", ["paf_raw", "paf_mean"], ["paf_centred"]),
                   helper.make_node("Add", ["paf_centred", "paf_raw"], [out.name])])
    return m.SerializeToString()


def test_a_graph_that_hard_codes_batch_1_is_refused_naming_the_reshape():
    single = _with_batch_one_reshape(tiny_pose_onnx())
    ort.InferenceSession(single, providers=["CPUExecutionProvider"])  # fine at batch 1
    with pytest.raises(BatchError) as err:
        batched_model(single, BatchSpec(4, True), "image", scenes(2))
    text = str(err.value)
    assert "does not run 2 images at once" in text and "flatten_heat (to [1, 19, 96])" in text
    assert "hard-code batch 1" in text and "onnxruntime:" in text
    with pytest.raises(BatchError, match="does not run 3 images at once"):
        batched_model(single, BatchSpec(3, False), "image", scenes(1))


def test_a_graph_that_mixes_its_frames_is_refused():
    single = _mixing(tiny_pose_onnx())
    with pytest.raises(BatchError, match="output 'pafs' of frame 0 differs at batch 2 .* mixes the frames"):
        check_batch(with_batch(single, BatchSpec(2, True)), single, "image", scenes(2), BatchSpec(2, True))


def test_the_bundle_says_dynamic_but_the_graph_is_batch_1(tmp_path):
    path = write(tmp_path, tiny_pose_onnx(), BatchSpec(4, True))
    with pytest.raises(BackendError, match=r"batch is fixed at 1, the bundle says dynamic .*--batch"):
        OnnxRuntimeBackend(load_bundle(path), threads=1)


@pytest.mark.parametrize("spec, batch", [(BatchSpec(4, True), 4), (BatchSpec(3, False), 0)])
def test_one_call_runs_the_batch_and_each_frame_is_its_own(tmp_path, spec, batch):
    single = tiny_pose_onnx(heat_bias=-1.0)
    path = write(tmp_path, batched_model(single, spec, "image", scenes(2))[0], spec)
    one = PoseEstimator(write(tmp_path, single, ONE, "one"), backend="onnxruntime", threads=1)
    est = PoseEstimator(path, backend="onnxruntime", threads=1, batch=batch)
    worker = est.workers(1)[0]
    assert worker.batch == est.batch == spec.size
    bufs = worker.buffers
    assert bufs.input.shape == (spec.size, 64, 96, 3)
    images = scenes(2, 160, 120)  # fewer frames than the batch: the rest of the slots are not read
    outs = worker.process_batch(images)
    for image, out in zip(images, outs):
        want = one.infer(image)
        np.testing.assert_allclose(out.poses.keypoints, want.keypoints, atol=1e-3)
        assert out.batch == 2
    # the maps were read where onnxruntime wrote them: an offset into the one output buffer
    bound = est.backend.bound_output_pointers(est.buffers)
    assert bound == [est.buffers.heat_ptr, est.buffers.paf_ptr]
    assert bufs.heat_ptr_at(1) == bufs.heat_ptr + bufs.heatmaps[0].nbytes
    # a frame that cannot be used loses itself only
    outs = worker.process_batch([images[0], np.zeros((5, 5), np.uint8), images[1]])
    assert [type(o).__name__ for o in outs] == ["Processed", "FrameError", "Processed"]
    np.testing.assert_allclose(outs[2].poses.keypoints, one.infer(images[1]).keypoints, atol=1e-3)
    # the single-frame path still runs on a batched bundle
    np.testing.assert_allclose(est.infer(images[0]).keypoints, one.infer(images[0]).keypoints, atol=1e-3)
    with pytest.raises(ValueError, match="for a batch of"):
        worker.process_batch(images * 3)
    est.close()
    one.close()


def _import_net(path, prelude=()):
    from test_import import lightweight_net  # noqa: F401  (the importer's own test network)
    from test_import import onnx_net

    return onnx_net(path, outputs=[("stage_1_output_1_heatmaps", 19, "NCHW"), ("stage_1_output_0_pafs", 38, "NCHW")],
                    prelude=prelude)


def test_import_writes_a_dynamic_batch_bundle_and_refuses_a_batch_1_graph(tmp_path, capsys):
    from openpose_plus.commands import main

    net = _import_net(tmp_path / "net.onnx")
    assert main(["import", str(net), "--preset", "lightweight-openpose", "--out", str(tmp_path / "b"),
                 "--batch", "dynamic:4"]) == 0
    assert json.loads(capsys.readouterr().out)["batch"] == "dynamic (checked at 4)"
    b = load_bundle(str(tmp_path / "b"))
    assert b.batch == BatchSpec(4, True)
    assert b.meta["extra"]["import"]["check"]["batch"]["max_diff_vs_one_at_a_time"] <= 1e-4
    be = OnnxRuntimeBackend(b, threads=1)
    bufs = be.new_buffers()
    bufs.input[...] = np.random.default_rng(0).integers(0, 256, bufs.input.shape, np.uint8)
    be.infer(bufs, 3)
    alone = OnnxRuntimeBackend(b, threads=1, batch=1)
    one = alone.new_buffers()
    one.input[0] = bufs.input[2]
    alone.infer(one)
    np.testing.assert_allclose(one.heatmaps[0], bufs.heatmaps[2], atol=1e-5)
    # a network that flattens with batch 1 written into its Reshape: refused, saying where
    flat = [helper.make_node("Constant", [], ["s1"], value=numpy_helper.from_array(np.array([1, 3, -1], np.int64))),
            helper.make_node("Reshape", ["data", "s1"], ["data_flat"], name="flatten_input"),
            helper.make_node("Constant", [], ["s2"], value=numpy_helper.from_array(np.array([1, 3, 48, 64], np.int64))),
            helper.make_node("Reshape", ["data_flat", "s2"], ["data_back"], name="unflatten_input")]
    net = _import_net(tmp_path / "flat.onnx", prelude=flat)
    assert main(["import", str(net), "--preset", "lightweight-openpose", "--out", str(tmp_path / "f"),
                 "--batch", "2"]) == 1
    err = capsys.readouterr().err
    assert "batch fixed 2: the graph does not run 2 images at once: flatten_input (to [1, 3, -1])" in err
    assert not os.path.exists(tmp_path / "f")
    # and at batch 1 the same network imports
    assert main(["import", str(net), "--preset", "lightweight-openpose", "--out", str(tmp_path / "f")]) == 0
    with pytest.raises(SystemExit):
        main(["import", str(net), "--out", str(tmp_path / "g"), "--batch", "zero"])
    assert "a batch is N, dynamic or dynamic:N, got 'zero'" in capsys.readouterr().err


@pytest.mark.parametrize("column", ["8.6", "10.3"])
def test_tensorrt_builds_the_bundles_batch_profile_and_runs_fewer_frames(tmp_path, monkeypatch, column):
    """On the TensorRT stand-ins (tests/standins: TensorRT cannot run here): the engine's profile
    is (1, N, N) for a bundle checked at N, and a call of fewer frames sets its input shape."""
    import gc

    from standins import installed, pycuda_driver
    from openpose_plus.edge.backends import cuda_device
    from openpose_plus.edge.backends.engine_cache import EngineCache
    from openpose_plus.edge.backends.tensorrt_backend import TensorRTBackend

    monkeypatch.setattr(cuda_device, "DEVICE_TREE_MODEL", str(tmp_path / "no-device-tree"))
    spec = BatchSpec(4, True)
    batched = batched_model(tiny_pose_onnx(), spec, "image", scenes(2))[0]
    b = load_bundle(write(tmp_path, batched, spec))
    ref = ort.InferenceSession(batched, providers=["CPUExecutionProvider"])
    with installed(column) as (trt, _):
        be = TensorRTBackend(b, "fp32", cache=EngineCache(str(tmp_path / "engines")))
        assert trt.STANDIN.builds[-1]["profile"] == {"image": [[1, 64, 96, 3], [4, 64, 96, 3], [4, 64, 96, 3]]}
        assert be.key.profile == "batch 1..4"  # the cache keys on the profile
        bufs = be.new_buffers()
        assert bufs.input.shape == (4, 64, 96, 3)
        bufs.input[...] = np.random.default_rng(2).integers(0, 256, bufs.input.shape, np.uint8)
        for n in (2, 4, 1):
            bufs.heatmaps[...] = -1
            be.infer(bufs, n)
            want = ref.run(["heatmaps"], {"image": bufs.input[:n]})[0]
            np.testing.assert_allclose(bufs.heatmaps[:n], want, atol=1e-5)
            assert (bufs.heatmaps[n:] == -1).all()  # frames past n were not run
        be.close()
        # fewer streams than the bundle's batch: smaller buffers, the same engine (from the cache)
        builds = len(trt.STANDIN.builds)
        two = TensorRTBackend(b, "fp32", cache=EngineCache(str(tmp_path / "engines")), max_batch=2)
        assert two.new_buffers().input.shape[0] == 2 and two.key == be.key and len(trt.STANDIN.builds) == builds
        two.close()
        gc.collect()
        assert pycuda_driver.WORLD.live_allocations() == 0 and all(v == 0 for v in trt.STANDIN.live.values())


def test_calibrate_s_rewrite_keeps_the_batch(tmp_path):
    from openpose_plus.calibration.report import rewrite_bundle

    spec = BatchSpec(4, True)
    b = load_bundle(write(tmp_path, batched_model(tiny_pose_onnx(), spec, "image", scenes(1))[0], spec))
    assert load_bundle(rewrite_bundle(b, {"fp32": {"AP": 0.5}}, None)).batch == spec
