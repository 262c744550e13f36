"""``openpose-plus train --config FILE [--set SECTION.key=VALUE ...]``.

One process (TRAIN.train_mode = "single"), or one per GPU under Horovod::

    horovodrun -np 4 -H localhost:4 openpose-plus train --config train.toml --set TRAIN.train_mode=parallel
    horovodrun -np 16 -H server1:4,server2:4,server3:4,server4:4 openpose-plus train --config train.toml \\
        --set TRAIN.train_mode=parallel
"""
from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["add_arguments", "run"]


HELP = "train a network (one GPU, or many with Horovod)"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from openpose_plus.host_training.config import add_config_arguments

    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint (TRAIN.resume)")
    parser.add_argument("--parallel", action="store_true",
                        help="Horovod data parallel (TRAIN.train_mode = parallel); launch with horovodrun")


def run(args: argparse.Namespace) -> int:
    from openpose_plus.host_training.config import ConfigError, config_from_args

    # INFO for this project's loggers only: TensorFlow's and absl's chatter stays out.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("openpose_plus").setLevel(logging.INFO)
    try:
        cfg = config_from_args(args)
        extra = (["TRAIN.resume=true"] if args.resume else []) + \
            (["TRAIN.train_mode=\"parallel\""] if args.parallel else [])
        if extra:
            cfg = cfg.replace(extra)
    except ConfigError as exc:
        print("train: %s" % exc, file=sys.stderr)
        return 2

    from openpose_plus.host_training.checkpoints import RunError
    from openpose_plus.host_training.train import TrainingError, train
    from openpose_plus.host_training.weights import WeightsError

    try:
        result = train(cfg)
    except (TrainingError, RunError, WeightsError, ConfigError, FileNotFoundError, ValueError) as exc:
        print("train: %s" % exc, file=sys.stderr)
        return 1
    if result.last_step == result.first_step and result.model is not None:
        print("nothing to train: the run is already at step %d of TRAIN.steps = %d"
              % (result.first_step, cfg.train.steps))
    elif result.checkpoint:
        print("trained steps %d..%d, %.1f samples/s; checkpoint %s"
              % (result.first_step, result.last_step, result.samples_per_second, result.checkpoint))
    return 0
