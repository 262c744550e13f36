"""openpose-plus on the device: the public Python API.

Cheap to import: pure-Python names load at once, and the grouping names load the C
extension only when first used (so the skeleton and targets work in a tree whose
extension is not built yet, as host training may need).
"""
from __future__ import annotations

from .poses import Poses
from .skeleton import COCO18, Skeleton

__all__ = ["COCO18", "GroupParams", "Grouper", "Poses", "Skeleton", "group"]

_LAZY = {"GroupParams", "Grouper", "group"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import grouping
        return getattr(grouping, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
