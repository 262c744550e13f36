"""Import CMU OpenPose's COCO body model weights into the ``vgg`` network.

Two sources, one path: each is read into ``{caffe layer name: [weight, bias]}`` with
caffe's ``(out, in, kh, kw)`` kernels, then copied into the Keras layers of the same name.

* the published ``pose_iter_440000.caffemodel``: a caffe ``NetParameter`` protobuf, read by
  :mod:`openpose_plus.edge.caffemodel` (no compiled caffe module needed).
* the common PyTorch conversion, a state_dict named ``model0.0.weight``,
  ``model1_1.0.weight`` ... (tensorboy's numbered Sequentials) or ``model0.conv1_1.weight``
  (pytorch-openpose's named layers), optionally prefixed ``module.``. ``.pth`` is read with
  torch when it is installed; an ``.npz`` holding the same names works everywhere.

CMU's network reads BGR; ours reads RGB, so ``conv1_1``'s input channels are reversed.
Its normalisation (x / 256 - 0.5) is the one our networks apply inside.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from openpose_plus.edge import caffemodel

__all__ = ["WeightsError", "ImportReport", "read_caffemodel", "read_torch_state", "read_weights",
           "load_openpose_weights", "caffe_layer_name", "TORCH_NUMBERED"]


class WeightsError(ValueError):
    """A weight file that cannot be read or does not fit the network; the message says which."""


@dataclass
class ImportReport:
    loaded: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)      # in the network, shape differs (skip_mismatched)
    missing: List[str] = field(default_factory=list)      # in the network, not in the file
    unused: List[str] = field(default_factory=list)       # in the file, not in the network

    def __str__(self) -> str:
        return ("loaded %d layers, %d skipped (shape differs), %d missing, %d unused in the file"
                % (len(self.loaded), len(self.skipped), len(self.missing), len(self.unused)))


# -- caffemodel ---------------------------------------------------------------------------

def read_caffemodel(path) -> Dict[str, List[np.ndarray]]:
    """``{layer name: [blob, ...]}`` of every layer with weights in a ``.caffemodel``
    (the edge's reader, which ``openpose-plus import`` shares)."""
    try:
        return caffemodel.read_caffemodel(path)
    except caffemodel.CaffeModelError as exc:
        raise WeightsError(str(exc)) from None


# -- PyTorch conversions ----------------------------------------------------------------

_BACKBONE = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
             "conv4_1", "conv4_2", "conv4_3_CPM", "conv4_4_CPM")
_BACKBONE_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25)  # Sequential slots: conv, ReLU, pools


def _numbered_table() -> Dict[str, str]:
    """tensorboy's ``rtpose`` Sequential names -> caffe layer names."""
    table = {"model0.%d" % i: name for i, name in zip(_BACKBONE_INDEX, _BACKBONE)}
    for branch in (1, 2):
        for j in range(5):
            table["model1_%d.%d" % (branch, 2 * j)] = "conv5_%d_CPM_L%d" % (j + 1, branch)
        for stage in range(2, 7):
            for j in range(7):
                table["model%d_%d.%d" % (stage, branch, 2 * j)] = "Mconv%d_stage%d_L%d" % (j + 1, stage, branch)
    return table


TORCH_NUMBERED: Dict[str, str] = _numbered_table()
_NAMED = re.compile(r"^model(?:0|\d_[12])\.([A-Za-z0-9_]+)$")


def caffe_layer_name(torch_module: str) -> Optional[str]:
    """``model1_1.0`` or ``model1_1.conv5_1_CPM_L1`` -> ``conv5_1_CPM_L1`` (None if unknown)."""
    if torch_module.startswith("module."):
        torch_module = torch_module[len("module."):]
    if torch_module in TORCH_NUMBERED:
        return TORCH_NUMBERED[torch_module]
    m = _NAMED.match(torch_module)
    return m.group(1) if m and not m.group(1).isdigit() else None


def _load_state(path: Path) -> Dict[str, np.ndarray]:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # truncated or foreign
            raise WeightsError("%s: not a readable .npz (%s: %s)" % (path, type(exc).__name__, exc)) from None
    try:
        import torch  # optional: only .pth files need it
    except ImportError:
        raise WeightsError(
            "%s: reading a PyTorch file needs torch, which is not installed; convert it once where "
            "torch is, e.g. python -c \"import torch, numpy; s = torch.load('%s', map_location='cpu'); "
            "numpy.savez('weights.npz', **{k: v.numpy() for k, v in s.items()})\", and pass the .npz"
            % (path, path.name)) from None
    state = torch.load(str(path), map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def read_torch_state(path) -> Dict[str, List[np.ndarray]]:
    """``{caffe layer name: [weight, bias]}`` from a PyTorch-conversion state_dict (.npz/.pth)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError("%s: no such weight file" % path)
    state = _load_state(path)
    layers: Dict[str, Dict[str, np.ndarray]] = {}
    unknown = []
    for key, value in state.items():
        module, _, kind = key.rpartition(".")
        name = caffe_layer_name(module)
        if name is None or kind not in ("weight", "bias"):
            unknown.append(key)
            continue
        layers.setdefault(name, {})[kind] = np.asarray(value, np.float32)
    if not layers:
        raise WeightsError("%s: no OpenPose layer names in it (first keys: %s)"
                           % (path, ", ".join(sorted(state)[:5]) or "none"))
    out = {}
    for name, blobs in layers.items():
        if "weight" not in blobs:
            raise WeightsError("%s: layer %s has a bias but no weight" % (path, name))
        out[name] = [blobs["weight"]] + ([blobs["bias"]] if "bias" in blobs else [])
    return out


def read_weights(path) -> Dict[str, List[np.ndarray]]:
    """By suffix: ``.caffemodel`` -> caffe; ``.npz``, ``.pth``, ``.pt`` -> PyTorch names."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError("%s: no such weight file" % path)
    if path.suffix == ".caffemodel":
        return read_caffemodel(path)
    if path.suffix in (".npz", ".pth", ".pt"):
        return read_torch_state(path)
    raise WeightsError("%s: unknown weight format (want .caffemodel, .npz, .pth or .pt)" % path)


# -- into Keras -----------------------------------------------------------------------

def load_openpose_weights(model, path, skip_mismatched: bool = False, bgr_input: bool = True,
                          allow_missing: bool = False) -> ImportReport:
    """Copy CMU OpenPose weights into the conv layers of ``model`` with the same names.

    ``skip_mismatched`` leaves layers whose shape differs (the heads of a custom skeleton)
    at their initial values instead of failing; ``allow_missing`` accepts a file that lacks
    some of the network's layers (a network with more stages than the file).
    Nothing is assigned unless every check passes, so a failed import leaves the model as it was.
    """
    blobs = read_weights(path)
    report = ImportReport()
    plan: List[Tuple[object, List[np.ndarray]]] = []
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    for layer in convs:
        if layer.name not in blobs:
            report.missing.append(layer.name)
            continue
        src = blobs[layer.name]
        kernel = np.transpose(src[0], (2, 3, 1, 0))  # caffe (out, in, kh, kw) -> (kh, kw, in, out)
        if layer.name == "conv1_1" and bgr_input:
            kernel = kernel[:, :, ::-1, :]  # the network reads RGB; CMU's read BGR
        values = [kernel] + ([src[1].reshape(-1)] if len(src) > 1 else [])
        want = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(v.shape) for v in values]
        if want != got:
            if skip_mismatched:
                report.skipped.append(layer.name)
                continue
            raise WeightsError("%s: layer %s has shapes %s in the network but %s in the file (caffe %s)"
                               % (path, layer.name, want, got, [tuple(b.shape) for b in src]))
        plan.append((layer, values))
        report.loaded.append(layer.name)
    report.unused = sorted(set(blobs) - {layer.name for layer in convs})
    if report.missing and not allow_missing:
        raise WeightsError("%s: %d of the network's layers are not in the file: %s"
                           % (path, len(report.missing), ", ".join(sorted(report.missing)[:8])))
    if not plan:
        raise WeightsError("%s: no layer of network %r is in the file" % (path, model.name))
    for layer, values in plan:
        layer.set_weights(values)
    return report
