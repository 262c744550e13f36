"""``openpose-plus bench KIND ...``: the speed targets of each part, measured.

Every module of :mod:`openpose_plus.benches` is a benchmark (``benches/group.py`` is
``bench group``), with ``HELP``, ``add_arguments(parser)`` and ``run(args)`` as a verb has; it
is imported only when asked for (``bench data`` needs TensorFlow, ``bench group`` runs on a
bare Jetson).
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import List

__all__ = ["add_arguments", "run", "kinds"]

HELP = "benchmarks: the speed of each part (see KIND --help)"


def kinds() -> List[str]:
    import openpose_plus.benches as benches

    return sorted(m.name for m in pkgutil.iter_modules(benches.__path__) if not m.name.startswith("_"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=kinds())
    parser.add_argument("options", nargs=argparse.REMAINDER, help="options of that benchmark (see KIND --help)")


def run(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module("openpose_plus.benches." + args.kind)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "openpose_plus":
            raise
        print("bench %s needs %s, which is not installed here" % (args.kind, exc.name), file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="openpose-plus bench %s" % args.kind, description=module.HELP)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(args.options)) or 0)
