"""The networks, by ``MODEL.name``: ``vgg``, ``vggtiny``, ``mobilenet``.

All take uint8 RGB NHWC and normalise inside (the bundle's input contract) and return,
per stage, heatmaps (K+1) and PAFs (2L) at stride 8, NHWC float32, as a flat list
``[heat_1, paf_1, ..., heat_S, paf_S]``. :func:`inference_model` keeps the last stage only,
which is what export and evaluation run. A user adds a network with :func:`register`.
"""
from __future__ import annotations

from typing import Callable, Dict

import keras
from keras import layers

from openpose_plus.edge.skeleton import Skeleton

from .common import STRIDE, split_stages
from .mobilenet import build_mobilenet
from .vgg import build_vgg, build_vggtiny

__all__ = ["STRIDE", "MODELS", "register", "build_model", "inference_model", "split_stages",
           "num_stages"]

Builder = Callable[..., keras.Model]

MODELS: Dict[str, Builder] = {
    "vgg": build_vgg,
    "vggtiny": build_vggtiny,
    "mobilenet": build_mobilenet,
}


def register(name: str, builder: Builder) -> None:
    """Add a network: ``builder(skeleton, input_height, input_width, **options) -> keras.Model``."""
    if name in MODELS:
        raise ValueError("a network named %r is already registered" % name)
    MODELS[name] = builder


def build_model(name: str, skeleton: Skeleton, input_height: int, input_width: int,
                **options) -> keras.Model:
    """The network ``name`` for ``skeleton``; ``options`` (``stages``, ``width``) go to its builder."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError("unknown MODEL.name %r; known: %s" % (name, ", ".join(sorted(MODELS)))) from None
    options = {k: v for k, v in options.items() if v is not None}
    return builder(skeleton, int(input_height), int(input_width), **options)


def num_stages(model: keras.Model) -> int:
    return len(model.outputs) // 2


def inference_model(model: keras.Model, nchw: bool = False) -> keras.Model:
    """The last stage only, outputs named ``heatmaps`` and ``pafs`` (NCHW if ``nchw``)."""
    heat, paf = split_stages(model.outputs)[-1]
    if nchw:
        heat = layers.Permute((3, 1, 2), name="heatmaps")(heat)
        paf = layers.Permute((3, 1, 2), name="pafs")(paf)
    else:
        heat = layers.Identity(name="heatmaps")(heat)
        paf = layers.Identity(name="pafs")(paf)
    return keras.Model(model.inputs, [heat, paf], name=model.name + "_inference")
