"""``openpose-plus bench KIND ...``: the speed targets of each part, measured.

Each benchmark lives beside the code it measures and is imported only when asked for
(``bench data`` needs TensorFlow; ``bench group`` must run on a bare Jetson).
"""
from __future__ import annotations

import argparse
import importlib
from typing import Dict

# kind -> (module, what it measures)
BENCHMARKS: Dict[str, tuple] = {
    "group": ("openpose_plus.edge.bench_group", "C grouping: ms per frame and recovery vs people"),
    "data": ("openpose_plus.host_training.bench_data", "training input pipeline: samples/s"),
    "train": ("openpose_plus.host_training.bench_train", "networks: inference ms/image and training samples/s"),
    "backend": ("openpose_plus.calibration.bench_backend", "onnxruntime FP32 / FP16 / INT8 frames/s"),
    "pipeline": ("openpose_plus.edge.bench_pipeline", "per-stage time and end-to-end frames/s"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=sorted(BENCHMARKS),
                        help="; ".join("%s: %s" % (k, v[1]) for k, v in sorted(BENCHMARKS.items())))
    parser.add_argument("options", nargs=argparse.REMAINDER, help="options of that benchmark (see KIND --help)")


def run(args: argparse.Namespace) -> int:
    module_name, text = BENCHMARKS[args.kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print("bench %s is not available here: %s" % (args.kind, exc))
        return 2
    parser = argparse.ArgumentParser(prog="openpose-plus bench %s" % args.kind, description=text)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(args.options)) or 0)
