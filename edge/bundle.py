"""The model bundle: the whole contract between the host that trains and the device that runs.

A bundle is a directory (or a ``.tar`` of one) holding ``model.onnx`` (FP32, uint8 NHWC
input, NCHW heatmap and PAF outputs), optionally ``model.fp16.onnx`` (float16 inside, the
same uint8 input and float32 outputs), ``model.int8.onnx`` (Q/DQ that TensorRT's parser
accepts) and ``calibration.cache`` (only for builds that need implicit INT8: DLA on
8.x/10.x), and ``meta.json``::

    {"format": "openpose-plus-bundle", "format_version": 1,
     "input": {"name", "width", "height", "channels": 3, "dtype": "uint8", "layout": "NHWC",
               "color": "RGB", "pad_value"},
     "stride": 8, "skeleton": Skeleton.to_dict(),
     "batch": {"size": N, "dynamic": bool},                     (optional: one image per call)
     "outputs": {"heatmaps": name, "pafs": name},
     "normalisation": {"mean": [...], "std": [...], "in_graph": true},
     "training_config_digest": "...",
     "models": {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"},
     "calibration_cache": "calibration.cache" | null,
     "accuracy": {"fp32": {...}, "fp16": {...}, "int8": {...}},
     "grouping": {"params": {GroupParams field: value, ...}, "source": "...", "AP": ...},  (optional)
     "files": {"model.onnx": {"sha256": ..., "size": ...}, ...}}

``grouping`` holds the grouping parameters the model was scored with (every field, so a
runtime whose defaults moved still groups as the score was measured) and where they came from
(an import preset, ``tune-grouping`` with the AP it reached, ``calibrate``). The runtime, the
evaluation and the calibration group with them unless told otherwise
(:meth:`Bundle.group_params`); a bundle without the table groups with the defaults.

``batch`` says how many images the model takes in one call (:mod:`.batch`): a fixed N, or
dynamic (any number; ``size`` is what it was checked at). Without it, one.

``write_bundle`` is the host's half (export and calibration call it), ``load_bundle`` the
device's: it checks every field and every file's size and sha256 before anything trusts
the bundle, and names the problem when a check fails.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

from .batch import ONE, BatchError, BatchSpec, batch_of_meta
from .skeleton import COCO18, Skeleton

__all__ = ["FORMAT", "FORMAT_VERSION", "BundleError", "Bundle", "write_bundle", "load_bundle",
           "sha256_file", "PRECISIONS"]

FORMAT = "openpose-plus-bundle"
FORMAT_VERSION = 1
META = "meta.json"
PRECISIONS = ("fp32", "fp16", "int8")
_CHUNK = 1 << 20

PathLike = Union[str, "os.PathLike[str]"]


class BundleError(ValueError):
    """A bundle that fails its check; the message names the file or field at fault."""


def sha256_file(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A checked bundle. ``path`` is its directory (a tar is unpacked to a private one)."""

    path: str
    meta: Dict[str, object]
    skeleton: Skeleton
    input_name: str
    input_width: int
    input_height: int
    stride: int
    heatmaps_name: str
    pafs_name: str
    pad_value: int = 0
    source: str = ""
    _tmp: Optional[object] = field(default=None, repr=False, compare=False)

    @property
    def map_width(self) -> int:
        return self.input_width // self.stride

    @property
    def map_height(self) -> int:
        return self.input_height // self.stride

    @property
    def models(self) -> Dict[str, str]:
        return dict(self.meta["models"])  # type: ignore[arg-type]

    @property
    def precisions(self) -> Tuple[str, ...]:
        """Precisions this bundle can run at (without model.fp16.onnx, fp16 is built from the fp32 graph)."""
        have = set(self.models)
        out = [p for p in PRECISIONS if p in have or (p == "fp16" and "fp32" in have)]
        if "int8" not in have and self.calibration_cache_path:
            out.append("int8")
        return tuple(out)

    def model_path(self, precision: str = "fp32") -> str:
        """The ONNX to build or run at ``precision`` (model.fp16.onnx where the bundle has one; else
        fp16 and cache-route int8 use the fp32 graph)."""
        models = self.models
        if precision in models:
            return os.path.join(self.path, models[precision])
        if precision == "fp16" or (precision == "int8" and self.calibration_cache_path):
            return os.path.join(self.path, models["fp32"])
        raise BundleError("bundle %s has no %s model (it has: %s)"
                          % (self.source or self.path, precision, ", ".join(sorted(models))))

    def file_sha256(self, relpath: str) -> str:
        return str(self.meta["files"][relpath]["sha256"])  # type: ignore[index]

    def model_sha256(self, precision: str = "fp32") -> str:
        return self.file_sha256(os.path.relpath(self.model_path(precision), self.path))

    @property
    def calibration_cache_path(self) -> Optional[str]:
        name = self.meta.get("calibration_cache")
        return os.path.join(self.path, str(name)) if name else None

    @property
    def accuracy(self) -> Dict[str, Dict[str, float]]:
        return dict(self.meta.get("accuracy") or {})  # type: ignore[arg-type]

    @property
    def batch(self) -> BatchSpec:
        """Images per network call: meta.json's ``batch`` (one where it says nothing)."""
        return batch_of_meta(self.meta)

    @property
    def training_config_digest(self) -> str:
        return str(self.meta.get("training_config_digest", ""))

    @property
    def grouping(self) -> Dict[str, object]:
        """meta.json's ``grouping`` table (params and where they came from); empty when absent."""
        return dict(self.meta.get("grouping") or {})  # type: ignore[arg-type]

    def group_params(self, overrides: Optional[Mapping[str, object]] = None):
        """The :class:`~openpose_plus.edge.grouping.GroupParams` this bundle was scored with,
        ``overrides`` (field -> value) on top; the defaults for whatever it does not say.

        A field this runtime does not know is refused by name: grouping without it would not
        be the grouping the bundle was scored with. A field added since the table was written
        takes what grouping did before it existed (``BEFORE_FIELD``), not today's default:
        the table's other values were chosen without it.
        """
        from .grouping import BEFORE_FIELD, GroupParams  # the C core; bundles load without it

        known = set(GroupParams.__dataclass_fields__)
        stored = dict(self.grouping.get("params") or {})  # type: ignore[call-overload]
        if stored:
            stored = dict({k: v for k, v in BEFORE_FIELD.items()}, **stored)
        unknown = sorted(set(stored) - known)
        if unknown:
            raise BundleError("bundle %s: meta.json grouping parameter %r is unknown to this runtime "
                              "(it knows %s); upgrade openpose-plus" % (self.source or self.path, unknown[0],
                                                                       ", ".join(sorted(known))))
        extra = dict(overrides or {})
        unknown = sorted(set(extra) - known)
        if unknown:
            raise ValueError("unknown grouping parameter %r (known: %s)" % (unknown[0], ", ".join(sorted(known))))
        stored.update(extra)
        try:
            return GroupParams(**stored)
        except (TypeError, ValueError) as exc:
            raise BundleError("bundle %s: grouping parameters: %s" % (self.source or self.path, exc)) from None


# -- writing (host) -------------------------------------------------------------------

def _config_digest(config: object) -> str:
    if config is None:
        return ""
    if isinstance(config, str):
        return config
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _place(src: Union[PathLike, bytes], dst: str) -> None:
    if isinstance(src, (bytes, bytearray)):
        with open(dst, "wb") as f:
            f.write(src)
    else:
        shutil.copyfile(os.fspath(src), dst)


def write_bundle(path: PathLike, model: Union[PathLike, bytes], *, input_size: Tuple[int, int],
                 stride: int, skeleton: Skeleton = COCO18, input_name: str = "image",
                 output_names: Tuple[str, str] = ("heatmaps", "pafs"),
                 mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (255.0, 255.0, 255.0),
                 pad_value: int = 0, training_config: object = None,
                 accuracy: Optional[Mapping[str, Mapping[str, float]]] = None,
                 int8_model: Union[PathLike, bytes, None] = None,
                 calibration_cache: Union[PathLike, bytes, None] = None,
                 extra: Optional[Mapping[str, object]] = None, tar: bool = False,
                 fp16_model: Union[PathLike, bytes, None] = None,
                 grouping: Optional[Mapping[str, object]] = None, batch: BatchSpec = ONE) -> str:
    """Write a bundle directory at ``path`` (or ``path`` as a ``.tar`` when ``tar``); returns it.

    ``model`` / ``fp16_model`` / ``int8_model`` / ``calibration_cache`` are file paths or bytes.
    ``input_size`` is ``(width, height)`` and must be a multiple of ``stride``.
    ``training_config`` is the config (hashed here) or an already computed digest string.
    ``grouping`` is meta.json's grouping table (``{"params": {...}, ...}``; see the module doc).
    ``batch`` is the model's batch (:class:`.batch.BatchSpec`; the graph must already have it).
    """
    width, height = int(input_size[0]), int(input_size[1])
    if stride <= 0 or width <= 0 or height <= 0 or width % stride or height % stride:
        raise BundleError("input size %dx%d must be positive multiples of the stride %d"
                          % (width, height, stride))
    if len(mean) != 3 or len(std) != 3 or any(float(s) == 0 for s in std):
        raise BundleError("normalisation needs 3 means and 3 non-zero stds, got %r / %r" % (mean, std))
    for prec in (accuracy or {}):
        if prec not in PRECISIONS:
            raise BundleError("accuracy for unknown precision %r (known: %s)" % (prec, ", ".join(PRECISIONS)))
    if grouping is not None:
        _check_grouping(grouping)
    path = os.fspath(path)
    out_dir = path[:-4] if tar and path.endswith(".tar") else path
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the bundle from the daemon's user
    try:
        models = {"fp32": "model.onnx"}
        _place(model, os.path.join(staging, "model.onnx"))
        if fp16_model is not None:
            models["fp16"] = "model.fp16.onnx"
            _place(fp16_model, os.path.join(staging, "model.fp16.onnx"))
        if int8_model is not None:
            models["int8"] = "model.int8.onnx"
            _place(int8_model, os.path.join(staging, "model.int8.onnx"))
        cache_name = None
        if calibration_cache is not None:
            cache_name = "calibration.cache"
            _place(calibration_cache, os.path.join(staging, cache_name))
        files = {}
        for name in sorted(os.listdir(staging)):
            full = os.path.join(staging, name)
            files[name] = {"sha256": sha256_file(full), "size": os.path.getsize(full)}
        meta: Dict[str, object] = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "input": {"name": input_name, "width": width, "height": height, "channels": 3,
                      "dtype": "uint8", "layout": "NHWC", "color": "RGB", "pad_value": int(pad_value)},
            "stride": int(stride),
            "skeleton": skeleton.to_dict(),
            "outputs": {"heatmaps": output_names[0], "pafs": output_names[1]},
            "normalisation": {"mean": [float(m) for m in mean], "std": [float(s) for s in std],
                              "in_graph": True},
            "training_config_digest": _config_digest(training_config),
            "models": models, "calibration_cache": cache_name,
            "accuracy": {k: dict(v) for k, v in (accuracy or {}).items()},
            "files": files,
        }
        if batch != ONE:
            meta["batch"] = BatchSpec(*batch).to_meta()
        if extra:
            meta["extra"] = dict(extra)
        if grouping:
            meta["grouping"] = json.loads(json.dumps(dict(grouping)))  # a plain copy, refused if not JSON
        with open(os.path.join(staging, META), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
        if tar:
            tar_path = out_dir + ".tar"
            tmp_tar = tar_path + ".partial"
            with tarfile.open(tmp_tar, "w") as t:
                for name in sorted(os.listdir(staging)):
                    t.add(os.path.join(staging, name), arcname=name)
            os.replace(tmp_tar, tar_path)
            return tar_path
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
        staging = ""
        return out_dir
    finally:
        if staging and os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)


# -- loading (device) -------------------------------------------------------------------

def _unpack_tar(path: str) -> "tempfile.TemporaryDirectory[str]":
    tmp = tempfile.TemporaryDirectory(prefix="openpose-plus-bundle-")
    try:
        with tarfile.open(path, "r") as t:
            members = t.getmembers()
            for m in members:
                name = m.name[2:] if m.name.startswith("./") else m.name
                if not name or name == ".":
                    continue
                if os.path.isabs(name) or ".." in name.split("/") or "/" in name.strip("/"):
                    raise BundleError("bundle %s: unexpected member %r (a bundle is one flat folder)"
                                      % (path, m.name))
                if not m.isfile():
                    raise BundleError("bundle %s: member %r is not a regular file" % (path, m.name))
                src = t.extractfile(m)
                assert src is not None
                with src, open(os.path.join(tmp.name, name), "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (tarfile.TarError, EOFError, OSError) as exc:
        tmp.cleanup()
        raise BundleError("bundle %s is not a readable tar (truncated or corrupt?): %s" % (path, exc)) from None
    except BaseException:
        tmp.cleanup()
        raise
    return tmp


def _need(meta: Mapping[str, object], key: str, kind, where: str = ""):
    if key not in meta:
        raise BundleError("meta.json: missing %r%s" % (key, where))
    value = meta[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise BundleError("meta.json: %r%s should be %s, got %r"
                          % (key, where, getattr(kind, "__name__", kind), value))
    return value


def _check_meta(meta: Mapping[str, object], where: str) -> None:
    fmt = meta.get("format")
    if fmt != FORMAT:
        raise BundleError("%s: meta.json is not an openpose-plus bundle (format %r)" % (where, fmt))
    version = _need(meta, "format_version", int)
    if version > FORMAT_VERSION:
        raise BundleError("%s: bundle format version %d is newer than this runtime understands "
                          "(up to %d); upgrade openpose-plus on this device" % (where, version, FORMAT_VERSION))
    if version < 1:
        raise BundleError("%s: bad bundle format version %d" % (where, version))
    inp = _need(meta, "input", dict)
    for key in ("width", "height"):
        v = _need(inp, key, int, " in 'input'")
        if v <= 0:
            raise BundleError("meta.json: input %s must be positive, got %d" % (key, v))
    _need(inp, "name", str, " in 'input'")
    for key, want in (("channels", 3), ("dtype", "uint8"), ("layout", "NHWC")):
        if inp.get(key, want) != want:
            raise BundleError("meta.json: input %s is %r; this runtime feeds %r" % (key, inp.get(key), want))
    stride = _need(meta, "stride", int)
    if stride <= 0 or inp["width"] % stride or inp["height"] % stride:  # type: ignore[operator]
        raise BundleError("meta.json: input %sx%s is not a multiple of stride %d"
                          % (inp["width"], inp["height"], stride))
    outs = _need(meta, "outputs", dict)
    for key in ("heatmaps", "pafs"):
        _need(outs, key, str, " in 'outputs'")
    norm = _need(meta, "normalisation", dict)
    for key in ("mean", "std"):
        v = _need(norm, key, list, " in 'normalisation'")
        if len(v) != 3 or not all(isinstance(x, (int, float)) for x in v):
            raise BundleError("meta.json: normalisation %s should be 3 numbers, got %r" % (key, v))
    _need(meta, "training_config_digest", str)
    models = _need(meta, "models", dict)
    if "fp32" not in models:
        raise BundleError("meta.json: 'models' has no fp32 model")
    for prec in models:
        if prec not in PRECISIONS:
            raise BundleError("meta.json: model for unknown precision %r" % prec)
    acc = meta.get("accuracy") or {}
    if not isinstance(acc, dict):
        raise BundleError("meta.json: 'accuracy' should be a table per precision, got %r" % (acc,))
    for prec, figures in acc.items():
        if prec not in PRECISIONS or not isinstance(figures, dict):
            raise BundleError("meta.json: accuracy entry %r is not a known precision with figures" % prec)
    _need(meta, "files", dict)
    _need(meta, "skeleton", dict)
    if meta.get("grouping") is not None:
        _check_grouping(meta["grouping"])
    try:
        batch_of_meta(meta)
    except BatchError as exc:
        raise BundleError("%s: %s" % (where, exc)) from None


def _check_grouping(grouping: object) -> None:
    """meta.json's grouping table: ``params`` maps field names to numbers or strings.
    (Whether the fields are known and their values valid is :meth:`Bundle.group_params`' check,
    which has the grouping core at hand.)"""
    if not isinstance(grouping, Mapping):
        raise BundleError("meta.json: 'grouping' should be a table, got %r" % (grouping,))
    params = grouping.get("params")
    if not isinstance(params, Mapping):
        raise BundleError("meta.json: grouping 'params' should be a table of GroupParams fields, got %r" % (params,))
    for key, value in params.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise BundleError("meta.json: grouping parameter %r = %r is not a number or a name" % (key, value))


def load_bundle(path: PathLike, verify: bool = True) -> Bundle:
    """Open and check a bundle directory or ``.tar``. Raises :class:`BundleError` naming the problem.

    ``verify=False`` skips the sha256 of each file (sizes are still checked) for quick
    looks at large bundles; the runtime always verifies.
    """
    source = os.fspath(path)
    tmp = None
    if os.path.isfile(source):
        tmp = _unpack_tar(source)
        directory = tmp.name
    elif os.path.isdir(source):
        directory = source
    else:
        raise BundleError("bundle %s does not exist" % source)
    try:
        meta_path = os.path.join(directory, META)
        try:
            with open(meta_path, "rb") as f:
                meta = json.loads(f.read().decode("utf-8"))
        except FileNotFoundError:
            raise BundleError("bundle %s has no meta.json" % source) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError("bundle %s: meta.json is not valid JSON (%s)" % (source, exc)) from None
        if not isinstance(meta, dict):
            raise BundleError("bundle %s: meta.json is not an object" % source)
        _check_meta(meta, source)
        try:
            skeleton = Skeleton.from_dict(meta["skeleton"])
        except ValueError as exc:
            raise BundleError("bundle %s: meta.json skeleton: %s" % (source, exc)) from None
        files: Dict[str, Dict[str, object]] = meta["files"]
        listed = set(files)
        needed = set(meta["models"].values())
        if meta.get("calibration_cache"):
            needed.add(meta["calibration_cache"])
        for name in sorted(needed - listed):
            raise BundleError("bundle %s: %s is referenced but has no checksum in meta.json" % (source, name))
        for name in sorted(listed):
            entry = files[name]
            full = os.path.join(directory, name)
            if "/" in name or name.startswith(".") or not isinstance(entry, dict):
                raise BundleError("bundle %s: bad file entry %r in meta.json" % (source, name))
            if not os.path.isfile(full):
                raise BundleError("bundle %s: %s is missing" % (source, name))
            size = os.path.getsize(full)
            if "size" in entry and size != entry["size"]:
                raise BundleError("bundle %s: %s is %d bytes, meta.json says %s (truncated or altered)"
                                  % (source, name, size, entry["size"]))
            if verify:
                digest = sha256_file(full)
                if digest != entry.get("sha256"):
                    raise BundleError("bundle %s: %s checksum mismatch (sha256 %s, meta.json says %s)"
                                      % (source, name, digest[:16], str(entry.get("sha256"))[:16]))
        inp = meta["input"]
        bundle = Bundle(path=directory, meta=meta, skeleton=skeleton, input_name=inp["name"],
                        input_width=inp["width"], input_height=inp["height"], stride=meta["stride"],
                        heatmaps_name=meta["outputs"]["heatmaps"], pafs_name=meta["outputs"]["pafs"],
                        pad_value=int(inp.get("pad_value", 0)), source=source, _tmp=tmp)
        tmp = None  # the Bundle keeps the unpacked folder alive
        return bundle
    finally:
        if tmp is not None:
            tmp.cleanup()
