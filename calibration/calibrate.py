"""Calibrate a bundle (``openpose-plus calibrate``): FP16 / INT8 variants, their accuracy, the record.

fp16: the float16 graph is made for the CPU check; the device builds FP16 from the FP32
graph with the FP16 flag, which is recorded in meta.json.
int8: calibration on ``--num-images`` representative images (``--method``), a QDQ ONNX
(``model.int8.onnx``, explicit quantisation) and, from the same ranges, a TensorRT
calibration cache (``calibration.cache``, implicit quantisation).
With ``--val-images``/``--val-annotations`` (a held-out COCO-format set) AP is measured for
FP32, FP16 and INT8; when INT8 loses more than ``--max-ap-drop`` AP points, the most
sensitive layers are kept in FP32 until it does not, and the report says which. Without a
val set only the per-output error is measured (on the calibration images) and the budget
cannot be checked (said so). The report is printed and stored in meta.json.
People are grouped with the bundle's own grouping parameters; with ``tune_grouping`` (a val set
needed) they are first searched on the val set with the FP32 maps, and every precision is scored
with the winner. Whenever AP is measured, the parameters it was measured with go into meta.json.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from typing import Dict, Optional

__all__ = ["calibrate_bundle", "CalibrationFailed"]


class CalibrationFailed(RuntimeError):
    """Calibration ran but its result is not acceptable (e.g. INT8 over the AP budget)."""


def _grouping_record(bundle, params) -> Dict[str, object]:
    """meta.json's grouping table once AP is measured with ``params``: the bundle's, stating them all."""
    import dataclasses

    record = dict(bundle.grouping) or {"source": "defaults"}
    record["params"] = dataclasses.asdict(params)
    return record


def _progress(total: int, label: str, quiet: bool):
    from openpose_plus.edge.progress import Progress

    bar = Progress(total, label=label, every=max(1, total // 20), enabled=not quiet)
    return lambda done, total_=None: bar.update(done)


def calibrate_bundle(bundle_path: str, images_dir: str, precision: str, method: str = "entropy",
                     num_images: Optional[int] = None, max_ap_drop: float = 1.0, max_fallback: int = 16,
                     val=None, trt_version: str = "8.6.1", per_channel: bool = True,
                     work_dir: Optional[str] = None, quiet: bool = False, log=None,
                     form: str = "tensorrt", tune_grouping: bool = False) -> Dict[str, object]:
    """The whole ``calibrate`` step; returns the report (also stored in the bundle's meta.json).

    Raises :class:`~openpose_plus.edge.bundle.BundleError`, :class:`.images.CalibrationError`
    on bad input, :class:`CalibrationFailed` when INT8 cannot be brought within the budget
    (the bundle then gets the report but no INT8 files).
    """
    from openpose_plus.edge.bundle import load_bundle

    from . import int8
    from .accuracy import ap_of, measure
    from .fp16 import FP16_BUILD, convert_fp16
    from .images import load_images, list_images
    from .report import ap_drop_points, format_table, rewrite_bundle
    from .sensitivity import fall_back, rank_layers

    log = log or sys.stderr
    bundle = load_bundle(bundle_path)  # checked before anything runs on it
    if tune_grouping and val is None:
        raise ValueError("tuning the grouping needs a held-out set (--val-images and --val-annotations)")
    params = bundle.group_params()
    paths = list_images(images_dir, num_images)
    inputs = load_images(paths, bundle.input_width, bundle.input_height, bundle.pad_value)
    own_tmp = work_dir is None
    work = tempfile.mkdtemp(prefix="openpose-plus-calibrate-") if own_tmp else work_dir
    os.makedirs(work, exist_ok=True)
    try:
        fp32 = int8.prepare(bundle.model_path("fp32"), os.path.join(work, "model.fp32.onnx"))
        variants = {"fp32": fp32, "fp16": convert_fp16(fp32, os.path.join(work, "model.fp16.onnx"))}
        calibration: Dict[str, object] = {"fp16": dict(FP16_BUILD)}
        notes: Dict[str, str] = {}
        ranges = os.path.join(work, "ranges.json")
        if precision == "int8":
            from .images import ImageBatches

            print("calibrate: INT8 %s calibration on %d images from %s" % (method, len(paths), images_dir), file=log)
            reader = ImageBatches(inputs, bundle.input_name, _progress(len(inputs), "calibration batch", quiet))
            variants["int8"] = int8.calibrate(fp32, os.path.join(work, "model.int8.onnx"), ranges, method, reader,
                                              per_channel=per_channel, form=form)
        names = (bundle.heatmaps_name, bundle.pafs_name)
        grouping = _grouping_record(bundle, params) if val is not None else None
        if tune_grouping:
            from .accuracy import tune_grouping as search

            print("calibrate: searching the grouping parameters on %s (FP32 maps)" % val.images, file=log)
            tuned = search(bundle, fp32, val, params, show_progress=not quiet)
            params = tuned.params
            print("calibrate: grouping AP %.4f -> %.4f with %s" % (tuned.start_ap, tuned.ap, tuned.changes() or
                                                                  "no change"), file=log)
            grouping = tuned.record("calibrate --tune-grouping", val=os.path.basename(str(val.annotations)))
        report = measure(bundle, variants, val=val, inputs=inputs, show_progress=not quiet, params=params)
        excluded = []
        status = "ok"
        if precision == "int8":
            drop = ap_drop_points(report, "int8")
            if drop is None:
                notes["int8"] = ("no held-out set: the AP budget of %.2f points was not checked "
                                 "(pass --val-images and --val-annotations)" % max_ap_drop)
                status = "unchecked"
            elif drop > max_ap_drop:
                print("calibrate: INT8 loses %.2f AP points (budget %.2f); searching for sensitive layers"
                      % (drop, max_ap_drop), file=log)
                candidates = int8.quantized_nodes(fp32, variants["int8"])
                probe = inputs[: min(4, len(inputs))]
                ranking = rank_layers(fp32, ranges, method, probe, candidates, bundle.input_name, names, work,
                                      on_step=None if quiet else _progress(len(candidates), "layer", quiet),
                                      form=form)
                result = fall_back(fp32, ranges, method, ranking,
                                   lambda path: ap_of(bundle, path, val, params=params)["AP"], report["fp32"]["AP"],
                                   max_ap_drop, os.path.join(work, "model.int8.fallback.onnx"),
                                   max_layers=max_fallback, baseline=(variants["int8"], report["int8"]["AP"]),
                                   log=log, form=form)
                excluded = result.excluded
                variants["int8"] = result.model_path
                report["int8"] = measure(bundle, {"fp32": fp32, "int8": result.model_path}, val=val,
                                         params=params)["int8"]
                calibration["sensitivity"] = {"ranking": [[n, e] for n, e in ranking.layers[:32]],
                                              "trials": result.trials}
                if result.within_budget:
                    notes["int8"] = "kept in FP32 (most sensitive): %s" % (", ".join(excluded) or "none")
                else:
                    status = "over budget"
                    notes["int8"] = ("still %.2f AP points down with %d layers in FP32 (%s; limit --max-fallback %d); "
                                     "INT8 not stored" % (result.drop_points, len(excluded),
                                                          ", ".join(excluded) or "none", max_fallback))
        cache_info = None
        int8_model = None
        cache_path = None
        if precision == "int8" and status != "over budget":
            cache_path = os.path.join(work, "calibration.cache")
            cache_info = int8.write_trt_cache(ranges, variants["int8"], cache_path, trt_version,
                                              graph_path=bundle.model_path("fp32"), form=form)
            int8_model = variants["int8"]
        if precision == "int8":
            # A rejected INT8 is recorded beside, not over, whatever INT8 the bundle already had.
            calibration["int8" if status != "over budget" else "int8_rejected"] = {
                "method": method, "num_images": len(paths), "format": "QDQ", "per_channel": per_channel,
                "form": form, "tensorrt_builds": "explicit (QDQ model)" if form == "tensorrt" else
                "implicit (calibration cache): this QDQ model is for onnxruntime",
                "activations": "symmetric int8, scale amax/127" if form == "tensorrt" else "uint8 with zero point",
                "weights": "symmetric int8", "batchnorm_folded": True,
                "fp32_layers": excluded, "output_layers_in_fp32": int8.output_nodes(fp32),
                "max_ap_drop": max_ap_drop, "status": status, "trt_cache": cache_info,
            }
        accuracy = {k: v for k, v in report.items() if k != "int8" or status != "over budget"}
        if status == "over budget":
            calibration["int8_rejected"]["accuracy"] = report["int8"]  # type: ignore[index]
        path = rewrite_bundle(bundle, accuracy, calibration, int8_model=int8_model, calibration_cache=cache_path,
                              grouping=grouping)
        print(format_table(report, notes), file=log)
        out = {"bundle": path, "precision": precision, "accuracy": report, "status": status,
               "fp32_layers": excluded, "notes": notes}
        if status == "over budget":
            raise CalibrationFailed(notes["int8"])
        return out
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
