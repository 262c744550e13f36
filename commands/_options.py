"""Arguments several verbs share, declared once (not a verb: its name starts with ``_``).

Standard library only, like the verbs' top level: the names below are the runtime's own
(``edge.bundle.PRECISIONS``, ``edge.backends.BACKENDS``), and a test keeps them equal.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

__all__ = ["PRECISIONS", "BACKENDS", "add_precision", "add_backend"]

PRECISIONS = ("fp32", "fp16", "int8")
BACKENDS = ("tensorrt", "onnxruntime")

_PRECISION_HELP = {"auto": "the fastest the bundle and the backend allow", "fp32": "float32",
                   "fp16": "float16", "int8": "8-bit integers, Q/DQ"}


def add_precision(parser: argparse.ArgumentParser, default: Optional[str] = "auto",
                  choices: Sequence[str] = ("auto",) + PRECISIONS, required: bool = False,
                  what: str = "the model's precision") -> None:
    """``--precision`` with ``choices`` (a subset of auto, fp32, fp16, int8), each explained in --help."""
    unknown = [c for c in choices if c not in _PRECISION_HELP]
    if unknown:
        raise ValueError("unknown precision(s) %s" % ", ".join(unknown))
    text = "%s: %s" % (what, ", ".join("%s (%s)" % (c, _PRECISION_HELP[c]) for c in choices))
    if not required:
        text += "; default %(default)s"
    parser.add_argument("--precision", choices=tuple(choices), default=None if required else default,
                        required=required, help=text)


def add_backend(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--backend auto|tensorrt|onnxruntime``; auto: TensorRT where it can run (``openpose-plus info`` says)."""
    parser.add_argument("--backend", default=default, choices=("auto",) + BACKENDS,
                        help="auto: tensorrt where it can run here, else onnxruntime (default: %(default)s)")
