"""The calibration report: a table on the terminal, and the same figures in the bundle's meta.json.

The bundle is rewritten whole through :func:`openpose_plus.edge.bundle.write_bundle`, so
every file's sha256 and size in ``meta.json`` is computed afresh from what is written, and
a reader never sees a half-updated bundle (the new one replaces the old by rename).
"""
from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional

__all__ = ["format_table", "rewrite_bundle", "ap_drop_points"]

_COLUMNS = (("AP", "AP", "%.4f"), ("AP50", "AP50", "%.4f"), ("AR", "AR", "%.4f"),
            ("people", "people", "%d"), ("heatmaps_max_abs", "heat max|d|", "%.4g"),
            ("heatmaps_mean_abs", "heat mean|d|", "%.4g"), ("pafs_max_abs", "paf max|d|", "%.4g"),
            ("pafs_mean_abs", "paf mean|d|", "%.4g"))


def ap_drop_points(report: Mapping[str, Mapping[str, float]], precision: str) -> Optional[float]:
    """AP lost against FP32, in AP points (0-100 scale), or None without AP figures."""
    if "AP" not in report.get("fp32", {}) or "AP" not in report.get(precision, {}):
        return None
    return (float(report["fp32"]["AP"]) - float(report[precision]["AP"])) * 100.0


def format_table(report: Mapping[str, Mapping[str, float]], notes: Optional[Mapping[str, str]] = None) -> str:
    """One row per precision; columns are the figures present (AP, per-output error vs FP32)."""
    cols = [c for c in _COLUMNS if any(c[0] in row for row in report.values())]
    header = ["precision"] + [c[1] for c in cols] + (["dAP (pts)"] if any(c[0] == "AP" for c in cols) else [])
    rows: List[List[str]] = []
    for prec in ("fp32", "fp16", "int8"):
        if prec not in report:
            continue
        row = [prec]
        for key, _, fmt in cols:
            v = report[prec].get(key)
            row.append("-" if v is None else fmt % v)
        if len(header) > len(row):
            drop = ap_drop_points(report, prec)
            row.append("-" if drop is None else "%+.2f" % (0.0 - drop + 0.0))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    for prec, text in (notes or {}).items():
        lines.append("%s: %s" % (prec, text))
    return "\n".join(lines)


def rewrite_bundle(bundle, accuracy: Mapping[str, Mapping[str, float]], calibration: Optional[Mapping[str, object]],
                   int8_model: Optional[str] = None, calibration_cache: Optional[str] = None,
                   fp16_model: Optional[str] = None, grouping: Optional[Mapping[str, object]] = None) -> str:
    """Write ``bundle`` again with new accuracy figures, calibration facts, FP16/INT8 files, grouping.

    Everything else in meta.json (input, stride, skeleton, outputs, normalisation, batch, training
    digest, extra, grouping unless ``grouping`` replaces it) is kept; FP16/INT8 files not
    replaced are kept too; ``calibration`` None leaves the calibration record as it was.
    Returns the bundle path.
    """
    from openpose_plus.edge.bundle import write_bundle

    meta = bundle.meta
    models = bundle.models
    if int8_model is None and "int8" in models:
        int8_model = os.path.join(bundle.path, models["int8"])
    if fp16_model is None and "fp16" in models:
        fp16_model = os.path.join(bundle.path, models["fp16"])
    if calibration_cache is None and bundle.calibration_cache_path:
        calibration_cache = bundle.calibration_cache_path
    merged: Dict[str, Dict[str, float]] = {k: dict(v) for k, v in bundle.accuracy.items()}
    for prec, figures in accuracy.items():
        merged[prec] = {k: float(v) for k, v in figures.items()}
    extra = dict(meta.get("extra") or {})
    if calibration is not None:
        cal = dict(extra.get("calibration") or {})
        cal.update(calibration)
        extra["calibration"] = cal
    norm = meta["normalisation"]
    source = bundle.source or bundle.path
    tar = os.path.isfile(source)
    if tar and not source.endswith(".tar"):
        raise ValueError("bundle %s is a tar without the .tar suffix; cannot rewrite it in place" % source)
    return write_bundle(source, os.path.join(bundle.path, models["fp32"]),
                        input_size=(bundle.input_width, bundle.input_height), stride=bundle.stride,
                        skeleton=bundle.skeleton, input_name=bundle.input_name,
                        output_names=(bundle.heatmaps_name, bundle.pafs_name), mean=norm["mean"], std=norm["std"],
                        pad_value=bundle.pad_value, training_config=bundle.training_config_digest,
                        accuracy=merged, int8_model=int8_model, calibration_cache=calibration_cache,
                        extra=extra, tar=tar, fp16_model=fp16_model, batch=bundle.batch,
                        grouping=grouping if grouping is not None else meta.get("grouping"))
