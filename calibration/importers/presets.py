"""The facts of each known family, as its project publishes its networks, so a user types one line.

Each preset names the file format, the input (layout, channel order, normalisation, the size the
network was published at), the outputs (names, layout, channel order, background), the skeleton
and its PAF table, and the grouping thresholds the family's own post-processing uses (applied on
top of the defaults; ``tune-grouping`` searches further). Sources are in each description.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping

from openpose_plus.edge.skeleton import BODY25, COCO18, Skeleton

from .facts import ImportRefused, NetworkFacts

__all__ = ["Preset", "PRESETS", "TRT_POSE_HUMAN", "get_preset"]


@dataclass(frozen=True)
class Preset:
    name: str
    format: str                       # onnx | tensorflow | caffe
    facts: NetworkFacts
    files: str                        # what to pass, as the project names it
    licence: str                      # the family's licence, named (the user passes its text)
    description: str
    grouping: Mapping[str, object] = field(default_factory=dict)


# trt_pose's human_pose.json: COCO's 17 keypoints then the neck, 21 links (1-based there).
TRT_POSE_HUMAN = Skeleton.from_coco_category({
    "name": "trt_pose_human",
    "keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle", "neck"],
    "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2],
                 [1, 3], [2, 4], [3, 5], [4, 6], [5, 7], [18, 1], [18, 6], [18, 7], [18, 12], [18, 13]]})

_CMU = dict(input_name="image", input_layout="NCHW", color="BGR", mean=(128.0, 128.0, 128.0),
            std=(256.0, 256.0, 256.0), input_size=(656, 368), stride=8, outputs=("net_output",),
            output_layout="NCHW", concat_order="heatmaps,pafs", background=True)
# OpenPose's own defaults: NMS threshold 0.05, inter threshold 0.05 on 10 samples, 95 % above it.
_CMU_GROUPING = {"peak_threshold": 0.05, "paf_sample_threshold": 0.05, "min_sample_fraction": 0.95, "min_parts": 3}

PRESETS: Dict[str, Preset] = {p.name: p for p in (
    Preset("tf-pose", "tensorflow",
           NetworkFacts(input_name="image:0", input_layout="NHWC", color="BGR", input_size=(432, 368), stride=8,
                        outputs=("Openpose/concat_stage7:0",), output_layout="NHWC", concat_order="heatmaps,pafs",
                        background=True, skeleton=COCO18),
           files="graph_opt.pb (models/graph/<model>/graph_opt.pb)", licence="Apache-2.0",
           description="tf-pose-estimation's frozen graphs (mobilenet_thin, mobilenet_v2_*, cmu): float BGR "
                       "0..255 in, normalised inside; one NHWC output, 19 heatmaps (background last) then 38 PAFs",
           grouping={"peak_threshold": 0.05, "min_parts": 4}),  # pafprocess: THRESH_HEAT 0.05, THRESH_PART_CNT 4
    Preset("lightweight-openpose", "onnx",
           NetworkFacts(input_name="data", input_layout="NCHW", color="BGR", mean=(128.0, 128.0, 128.0),
                        std=(256.0, 256.0, 256.0), stride=8,
                        outputs=("stage_1_output_1_heatmaps", "stage_1_output_0_pafs"), output_layout="NCHW",
                        background=True, skeleton=COCO18, pad_value=128),
           files="the .onnx of scripts/convert_to_onnx.py (input 'data', 1x3x256x456)", licence="Apache-2.0",
           description="Lightweight OpenPose (Osokin) exported by its convert_to_onnx.py: BGR, (x - 128) / 256, "
                       "padded with that grey; the refinement stage's heatmaps (19) and PAFs (38)",
           grouping={"peak_threshold": 0.1}),  # its extract_keypoints threshold
    Preset("trt_pose", "onnx",
           NetworkFacts(input_name="input", input_layout="NCHW", color="RGB", mean=(0.0, 0.0, 0.0),
                        std=(255.0, 255.0, 255.0), stride=4, outputs=("heatmap", "part_affinity_fields"),
                        output_layout="NHWC", background=False, skeleton=TRT_POSE_HUMAN, paf_order="yx"),
           files="the .onnx of trt_pose/utils/export_for_isaac.py (e.g. resnet18_baseline_att_224x224_A)",
           licence="MIT",
           description="NVIDIA trt_pose exported by its export_for_isaac.py: RGB 0..1 in (ImageNet normalisation "
                       "inside), NHWC outputs at stride 4: 18 heatmaps (no background) and 42 PAFs, each pair "
                       "(y, x), in its own human_pose.json topology",
           grouping={"peak_threshold": 0.1}),  # its cmap_threshold
    Preset("cmu-coco", "caffe", NetworkFacts(skeleton=COCO18, **_CMU),  # type: ignore[arg-type]
           files="pose_deploy_linevec.prototxt pose_iter_440000.caffemodel", licence="OpenPose licence (non-commercial)",
           description="CMU OpenPose's COCO body model: BGR, x / 256 - 0.5; 'net_output' holds 19 heatmaps "
                       "(background last) then 38 PAFs", grouping=_CMU_GROUPING),
    Preset("cmu-body25", "caffe", NetworkFacts(skeleton=BODY25, **_CMU),  # type: ignore[arg-type]
           files="pose_deploy.prototxt pose_iter_584000.caffemodel", licence="OpenPose licence (non-commercial)",
           description="CMU OpenPose's BODY_25 model: as cmu-coco, with 26 heatmaps and 52 PAFs in BODY_25's table",
           grouping=_CMU_GROUPING),
)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ImportRefused("unknown preset %r (known: %s)" % (name, ", ".join(sorted(PRESETS)))) from None
