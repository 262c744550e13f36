"""The device path, checked and measured on the device itself (``openpose-plus check-device``).

For every precision the bundle offers: open it on the TensorRT backend (building the engine, or
finding it in the cache), compare its heatmaps and PAFs with onnxruntime's FP32 maps of the
same frames (max and mean absolute error per output), run frames through the real pipeline
(source, letterbox, network, grouping) and time each stage, and say whether the frame path is
zero-copy (frames in mapped memory from capture, network I/O in mapped memory). The result is
one JSON report.

It lives beside the loop it drives (``estimator.py``, ``pipeline.py``): it composes backends,
sources and the pipeline, which ``backends/`` must not import, and it is no part of the
daemon (``service/``). Where the device side cannot run (no TensorRT, no pycuda, no GPU)
:func:`preflight` says why and nothing is attempted.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import environment as env

__all__ = ["CheckOptions", "preflight", "machine", "describe_machine", "check_device", "describe_precision",
           "write_report", "offered_precisions", "map_errors",
           "FP32_TOLERANCE", "EXIT_OK", "EXIT_FAILED", "EXIT_NO_DEVICE"]

EXIT_OK, EXIT_FAILED, EXIT_NO_DEVICE = 0, 1, 2
# FP32 engines must agree with onnxruntime's FP32 to within this (TensorRT's own kernels,
# tactics and fused layers differ from ORT's by ~1e-5 on these maps); fp16/int8 are reported.
FP32_TOLERANCE = 1e-3
WARMUP_FRAMES = 3  # CUDA's lazy loading and the first enqueue are not the device's speed


@dataclass
class CheckOptions:
    frames: int = 200                 # through the pipeline, per precision
    compare_frames: int = 8           # whose maps are compared with onnxruntime's
    source: Optional[str] = None      # default: synthetic people at the network's input size
    precisions: Optional[Sequence[str]] = None  # default: every one the bundle offers
    backend: str = "tensorrt"
    cache_dir: Optional[str] = None
    dla_core: Optional[int] = None
    infer_workers: Union[int, str] = "auto"
    extra: Dict[str, object] = field(default_factory=dict)

    def validate(self) -> "CheckOptions":
        if self.frames < 1 or self.compare_frames < 1:
            raise ValueError("frames and compare_frames must be at least 1, got %d and %d"
                             % (self.frames, self.compare_frames))
        return self


def preflight(backend: str = "tensorrt") -> Optional[str]:
    """None where ``backend`` can run here, else why not (the backend registry's own answer)."""
    from .backends import availability

    have = {s.name: s for s in availability()}
    if backend not in have:
        return "unknown backend %r (have: %s)" % (backend, ", ".join(have))
    return None if have[backend].ok else "%s cannot run here: %s" % (backend, have[backend].detail)


def _first_line(path: str) -> str:
    try:
        with open(path, "r", errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return ""


def machine() -> Dict[str, object]:
    """What this machine is: the board, L4T (JetPack) release, GPU nodes, library versions."""
    libs = {}
    for module, label in (("tensorrt", "tensorrt"), ("pycuda.driver", "pycuda"), ("onnxruntime", "onnxruntime"),
                          ("jetson_utils", "jetson_utils"), ("cv2", "opencv"), ("numpy", "numpy")):
        st = env.probe_module(module, label)
        libs[label] = st.detail if st.ok else None
    if libs["pycuda"] == "installed":  # pycuda.driver has no __version__; the package has VERSION_TEXT
        libs["pycuda"] = env.distribution_version("pycuda") or "installed"
    return {"board": _first_line("/proc/device-tree/model").rstrip("\x00") or None,
            "jetson": env.is_jetson(), "l4t": _first_line("/etc/nv_tegra_release") or None,
            "gpu_nodes": env.gpu_devices(), "platform": "%s %s" % (platform.system(), platform.machine()),
            "python": platform.python_version(), "libraries": libs}


def describe_machine(m: Dict[str, object]) -> str:
    libs = m["libraries"]  # type: ignore[index]
    return "machine: %s; L4T %s; GPU %s; TensorRT %s, pycuda %s, jetson_utils %s, onnxruntime %s" % (
        m["board"] or m["platform"], m["l4t"] or "none", ", ".join(m["gpu_nodes"]) or "none",  # type: ignore[arg-type]
        libs["tensorrt"] or "absent", libs["pycuda"] or "absent", libs["jetson_utils"] or "absent",
        libs["onnxruntime"] or "absent")


def offered_precisions(bundle, backend: str = "tensorrt") -> List[str]:
    """The precisions the bundle offers that ``backend`` runs (fp16 is built from the fp32 graph
    where the TensorRT generation allows; onnxruntime runs no fp16)."""
    from .backends import _REGISTRY

    runs = _REGISTRY[backend].precisions if backend in _REGISTRY else ()
    return [p for p in bundle.precisions if p in runs]


def map_errors(got: np.ndarray, ref: np.ndarray) -> Dict[str, float]:
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean())}


def _frames(uri: str, n: int) -> List[np.ndarray]:
    """``n`` frames of the source, copied (the comparison's inputs, the same for every precision)."""
    from .sources import open_source

    with open_source(uri) as src:
        out = []
        for frame in src:
            out.append(frame.image.copy())
            if len(out) == n:
                break
    if not out:
        raise ValueError("source %s gave no frame" % uri)
    return out


def _maps(backend, bundle, images: List[np.ndarray]) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Each image letterboxed into a buffer set of ``backend`` and run: copies of its maps."""
    from .preprocess import Preprocessor

    pre = Preprocessor(bundle.input_width, bundle.input_height, bundle.pad_value)
    bufs = backend.new_buffers()
    out = []
    for image in images:
        pre(image, bufs.input)
        backend.infer(bufs)
        out.append((bufs.heatmaps.copy(), bufs.pafs.copy()))
    return out


def _compare(got, ref) -> Dict[str, Dict[str, float]]:
    out = {}
    for i, name in enumerate(("heatmaps", "pafs")):
        a = np.stack([g[i] for g in got])
        b = np.stack([r[i] for r in ref])
        out[name] = map_errors(a, b)
    return out


def _zero_copy(source, backend) -> Dict[str, object]:
    capture = getattr(getattr(source, "inner", None) or source, "zero_copy", None)
    io = getattr(backend, "zero_copy", None)
    kind = getattr(source, "kind", "?")
    return {"capture": capture,
            "capture_detail": ("jetson_utils frames in mapped memory" if capture else
                               "jetson_utils frames not in mapped memory" if capture is False else
                               "%s frames in host memory" % kind),
            "network_io": io,
            "network_io_detail": ("mapped memory, no copies" if io else
                                  "device buffers, copied in and out" if io is False else
                                  "%s on host memory" % getattr(backend, "name", "?")),
            "frame_path": bool(io) and capture is not False}


def _check_one(bundle, precision: str, options: CheckOptions, uri: str, images, reference,
               say: Callable[[str], None]) -> Dict[str, object]:
    from .estimator import PoseEstimator
    from .pipeline import Pipeline
    from .sources import open_source

    out: Dict[str, object] = {"precision": precision, "ok": False}
    t0 = time.monotonic()
    try:
        est = PoseEstimator(bundle, backend=options.backend, precision=precision, cache_dir=options.cache_dir,
                            dla_core=options.dla_core)
    except Exception as exc:  # a precision this TensorRT cannot build from this bundle, a failed build...
        out["error"] = "%s: %s" % (type(exc).__name__, exc)
        return out
    try:
        be = est.backend
        plan = getattr(be, "plan", None)
        engine = "built" if "engine built" in be.reason else "cached" if "engine cached" in be.reason else None
        out.update(open_s=round(time.monotonic() - t0, 3), reason=be.reason, engine=engine,
                   route=getattr(plan, "route", None), how=plan.describe() if plan is not None else None)
        out["maps"] = dict(_compare(_maps(be, bundle, images), reference), frames=len(images),
                           reference="onnxruntime fp32 (%s)" % os.path.basename(bundle.model_path("fp32")))
        for _ in range(WARMUP_FRAMES):
            est.infer(images[0])
        source = open_source(uri)
        try:
            people: List[int] = []
            # Every frame read is processed (a camera waits rather than drops): N frames measured.
            pipe = Pipeline(est, source, [], infer_workers=options.infer_workers, max_frames=options.frames,
                            drop_when_busy=False, on_frame=lambda r: people.append(len(r.poses.scores)))
            pipe.run()
            out["zero_copy"] = _zero_copy(source, be)
        finally:
            source.close()
        summary = pipe.summary()
        ms = summary["ms"]
        out["pipeline"] = {"frames": summary["frames"], "fps": summary["fps"], "workers": summary["workers"],
                           "ms": ms, "best_ms": summary["best_ms"],
                           "stage_fps": {k: (round(1e3 / v, 1) if v else None) for k, v in ms.items()},
                           "capture_drops": summary["capture_drops"], "frame_errors": summary["frame_errors"],
                           "people_mean": round(float(np.mean(people)), 2) if people else 0.0}
        if pipe.error is not None:
            out["error"] = "pipeline: %s: %s" % (type(pipe.error).__name__, pipe.error)
            return out
        if summary["frames"] == 0:
            out["error"] = "pipeline: no frame went through"
            return out
        worst = max(v["max_abs"] for k, v in out["maps"].items() if isinstance(v, dict))
        if precision == "fp32" and worst > FP32_TOLERANCE:
            out["error"] = ("fp32 maps differ from onnxruntime's by up to %.3g (more than %g): the engine does "
                            "not compute what the ONNX does" % (worst, FP32_TOLERANCE))
            return out
        out["ok"] = True
        return out
    except Exception as exc:  # the backend failed at run time: reported, the next precision runs
        out["error"] = "%s: %s" % (type(exc).__name__, exc)
        return out
    finally:
        est.close()


def check_device(bundle_path: str, options: Optional[CheckOptions] = None,
                 say: Callable[[str], None] = lambda line: None) -> Dict[str, object]:
    """The report: ``ok`` (every precision built, agreed and ran), ``reason`` when the device
    side cannot run here, ``machine`` and per precision what it measured. Never raises for a
    precision that fails: that precision says why."""
    from .backends import create_backend
    from .bundle import load_bundle

    options = (options or CheckOptions()).validate()
    report: Dict[str, object] = {"bundle": os.path.abspath(bundle_path), "backend": options.backend,
                                 "machine": machine(), "ok": False, "reason": None, "precisions": {}}
    say(describe_machine(report["machine"]))  # type: ignore[arg-type]
    bundle = load_bundle(bundle_path)
    report["input"] = [bundle.input_width, bundle.input_height]
    why = preflight(options.backend)
    if why is not None:
        report["reason"] = why
        return report
    wanted = list(options.precisions) if options.precisions else offered_precisions(bundle, options.backend)
    uri = options.source or "synthetic://%dx%d?people=3&seed=1" % (bundle.input_width, bundle.input_height)
    report.update(source=uri, frames=options.frames)
    images = _frames(uri, options.compare_frames)
    with create_backend(bundle, "onnxruntime", "fp32", providers=["CPUExecutionProvider"]) as ref:
        reference = _maps(ref, bundle, images)
    results: Dict[str, object] = {}
    for precision in wanted:
        say("%s: opening on %s (a first build takes minutes; it is cached)" % (precision, options.backend))
        results[precision] = _check_one(bundle, precision, options, uri, images, reference, say)
        say(describe_precision(results[precision]))
    report["precisions"] = results
    failed = [p for p, r in results.items() if not r["ok"]]  # type: ignore[index]
    report["ok"] = bool(results) and not failed
    if failed:
        report["reason"] = "failed: %s" % ", ".join(failed)
    return report


def _fmt(v: float) -> str:
    return "%.2g" % v if v else "0"


def describe_precision(r: Dict[str, object]) -> str:
    """A few lines for one precision, as the command prints them."""
    p = r["precision"]
    if not r.get("open_s") and r.get("error"):
        return "%-5s FAILED: %s" % (p, r["error"])
    opened = ("engine %s in %.1f s" % (r["engine"], r["open_s"]) if r.get("engine")
              else "opened in %.1f s" % r["open_s"])  # type: ignore[operator]
    route = "route %s (%s)" % (r["route"], r["how"]) if r.get("route") else r.get("reason")
    lines = ["%-5s %s: %s" % (p, opened, route)]
    maps = r.get("maps")
    if isinstance(maps, dict):
        lines.append("      maps vs %s, %d frames: heatmaps max %s mean %s; pafs max %s mean %s" % (
            maps["reference"], maps["frames"], _fmt(maps["heatmaps"]["max_abs"]), _fmt(maps["heatmaps"]["mean_abs"]),
            _fmt(maps["pafs"]["max_abs"]), _fmt(maps["pafs"]["mean_abs"])))
    pipe = r.get("pipeline")
    if isinstance(pipe, dict):
        ms = pipe["ms"]
        lines.append("      pipeline, %d frames: %.1f frames/s (ms per frame: %s)" % (
            pipe["frames"], pipe["fps"], ", ".join("%s %.2f" % kv for kv in ms.items())))
    zc = r.get("zero_copy")
    if isinstance(zc, dict):
        lines.append("      zero-copy: %s (capture: %s; network I/O: %s)" % (
            "yes" if zc["frame_path"] else "no", zc["capture_detail"], zc["network_io_detail"]))
    if r.get("error"):
        lines.append("      FAILED: %s" % r["error"])
    return "\n".join(lines)


def write_report(report: Dict[str, object], path: str) -> None:
    from .atomic import write_atomic

    write_atomic(path, (json.dumps(report, indent=1, default=str) + "\n").encode())
