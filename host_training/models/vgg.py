"""The OpenPose networks: ``vgg`` is the paper's (Cao et al., CVPR 2017) and ``vggtiny`` a thin one.

``vgg``: VGG19's first ten conv layers, two CPM layers down to 128 channels, then six
stages of two branches (L1 = PAFs, L2 = heatmaps). Layer names are CMU's caffe names
(``conv1_1``, ``conv5_5_CPM_L1``, ``Mconv7_stage6_L2``, ...) so :mod:`..weights` can load
the published model by name. ``vggtiny``: the same shape with fewer channels, 3x3 kernels
in the refinement stages and three stages, for quick training and small devices.
"""
from __future__ import annotations

import keras
from keras import layers

from openpose_plus.edge.skeleton import Skeleton

from .common import conv, head_sizes, image_input, normalise, scaled, stage_outputs

__all__ = ["build_vgg", "build_vggtiny"]

# (name, filters) of the backbone; "pool" marks a 2x2 max pool. VGG19 up to conv4_2.
_VGG_BACKBONE = (("conv1_1", 64), ("conv1_2", 64), ("pool1_stage1", 0),
                 ("conv2_1", 128), ("conv2_2", 128), ("pool2_stage1", 0),
                 ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256),
                 ("pool3_stage1", 0), ("conv4_1", 512), ("conv4_2", 512),
                 ("conv4_3_CPM", 256), ("conv4_4_CPM", 128))


def _backbone(x, width: float):
    for name, filters in _VGG_BACKBONE:
        if filters == 0:
            x = layers.MaxPooling2D(2, 2, padding="valid", name=name)(x)
        else:
            x = conv(x, scaled(filters, width), 3, name)
    return x


def _branches(features, skeleton: Skeleton, stages: int, width: float, kernel: int,
              depth: int):
    """Stage 1 (5 convs per branch) then ``stages - 1`` refinement stages (``depth`` convs)."""
    n_heat, n_paf = head_sizes(skeleton)
    outputs = []
    prev = None
    for stage in range(1, stages + 1):
        x = features if prev is None else layers.Concatenate(name="concat_stage%d" % stage)(
            [prev[1], prev[0], features])  # CMU order: PAFs, heatmaps, features
        branch = {}
        for branch_id, n_out in ((1, n_paf), (2, n_heat)):
            y = x
            if stage == 1:
                for i in range(1, 4):
                    y = conv(y, scaled(128, width), 3, "conv5_%d_CPM_L%d" % (i, branch_id))
                y = conv(y, scaled(512, width), 1, "conv5_4_CPM_L%d" % branch_id)
                y = conv(y, n_out, 1, "conv5_5_CPM_L%d" % branch_id, relu=False)
            else:
                for i in range(1, depth + 1):
                    y = conv(y, scaled(128, width), kernel, "Mconv%d_stage%d_L%d" % (i, stage, branch_id))
                y = conv(y, scaled(128, width), 1, "Mconv%d_stage%d_L%d" % (depth + 1, stage, branch_id))
                y = conv(y, n_out, 1, "Mconv%d_stage%d_L%d" % (depth + 2, stage, branch_id), relu=False)
            branch[branch_id] = y
        heat, paf = branch[2], branch[1]
        prev = (heat, paf)
        outputs.extend(stage_outputs(heat, paf, stage))
    return outputs


def _build(skeleton: Skeleton, input_height: int, input_width: int, stages: int, width: float, name: str,
           kernel: int, depth: int) -> keras.Model:
    if stages < 1:
        raise ValueError("stages must be at least 1, got %r" % stages)
    image = image_input(input_height, input_width)
    features = _backbone(normalise(image), width)
    outputs = _branches(features, skeleton, stages, width, kernel=kernel, depth=depth)
    return keras.Model(image, outputs, name=name)


def build_vgg(skeleton: Skeleton, input_height: int, input_width: int, stages: int = 6,
              width: float = 1.0, name: str = "vgg") -> keras.Model:
    """The OpenPose paper's network: 7x7 refinement stages with five 7x7 convs each."""
    return _build(skeleton, input_height, input_width, stages, width, name, kernel=7, depth=5)


def build_vggtiny(skeleton: Skeleton, input_height: int, input_width: int, stages: int = 3,
                  width: float = 0.5, name: str = "vggtiny") -> keras.Model:
    """Thinner backbone and 3x3 refinement stages: about a tenth of ``vgg``'s work."""
    return _build(skeleton, input_height, input_width, stages, width, name, kernel=3, depth=3)
