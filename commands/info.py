"""``openpose-plus info``: versions, and which backends and sources work here and why not."""
from __future__ import annotations

import argparse
import json
from typing import Dict, List

from openpose_plus.edge import environment as env

# Host-side distributions: reported from metadata only (the edge never imports TensorFlow).
HOST_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tf_keras", "horovod", "pycocotools",
                      "tf2onnx", "onnx", "onnxconverter-common")


HELP = "versions, and which backends and sources work here and why not"

def _grouping_core() -> env.Status:
    try:
        from openpose_plus.edge.grouping import native_version
    except Exception as exc:  # the extension was not built: say how to build it
        return env.Status("paf C core", False, "%s (run `pip install -e .` to build it)" % exc)
    return env.Status("paf C core", True, native_version())


def _opencv() -> env.Status:
    st = env.probe_module("cv2", "opencv", "pip install opencv-python-headless")
    if not st.ok:
        return st
    import cv2

    gst = "GStreamer" if env.opencv_has_gstreamer() else "no GStreamer"
    return env.Status("opencv", True, "%s (%s)" % (cv2.__version__, gst))


def _onnxruntime() -> env.Status:
    st = env.probe_module("onnxruntime", hint="pip install onnxruntime")
    if not st.ok:
        return st
    import onnxruntime as ort

    return env.Status("onnxruntime", True, "%s, providers: %s" % (ort.__version__, ", ".join(ort.get_available_providers())))


def libraries() -> List[env.Status]:
    return [
        _grouping_core(),
        env.probe_module("numpy"),
        env.probe_module("cffi"),
        _opencv(),
        _onnxruntime(),
        env.probe_module("tensorrt", hint="comes with JetPack: python3-libnvinfer; never from pip here"),
        env.probe_module("pycuda.driver", "pycuda", "pip install pycuda on the device (needs the CUDA toolkit)"),
        env.probe_module("jetson_utils", "jetson_utils", "build jetson-inference/jetson-utils on the device"),
    ]


def backends(libs: Dict[str, env.Status]) -> List[env.Status]:
    """Which inference backends can run, and why not: the very rule ``backend="auto"`` uses."""
    from openpose_plus.edge.backends import availability

    return availability()


def auto_choice() -> str:
    """What ``backend="auto"`` picks here, with the reason."""
    from openpose_plus.edge.backends import BackendError, select

    try:
        name, why = select("auto")
    except BackendError as exc:
        return "none: %s" % exc
    return "%s (%s)" % (name, why)


def sources(libs: Dict[str, env.Status]) -> List[env.Status]:
    """Which source kinds open here, through what (jetson_utils or OpenCV), and why not."""
    from openpose_plus.edge.sources import availability

    return availability()


def collect() -> Dict[str, object]:
    libs = libraries()
    by_name = {s.name: s for s in libs}
    host = {d: env.distribution_version(d) for d in HOST_DISTRIBUTIONS}
    return {"platform": env.summary(), "libraries": libs, "host": host,
            "backends": backends(by_name), "auto": auto_choice(), "sources": sources(by_name)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    facts = collect()
    if args.json:
        def enc(o):
            return {"ok": o.ok, "detail": o.detail} if isinstance(o, env.Status) else str(o)
        out = {k: ({s.name: enc(s) for s in v} if k in ("libraries", "backends", "sources") else v)
               for k, v in facts.items()}
        print(json.dumps(out, indent=2, default=enc))
        return 0
    print("openpose-plus %s" % (env.distribution_version("openpose-plus") or "(not installed)"))
    for line in facts["platform"]:  # type: ignore[union-attr]
        print("  " + line)
    for title in ("libraries", "backends", "sources"):
        print(title)
        for st in facts[title]:  # type: ignore[union-attr]
            print("  %s" % st)
        if title == "backends":
            print("  auto -> %s" % facts["auto"])
    print("host (metadata only)")
    for dist, ver in facts["host"].items():  # type: ignore[union-attr]
        print("  %-20s %s" % (dist, ver or "not installed"))
    return 0
