"""The pipeline: same answers as the sequential loop, in order, never stalled by a sink."""
import os
import time
import tracemalloc

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_fixtures import make_bundle
from openpose_plus.edge.estimator import PoseEstimator
from openpose_plus.edge.pipeline import STAGES, Pipeline
from openpose_plus.edge.service.metrics import PipelineMetrics
from openpose_plus.edge.sinks import JsonLinesSink, OpenPoseJsonSink, Sink
from openpose_plus.edge.sources import Source, SourceEnded, open_source


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("b"))


@pytest.fixture(scope="module")
def estimator(bundle):
    return PoseEstimator(bundle, backend="onnxruntime", threads=1)


class ArraySource(Source):
    """A finite source over frames already in memory (copied into the ring like a camera)."""

    def __init__(self, images, count, live=False):
        super().__init__("arrays://")
        self.images, self.count, self.live = images, count, live

    def read(self):
        if self.index >= self.count:
            raise SourceEnded("arrays ended")
        img = self.images[self.index % len(self.images)]
        buf = self.ring.get(*img.shape[:2])
        np.copyto(buf, img)
        return self._frame(buf)


def _images(n=6):
    src = open_source("synthetic://160x120?people=2&seed=5")
    return [src.read().image.copy() for _ in range(n)]


def _collect(estimator, mode, workers=1, count=24, sinks=None, live=False, **kw):
    out = []
    p = Pipeline(estimator, ArraySource(_images(), count, live), sinks, mode=mode, infer_workers=workers,
                 on_frame=lambda r: out.append((r.index, r.poses.keypoints.copy())), **kw)
    p.run()
    return p, out


def test_pipelined_equals_sequential_in_order(estimator):
    _, seq = _collect(estimator, "sequential")
    p, par = _collect(estimator, "pipelined", workers=2)
    assert [i for i, _ in par] == list(range(24)) == [i for i, _ in seq]
    for (_, a), (_, b) in zip(seq, par):
        np.testing.assert_array_equal(a, b)
    s = p.summary()
    assert s["frames"] == 24 and s["fps"] > 0 and set(s["ms"]) == set(STAGES)
    assert all(s["ms"][k] > 0 for k in ("capture", "preprocess", "infer", "group"))


def test_each_worker_groups_the_buffer_its_own_network_wrote(bundle):
    """Zero copy per worker: the address a worker's grouping reads is where its session wrote."""
    est = PoseEstimator(bundle, backend="onnxruntime")  # threads 0: cores / workers per session
    workers = est.workers(2)
    assert len({id(w.backend) for w in workers}) == 2  # own sessions...
    assert len({id(w.grouper) for w in workers}) == 2  # ...groupers...
    assert len({w.buffers.heat_ptr for w in workers} | {w.buffers.input.ctypes.data for w in workers}) == 4  # ...buffers
    threads = max(1, (os.cpu_count() or 1) // 2)
    for w in workers:
        assert w.threads == threads
        assert w.backend.session.get_session_options().intra_op_num_threads == threads
    seen = {i: [] for i in range(2)}
    for i, w in enumerate(workers):
        real = w.grouper.group_ptr

        def recording(heat_ptr, paf_ptr, *rest, _i=i, _real=real):
            seen[_i].append((int(heat_ptr), int(paf_ptr)))
            return _real(heat_ptr, paf_ptr, *rest)

        w.grouper.group_ptr = recording
    p = Pipeline(est, ArraySource(_images(), 40), mode="pipelined", infer_workers=2)
    p.run()
    assert p.frames == 40 and p.summary()["workers"] == 2
    assert sum(len(v) for v in seen.values()) == 40
    for i, w in enumerate(workers):
        assert set(seen[i]) <= {tuple(w.backend.bound_output_pointers(w.buffers))}
    est.close()


def test_auto_workers_one_per_core_and_sequential_uses_one_session(bundle):
    est = PoseEstimator(bundle, backend="onnxruntime")
    cores = len(os.sched_getaffinity(0))
    assert est.auto_workers() == cores
    p = Pipeline(est, ArraySource(_images(), 4), infer_workers="auto")
    assert p.infer_workers == cores and p.worker_threads == 1
    seq = Pipeline(est, ArraySource(_images(), 4), mode="sequential", infer_workers="auto")
    assert seq.infer_workers == 1 and seq._workers[0].backend is est.backend
    assert est.workers(cores) is est.workers(cores)  # kept: a second pipeline makes no new session
    with pytest.raises(ValueError):
        Pipeline(est, ArraySource(_images(), 4), infer_workers="many")
    est.close()


def test_frames_reach_the_sinks_in_order_when_workers_finish_out_of_order(bundle):
    est = PoseEstimator(bundle, backend="onnxruntime", threads=1)
    _, seq = _collect(est, "sequential", count=30)
    rng = np.random.default_rng(1)
    delays = list(rng.uniform(0, 0.02, 64))
    for w in est.workers(3):
        real = w.infer

        def slow_infer(_real=real):
            time.sleep(delays.pop() if delays else 0)
            _real()

        w.infer = slow_infer
    p, par = _collect(est, "pipelined", workers=3, count=30, queue_size=1)
    assert [i for i, _ in par] == list(range(30))
    for (_, a), (_, b) in zip(seq, par):
        np.testing.assert_array_equal(a, b)
    est.close()


def test_a_failing_worker_stops_the_pipeline_without_hanging(bundle):
    est = PoseEstimator(bundle, backend="onnxruntime", threads=1)
    calls = []

    def broken():
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("network exploded")
        time.sleep(0.002)

    for w in est.workers(2):
        real = w.infer

        def infer(_real=real):
            broken()
            _real()

        w.infer = infer
    t0 = time.monotonic()
    p, out = _collect(est, "pipelined", workers=2, count=10000)
    assert isinstance(p.error, RuntimeError) and time.monotonic() - t0 < 30
    assert [i for i, _ in out] == sorted(i for i, _ in out) and len(out) < 10000
    est.close()


class Slow(Sink):
    name = "slow"
    needs_image = True

    def __init__(self):
        self.seen = 0

    def handle(self, result):
        time.sleep(0.05)
        self.seen += 1


class Broken(Sink):
    name = "broken"

    def handle(self, result):
        raise RuntimeError("sink exploded")


def test_a_slow_or_failing_sink_never_stalls_the_frames(estimator, tmp_path):
    slow, js = Slow(), OpenPoseJsonSink(str(tmp_path / "json"))
    t0 = time.monotonic()
    p, out = _collect(estimator, "pipelined", count=120, sinks=[slow, Broken(), js], sink_queue=2,
                      live=True, drop_when_busy=False)
    assert len(out) == 120 and p.frames == 120
    assert p.sink_drops["slow"] > 60
    assert slow.seen == 120 - p.sink_drops["slow"]
    broken = {w.name: w for w in p.sinks}["broken"]
    assert broken.errors + broken.dropped == 120 and broken.errors > 0 and broken.handled == 0
    written = len(os.listdir(tmp_path / "json"))  # flushed before run() returned
    assert written == 120 - p.sink_drops["openpose_json"] and written > 0
    assert time.monotonic() - t0 < 120 * 0.05  # did not wait for the slow sink


def test_offline_runs_lose_nothing_even_to_a_slow_sink(estimator):
    slow = Slow()
    p, out = _collect(estimator, "pipelined", count=12, sinks=[slow], sink_queue=1)
    assert p.sink_drops == {"slow": 0} and slow.seen == 12


def test_corrupt_and_odd_sized_frames(estimator, tmp_path):
    for i, (w, h) in enumerate([(160, 120), (64, 200), (300, 40)]):
        cv2.imwrite(str(tmp_path / ("%d.png" % i)), np.full((h, w, 3), 30 * i, np.uint8))
    (tmp_path / "1b.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "poses.jsonl"
    p = Pipeline(estimator, open_source(str(tmp_path)), [JsonLinesSink(str(out))])
    p.run()
    assert p.frames == 3 and p.frame_errors == {"corrupt": 1} and p.error is None
    assert len(out.read_text().splitlines()) == 3


def test_stop_finishes_frames_in_flight_and_flushes(estimator, tmp_path):
    src = open_source("synthetic://160x120?people=1")
    # stop() once the sixth frame is out, while later ones are in flight (not after a delay:
    # how many frames a second brings depends on the machine's load)
    p = Pipeline(estimator, src, [OpenPoseJsonSink(str(tmp_path))], infer_workers=2,
                 on_frame=lambda r: r.index == 5 and p.stop())
    p.run()
    assert p.frames >= 6
    assert len(os.listdir(tmp_path)) == p.frames


def test_a_live_source_drops_at_capture_instead_of_waiting(bundle):
    heavy = PoseEstimator(make_bundle(os.path.dirname(bundle), name="heavy", depth=12, channels=32,
                                      width=256, height=192), backend="onnxruntime", threads=1)
    p = Pipeline(heavy, ArraySource(_images(), 150, live=True), queue_size=1)
    p.run()
    assert p.capture_drops > 0 and p.frames + p.capture_drops == 150


def test_metrics_parse_as_prometheus_text(estimator):
    from prometheus_client import generate_latest

    holder = {}
    metrics = PipelineMetrics(lambda: holder.get("p"))
    p, _ = _collect(estimator, "pipelined", count=30, sinks=[Slow()], sink_queue=1, live=True, drop_when_busy=False)
    holder["p"] = p
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    assert fams["openpose_plus_frames"].samples[0].value == 30
    drops = {s.labels["where"]: s.value for s in fams["openpose_plus_frames_dropped"].samples}
    assert drops["capture"] == 0 and drops["slow"] == p.sink_drops["slow"] > 0
    assert [(s.labels["stream"], s.value) for s in fams["openpose_plus_source_reconnects"].samples] == [("default", 0)]
    counts = {s.labels["stage"]: s.value for s in fams["openpose_plus_stage_seconds"].samples
              if s.name.endswith("_count")}
    assert counts["infer"] == 30 and counts["group"] == 30
    assert {s.labels["sink"] for s in fams["openpose_plus_sink_queue"].samples} == {"slow"}
    assert fams["openpose_plus_sink_seconds"].samples[0].value > 0.04  # the slow sink's 50 ms
    # a reload keeps counters monotonic
    metrics.carry_over(p)
    holder["p"] = None
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    assert fams["openpose_plus_frames"].samples[0].value == 30


@pytest.mark.slow
def test_pipelined_frame_loop_allocations_stay_flat(estimator):
    marks = {}

    def on_frame(r):
        if r.index == 300:
            marks["base"] = tracemalloc.get_traced_memory()[0]
        elif r.index == 2999:
            marks["end"] = tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        p = Pipeline(estimator, ArraySource(_images(), 3000), [], infer_workers=2, on_frame=on_frame)
        p.run()
    finally:
        tracemalloc.stop()
    assert p.frames == 3000
    assert marks["end"] - marks["base"] < 128 * 1024, marks


def _cli(*args, timeout=120):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "openpose_plus.commands", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_run_command_writes_json_video_and_lines(bundle, tmp_path):
    import json

    proc = _cli("run", "synthetic://160x120?people=2", "--bundle", bundle, "--frames", "12",
                "--write-json", str(tmp_path / "json"), "--output", str(tmp_path / "out.avi"),
                "--jsonl", str(tmp_path / "p.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "json")) == ["%012d_keypoints.json" % i for i in range(12)]
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 12
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    summary = json.loads(proc.stderr.strip().splitlines()[-1])
    assert summary["frames"] == 12 and "12/12 frames" in proc.stderr  # the progress line


def test_run_command_errors_are_clear(bundle, tmp_path):
    proc = _cli("run", "synthetic://", "--bundle", str(tmp_path / "missing"), "--frames", "1")
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    proc = _cli("run", str(tmp_path / "nope.mp4"), "--bundle", bundle, "--frames", "1")
    assert proc.returncode == 1 and "no such file" in proc.stderr
    proc = _cli("run", "synthetic://", "--bundle", bundle, "--frames", "0")
    assert proc.returncode == 2


def test_bench_pipeline_runs_every_mode(bundle):
    import json

    proc = _cli("bench", "pipeline", bundle, "--frames", "12", "--distinct", "3", "--repeat", "1",
                "--source", "synthetic://160x120?people=1", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["backend"] == "onnxruntime" and "pipelined" in out["runs"] and "sequential" in out["runs"]
    for r in out["runs"].values():
        assert r["frames"] == 12 and r["fps"] > 0 and set(r["ms"]) == set(STAGES)
    seq, par = out["runs"]["sequential"], out["runs"]["pipelined"]
    share = sum(v for k, v in seq["ms"].items() if k != "infer") / seq["ms"]["infer"]
    assert out["non_network_share_of_network"] == pytest.approx(share, abs=1e-4)
    assert out["pipelined_speedup"] == pytest.approx(par["fps"] / seq["fps"], abs=1e-3)
    assert out["pipelined_speedup_each_pair"] == [out["pipelined_speedup_paired"]]  # one repeat, one pair
    assert out["runs"]["sequential"]["workers"] == 1 and out["runs"]["pipelined"]["workers"] >= 1
    assert set(out["cpu_ms_one_thread"]) == set(STAGES) and out["cpu_ms_one_thread"]["infer"] > 0
    assert 0 < out["non_network_share_of_network_cpu"] < 100


def test_run_command_stops_cleanly_on_sigint(bundle, tmp_path):
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "openpose_plus.commands", "run", "synthetic://96x64?people=1",
                             "--bundle", bundle, "--write-json", str(tmp_path), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(os.listdir(tmp_path)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    import json

    summary = json.loads(err.strip().splitlines()[-1])
    assert len([n for n in os.listdir(tmp_path) if n.endswith("_keypoints.json")]) == summary["frames"] >= 5


def test_config_infer_workers_is_auto_or_a_count():
    from openpose_plus.edge.service.config import ConfigError, parse_config

    base = {"model": {"bundle": "b"}, "source": {"uri": "synthetic://"}}
    assert parse_config(base).pipeline.infer_workers == "auto"
    assert parse_config(dict(base, pipeline={"infer_workers": 3})).pipeline.infer_workers == 3
    for bad, msg in (("two", "must be \"auto\" or an integer"), (0, "must be 1..64"), (True, "must be")):
        with pytest.raises(ConfigError, match=msg):
            parse_config(dict(base, pipeline={"infer_workers": bad}))
