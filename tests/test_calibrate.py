"""Calibration: FP16 and INT8 of a bundle, their AP cost on a held-out set, the TensorRT cache,
and the sensitive-layer fallback.

Where AP is the point the network is an *encoder* model, a real ONNX graph that reads maps
back out of the pixels: each val image carries its people's ground-truth heatmaps and PAFs
packed into 8x8 pixel blocks (SpaceToDepth undoes the packing), so FP32 scores a high AP
through the real path (letterbox, the C grouping core, pycocotools), and anything
quantisation does to the maps shows up in AP. Its ``outlier`` channel is the INT8 failure
of NVIDIA/TensorRT#1248 in miniature: one huge activation in a tensor whose other values
are small makes per-tensor int8 flush them to zero, and nothing is detected.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("pycocotools")

from coco_fixtures import person_annotation, write_annotations  # noqa: E402
from edge_fixtures import make_bundle  # noqa: E402
from openpose_plus.calibration import int8  # noqa: E402
from openpose_plus.calibration.calibrate import calibrate_bundle  # noqa: E402
from openpose_plus.calibration.images import CalibrationError  # noqa: E402
from openpose_plus.calibration.report import format_table  # noqa: E402
from openpose_plus.calibration.sensitivity import trial_sizes  # noqa: E402
from openpose_plus.calibration.accuracy import ValSet  # noqa: E402
from openpose_plus.edge.bundle import load_bundle, write_bundle  # noqa: E402
from openpose_plus.commands import main  # noqa: E402
from openpose_plus.edge.skeleton import COCO18  # noqa: E402
from openpose_plus.edge.synthetic.figures import random_scene  # noqa: E402
from openpose_plus.edge.targets import render_targets  # noqa: E402

W, H, S = 256, 192, 8        # network input = image size, so letterboxing is the identity
NH, NP = COCO18.num_heatmaps, COCO18.num_pafs
BLOCK = S * S * 3            # values one 8x8 RGB block carries


def _slot(k):
    """Where map channel k lives inside a block: (row, col, colour), matching ONNX SpaceToDepth."""
    return (k // 3) // S, (k // 3) % S, k % 3


def encode_maps(heat, paf):
    """(NH,h,w) heatmaps in [0,1] and (NP,h,w) PAFs in [-1,1] -> an HxWx3 uint8 image."""
    img = np.zeros((H, W, 3), np.uint8)
    values = np.concatenate([np.clip(heat, 0, 1), (np.clip(paf, -1, 1) + 1) / 2], axis=0)
    for k in range(NH + NP):
        by, bx, c = _slot(k)
        img[by::S, bx::S, c] = np.round(values[k] * 255).astype(np.uint8)
    return img


def encoder_onnx(outlier: float = 0.0) -> bytes:
    """uint8 NHWC -> /255 -> NCHW -> SpaceToDepth(8) -> 'mix' 1x1 conv (identity, plus one channel
    of constant ``outlier``) -> relu -> 'mid' 1x1 conv (identity) -> relu -> heads that pick the map
    channels back out. INT8 quantises the inputs of mix and mid (the heads write the outputs and
    stay FP32), so the outlier sits in mid's input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    mix = np.zeros((BLOCK + 1, BLOCK, 1, 1), np.float32)
    mix[np.arange(BLOCK), np.arange(BLOCK)] = 1.0
    mix_b = np.zeros(BLOCK + 1, np.float32)
    mix_b[BLOCK] = outlier
    heat_w = np.zeros((NH, BLOCK + 1, 1, 1), np.float32)
    paf_w = np.zeros((NP, BLOCK + 1, 1, 1), np.float32)
    for k in range(NH + NP):
        by, bx, c = _slot(k)
        src = (by * S + bx) * 3 + c          # SpaceToDepth's channel order (DCR)
        if k < NH:
            heat_w[k, src] = 1.0
        else:
            paf_w[k - NH, src] = 2.0
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (np.full((1, 1, 1, 3), 255.0, np.float32), "std"), (mix, "mix_w"), (mix_b, "mix_b"),
        (np.eye(BLOCK + 1, dtype=np.float32).reshape(BLOCK + 1, BLOCK + 1, 1, 1), "mid_w"),
        (np.zeros(BLOCK + 1, np.float32), "mid_b"),
        (heat_w, "heat_w"), (np.zeros(NH, np.float32), "heat_b"), (paf_w, "paf_w"),
        (np.full(NP, -1.0, np.float32), "paf_b"))]
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Div", ["x", "std"], ["xn"], name="normalise"),
        helper.make_node("Transpose", ["xn"], ["xt"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("SpaceToDepth", ["xt"], ["blocks"], blocksize=S, name="unpack"),
        helper.make_node("Conv", ["blocks", "mix_w", "mix_b"], ["mixed"], kernel_shape=[1, 1], name="mix"),
        helper.make_node("Relu", ["mixed"], ["mixed_relu"], name="mix_relu"),
        helper.make_node("Conv", ["mixed_relu", "mid_w", "mid_b"], ["mid_out"], kernel_shape=[1, 1], name="mid"),
        helper.make_node("Relu", ["mid_out"], ["features"], name="mid_relu"),
        helper.make_node("Conv", ["features", "heat_w", "heat_b"], ["heatmaps"], kernel_shape=[1, 1], name="heat"),
        helper.make_node("Conv", ["features", "paf_w", "paf_b"], ["pafs"], kernel_shape=[1, 1], name="paf"),
    ]
    graph = helper.make_graph(
        nodes, "encoder", [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, H, W, 3])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, NH, H // S, W // S]),
         helper.make_tensor_value_info("pafs", TensorProto.FLOAT, [1, NP, H // S, W // S])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def encoder_bundle(directory, outlier: float = 0.0, name: str = "encoder"):
    return write_bundle(os.path.join(str(directory), name), encoder_onnx(outlier), input_size=(W, H), stride=S,
                        mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0), training_config="encoder-test")


def write_encoded_set(root, n_images: int, seed: int, annotate: bool = True):
    """PNG images carrying their people's maps, and (``annotate``) their COCO annotation file."""
    rng = np.random.default_rng(seed)
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    images, anns = [], []
    for image_id in range(1, n_images + 1):
        while True:
            people = random_scene(rng, int(rng.integers(1, 3)), W, H, person_height=(140, 180))
            if (people[:, [2, 5], 2] > 0).all():  # both shoulders: COCO-17 gives the neck back
                break
        kp_map = people.copy()
        kp_map[..., :2] = (people[..., :2] - (S / 2 - 0.5)) / S   # image pixels -> map cells
        heat, paf = render_targets(kp_map, COCO18, H // S, W // S, sigma=7 / 8, limb_width=1.0)
        name = "%06d.png" % image_id
        cv2.imwrite(str(img_dir / name), cv2.cvtColor(encode_maps(heat, paf), cv2.COLOR_RGB2BGR))
        images.append({"id": image_id, "file_name": name, "width": W, "height": H})
        anns += [person_annotation(p, len(anns) + 1 + i, image_id) for i, p in enumerate(people)]
    ann_file = root / "annotations.json"
    if annotate:
        write_annotations(ann_file, images, anns)
    return img_dir, ann_file


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoded")
    calib_dir, _ = write_encoded_set(root / "calib", 6, seed=1, annotate=False)
    val_images, val_ann = write_encoded_set(root / "val", 4, seed=2)
    return calib_dir, ValSet(str(val_ann), str(val_images))


def test_int8_qdq_runs_in_onnxruntime_and_its_ap_is_reported_against_fp32(tmp_path, data, capsys):
    calib_dir, val = data
    bundle = encoder_bundle(tmp_path)
    out = calibrate_bundle(bundle, str(calib_dir), "int8", "minmax", num_images=6, val=val, quiet=True)
    acc = out["accuracy"]
    assert acc["fp32"]["AP"] > 0.9                       # the encoder really finds the people
    assert acc["int8"]["AP"] > 0.8 and acc["fp16"]["AP"] > 0.9
    assert acc["int8"]["people"] > 0 and 0 < acc["int8"]["heatmaps_max_abs"] < 0.1
    assert acc["fp32"]["heatmaps_max_abs"] == 0.0 and acc["fp16"]["pafs_max_abs"] < 0.01
    b = load_bundle(bundle)                              # rewritten bundle passes its own check
    assert b.models["int8"] == "model.int8.onnx" and b.calibration_cache_path
    assert set(b.accuracy) == {"fp32", "fp16", "int8"} and b.accuracy["int8"]["AP"] == acc["int8"]["AP"]
    cal = b.meta["extra"]["calibration"]
    assert cal["int8"]["method"] == "minmax" and cal["int8"]["num_images"] == 6 and cal["int8"]["format"] == "QDQ"
    assert cal["fp16"]["onnx"] == "model.fp16.onnx" and b.training_config_digest == "encoder-test"
    assert b.models["fp16"] == "model.fp16.onnx" and cal["fp16"]["import_check"].startswith("passed")
    # The QDQ model really is quantised, TensorRT's parser would take it, and it runs on onnxruntime's CPU.
    import onnx
    import onnxruntime as ort
    from openpose_plus.edge.backends.onnx_rules import check_model

    ops = [n.op_type for n in onnx.load(b.model_path("int8")).graph.node]
    assert ops.count("QuantizeLinear") >= 4 and ops.count("DequantizeLinear") >= 4
    assert check_model(b.model_path("int8")) == [] and check_model(b.model_path("fp16")) == []
    assert cal["int8"]["import_check"] == "passed for TensorRT 8.5, 8.6, 10, 11"
    sess = ort.InferenceSession(b.model_path("int8"), providers=["CPUExecutionProvider"])
    heat, paf = sess.run(None, {"image": np.zeros((1, H, W, 3), np.uint8)})
    assert heat.shape == (1, NH, H // S, W // S) and paf.shape == (1, NP, H // S, W // S)
    table = capsys.readouterr().err
    assert re.search(r"^int8\s+[01]\.\d{4}", table, re.M) and "dAP (pts)" in table
    # ...and the device's own onnxruntime backend runs it from the bundle.
    from openpose_plus.edge.backends import create_backend

    with create_backend(b, "onnxruntime", "int8") as backend:
        bufs = backend.new_buffers()
        bufs.input[...] = cv2.cvtColor(cv2.imread(os.path.join(val.images, "000001.png")), cv2.COLOR_BGR2RGB)
        backend.infer(bufs)
        assert bufs.heatmaps.max() > 0.5 and np.isfinite(bufs.pafs).all()


def test_trt_cache_is_well_formed_and_agrees_with_the_qdq_scales(tmp_path, capsys):
    bundle = make_bundle(tmp_path, depth=2)
    img_dir = tmp_path / "calib"
    img_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        cv2.imwrite(str(img_dir / ("%d.jpg" % i)), rng.integers(0, 256, (80, 120, 3), dtype=np.uint8))
    work = tmp_path / "work"
    calibrate_bundle(bundle, str(img_dir), "int8", "entropy", num_images=5, quiet=False, work_dir=str(work),
                     trt_version="8.6.1")
    assert "calibration batch 5/5 [" in capsys.readouterr().err   # the progress bar over batches
    b = load_bundle(bundle)
    text = open(b.calibration_cache_path).read()
    lines = text.splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert all(re.fullmatch(r"[^:\s][^\n]*: [0-9a-f]{8}", line) for line in lines[1:]) and len(lines) > 8
    header, cache = int8.parse_trt_cache(text)
    qdq = int8.qdq_activation_scales(b.model_path("int8"))
    assert set(qdq) < set(cache)          # every tensor the Q/DQ model quantises, and the others TensorRT's
    for name, scale in qdq.items():       # calibrator would cover (implicit INT8 needs them all)
        assert cache[name] == pytest.approx(scale, rel=1e-6)
    # ...and they are the calibrated ranges: amax / 127 (where ORT kept the tensor's own range).
    amax = int8.activation_amax(str(work / "ranges.json"))
    own = [n for n in cache if n in amax and cache[n] == pytest.approx(amax[n] / 127, rel=1e-6)]
    assert len(own) >= len(cache) // 2 and set(cache) - set(qdq) <= set(own)
    # the maps the grouper reads are written in FP32: no scale for the output layers' tensors
    assert not {"heatmaps", "pafs"} & set(cache)
    assert b.meta["extra"]["calibration"]["int8"]["trt_cache"]["tensors"] == len(cache)


def test_trt_cache_format_helpers():
    assert int8.trt_version_code("8.5.2") == 8502 and int8.trt_version_code("10.3.0") == 100300
    text = int8.trt_cache_text({"conv1:0": 0.5, "b": 1.0}, "8.6.1")
    assert text == "TRT-8601-EntropyCalibration2\nb: 3f800000\nconv1:0: 3f000000\n"
    assert int8.parse_trt_cache(text)[1] == {"b": 1.0, "conv1:0": 0.5}
    for bad in ("nonsense\n", "TRT-8601-EntropyCalibration2\nx 3f800000\n", "TRT-8601-EntropyCalibration2\nx: 3f8\n"):
        with pytest.raises(ValueError):
            int8.parse_trt_cache(bad)
    with pytest.raises(ValueError, match="8.6.1"):
        int8.trt_version_code("eight")
    with pytest.raises(ValueError, match="no usable scale"):
        int8.trt_cache_text({"t": 0.0})


def test_sensitive_layer_falls_back_to_fp32_when_int8_breaks_detection(tmp_path, data, capsys):
    calib_dir, val = data
    bundle = encoder_bundle(tmp_path, outlier=1000.0)
    out = calibrate_bundle(bundle, str(calib_dir), "int8", "minmax", num_images=6, val=val, max_ap_drop=1.0,
                           quiet=True)
    err = capsys.readouterr().err
    assert "searching for sensitive layers" in err
    assert out["fp32_layers"] == ["mid"]                  # the layer that reads the outlier channel, named
    acc = out["accuracy"]
    assert acc["fp32"]["AP"] - acc["int8"]["AP"] <= 0.01
    b = load_bundle(bundle)
    cal = b.meta["extra"]["calibration"]
    assert cal["int8"]["fp32_layers"] == ["mid"] and cal["int8"]["sensitivity"]["ranking"][0][0] == "mid"
    assert cal["int8"]["sensitivity"]["trials"][0]["fp32_layers"] == 1
    assert "kept in FP32: mid (most sensitive)" in err
    # Without the fallback the same calibration detects (almost) nothing: the failure is real.
    work = tmp_path / "w"
    work.mkdir()
    fp32 = int8.prepare(b.model_path("fp32"), str(work / "fp32.onnx"))
    from openpose_plus.calibration.accuracy import ap_of
    from openpose_plus.calibration.images import ImageBatches, list_images, load_images

    inputs = load_images(list_images(str(calib_dir), 6), W, H)
    full = int8.calibrate(fp32, str(work / "q.onnx"), str(work / "r.json"), "minmax", ImageBatches(inputs, "image"))
    assert ap_of(b, full, val)["AP"] < 0.2


def test_budget_that_cannot_be_met_rejects_int8_and_says_so(tmp_path, data):
    calib_dir, val = data
    bundle = encoder_bundle(tmp_path, outlier=1000.0)
    rc = main(["calibrate", bundle, "--images", str(calib_dir), "--precision", "int8", "--method", "minmax",
               "--num-images", "6", "--val-images", val.images, "--val-annotations", val.annotations,
               "--max-fallback", "0", "--quiet"])
    assert rc == 3
    b = load_bundle(bundle)
    assert "int8" not in b.models and b.calibration_cache_path is None and "int8" not in b.accuracy
    rejected = b.meta["extra"]["calibration"]["int8_rejected"]
    assert rejected["status"] == "over budget" and rejected["accuracy"]["AP"] < 0.2
    assert "int8" not in b.meta["extra"]["calibration"] and b.accuracy["fp32"]["AP"] > 0.9


def test_fp16_writes_the_fp16_model_and_records_its_error(tmp_path, capsys):
    bundle = make_bundle(tmp_path, tar=True)
    img_dir = tmp_path / "calib"
    img_dir.mkdir()
    for i in range(3):
        cv2.imwrite(str(img_dir / ("%d.png" % i)), np.full((50, 70, 3), 40 * i, np.uint8))
    assert main(["calibrate", bundle, "--images", str(img_dir), "--precision", "fp16", "--num-images", "3",
                 "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bundle"] == bundle and out["status"] == "unchecked"   # no val set: AP budget not checked
    b = load_bundle(bundle)
    cal = b.meta["extra"]["calibration"]["fp16"]
    assert cal["onnx"] == "model.fp16.onnx" and cal["status"] == "unchecked" and cal["fp32_layers"] == []
    assert 0 < b.accuracy["fp16"]["heatmaps_max_abs"] < 0.01 and "int8" not in b.models
    assert b.accuracy["fp32"]["heatmaps_max_abs"] == 0.0
    # float16 inside, the bundle's interface outside: uint8 in, float32 maps out
    import onnx
    from onnx import TensorProto

    half = onnx.load(b.model_path("fp16"))
    assert b.model_path("fp16").endswith("model.fp16.onnx")
    assert [i.type.tensor_type.elem_type for i in half.graph.input] == [TensorProto.UINT8]
    assert [o.type.tensor_type.elem_type for o in half.graph.output] == [TensorProto.FLOAT] * 2
    assert all(i.data_type != TensorProto.FLOAT for i in half.graph.initializer if i.dims and i.dims[0] > 3)


def test_bad_calibration_input_is_named_and_loses_nothing(tmp_path, capsys):
    bundle = make_bundle(tmp_path)
    before = open(os.path.join(bundle, "meta.json")).read()
    img_dir = tmp_path / "calib"
    img_dir.mkdir()
    cv2.imwrite(str(img_dir / "good.png"), np.zeros((20, 20, 3), np.uint8))
    (img_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (img_dir / "empty.png").write_bytes(b"")
    rc = main(["calibrate", bundle, "--images", str(img_dir), "--precision", "int8", "--num-images", "3", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "broken.jpg" in err and "empty.png" in err and "good.png" not in err
    rc = main(["calibrate", bundle, "--images", str(img_dir), "--precision", "int8", "--num-images", "10"])
    assert rc == 1 and "too few calibration images" in capsys.readouterr().err
    assert main(["calibrate", bundle, "--images", str(tmp_path / "nope"), "--precision", "fp16"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["calibrate", bundle, "--images", str(img_dir), "--precision", "fp16",
                 "--val-images", str(img_dir)]) == 2
    with pytest.raises(CalibrationError, match="at least 1"):
        calibrate_bundle(bundle, str(img_dir), "fp16", num_images=0)
    assert open(os.path.join(bundle, "meta.json")).read() == before
    # A bundle that fails its check is refused before anything runs on it.
    with open(os.path.join(bundle, "model.onnx"), "ab") as f:
        f.write(b"x")
    assert main(["calibrate", bundle, "--images", str(img_dir), "--precision", "fp16", "--num-images", "1"]) == 1
    assert "model.onnx" in capsys.readouterr().err


def test_report_table_and_trial_sizes():
    table = format_table({"fp32": {"AP": 0.9, "AR": 0.95, "heatmaps_max_abs": 0.0},
                          "int8": {"AP": 0.85, "AR": 0.9, "heatmaps_max_abs": 0.03}}, {"int8": "kept in FP32: a"})
    rows = table.splitlines()
    assert rows[0].split()[:3] == ["precision", "AP", "AR"] and rows[3].startswith("int8")
    assert "-5.00" in rows[3] and rows[-1] == "int8: kept in FP32: a"
    assert trial_sizes(1) == [1] and trial_sizes(10) == [1, 2, 3, 4, 6, 9, 10] and trial_sizes(0) == []


def test_bench_backend_times_every_precision(tmp_path, capsys):
    bundle = make_bundle(tmp_path, depth=1)
    img_dir = tmp_path / "calib"
    img_dir.mkdir()
    for i in range(2):
        cv2.imwrite(str(img_dir / ("%d.png" % i)), np.random.default_rng(i).integers(0, 256, (64, 96, 3), np.uint8))
    assert main(["bench", "backend", bundle, "--frames", "2", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^fp32\s+\d+\.\d\d", out, re.M) and re.search(r"^fp16\s+\d+\.\d\d", out, re.M)
    assert "int8      skipped: bundle has no INT8 QDQ model" in out
    assert main(["calibrate", bundle, "--images", str(img_dir), "--precision", "int8", "--num-images", "2",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["bench", "backend", bundle, "--frames", "3", "--warmup", "0", "--json", "--threads", "1",
                 "--opt-level", "extended"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures["results"]) == {"fp32", "fp16", "int8"} and figures["input"] == [96, 64]
    assert all(r["fps"] > 0 and r["ms_median"] > 0 for r in figures["results"].values())
    assert figures["results"]["fp32"]["speedup_vs_fp32"] == 1.0 and figures["verdict"].startswith("INT8 ")
    assert main(["bench", "backend", bundle, "--precisions", "fp8"]) == 2
    assert main(["bench", "backend", str(tmp_path / "none")]) == 1


def test_onnxruntime_form_uses_uint8_activations_and_still_writes_the_cache(tmp_path, data, capsys):
    import onnx
    from onnx import TensorProto

    calib_dir, val = data
    bundle = encoder_bundle(tmp_path)
    out = calibrate_bundle(bundle, str(calib_dir), "int8", "percentile", num_images=6, val=val, quiet=True,
                           form="onnxruntime")
    assert out["accuracy"]["int8"]["AP"] > 0.8
    b = load_bundle(bundle)
    cal = b.meta["extra"]["calibration"]["int8"]
    assert cal["form"] == "onnxruntime" and cal["tensorrt_builds"].startswith("implicit")
    model = onnx.load(b.model_path("int8"))
    inits = {i.name: i for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zero_points and all(z.data_type == TensorProto.UINT8 for z in zero_points)
    header, scales = int8.parse_trt_cache(open(b.calibration_cache_path).read())
    assert header == "TRT-100300-EntropyCalibration2" and scales and all(s > 0 for s in scales.values())
    graph_tensors = {t for n in onnx.load(b.model_path("fp32")).graph.node for t in n.output}
    assert set(scales) <= graph_tensors          # every name is one TensorRT will find in model.onnx
    capsys.readouterr()
    # TensorRT cannot parse uint8 QDQ: build-engine takes the cache route (exit 2: no TensorRT here).
    if importlib.util.find_spec("tensorrt") is None:
        assert main(["build-engine", bundle, "--precision", "int8"]) == 2
        err = capsys.readouterr().err
        plan = json.loads(err[err.index("{"): err.rindex("}") + 1])
        assert plan["int8"].startswith("implicit") and plan["routes"]["TensorRT 8.6"].startswith("model.onnx")


def test_prepared_graph_is_plain_onnx_with_batch_norms_folded(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=(1, 4, 1, 1)).astype(np.float32), "scale"),
             numpy_helper.from_array(rng.normal(size=(1, 4, 1, 1)).astype(np.float32), "shift")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),  # unnamed, as tf2onnx may leave them
             helper.make_node("Mul", ["c", "scale"], ["m"]), helper.make_node("Add", ["m", "shift"], ["y"])]
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    src = tmp_path / "in.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(src))
    out = int8.prepare(str(src), str(tmp_path / "out.onnx"))
    model = onnx.load(out)
    assert [n.op_type for n in model.graph.node] == ["Conv"] and all(n.name for n in model.graph.node)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert int8.output_nodes(out) == [model.graph.node[0].name]
    x = rng.normal(size=(1, 3, 8, 8)).astype(np.float32)
    a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    b = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(a - b).max() < 1e-4


def test_without_num_images_a_small_folder_is_used_whole_and_an_empty_one_is_refused(tmp_path):
    from openpose_plus.calibration.images import DEFAULT_IMAGES, list_images

    img_dir = tmp_path / "calib"
    img_dir.mkdir()
    for i in range(3):
        cv2.imwrite(str(img_dir / ("%d.png" % i)), np.full((20, 20, 3), 40 * i, np.uint8))
    assert [os.path.basename(p) for p in list_images(str(img_dir), None)] == ["0.png", "1.png", "2.png"]
    assert len(list_images(str(img_dir), 2)) == 2
    for i in range(3, DEFAULT_IMAGES + 5):
        cv2.imwrite(str(img_dir / ("%03d.png" % i)), np.zeros((4, 4, 3), np.uint8))
    assert len(list_images(str(img_dir), None)) == DEFAULT_IMAGES
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match="no calibration images"):
        list_images(str(empty), None)


def test_calibrate_scores_with_the_bundles_grouping_and_can_tune_it_first(tmp_path, data, capsys):
    import dataclasses

    from openpose_plus.calibration.report import rewrite_bundle
    from openpose_plus.edge.grouping import GroupParams

    calib_dir, val = data
    bad = GroupParams(min_parts=18)  # nobody in the val set shows all 18 parts
    bundle = rewrite_bundle(load_bundle(encoder_bundle(tmp_path)), {}, None,
                            grouping={"params": dataclasses.asdict(bad), "source": "test"})
    out = calibrate_bundle(bundle, str(calib_dir), "fp16", val=val, quiet=True)
    assert out["accuracy"]["fp32"]["AP"] < 0.6  # scored with the bundle's (bad) parameters...
    assert load_bundle(bundle).grouping == {"params": dataclasses.asdict(bad), "source": "test"}  # ...and says so
    assert main(["calibrate", bundle, "--images", str(calib_dir), "--precision", "fp16", "--tune-grouping",
                 "--val-images", val.images, "--val-annotations", val.annotations, "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"]["fp32"]["AP"] > 0.9 and report["accuracy"]["fp16"]["AP"] > 0.9
    b = load_bundle(bundle)
    assert b.grouping["source"] == "calibrate --tune-grouping" and b.group_params().min_parts < 18
    assert b.grouping["AP"] == pytest.approx(report["accuracy"]["fp32"]["AP"])
    assert b.accuracy["fp32"]["AP"] > 0.9
    assert main(["calibrate", bundle, "--images", str(calib_dir), "--precision", "fp16", "--tune-grouping"]) == 2
    assert "--tune-grouping needs the val set" in capsys.readouterr().err


def test_fallback_search_narrows_to_the_fewest_fp32_layers(tmp_path):
    from openpose_plus.calibration.sensitivity import Ranking, fall_back

    ranking = Ranking([("layer%d" % i, 10.0 - i) for i in range(20)])
    built = []

    def build(out, only=None, exclude=()):
        built.append(len(exclude))
        with open(out, "w") as f:
            f.write(str(len(exclude)))
        return out

    def ap_fn(path):                 # AP recovers once the 7 worst layers are in FP32
        return 0.5 if int(open(path).read()) >= 7 else 0.1

    base = tmp_path / "full.onnx"
    base.write_text("0")
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        result = fall_back(build, ranking, ap_fn, 0.5, 1.0, str(tmp_path / "best.onnx"), max_layers=16,
                           baseline=(str(base), 0.1), log=f)
    assert built == [1, 2, 3, 4, 6, 9, 7]            # grows, passes at 9, then 7 (6 had failed)
    assert result.within_budget and result.excluded == ["layer%d" % i for i in range(7)]
    assert open(result.model_path).read() == "7" and [t["fp32_layers"] for t in result.trials] == built
    with open(log, "w") as f:                        # never within budget: the best AP tried, said so
        result = fall_back(build, ranking, lambda p: 0.1 + int(open(p).read()) / 1000, 0.5, 1.0,
                           str(tmp_path / "best2.onnx"), max_layers=4, baseline=(str(base), 0.1), log=f)
    assert not result.within_budget and len(result.excluded) == 4
