"""``openpose-plus bench data [--data DIR]``: is the input pipeline fast enough for a GPU?

Prints, for the same JPEG files, the bare decode rate (read + ``cv2.imdecode``, one thread)
and the full training pipeline's rate (decode + augmentation + heatmap/PAF/mask targets +
batching, through ``tf.data`` exactly as training runs it) at the configured input size
(368x368 by default). ``DIR`` is a COCO-layout dataset (``annotations/`` and ``train2017/``:
COCO itself, or ``openpose-plus synth-data`` output); without one, a synthetic dataset is
written to a temporary folder first.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Dict, List

__all__ = ["add_arguments", "run", "measure"]


HELP = "training input pipeline: samples/s"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", help="COCO-layout dataset (default: a temporary synthetic one)")
    parser.add_argument("--samples", type=int, default=600, help="samples to time (default 600)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--config", metavar="FILE", help="training config whose DATA/AUGMENT/TARGETS to use")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.key=VALUE",
                        help="config override (repeatable)")


def _decode_rate(paths: List[str], limit: int) -> float:
    import cv2
    import numpy as np

    paths = paths[:limit]
    t0 = time.perf_counter()
    for p in paths:
        img = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError("%s: not decodable" % p)
        cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return len(paths) / (time.perf_counter() - t0)


def _cpu_rate(cfg, src, n: int) -> float:
    """Samples per CPU-second of decode + augment + targets in this process: what one worker
    core gives, whatever else the machine is busy with."""
    from openpose_plus.host_training.data.pipeline import ExampleMaker, dataset_skeleton

    maker = ExampleMaker(cfg, src, dataset_skeleton(cfg), augment=True)
    for i in range(min(10, len(src))):
        maker(i, 0)
    t0 = time.process_time()
    for i in range(n):
        maker(i % len(src), 1 + i // len(src))
    return n / max(time.process_time() - t0, 1e-9)


def measure(data_dir: str, samples: int, batch_size: int, config_path=None, overrides=()) -> Dict[str, float]:
    """``{"decode": img/s, "pipeline": samples/s, ...}`` for a COCO-layout ``data_dir``."""
    from openpose_plus.host_training.config import load_config
    from openpose_plus.host_training.data.pipeline import build_dataset, make_sources

    cfg = load_config(config_path, list(overrides) + [
        'DATA.train_data="coco"', "DATA.coco_dir=%s" % _toml_str(data_dir), "TRAIN.batch_size=%d" % batch_size])
    src = make_sources(cfg, "train")[0]
    paths = [r.image_path for r in src.records]  # type: ignore[attr-defined]
    decode = _decode_rate(paths, min(len(paths), max(samples, 200)))
    per_core = _cpu_rate(cfg, src, min(samples, 300))
    ds = build_dataset(cfg, "train")
    it = iter(ds)
    next(it)  # warm-up: graph tracing, thread pools, first files
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while n < samples:
        b = next(it)
        n += int(b["image"].shape[0])
    dt = time.perf_counter() - t0
    parent_cpu = (time.process_time() - c0) / n  # tf.data, batching, receiving from workers
    cores = os.cpu_count() or 1
    return {"decode": decode, "pipeline": n / dt, "per_core": per_core, "parent_ms": parent_cpu * 1e3,
            "projected": cores / (1.0 / per_core + parent_cpu), "samples": float(n), "files": float(len(paths)),
            "input_h": float(cfg.model.input_height), "input_w": float(cfg.model.input_width)}


def _toml_str(s: str) -> str:
    import json

    return json.dumps(s)


def run(args: argparse.Namespace) -> int:
    tmp = None
    data = args.data
    if data is None:
        from openpose_plus.host_training.data.synthetic import SynthOptions, write_dataset

        tmp = tempfile.TemporaryDirectory(prefix="openpose-bench-")
        data = tmp.name
        print("bench data: writing 300 synthetic 640x480 images to %s" % data, file=sys.stderr)
        write_dataset(data, 300, 0, SynthOptions(), workers=os.cpu_count() or 1)
    try:
        r = measure(data, args.samples, args.batch_size, args.config, args.overrides)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print("data: %s (%d images)" % (args.data or "synthetic 640x480", r["files"]))
    print("jpeg decode      %8.1f images/s  (read + cv2.imdecode + RGB, 1 thread)" % r["decode"])
    print("full pipeline    %8.1f samples/s (decode + augment + targets at %dx%d, batch %d, %d cores)"
          % (r["pipeline"], r["input_w"], r["input_h"], args.batch_size, os.cpu_count() or 1))
    print("one worker core  %8.1f samples/s (the same work per CPU-second, one process)" % r["per_core"])
    print("main process     %8.2f ms CPU per sample (tf.data, batching, receiving from workers)" % r["parent_ms"])
    print("idle-machine cap %8.1f samples/s (all %d cores / CPU time per sample, workers + main)"
          % (r["projected"], os.cpu_count() or 1))
    try:
        load = os.getloadavg()[0]
        if load > (os.cpu_count() or 1):
            print("note: load average %.1f on %d cores: other work is competing, rates are low"
                  % (load, os.cpu_count() or 1))
    except OSError:
        pass
    return 0
