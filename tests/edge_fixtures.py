"""Small real pose models and bundles for tests (and for anyone else's tests).

``tiny_pose_onnx`` is a real network shaped like the exported ones, built by the project's
one builder (:mod:`openpose_plus.benches._pose_onnx`, which ``bench pipeline demo`` uses too)
with 8 channels and seeded random weights: outputs are deterministic but not meaningful.
``make_bundle`` writes it as a real bundle through :func:`openpose_plus.edge.bundle.write_bundle`.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

from openpose_plus.benches._pose_onnx import pose_onnx
from openpose_plus.edge.bundle import write_bundle
from openpose_plus.edge.skeleton import COCO18, Skeleton

__all__ = ["tiny_pose_onnx", "make_bundle", "tiny_estimator"]


def tiny_pose_onnx(width: int = 96, height: int = 64, skeleton: Skeleton = COCO18, channels: int = 8,
                   seed: int = 0, opset: int = 13, input_name: str = "image",
                   output_names: Tuple[str, str] = ("heatmaps", "pafs"),
                   mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), depth: int = 0,
                   heat_bias: float = 0.0) -> bytes:
    """A serialized ONNX pose model, ``channels`` wide; ``depth`` extra stride-1 convs make the
    network heavier, a negative ``heat_bias`` makes the heatmaps sparse like a trained model's."""
    return pose_onnx(width, height, skeleton, widths=(channels,) * 3, depth=depth, seed=seed, heat_bias=heat_bias,
                     opset=opset, input_name=input_name, output_names=output_names, mean=mean, std=std,
                     name="tiny_pose")


def make_bundle(directory, width: int = 96, height: int = 64, skeleton: Skeleton = COCO18,
                tar: bool = False, seed: int = 0, channels: int = 8, depth: int = 0,
                accuracy: Optional[dict] = None, name: str = "bundle", heat_bias: float = 0.0) -> str:
    """Write a real bundle with the tiny model under ``directory``; returns its path."""
    model = tiny_pose_onnx(width, height, skeleton, channels=channels, seed=seed, depth=depth, heat_bias=heat_bias)
    return write_bundle(os.path.join(os.fspath(directory), name), model, input_size=(width, height),
                        stride=8, skeleton=skeleton, mean=(127.5,) * 3, std=(127.5,) * 3,
                        training_config={"MODEL": {"name": "tiny"}, "seed": seed},
                        accuracy=accuracy if accuracy is not None else {"fp32": {"ap": 0.0}}, tar=tar)


def tiny_estimator(directory):
    """A :class:`PoseEstimator` (onnxruntime, one thread) on :func:`make_bundle`'s bundle under
    ``directory``; close it, or use it as a context manager."""
    from openpose_plus.edge.estimator import PoseEstimator

    return PoseEstimator(make_bundle(directory), backend="onnxruntime", threads=1)
