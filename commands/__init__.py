"""``openpose-plus``: one command, a verb per step of the flow.

Every module of this package is a verb (``build_engine.py`` is ``openpose-plus build-engine``):
it says what it does in ``HELP``, adds its own arguments in ``add_arguments(parser)`` and does
its work in ``run(args) -> int``. A verb that is a Python keyword lives in a module with a
trailing underscore, as PEP 8 names such things (``import_.py`` is ``openpose-plus import``). Verb modules import only the standard library at the top, so
``--help`` lists every verb in milliseconds, and a verb whose part is not installed here (a
Jetson has no TensorFlow) fails with the missing library named, only when it is run.
"""
from __future__ import annotations

import argparse
import importlib
import keyword
import os
import pkgutil
import sys
from types import ModuleType
from typing import Dict, List, Optional

__all__ = ["main", "verbs", "load_verb"]


def verbs() -> List[str]:
    """Every verb, from the modules of this package (none listed by hand)."""
    return sorted(m.name.rstrip("_").replace("_", "-") for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_"))


def load_verb(name: str) -> ModuleType:
    module = name.replace("-", "_")
    return importlib.import_module("%s.%s" % (__name__, module + "_" if keyword.iskeyword(module) else module))


def build_parser(selected: Optional[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openpose-plus", description="real-time multi-person pose estimation, from training to the camera: one verb per step")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in verbs():
        module = load_verb(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        if name == selected:
            module.add_arguments(p)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # Host verbs import TensorFlow: keep its C++ INFO lines (grappler, oneDNN) off the
    # terminal unless the user asks for them. Edge verbs never import it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = argv[0] if argv and argv[0] in verbs() else None
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(load_verb(args.command).run(args) or 0)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "openpose_plus":
            raise  # our own module missing is a bug, not a missing extra
        print("openpose-plus %s: needs %s, which is not installed here (%s)"
              % (args.command, exc.name, _extra_for(exc.name)), file=sys.stderr)
        return 2


_EXTRAS: Dict[str, str] = {"tensorflow": "pip install 'openpose-plus[train]'", "horovod": "make setup",
                           "onnx": "pip install 'openpose-plus[calib]'",
                           "pycocotools": "pip install 'openpose-plus[calib]'",
                           "tf2onnx": "pip install 'openpose-plus[train]'",
                           "tensorrt": "JetPack brings TensorRT", "pycuda": "pip install pycuda on the device"}


def _extra_for(module: Optional[str]) -> str:
    return _EXTRAS.get((module or "").split(".")[0], "see the README's install section")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
