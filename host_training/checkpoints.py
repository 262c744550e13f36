"""A training run on disk, and getting a trained network back out of it.

A run directory holds ``config.toml`` (the resolved config), ``skeleton.json`` (the
skeleton the heads were built for, so export and evaluation need no dataset),
``checkpoints/`` (tf.train.Checkpoint: model, optimizer, step) and ``logs/`` (TensorBoard).

TensorFlow is imported where a network is built or read, not here: ``evaluate`` on a bundle
asks only whether a path is a run (``CONFIG_FILE``), and must work without TensorFlow.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Tuple

from openpose_plus.edge.atomic import write_atomic
from openpose_plus.edge.skeleton import Skeleton

from .config import Config, load_config

__all__ = ["CONFIG_FILE", "SKELETON_FILE", "CHECKPOINT_DIR", "LOG_DIR", "RunError", "build_network",
           "write_run_files", "latest_checkpoint", "load_trained_model"]

CONFIG_FILE = "config.toml"
SKELETON_FILE = "skeleton.json"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"


class RunError(ValueError):
    """A run directory or checkpoint that cannot be used; the message names the path."""


def build_network(cfg: Config, skeleton: Skeleton):
    from .models import build_model

    """The network ``cfg.model`` describes, for ``skeleton``."""
    m = cfg.model
    options = {"stages": m.stages or None, "width": m.width or None}
    return build_model(m.name, skeleton, m.input_height, m.input_width, **options)


def write_run_files(run_dir, cfg: Config, skeleton: Skeleton) -> None:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # A crash never leaves half a config.
    write_atomic(run_dir / CONFIG_FILE, cfg.to_toml())
    write_atomic(run_dir / SKELETON_FILE, json.dumps(skeleton.to_dict(), indent=1))


def latest_checkpoint(run_dir) -> Optional[str]:
    import tensorflow as tf

    return tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))


def load_trained_model(path, checkpoint: Optional[str] = None) -> Tuple[object, Config, Skeleton]:
    """``(model, config, skeleton)`` from a run directory (its latest checkpoint, or ``checkpoint``)."""
    import tensorflow as tf

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunError("%s: not a training run directory" % run_dir)
    for name in (CONFIG_FILE, SKELETON_FILE):
        if not (run_dir / name).is_file():
            raise RunError("%s: no %s in it; is it the TRAIN.output_dir of a run?" % (run_dir, name))
    cfg = load_config(run_dir / CONFIG_FILE)
    try:
        skeleton = Skeleton.from_dict(json.loads((run_dir / SKELETON_FILE).read_text()))
    except (ValueError, json.JSONDecodeError) as exc:
        raise RunError("%s: unreadable %s: %s" % (run_dir, SKELETON_FILE, exc)) from None
    ckpt = checkpoint or latest_checkpoint(run_dir)
    if ckpt is None:
        raise RunError("%s: no checkpoint in %s/" % (run_dir, CHECKPOINT_DIR))
    model = build_network(cfg, skeleton)
    try:
        tf.train.Checkpoint(model=model).read(ckpt).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as exc:
        raise RunError("%s: checkpoint %s does not fit the network %r: %s"
                       % (run_dir, ckpt, cfg.model.name, str(exc).splitlines()[0])) from None
    return model, cfg, skeleton
