"""``openpose-plus``: one command, a subcommand per step of the flow.

Each subcommand lives in the module of the part it belongs to and is imported only when
it is the one asked for, so ``openpose-plus serve`` on a Jetson never touches the host's
TensorFlow, and ``openpose-plus --help`` starts in milliseconds. A command module offers
``add_arguments(parser)`` and ``run(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from typing import List, Optional, Tuple

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line help)
COMMANDS: Tuple[Tuple[str, str, str], ...] = (
    ("info", "openpose_plus.edge.info", "versions, and which backends and sources work here and why not"),
    ("bench", "openpose_plus.edge.bench", "benchmarks: group, data, backend, pipeline"),
    ("demo", "openpose_plus.edge.demo", "the system at work on synthetic people (no camera, no GPU)"),
    ("synth-data", "openpose_plus.host_training.synth_cli", "write a synthetic COCO-format dataset"),
    ("download-coco", "openpose_plus.host_training.download_cli", "fetch COCO 2017 person keypoints"),
    ("train", "openpose_plus.host_training.train_cli", "train a network (one GPU, or many with Horovod)"),
    ("evaluate", "openpose_plus.host_training.evaluate_cli", "COCO keypoint AP of a model on a val set"),
    ("export", "openpose_plus.host_training.export_cli", "export a checkpoint to a model bundle"),
    ("calibrate", "openpose_plus.calibration.cli", "FP16 / INT8 calibration of a bundle, with its accuracy cost"),
    ("build-engine", "openpose_plus.calibration.engine_cli", "build (or load) the TensorRT engine of a bundle"),
    ("run", "openpose_plus.edge.run_cli", "run the pipeline in the foreground on a source"),
    ("serve", "openpose_plus.edge.serve_cli", "the daemon (systemd Type=notify)"),
)


def _find(name: str) -> Optional[Tuple[str, str, str]]:
    for entry in COMMANDS:
        if entry[0] == name:
            return entry
    return None


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def build_parser(selected: Optional[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openpose-plus", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, text in COMMANDS:
        if name != selected and not _available(module):
            continue  # a part not built yet, or not installed on this machine
        p = sub.add_parser(name, help=text, description=text)
        if name == selected:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # Host commands import TensorFlow: keep its C++ INFO lines (grappler, oneDNN) off the
    # terminal unless the user asks for them. Edge commands never import it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = argv[0] if argv and _find(argv[0]) else None
    if selected is not None and not _available(_find(selected)[1]):  # type: ignore[index]
        print("openpose-plus: '%s' is not available in this installation" % selected, file=sys.stderr)
        return 2
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(_find(args.command)[1])  # type: ignore[index]
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
