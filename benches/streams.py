"""``openpose-plus bench streams BUNDLE --streams 1 2 4 8``: N cameras batched into one network
call, against N separate processes, against the network alone.

For each N, taking turns (``--repeat`` rounds, so a load that comes and goes on a shared machine
falls on all alike):

* **limit**: the network alone at batch N in tight loops (I/O bound once): the best frames/s
  of one onnxruntime session on every core (spinning or not) and of one session per pipeline
  worker side by side, with the workers' own settings (threads, warmed up alike); and the
  network's CPU time per frame in that side-by-side run (the same cores busy the same way as
  in the pipeline);
* **batched**: N synthetic streams through one :class:`~openpose_plus.edge.pipeline.Pipeline`
  (what ``serve`` runs with N ``[[sources]]``), flat out (each stream as fast as it can go, no
  frame lost; ``--frames`` in all, so every N runs about as long) and at ``--rate`` frames/s per stream (live cameras, phases spread evenly, so
  batches fill the hard way): total frames/s, per-stream latency from capture to the sink
  (p50, p99), mean frames per network call, frames dropped;
* **separate**: the same N streams as N processes, each one stream at batch 1 with its own
  session(s) (what a site runs today: one service per camera), started together, flat out and
  at the rate.

Frames are rendered once (``--source``) and replayed from memory, so capture costs what a
camera's copy into the ring costs. A bundle that takes one image per call (the shipped
``models/demo``) is given a dynamic batch here by the same edit ``export``/``import --batch``
make (:func:`openpose_plus.edge.batch.batched_model`, checked at batch 2 against each image
alone), into a temporary copy; the separate processes run the bundle as given.

Two measures of each: frames/s by the wall clock, and CPU time per frame (process CPU for
the pipelines, thread CPU for the network). On a machine others load, the wall clock says as
much about their work as ours (N processes also win a bigger share of a busy machine than one
process with few threads); CPU time per frame is what the work itself costs.

Targets (issue 18): batched flat-out total >= 0.9x the limit, and above N separate processes;
p99 latency <= 2 frame periods at 15 frames/s per stream for N = 4.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from openpose_plus.benches.pipeline import ReplaySource
from openpose_plus.edge.sinks.base import Sink

__all__ = ["add_arguments", "run", "PacedReplay", "LatencySink", "limit", "batched_run", "separate_run", "percentile"]

HELP = "N camera streams batched into one network call vs N processes vs the network alone"


class PacedReplay(ReplaySource):
    """Frames held in memory, copied into the ring; ``rate``: paced like a camera (live, so a
    busy pipeline drops its frames), starting ``phase`` seconds late; else flat out, lossless."""

    def __init__(self, images: List[np.ndarray], count: int, rate: Optional[float] = None, phase: float = 0.0) -> None:
        super().__init__(images, count)
        self.rate, self.phase = rate, phase
        self.live = bool(rate)
        self._next: Optional[float] = None

    def read(self):
        if self.rate and self.index < self.count:
            now = time.monotonic()
            if self._next is None:
                self._next = now + self.phase
            delay = self._next - now
            if delay > 0:
                time.sleep(delay)
            self._next += 1.0 / self.rate
        return super().read()


class LatencySink(Sink):
    """Seconds from capture to this sink's thread, per stream (the end of the frame's path)."""

    name = "latency"

    def __init__(self) -> None:
        self.seconds: Dict[str, List[float]] = {}

    def handle(self, result) -> None:
        self.seconds.setdefault(result.stream, []).append(time.monotonic() - result.timestamp)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else 0.0


def _latency(seconds: Dict[str, List[float]]) -> Dict[str, float]:
    """p50: the median stream's; p99: the worst stream's (ms)."""
    p50 = [percentile(v, 50) for v in seconds.values() if v]
    p99 = [percentile(v, 99) for v in seconds.values() if v]
    return {"p50_ms": round(1e3 * statistics.median(p50), 1) if p50 else 0.0,
            "p99_ms": round(1e3 * max(p99), 1) if p99 else 0.0}


def _images(source: str, count: int) -> List[np.ndarray]:
    from openpose_plus.edge.sources import open_source

    with open_source(source) as src:
        return [src.read().image.copy() for _ in range(max(1, count))]


def _network_alone(bundle, n: int, seconds: float, threads: int, spin: bool, clock) -> float:
    """Median seconds (by ``clock``) of one call at batch ``n`` over about ``seconds``."""
    from openpose_plus.edge.backends.onnxruntime_backend import OnnxRuntimeBackend

    be = OnnxRuntimeBackend(bundle, "fp32", threads=threads, spin=spin, batch=n)
    try:
        bufs = be.new_buffers()
        bufs.input[...] = np.random.default_rng(0).integers(0, 256, bufs.input.shape, np.uint8)
        for _ in range(3):
            be.infer(bufs, n)
        times: List[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end or len(times) < 5:
            t0 = clock()
            be.infer(bufs, n)
            times.append(clock() - t0)
        return statistics.median(times)
    finally:
        be.close()


def _network_side_by_side(bundle, n: int, k: int, seconds: float, threads: int = 1) -> Tuple[float, float]:
    """``k`` sessions of ``threads`` threads at batch ``n`` in tight loops at once (as ``k``
    pipeline workers run them): (frames/s of all, CPU seconds per frame by thread CPU time)."""
    from openpose_plus.edge.backends.onnxruntime_backend import OnnxRuntimeBackend

    backends = [OnnxRuntimeBackend(bundle, "fp32", threads=threads, batch=n) for _ in range(k)]
    got: List[Tuple[int, float]] = []
    start = threading.Barrier(k + 1)

    def loop(be) -> None:
        bufs = be.new_buffers()
        bufs.input[...] = np.random.default_rng(0).integers(0, 256, bufs.input.shape, np.uint8)
        for _ in range(3):  # warm, as the pipeline's sessions are (its warm-up run)
            be.infer(bufs, n)
        start.wait()
        calls, cpu0, end = 0, time.thread_time(), time.monotonic() + seconds
        while time.monotonic() < end or calls < 3:
            be.infer(bufs, n)
            calls += 1
        got.append((calls * n, time.thread_time() - cpu0))

    threads = [threading.Thread(target=loop, args=(be,)) for be in backends]
    try:
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        for be in backends:
            be.close()
    frames = sum(f for f, _ in got)
    return frames / wall, sum(c for _, c in got) / frames


def limit(bundle, n: int, workers: int, seconds: float = 1.0, threads: int = 1) -> Dict[str, float]:
    """The network alone at batch ``n`` in tight loops, I/O bound once. ``fps``: the best of one
    session on every core (spinning, and not) and ``workers`` sessions of ``threads`` threads side
    by side (as the pipeline's workers run it: the same sessions' settings), by wall clock; ``cpu_ms``: CPU ms per frame of the network in
    that side-by-side run (thread CPU time, which other processes' load does not change), and
    ``cpu_ms_alone`` on one thread with the machine to itself."""
    wall = min(_network_alone(bundle, n, seconds, 0, spin, time.perf_counter) for spin in (True, False))
    fps, cpu = _network_side_by_side(bundle, n, workers, seconds, threads)
    alone = _network_alone(bundle, n, seconds / 2, 1, False, time.thread_time)
    return {"fps": round(max(n / wall, fps), 2), "cpu_ms": round(1e3 * cpu, 3),
            "cpu_ms_alone": round(1e3 * alone / n, 3)}


def per_stream(frames: int, n: int) -> int:
    """Each stream's share of a flat-out run of ``frames`` (at least one)."""
    return max(1, -(-frames // n))


def batched_run(est, images: List[np.ndarray], n: int, frames: int, rate: Optional[float], seconds: float,
                workers, wait_ms: float) -> Dict[str, object]:
    """One run of ``n`` streams through one Pipeline (flat out: ``frames`` in all; at
    ``rate``: ``seconds`` long)."""
    from openpose_plus.edge.pipeline import Pipeline

    def sources(count):
        return [("cam%d" % i, PacedReplay(images, count, rate, phase=i / (n * rate) if rate else 0.0))
                for i in range(n)]

    Pipeline(est, sources(3), batch=n, infer_workers=workers, batch_wait_ms=wait_ms).run()  # warm-up
    sink = LatencySink()
    count = int(seconds * rate) if rate else per_stream(frames, n)
    p = Pipeline(est, sources(count), [sink], batch=n, infer_workers=workers, batch_wait_ms=wait_ms,
                        sink_queue=64)
    cpu0 = time.process_time()
    p.run()
    cpu = time.process_time() - cpu0
    if p.error is not None:
        raise RuntimeError("the pipeline failed: %s" % p.error)
    out: Dict[str, object] = {"fps": round(p.frames / (p.finished - p.started), 2), "frames": p.frames,
                              "cpu_ms": round(1e3 * cpu / max(1, p.frames), 3),
                              "dropped": p.capture_drops + sum(p.sink_drops.values()),
                              "mean_batch": p.summary()["mean_batch"], "workers": p.infer_workers,
                              "stage_ms": p.summary()["ms"]}
    out.update(_latency(sink.seconds))
    return out


# -- separate processes ----------------------------------------------------------------------------------

def _child(args: argparse.Namespace) -> int:
    """One process, one stream (batch 1): say ``ready``, wait for ``go``, run, print the figures."""
    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.pipeline import Pipeline

    rate = args.rate if args.child == "rate" else None
    images = _images(args.source, args.distinct)
    est = PoseEstimator(args.bundle, backend="onnxruntime", batch=1)
    Pipeline(est, [("cam", PacedReplay(images, 3))], batch=1).run()  # warm-up
    count = int(args.seconds * rate) if rate else args.frames
    src = PacedReplay(images, count, rate, phase=args.phase)
    sink = LatencySink()
    p = Pipeline(est, [("cam", src)], [sink], batch=1, sink_queue=64)
    print("ready", flush=True)
    sys.stdin.readline()
    t0, cpu0 = time.time(), time.process_time()
    p.run()
    t1, cpu = time.time(), time.process_time() - cpu0
    est.close()
    print(json.dumps({"t0": t0, "t1": t1, "frames": p.frames, "dropped": p.capture_drops + sum(p.sink_drops.values()),
                      "cpu": cpu, "seconds": sink.seconds.get("cam", [])}), flush=True)
    return 0


def separate_run(bundle_path: str, n: int, args: argparse.Namespace, rate: Optional[float]) -> Dict[str, object]:
    """``n`` processes, one stream each, started together; total frames/s over the whole span."""
    procs = []
    for i in range(n):
        cmd = [sys.executable, "-m", "openpose_plus.commands", "bench", "streams", bundle_path, "--child",
               "rate" if rate else "flat", "--rate", str(args.rate), "--seconds", str(args.seconds),
               "--frames", str(per_stream(args.frames, n)), "--source", args.source, "--distinct", str(args.distinct),
               "--phase", str(i / (n * args.rate))]
        procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    try:
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a separate process failed to start (exit %s)" % p.wait())
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        got = [json.loads(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.stdin.close()
                p.wait(60)
    span = max(g["t1"] for g in got) - min(g["t0"] for g in got)
    frames = sum(g["frames"] for g in got)
    out: Dict[str, object] = {"fps": round(frames / span, 2), "frames": frames,
                              "cpu_ms": round(1e3 * sum(g["cpu"] for g in got) / max(1, frames), 3),
                              "dropped": sum(g["dropped"] for g in got)}
    out.update(_latency({str(i): g["seconds"] for i, g in enumerate(got)}))
    return out


# -- the verb --------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (directory or .tar); batch 1 is given a dynamic batch here")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8], metavar="N",
                        help="stream counts to measure (default: 1 2 4 8)")
    parser.add_argument("--rate", type=float, default=15.0, help="frames/s per stream of the paced runs (default 15)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each paced run (default 6)")
    parser.add_argument("--frames", type=int, default=240,
                        help="frames of each flat-out run, all streams together: FRAMES/N each, so every N runs "
                             "as long and start-up costs weigh alike (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, interleaved; medians and ranges (default 3)")
    parser.add_argument("--workers", type=int, default=0,
                        help="inference workers of the batched pipeline (0: auto, one per core on the CPU)")
    parser.add_argument("--batch-wait-ms", type=float, default=10.0, help="the batched pipeline's wait (default 10)")
    parser.add_argument("--source", default="synthetic://640x480?people=3", help="where the frames come from")
    parser.add_argument("--distinct", type=int, default=10, help="distinct frames taken from the source")
    parser.add_argument("--no-processes", action="store_true", help="skip the separate processes")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", choices=("flat", "rate"), help=argparse.SUPPRESS)
    parser.add_argument("--phase", type=float, default=0.0, help=argparse.SUPPRESS)


def _dynamic_copy(bundle, tmp: str, images: List[np.ndarray]):
    """The bundle itself when it batches; else a temporary copy with a dynamic batch (checked)."""
    import shutil

    from openpose_plus.edge.batch import BatchSpec, batched_model
    from openpose_plus.edge.bundle import load_bundle, sha256_file

    if bundle.batch.dynamic:
        return bundle, "the bundle's own dynamic batch"
    if bundle.batch.size > 1:
        raise ValueError("bundle %s has a fixed batch of %d: give a dynamic-batch bundle" % (bundle.path,
                                                                                            bundle.batch.size))
    spec = BatchSpec(8, True)
    with open(bundle.model_path("fp32"), "rb") as f:
        single = f.read()
    first = images[0]
    from openpose_plus.edge.preprocess import Preprocessor

    probe = np.empty((bundle.input_height, bundle.input_width, 3), np.uint8)
    Preprocessor(bundle.input_width, bundle.input_height, bundle.pad_value)(first, probe)
    batched, diff = batched_model(single, spec, bundle.input_name, [probe])
    out = os.path.join(tmp, "dynamic")
    shutil.copytree(bundle.path, out)
    with open(os.path.join(out, os.path.basename(bundle.model_path("fp32"))), "wb") as f:
        f.write(batched)
    meta_path = os.path.join(out, "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    name = meta["models"]["fp32"]
    meta["files"][name] = {"sha256": sha256_file(os.path.join(out, name)), "size": os.path.getsize(os.path.join(out, name))}
    meta["batch"] = spec.to_meta()
    meta["models"] = {"fp32": name}  # the int8 graph keeps batch 1: not run here
    meta["calibration_cache"] = None
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    return load_bundle(out), "a dynamic-batch copy made here (edge.batch.batched_model; batch 2 vs alone: %.1g)" % diff


def _spread(values: List[float], fmt: str = "%.1f") -> str:
    return fmt % values[0] if len(values) == 1 else (fmt + "-" + fmt) % (min(values), max(values))


def run(args: argparse.Namespace) -> int:
    if args.child:
        return _child(args)
    from openpose_plus.edge.bundle import BundleError, load_bundle
    from openpose_plus.edge.estimator import PoseEstimator, cpu_cores

    if any(n < 1 for n in args.streams) or args.repeat < 1 or args.frames < 1 or args.rate <= 0:
        print("bench streams: --streams, --repeat, --frames and --rate must be positive", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="openpose-plus-streams-") as tmp:
        try:
            given = load_bundle(args.bundle)
            images = _images(args.source, args.distinct)
            bundle, how = _dynamic_copy(given, tmp, images)
        except (BundleError, ValueError, RuntimeError) as exc:
            print("bench streams: %s" % exc, file=sys.stderr)
            return 1
        most = max(args.streams)
        est = PoseEstimator(bundle, backend="onnxruntime", batch=most)
        workers = args.workers or est.auto_workers()
        rows: Dict[int, Dict[str, List[Dict[str, object]]]] = {n: {} for n in args.streams}
        loads: List[float] = []
        try:
            for r in range(args.repeat):
                for n in args.streams:
                    print("round %d/%d, %d stream(s) (load %.1f) ..." % (r + 1, args.repeat, n, os.getloadavg()[0]),
                          file=sys.stderr)
                    loads.append(os.getloadavg()[0])
                    row = rows[n]
                    row.setdefault("limit", []).append(limit(bundle, n, workers, threads=est.worker_threads(workers)))
                    row.setdefault("batched", []).append(batched_run(est, images, n, args.frames, None, 0,
                                                                     workers, args.batch_wait_ms))
                    row.setdefault("batched_rate", []).append(batched_run(est, images, n, 0, args.rate, args.seconds,
                                                                          workers, args.batch_wait_ms))
                    if not args.no_processes:
                        row.setdefault("separate", []).append(separate_run(given.path, n, args, None))
                        row.setdefault("separate_rate", []).append(separate_run(given.path, n, args, args.rate))
        finally:
            est.close()
    summary = {"cores": cpu_cores(), "input": [bundle.input_width, bundle.input_height], "frame": list(images[0].shape),
               "bundle": how, "rate": args.rate, "repeat": args.repeat, "load1": [round(v, 1) for v in loads],
               "results": {str(n): v for n, v in rows.items()}}
    verdicts = []
    for n, row in rows.items():
        for i, (lim, bat) in enumerate(zip(row["limit"], row["batched"])):
            bat["vs_limit"] = round(bat["fps"] / lim["fps"], 3)
            bat["vs_limit_cpu"] = round(lim["cpu_ms"] / bat["cpu_ms"], 3)
            if "separate" in row:
                sep = row["separate"][i]
                bat["vs_separate"] = round(bat["fps"] / sep["fps"], 3)
                bat["vs_separate_cpu"] = round(sep["cpu_ms"] / bat["cpu_ms"], 3)

        def med(key, rows_=row["batched"]):
            return statistics.median(b[key] for b in rows_)

        text = "N=%d: batched %.2fx the network alone by wall clock, %.2fx by CPU time per frame (target >= 0.9)" % (
            n, med("vs_limit"), med("vs_limit_cpu"))
        if "separate" in row:
            text += "; %.2fx N separate processes by wall clock, %.2fx by CPU time (target > 1)" % (
                med("vs_separate"), med("vs_separate_cpu"))
        verdicts.append(text)
        if n == 4:
            p99 = max(b["p99_ms"] for b in row["batched_rate"])
            verdicts.append("N=4 at %.0f frames/s each: batched p99 %.0f ms (2 frame periods = %.0f ms)%s" % (
                args.rate, p99, 2e3 / args.rate, "" if "separate_rate" not in row else
                "; separate p99 %.0f ms" % max(b["p99_ms"] for b in row["separate_rate"])))
    summary["verdicts"] = verdicts
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print("onnxruntime on %d cores, %dx%d frames into %dx%d; %s; %d round(s), load %s"
          % (summary["cores"], images[0].shape[1], images[0].shape[0], bundle.input_width, bundle.input_height, how,
             args.repeat, _spread(loads)))
    print("flat out: frames/s of all streams together (range over rounds), CPU ms per frame (median); "
          "ratios: median [range]")
    print("%3s | %-17s | %-17s %5s | %-17s | %s" % ("N", "network alone", "batched", "batch", "separate processes",
                                                   "batched / alone, / separate (wall; CPU)"))
    for n, row in rows.items():
        b, sep = row["batched"], row.get("separate")

        def cell(xs):
            return "%9s %7.2f" % (_spread([x["fps"] for x in xs]), statistics.median(x["cpu_ms"] for x in xs))

        def ratio(key):
            xs = [x[key] for x in b]
            return "%.2f [%s]" % (statistics.median(xs), _spread(xs, "%.2f"))

        print("%3d | %s | %s %5.1f | %s | %s; %s   %s" % (
            n, cell(row["limit"]), cell(b), statistics.median(x["mean_batch"] for x in b),
            cell(sep) if sep else "%17s" % "-", ratio("vs_limit"), ratio("vs_limit_cpu"),
            "%s; %s" % (ratio("vs_separate"), ratio("vs_separate_cpu")) if sep else ""))
    print("at %.0f frames/s per stream: frames/s delivered, latency capture to sink p50 (median stream) / "
          "p99 (worst stream) ms, frames dropped" % args.rate)
    print("%3s | %-28s | %-28s" % ("N", "batched", "separate processes"))
    for n, row in rows.items():
        def paced(xs):
            if not xs:
                return "%28s" % "-"
            return "%9s %8s %5d" % (_spread([x["fps"] for x in xs]), "%.0f/%.0f" % (
                statistics.median(x["p50_ms"] for x in xs), max(x["p99_ms"] for x in xs)), max(x["dropped"] for x in xs))
        print("%3d | %s | %s" % (n, paced(row["batched_rate"]), paced(row.get("separate_rate"))))
    for v in verdicts:
        print(v)
    return 0
