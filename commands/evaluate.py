"""``openpose-plus evaluate MODEL --data DIR [--draw N]``: COCO keypoint AP of a model.

MODEL is a training run directory (its latest checkpoint, run in TensorFlow) or a model
bundle (directory or .tar, run in onnxruntime as the device would). DIR is COCO-layout:
``annotations/person_keypoints_val2017.json`` and ``val2017/`` (what ``synth-data --val``
and ``download-coco`` write); ``--annotations``/``--images`` name other files.
Results go to ``--out``, by default a training run's own ``eval/`` folder, and for a bundle
``out/evaluate/NAME`` under the current directory (never into the bundle).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Tuple

import numpy as np

from openpose_plus.commands._options import add_precision

__all__ = ["add_arguments", "run", "keras_map_fn", "bundle_map_fn", "open_model", "default_bundle_out"]


HELP = "COCO keypoint AP of a model on a val set"

def keras_map_fn(model):
    """A Keras pose network as an evaluation map_fn (last stage, NCHW outputs)."""
    import tensorflow as tf

    from openpose_plus.host_training.models import inference_model

    infer = inference_model(model, nchw=True)

    @tf.function(reduce_retracing=True)
    def run(batch):
        return infer(batch, training=False)

    def map_fn(batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        heat, paf = run(tf.constant(batch))
        return heat.numpy(), paf.numpy()
    return map_fn


def bundle_map_fn(bundle, precision: str = "fp32"):
    """A bundle on onnxruntime (the edge's own backend) as an evaluation map_fn."""
    from openpose_plus.edge.backends import create_backend

    backend = create_backend(bundle, "onnxruntime", precision)
    buffers = backend.new_buffers()

    def map_fn(batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        np.copyto(buffers.input, batch.reshape(buffers.input.shape))
        backend.infer(buffers)
        return buffers.heatmaps, buffers.pafs
    return map_fn


def default_bundle_out(bundle: Path) -> Path:
    """``out/evaluate/NAME`` under the current directory: NAME is the bundle's folder, or its .tar's stem."""
    name = bundle.resolve().name if bundle.is_dir() else bundle.name.split(".")[0]
    return Path("out") / "evaluate" / (name or "bundle")


def open_model(path: str, precision: str = "fp32"):
    """``(map_fn, EvalSettings, run config or None, default output dir)`` for a run directory or bundle.

    The default output is the run's own ``eval/`` (or its ``EVAL.output_dir``) for a training run, and
    ``out/evaluate/NAME`` under the current directory for a bundle.
    """
    from openpose_plus.host_training.checkpoints import CONFIG_FILE
    from openpose_plus.evaluation.coco import EvalSettings

    p = Path(path)
    if p.is_dir() and (p / CONFIG_FILE).is_file():
        from openpose_plus.host_training.checkpoints import load_trained_model

        model, cfg, skeleton = load_trained_model(p)
        settings = EvalSettings(cfg.model.input_width, cfg.model.input_height, cfg.model.stride, skeleton)
        return keras_map_fn(model), settings, cfg, p / "eval"
    from openpose_plus.edge.bundle import load_bundle

    bundle = load_bundle(p)
    settings = EvalSettings(bundle.input_width, bundle.input_height, bundle.stride, bundle.skeleton,
                            pad_value=bundle.pad_value, group=bundle.group_params())
    # Never into the bundle: it is an input (models/demo/ is part of a checkout).
    return bundle_map_fn(bundle, precision), settings, None, default_bundle_out(p)


def _val_files(args: argparse.Namespace, cfg) -> Tuple[str, str]:
    """--annotations/--images, else --data's COCO layout, else the run's EVAL / DATA.val_* keys."""
    from openpose_plus.evaluation.coco import EvalError

    annotations, images = args.annotations, args.images
    if args.data:
        annotations = annotations or os.path.join(args.data, "annotations", "person_keypoints_val2017.json")
        images = images or os.path.join(args.data, "val2017")
    if cfg is not None:
        annotations = annotations or cfg.eval.annotations or cfg.data.val_annotations
        images = images or cfg.eval.images or cfg.data.val_images
    if not annotations or not images:
        raise EvalError("no validation set: give --data DIR (COCO layout), or --annotations FILE and --images DIR")
    return annotations, images


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="training run directory, or model bundle (directory or .tar)")
    parser.add_argument("--data", help="COCO-layout folder with annotations/ and val2017/")
    parser.add_argument("--annotations", help="keypoint annotation JSON (default: DATA/annotations/"
                                              "person_keypoints_val2017.json)")
    parser.add_argument("--images", help="image folder (default: DATA/val2017)")
    parser.add_argument("--draw", type=int, default=0, metavar="N", help="save N pictures of predictions")
    parser.add_argument("--max-images", type=int, default=0, help="evaluate at most this many images")
    parser.add_argument("--group", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a grouping parameter (repeatable); the rest are the bundle's own "
                             "(or the run's EVAL.group)")
    add_precision(parser, default="fp32", choices=("fp32", "int8"), what="the bundle graph to run")
    parser.add_argument("--skip-bad-images", action="store_true", help="skip unreadable images, naming them")
    parser.add_argument("--out", help="folder for keypoint_results.json, metrics.json and drawn/ (default: "
                                      "RUN/eval for a training run, out/evaluate/NAME here for a bundle)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.bundle import BundleError

    from openpose_plus.host_training.checkpoints import RunError
    from openpose_plus.edge.grouping import parse_overrides
    from openpose_plus.evaluation.coco import EvalError, evaluate, group_params

    if args.draw < 0 or args.max_images < 0:
        print("evaluate: --draw and --max-images must be 0 or more", file=sys.stderr)
        return 2
    try:
        map_fn, settings, cfg, default_out = open_model(args.model, args.precision)
        annotations, images = _val_files(args, cfg)
        overrides = parse_overrides(args.group)
        if cfg is not None:
            settings.group = group_params(dict(cfg.eval.group, **overrides))
        else:  # a bundle: its own parameters, changed where asked
            settings.group = dataclasses.replace(settings.group, **overrides)
        settings.bad_image = "skip" if args.skip_bad_images else "error"
        out = Path(args.out) if args.out else (Path(cfg.eval.output_dir) if cfg and cfg.eval.output_dir
                                               else default_out)
        max_images = args.max_images or (cfg.eval.max_images if cfg is not None else 0)
        draw = args.draw or (cfg.eval.draw if cfg is not None else 0)
        summary = evaluate(annotations, images, map_fn, settings, out, max_images, draw,
                           show_progress=not args.quiet)
    except (EvalError, RunError, BundleError, ValueError) as exc:
        print("evaluate: %s" % exc, file=sys.stderr)
        return 1
    summary["grouping"] = {k: v for k, v in dataclasses.asdict(settings.group).items()}
    print(json.dumps(summary, indent=1))
    print("results: %s" % (out / "keypoint_results.json"))
    return 0
