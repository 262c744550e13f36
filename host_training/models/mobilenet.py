"""``mobilenet``: a thin MobileNet backbone with a light refinement stage.

In the spirit of Lightweight OpenPose (Osokin, 2018): MobileNet-v1 depthwise separable
convolutions to stride 8 (the last ones dilated instead of strided), a CPM that mixes
features cheaply, one initial stage with shared trunk for both heads, and refinement
stages built from residual 1x1 + 3x3 + dilated 3x3 blocks.
"""
from __future__ import annotations

import keras
from keras import layers

from openpose_plus.edge.skeleton import Skeleton

from .common import head_sizes, image_input, normalise, scaled, stage_outputs

__all__ = ["build_mobilenet"]

# He initialisation: with Glorot the signal fades to ~1e-13 through a dozen thin
# depthwise layers, and an untrained network's maps would not depend on its input.
_INIT = "he_normal"
# Keras counts a depthwise kernel's fan-in as 9 * channels, but each output sees 9 inputs.
_DW_INIT = keras.initializers.RandomNormal(stddev=(2.0 / 9.0) ** 0.5)
# The map heads start small (OpenPose's Gaussian 0.01): with He here the first maps are in
# the hundreds, the first loss ~100x that of all-zero maps, and Adam's first steps go to
# undoing that instead of finding people.
_HEAD_INIT = keras.initializers.RandomNormal(stddev=0.01)


def _conv_bn(x, filters: int, kernel: int, name: str, strides: int = 1, dilation: int = 1,
             act: str = "relu"):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", dilation_rate=dilation,
                      use_bias=False, kernel_initializer=_INIT, name=name)(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.Activation(act, name=name + "_" + act)(x) if act else x


def _dw_sep(x, filters: int, name: str, strides: int = 1, dilation: int = 1, act: str = "relu"):
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", dilation_rate=dilation,
                               use_bias=False, depthwise_initializer=_DW_INIT, name=name + "_dw")(x)
    x = layers.BatchNormalization(name=name + "_dw_bn")(x)
    x = layers.Activation(act, name=name + "_dw_" + act)(x)
    return _conv_bn(x, filters, 1, name + "_pw", act=act)


def _backbone(x, alpha: float):
    x = _conv_bn(x, scaled(32, alpha), 3, "conv1", strides=2)
    x = _dw_sep(x, scaled(64, alpha), "conv2_1")
    x = _dw_sep(x, scaled(128, alpha), "conv2_2", strides=2)
    x = _dw_sep(x, scaled(128, alpha), "conv3_1")
    x = _dw_sep(x, scaled(256, alpha), "conv3_2", strides=2)
    x = _dw_sep(x, scaled(256, alpha), "conv4_1")
    x = _dw_sep(x, scaled(512, alpha), "conv4_2")
    for i in range(1, 6):  # dilated rather than strided: the maps stay at stride 8
        x = _dw_sep(x, scaled(512, alpha), "conv5_%d" % i, dilation=2 if i > 1 else 1)
    return x


def _cpm(x, channels: int):
    x = layers.Conv2D(channels, 1, activation="relu", kernel_initializer=_INIT, name="cpm_align")(x)
    y = x
    for i in range(1, 4):
        y = _dw_sep(y, channels, "cpm_trunk%d" % i, act="elu")
    x = layers.Add(name="cpm_residual")([x, y])
    return layers.Conv2D(channels, 3, padding="same", activation="relu", kernel_initializer=_INIT, name="cpm_conv")(x)


def _refinement_block(x, channels: int, name: str):
    x = layers.Conv2D(channels, 1, activation="relu", kernel_initializer=_INIT, name=name + "_init")(x)
    y = _conv_bn(x, channels, 3, name + "_trunk1")
    y = _conv_bn(y, channels, 3, name + "_trunk2", dilation=2)
    return layers.Add(name=name + "_residual")([x, y])


def build_mobilenet(skeleton: Skeleton, input_height: int, input_width: int, stages: int = 2,
                    width: float = 0.75, name: str = "mobilenet") -> keras.Model:
    """``width`` is the MobileNet multiplier (0.5-1.0); ``stages`` counts the initial one."""
    if stages < 1:
        raise ValueError("stages must be at least 1, got %r" % stages)
    n_heat, n_paf = head_sizes(skeleton)
    channels = scaled(128, width)
    image = image_input(input_height, input_width)
    features = _cpm(_backbone(normalise(image), width), channels)

    trunk = features
    for i in range(1, 4):
        trunk = layers.Conv2D(channels, 3, padding="same", activation="relu", kernel_initializer=_INIT, name="initial_trunk%d" % i)(trunk)
    heads = {}
    for kind, n_out in (("heatmaps", n_heat), ("pafs", n_paf)):
        y = layers.Conv2D(scaled(512, width), 1, activation="relu", kernel_initializer=_INIT, name="initial_%s_1" % kind)(trunk)
        heads[kind] = layers.Conv2D(n_out, 1, kernel_initializer=_HEAD_INIT, name="initial_%s_2" % kind)(y)
    outputs = list(stage_outputs(heads["heatmaps"], heads["pafs"], 1))
    for stage in range(2, stages + 1):
        x = layers.Concatenate(name="concat_stage%d" % stage)([features, heads["heatmaps"], heads["pafs"]])
        for b in range(1, 6):
            x = _refinement_block(x, channels, "refine%d_block%d" % (stage, b))
        for kind, n_out in (("heatmaps", n_heat), ("pafs", n_paf)):
            y = layers.Conv2D(channels, 1, activation="relu", kernel_initializer=_INIT, name="refine%d_%s_1" % (stage, kind))(x)
            heads[kind] = layers.Conv2D(n_out, 1, kernel_initializer=_HEAD_INIT,
                                         name="refine%d_%s_2" % (stage, kind))(y)
        outputs.extend(stage_outputs(heads["heatmaps"], heads["pafs"], stage))
    return keras.Model(image, outputs, name=name)
