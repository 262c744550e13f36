"""Arguments several verbs share, declared once (not a verb: its name starts with ``_``).

Standard library only, like the verbs' top level: the names below are the runtime's own
(``edge.bundle.PRECISIONS``, ``edge.backends.BACKENDS``), and a test keeps them equal.
"""
from __future__ import annotations

import argparse
from typing import Callable, Optional, Sequence, Tuple

__all__ = ["PRECISIONS", "BACKENDS", "add_precision", "add_backend", "parse_size", "size_type", "add_batch",
           "batch_type", "at_least"]

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


def parse_size(text: str, minimum: int = 1, multiple: int = 1, example: str = "640x480") -> Tuple[int, int]:
    """``WxH`` as ``(width, height)``; ValueError saying the rule it breaks."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError("size must look like %s, got %r" % (example, text)) from None
    if w < minimum or h < minimum:
        raise ValueError("size must be at least %dx%d, got %r" % (minimum, minimum, text))
    if w % multiple or h % multiple:
        raise ValueError("size must be multiples of %d, got %r" % (multiple, text))
    return w, h


def size_type(minimum: int = 1, multiple: int = 1, example: str = "640x480") -> Callable[[str], Tuple[int, int]]:
    """:func:`parse_size` as an argparse ``type`` (its message shown as the error)."""
    def parse(text: str) -> Tuple[int, int]:
        try:
            return parse_size(text, minimum, multiple, example)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def at_least(minimum: float, kind: Callable[[str], float] = int, strict: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a number (``kind``: int or float) of at least ``minimum`` (more than it where
    ``strict``), so a verb's counts are refused at parsing, with the rule, before any work starts."""
    rule = ("more than %s" if strict else "%s or more") % minimum

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a number, %s, got %r" % (rule, text)) from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError("must be %s, got %r" % (rule, text))
        return value
    return parse


def batch_type(text: str):
    """``--batch``'s argparse type: N, dynamic or dynamic:N (see openpose_plus.edge.batch)."""
    from openpose_plus.edge.batch import BatchError, parse_batch

    try:
        return parse_batch(text)
    except BatchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_batch(parser: argparse.ArgumentParser) -> None:
    """``--batch N|dynamic[:N]`` (export and import alike)."""
    parser.add_argument("--batch", type=batch_type, default=None, metavar="N|dynamic[:N]",
                        help="images per network call: N (fixed), or dynamic (any number; checked at 2, and N "
                             "is TensorRT's optimum, default 8); default 1. Several streams share one call")

