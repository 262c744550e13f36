"""``openpose-plus export CHECKPOINT --out BUNDLE``: a trained network -> a checked model bundle.

CHECKPOINT is a training run directory (its latest checkpoint) or one checkpoint inside its
``checkpoints/`` folder (``RUN/checkpoints/ckpt-12``). The export fails, writing nothing,
unless onnxruntime reproduces TensorFlow on the check images (see :mod:`.export`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Tuple

from openpose_plus.commands._options import add_batch

__all__ = ["add_arguments", "run", "resolve_checkpoint"]


HELP = "export a checkpoint to a model bundle"

def resolve_checkpoint(path: str) -> Tuple[str, Optional[str]]:
    """(run directory, checkpoint prefix or None for the latest) of a CHECKPOINT argument."""
    from openpose_plus.host_training.checkpoints import CHECKPOINT_DIR, CONFIG_FILE

    p = Path(path)
    if p.is_dir() and (p / CONFIG_FILE).is_file():
        return str(p), None
    # A checkpoint prefix: RUN/checkpoints/ckpt-N (its files are ckpt-N.index, ckpt-N.data-*).
    if p.parent.name == CHECKPOINT_DIR and (p.parent.parent / CONFIG_FILE).is_file():
        if not Path(str(p) + ".index").is_file():
            raise FileNotFoundError("%s: no such checkpoint (no %s.index)" % (p, p.name))
        return str(p.parent.parent), str(p)
    raise FileNotFoundError("%s: neither a training run directory (with %s) nor a checkpoint in one"
                            % (p, CONFIG_FILE))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="training run directory, or RUN/checkpoints/ckpt-N")
    parser.add_argument("--out", required=True, help="bundle to write (a directory; NAME.tar with --tar)")
    parser.add_argument("--tar", action="store_true", help="write the bundle as one .tar file")
    parser.add_argument("--opset", type=int, default=13,
                        help="ONNX opset (default 13: TensorRT 8.5 and 10.x both parse it, and it has "
                             "per-channel QDQ for INT8)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="max abs difference onnxruntime vs TensorFlow allowed (default 1e-4)")
    parser.add_argument("--check-images", type=int, default=4, metavar="N",
                        help="images to compare TensorFlow and onnxruntime on (default 4)")
    add_batch(parser)


def _batch(args: argparse.Namespace) -> dict:
    return {"batch": args.batch} if args.batch is not None else {}


def run(args: argparse.Namespace) -> int:
    from openpose_plus.host_training.checkpoints import RunError, load_trained_model
    from openpose_plus.host_training.export import ExportError, default_pad_value, export_model

    if args.check_images < 1:
        print("export: --check-images must be at least 1", file=sys.stderr)
        return 2
    try:
        run_dir, ckpt = resolve_checkpoint(args.checkpoint)
        print("export: loading %s" % (ckpt or run_dir), file=sys.stderr)
        model, cfg, skeleton = load_trained_model(run_dir, ckpt)
        print("export: converting %s (%dx%d) to ONNX opset %d" % (cfg.model.name, cfg.model.input_width,
                                                                 cfg.model.input_height, args.opset), file=sys.stderr)
        result = export_model(model, args.out, skeleton, stride=cfg.model.stride, config=cfg, opset=args.opset,
                              tolerance=args.tolerance, num_check_images=args.check_images,
                              pad_value=default_pad_value(cfg), tar=args.tar, **_batch(args),
                              extra={"source": {"run": os.path.abspath(run_dir), "checkpoint": ckpt or "latest",
                                                "model": cfg.model.name}})
    except (FileNotFoundError, RunError, ExportError) as exc:
        print("export: %s" % exc, file=sys.stderr)
        return 1
    print(json.dumps({"bundle": result.bundle, "opset": result.opset, "images_checked": result.images_checked,
                      "max_abs_diff": {"heatmaps": result.max_abs_diff[0], "pafs": result.max_abs_diff[1]}},
                     indent=1))
    return 0
