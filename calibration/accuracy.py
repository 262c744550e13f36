"""What a precision costs: COCO keypoint AP per precision, and each output's error against FP32.

Every variant (FP32, FP16, INT8 ONNX) runs in onnxruntime over the same held-out
COCO-format images, letterboxed and grouped exactly as on the device (the evaluation of
:mod:`openpose_plus.evaluation.coco`, which is TensorFlow-free: edge preprocessing,
the edge's C grouping core, pycocotools' COCOeval). The maps of each variant are compared
with FP32's on the same images: max and mean absolute difference of heatmaps and PAFs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["ValSet", "OutputError", "ort_map_fn", "output_error", "measure", "ap_of", "tune_grouping"]

MapFn = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


@dataclass
class ValSet:
    """A held-out COCO-format set: annotation file, image folder, and how many images to use (0 = all)."""

    annotations: str
    images: str
    max_images: int = 0


@dataclass
class OutputError:
    """Running max / mean absolute difference of one output against FP32."""

    max_abs: float = 0.0
    _sum: float = 0.0
    _count: int = 0

    def add(self, diff: np.ndarray) -> None:
        self.max_abs = max(self.max_abs, float(np.max(diff)))
        self._sum += float(np.sum(diff, dtype=np.float64))
        self._count += diff.size

    @property
    def mean_abs(self) -> float:
        return self._sum / self._count if self._count else 0.0


def ort_map_fn(model_path: str, input_name: str, output_names: Tuple[str, str], threads: int = 0) -> MapFn:
    """An ONNX file on onnxruntime's CPU provider as an evaluation ``map_fn`` (NCHW maps)."""
    from openpose_plus.edge.backends.onnxruntime_backend import CPU, open_session

    session = open_session(model_path, threads, CPU)
    names = list(output_names)

    def map_fn(batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        heat, paf = session.run(names, {input_name: batch})
        return heat, paf
    return map_fn


def output_error(reference: List[Tuple[np.ndarray, np.ndarray]], map_fn: MapFn,
                 inputs: np.ndarray) -> Dict[str, float]:
    """Max/mean abs difference of ``map_fn``'s maps from ``reference`` (FP32's, same ``inputs``)."""
    heat_err, paf_err = OutputError(), OutputError()
    for (ref_h, ref_p), x in zip(reference, inputs):
        h, p = map_fn(x[None])
        heat_err.add(np.abs(np.asarray(h) - ref_h))
        paf_err.add(np.abs(np.asarray(p) - ref_p))
    return _error_dict(heat_err, paf_err)


def _error_dict(heat: OutputError, paf: OutputError) -> Dict[str, float]:
    return {"heatmaps_max_abs": heat.max_abs, "heatmaps_mean_abs": heat.mean_abs,
            "pafs_max_abs": paf.max_abs, "pafs_mean_abs": paf.mean_abs}


def _settings(bundle, params=None):
    """Evaluation settings of ``bundle``: grouping by ``params``, else by the bundle's own."""
    from openpose_plus.evaluation.coco import EvalSettings

    return EvalSettings(bundle.input_width, bundle.input_height, bundle.stride, bundle.skeleton,
                        pad_value=bundle.pad_value, group=params if params is not None else bundle.group_params())


def ap_of(bundle, model_path: str, val: ValSet, coco_gt=None, show_progress: bool = False,
          params=None) -> Dict[str, float]:
    """COCO keypoint AP/AR of one ONNX model on ``val`` (the bundle gives size, stride, skeleton,
    and the grouping parameters unless ``params`` are given)."""
    from openpose_plus.evaluation.coco import evaluate_predictions, load_coco, predict

    coco_gt = coco_gt or load_coco(val.annotations)
    fn = ort_map_fn(model_path, bundle.input_name, (bundle.heatmaps_name, bundle.pafs_name))
    results, ids = predict(coco_gt, val.images, fn, _settings(bundle, params), val.max_images,
                           show_progress=show_progress)
    return evaluate_predictions(coco_gt, results, ids)


def tune_grouping(bundle, model_path: str, val: ValSet, start=None, show_progress: bool = False):
    """The grouping parameters that score best on ``val`` with ``model_path``'s maps
    (:func:`openpose_plus.evaluation.tune.tune`, from ``start`` or the bundle's own)."""
    from openpose_plus.evaluation.tune import tune

    fn = ort_map_fn(model_path, bundle.input_name, (bundle.heatmaps_name, bundle.pafs_name))
    return tune(val.annotations, val.images, fn, _settings(bundle, start), max_images=val.max_images,
                show_progress=show_progress)


def measure(bundle, variants: Dict[str, str], val: Optional[ValSet] = None,
            inputs: Optional[np.ndarray] = None, show_progress: bool = False,
            params=None) -> Dict[str, Dict[str, float]]:
    """``precision -> figures`` for each of ``variants`` (precision -> ONNX path; must hold ``fp32``).

    With ``val``: COCO AP, AP50, AR and the number of people found, over its images, and the
    per-output error against FP32 on those same images. Without: only the per-output error,
    on ``inputs`` (prepared network inputs, e.g. the calibration images).
    """
    if "fp32" not in variants:
        raise ValueError("accuracy needs the fp32 model as the reference")
    if val is None and (inputs is None or not len(inputs)):
        raise ValueError("accuracy needs a validation set or some input images")
    names = (bundle.heatmaps_name, bundle.pafs_name)
    report: Dict[str, Dict[str, float]] = {}
    if val is None:
        ref_fn = ort_map_fn(variants["fp32"], bundle.input_name, names)
        reference = [tuple(np.array(m) for m in ref_fn(x[None])) for x in inputs]  # type: ignore[union-attr]
        for prec, path in variants.items():
            fn = ref_fn if prec == "fp32" else ort_map_fn(path, bundle.input_name, names)
            report[prec] = output_error(reference, fn, inputs)  # type: ignore[arg-type]
        return report

    from openpose_plus.evaluation.coco import evaluate_predictions, load_coco, predict

    coco_gt = load_coco(val.annotations)
    settings = _settings(bundle, params)
    recorded: List[Tuple[np.ndarray, np.ndarray]] = []
    for prec in ["fp32"] + [p for p in variants if p != "fp32"]:
        fn = ort_map_fn(variants[prec], bundle.input_name, names)
        heat_err, paf_err = OutputError(), OutputError()
        calls = [0]

        def compared(batch: np.ndarray, fn=fn, prec=prec, heat_err=heat_err, paf_err=paf_err, calls=calls):
            heat, paf = fn(batch)
            # predict() visits the same images in the same order for every variant.
            if prec == "fp32":
                recorded.append((np.array(heat), np.array(paf)))
            else:
                ref_h, ref_p = recorded[calls[0]]
                heat_err.add(np.abs(heat - ref_h))
                paf_err.add(np.abs(paf - ref_p))
            calls[0] += 1
            return heat, paf

        if show_progress:
            import sys

            print("accuracy: %s on %s" % (prec, val.images), file=sys.stderr)
        results, ids = predict(coco_gt, val.images, compared, settings, val.max_images, show_progress=show_progress)
        metrics = evaluate_predictions(coco_gt, results, ids)
        figures = {"AP": metrics["AP"], "AP50": metrics["AP50"], "AP75": metrics["AP75"], "AR": metrics["AR"],
                   "people": float(len(results)), "images": float(len(ids))}
        figures.update(_error_dict(heat_err, paf_err))
        report[prec] = figures
    return report
