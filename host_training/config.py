"""Training configuration: one dataclass per section, read from TOML (or YAML), overridable.

A config file has the sections ``[DATA]``, ``[MODEL]``, ``[AUGMENT]``, ``[TARGETS]``,
``[TRAIN]`` (with ``[TRAIN.lr_schedule]``) and ``[EVAL]``; every key is optional and the
defaults below apply. The seed's names keep their meaning: ``DATA.train_data`` in
``coco | custom | coco_and_custom`` (plus ``synthetic``: figures rendered on the fly),
``DATA.your_images`` / ``DATA.your_annotations``, ``MODEL.name`` in
``vgg | vggtiny | mobilenet``, ``TRAIN.train_mode`` in ``single | parallel``.

    cfg = load_config("train.toml", overrides=["TRAIN.batch_size=16", "MODEL.name=mobilenet"])
    cfg.train.batch_size            # 16
    (out / "config.toml").write_text(cfg.to_toml())   # a run keeps its resolved config
    cfg.digest()                    # sha256 hex of the resolved config (bundle meta.json)

An override is ``SECTION.key=value`` (``TRAIN.lr_schedule.warmup_steps=500`` for the
nested table); the value is read as a TOML literal (``16``, ``true``, ``"a b"``,
``[1, 2]``, ``{name = "flip"}``) and, if it is not one, taken as a plain string.
Any unknown section or key, or a bad value, raises :class:`ConfigError` naming the key:
``TRAIN.batch_size: must be a positive integer, got -1``. The reading itself is
:mod:`openpose_plus.edge.configfile`'s, the same reader as the daemon's config.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional

from openpose_plus.edge import configfile
from openpose_plus.edge.configfile import (ConfigError, apply_override, fraction as _fraction, non_negative as _non_negative,
                                           one_of as _one_of, option as _f, parse_value, positive as _positive, section)

__all__ = ["ConfigError", "Config", "DataConfig", "ModelConfig", "AugmentConfig", "TargetsConfig",
           "TrainConfig", "LRSchedule", "EvalConfig", "load_config", "config_from_dict", "apply_override",
           "parse_value", "DEFAULT_AUGMENT_STEPS"]


# -- sections -----------------------------------------------------------------------

@dataclass
class DataConfig:
    train_data: str = _f("coco", _one_of("coco", "custom", "coco_and_custom", "synthetic"),
                         "where training samples come from")
    coco_dir: str = _f("dataset/coco17", doc="COCO 2017 root: annotations/, train2017/, val2017/")
    your_images: str = _f("", doc="custom data: image folder")
    your_annotations: str = _f("", doc="custom data: COCO-format keypoint annotations JSON")
    custom_ratio: float = _f(0.5, _fraction, "coco_and_custom: share of each batch from custom data")
    val_images: str = _f("", doc="validation images (default: COCO val2017 for coco, else your_images)")
    val_annotations: str = _f("", doc="validation annotations JSON")
    bad_sample: str = _f("skip", _one_of("skip", "error"),
                         "a corrupt image or annotation: skip it with a warning naming the file, or stop")
    min_keypoints: int = _f(1, _positive, "people with fewer labelled keypoints join the ignore mask")
    cache_dir: str = _f("", doc="cache of parsed annotation indexes ('' = no cache)")
    synthetic_size: int = _f(1000, _positive, "synthetic: number of distinct rendered samples")
    synthetic_people: int = _f(4, _positive, "synthetic: at most this many people per image")
    synthetic_height: List[float] = _f([0.12, 1.0], lambda v: None if (
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v) and 0 < v[0] <= v[1])
        else "must be [min, max] with 0 < min <= max, got %r" % (v,),
        "synthetic: person heights as fractions of the image height, drawn log-uniformly")
    synthetic_seed: int = _f(0, _non_negative, "synthetic: which figures are drawn")
    shuffle: bool = _f(True, doc="shuffle each epoch of the training shard")
    workers: int = _f(-1, lambda v: None if v >= -1 else "must be -1 (auto), 0 or more, got %r" % (v,),
                      "decode/augment processes (-1: the cores shared by this machine's ranks; "
                      "0: threads inside tf.data instead)")
    parallel_calls: int = _f(0, _non_negative, "workers = 0: tf.data parallel calls (0 = AUTOTUNE)")
    prefetch: int = _f(2, _non_negative, "batches prefetched (0 = AUTOTUNE)")


@dataclass
class ModelConfig:
    name: str = _f("vgg", _one_of("vgg", "vggtiny", "mobilenet"), "network")
    input_height: int = _f(368, _positive, "network input height in pixels")
    input_width: int = _f(368, _positive, "network input width in pixels")
    stride: int = _f(8, _positive, "output stride (maps are input / stride)")
    skeleton: str = _f("coco18", _one_of("coco18", "from_data"), "COCO-18, or the custom data's own")
    stages: int = _f(0, _non_negative, "refinement stages (0 = the network's default)")
    width: float = _f(0.0, _non_negative, "channel width multiplier (0 = the network's default)")
    pretrained: str = _f("", doc="weights to start from (checkpoint or CMU OpenPose weights)")


DEFAULT_AUGMENT_STEPS: List[Dict[str, Any]] = [
    {"name": "random_scale", "min_scale": 0.6, "max_scale": 1.1},
    {"name": "random_rotate", "max_degrees": 30.0},
    {"name": "crop_pad", "center": "person", "jitter": 40.0},
    {"name": "flip", "prob": 0.5},
    {"name": "color_jitter", "brightness": 0.25, "contrast": 0.25, "saturation": 0.25},
]


@dataclass
class AugmentConfig:
    steps: List[Dict[str, Any]] = _f(DEFAULT_AUGMENT_STEPS, doc="[[AUGMENT.steps]] tables: name = ..., params")
    pad_value: int = _f(128, lambda v: None if 0 <= v <= 255 else "must be 0..255, got %r" % (v,),
                        "grey level of padding outside the source image")


@dataclass
class TargetsConfig:
    heatmap_sigma: float = _f(7.0 / 8.0, _positive, "Gaussian std in map cells (OpenPose: 7 input px)")
    paf_width: float = _f(1.0, _positive, "PAF band half-width in map cells")


@dataclass
class LRSchedule:
    kind: str = _f("step", _one_of("constant", "step", "cosine"), "decay after the warm-up")
    warmup_steps: int = _f(0, _non_negative, "linear warm-up from 0 (Horovod: to lr x ranks)")
    decay_steps: int = _f(100000, _positive, "step: multiply by decay_rate every decay_steps; cosine: length")
    decay_rate: float = _f(0.333, _positive, "step: factor per decay_steps")
    min_lr: float = _f(0.0, _non_negative, "cosine: floor")


@dataclass
class TrainConfig:
    train_mode: str = _f("single", _one_of("single", "parallel"), "one process, or Horovod")
    batch_size: int = _f(8, _positive, "per process (per Horovod rank)")
    steps: int = _f(100000, _positive, "optimiser steps")
    learning_rate: float = _f(4e-5, _positive, "base rate (parallel: scaled by the number of ranks)")
    scale_lr: bool = _f(True, doc="parallel: multiply the rate by the number of ranks after the warm-up")
    lr_schedule: LRSchedule = section(LRSchedule, doc="[TRAIN.lr_schedule]")
    optimizer: str = _f("adam", _one_of("adam", "sgd", "momentum", "rmsprop"), "optimiser")
    momentum: float = _f(0.9, _fraction, "momentum / rmsprop")
    weight_decay: float = _f(5e-4, _non_negative, "L2 on the weights")
    checkpoint_every: int = _f(1000, _positive, "steps between checkpoints")
    keep_checkpoints: int = _f(3, _positive, "checkpoints kept")
    log_every: int = _f(50, _positive, "steps between log lines / TensorBoard scalars")
    image_every: int = _f(1000, _positive, "steps between TensorBoard images")
    output_dir: str = _f("runs/default", doc="checkpoints, logs and the resolved config")
    seed: int = _f(0, _non_negative, "data order, augmentation and initial weights")
    mixed_precision: bool = _f(False, doc="float16 compute, float32 weights")
    resume: bool = _f(False, doc="continue from the last checkpoint in output_dir")


@dataclass
class EvalConfig:
    images: str = _f("", doc="val images (default: DATA.val_images)")
    annotations: str = _f("", doc="val annotations (default: DATA.val_annotations)")
    batch_size: int = _f(1, _positive, "images per inference batch")
    max_images: int = _f(0, _non_negative, "evaluate at most this many images (0 = all)")
    draw: int = _f(0, _non_negative, "save pictures of this many predictions")
    output_dir: str = _f("", doc="results JSON and pictures (default: the run's eval/)")
    group: Dict[str, Any] = _f({}, doc="grouping parameters (GroupParams fields)")


@dataclass
class Config:
    data: DataConfig = section(DataConfig, "DATA")
    model: ModelConfig = section(ModelConfig, "MODEL")
    augment: AugmentConfig = section(AugmentConfig, "AUGMENT")
    targets: TargetsConfig = section(TargetsConfig, "TARGETS")
    train: TrainConfig = section(TrainConfig, "TRAIN")
    eval: EvalConfig = section(EvalConfig, "EVAL")

    # -- derived sizes the pipeline and the networks share --------------------------
    @property
    def map_height(self) -> int:
        return self.model.input_height // self.model.stride

    @property
    def map_width(self) -> int:
        return self.model.input_width // self.model.stride

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        return configfile.as_document(self)

    def to_toml(self) -> str:
        """The resolved config as TOML that :func:`load_config` reads back to an equal config."""
        return _to_toml(self.to_dict())

    def digest(self) -> str:
        """sha256 hex of the resolved config (canonical JSON of every section and key)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def replace(self, overrides: Iterable[str]) -> "Config":
        """A copy with ``SECTION.key=value`` overrides applied and validated."""
        d = self.to_dict()
        for item in overrides:
            apply_override(d, item)
        return config_from_dict(d)


# -- reading --------------------------------------------------------------------------

def config_from_dict(d: Mapping[str, Any]) -> Config:
    """A validated :class:`Config` from nested mappings (``{"TRAIN": {"batch_size": 8}}``)."""
    return configfile.from_document(Config, d, check=_check_whole)


def _check_whole(cfg: Config) -> None:
    """Rules that join several keys."""
    m = cfg.model
    for key, size in (("MODEL.input_height", m.input_height), ("MODEL.input_width", m.input_width)):
        if size % m.stride:
            raise ConfigError("%s: must be a multiple of MODEL.stride (%d), got %d" % (key, m.stride, size))
    d = cfg.data
    if d.train_data in ("custom", "coco_and_custom"):
        for key in ("your_images", "your_annotations"):
            if not getattr(d, key):
                raise ConfigError("DATA.%s: required when DATA.train_data is %r" % (key, d.train_data))
    if cfg.train.lr_schedule.warmup_steps > cfg.train.steps:
        raise ConfigError("TRAIN.lr_schedule.warmup_steps: %d is more than TRAIN.steps (%d)"
                          % (cfg.train.lr_schedule.warmup_steps, cfg.train.steps))
    _check_augment(cfg.augment.steps)


def _check_augment(steps: List[Any]) -> None:
    # The registry lives with the steps; importing it here keeps one list of names.
    from .data import augment

    for i, step in enumerate(steps):
        key = "AUGMENT.steps[%d]" % i
        if not isinstance(step, Mapping):
            raise ConfigError("%s: must be a table like {name = \"flip\"}, got %r" % (key, step))
        try:
            augment.check_step(step)
        except ValueError as exc:
            raise ConfigError("%s: %s" % (key, exc)) from None


def load_config(path: Optional[os.PathLike | str] = None, overrides: Iterable[str] = ()) -> Config:
    """Defaults, then the file (TOML, or YAML by suffix), then ``--set`` overrides, validated."""
    return configfile.load(Config, path, overrides, check=_check_whole)


def add_config_arguments(parser: Any) -> None:
    """``--config FILE`` and repeatable ``--set SECTION.key=value`` for a subcommand."""
    configfile.add_arguments(parser, example="TRAIN.batch_size=16")


def config_from_args(args: Any) -> Config:
    return load_config(getattr(args, "config", None), getattr(args, "overrides", ()) or ())


# -- writing ---------------------------------------------------------------------------

def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ConfigError("cannot write non-finite number %r" % (v,))
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join("%s = %s" % (_toml_key(k), _toml_value(x)) for k, x in v.items()) + "}"
    raise ConfigError("cannot write %r as TOML" % (v,))


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _to_toml(d: Mapping[str, Mapping[str, Any]]) -> str:
    lines: List[str] = ["# openpose-plus resolved training config"]
    for section, body in d.items():
        lines.append("")
        lines.append("[%s]" % section)
        tables = []
        for k, v in body.items():
            if isinstance(v, Mapping) and k != "group":
                tables.append((k, v))
            elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
                tables.append((k, v))
            else:
                lines.append("%s = %s" % (_toml_key(k), _toml_value(v)))
        for k, v in tables:
            if isinstance(v, Mapping):
                lines.append("")
                lines.append("[%s.%s]" % (section, k))
                for kk, vv in v.items():
                    lines.append("%s = %s" % (_toml_key(kk), _toml_value(vv)))
            else:
                for item in v:
                    lines.append("")
                    lines.append("[[%s.%s]]" % (section, k))
                    for kk, vv in item.items():
                        lines.append("%s = %s" % (_toml_key(kk), _toml_value(vv)))
    return "\n".join(lines) + "\n"
