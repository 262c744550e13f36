"""openpose-plus on the device: the public Python API.

Cheap to import: pure-Python names load at once, and the grouping names load the C
extension only when first used (so the skeleton and targets work in a tree whose
extension is not built yet, as host training may need).
"""
from __future__ import annotations

from .poses import Poses
from .skeleton import COCO18, Skeleton

__all__ = ["COCO18", "Bundle", "BundleError", "GroupParams", "Grouper", "PoseEstimator", "PoseTracker", "Poses",
           "Skeleton", "TrackParams", "group", "load_bundle", "open_source", "write_bundle"]

# name -> submodule that defines it, imported on first use
_LAZY = {"GroupParams": "grouping", "Grouper": "grouping", "group": "grouping",
         "PoseEstimator": "estimator", "open_source": "sources",
         "PoseTracker": "tracking", "TrackParams": "tracking",
         "Bundle": "bundle", "BundleError": "bundle", "load_bundle": "bundle", "write_bundle": "bundle"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module("." + _LAZY[name], __name__), name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
