"""Several streams through one batched inference stage: each stream's frames in order and its
own, its drops its own, a failing stream never stops the others."""
from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edge_fixtures import tiny_pose_onnx
from openpose_plus.edge.batch import BatchSpec, batched_model
from openpose_plus.edge.bundle import write_bundle
from openpose_plus.edge.estimator import PoseEstimator
from openpose_plus.edge.service.metrics import PipelineMetrics
from openpose_plus.edge.sinks import JsonLinesSink, Sink
from openpose_plus.edge.sinks.factory import build_stream_sinks, sinks_config
from openpose_plus.edge.sources import ReconnectingSource, Source, SourceEnded, SourceError, open_source
from openpose_plus.edge.pipeline import Pipeline


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    spec = BatchSpec(4, True)
    single = tiny_pose_onnx(heat_bias=-1.0)
    batched, _ = batched_model(single, spec, "image", [np.zeros((64, 96, 3), np.uint8)])
    d = str(tmp_path_factory.mktemp("streams"))
    write_bundle(os.path.join(d, "one"), single, input_size=(96, 64), stride=8, mean=(127.5,) * 3, std=(127.5,) * 3)
    return write_bundle(os.path.join(d, "b"), batched, input_size=(96, 64), stride=8, mean=(127.5,) * 3,
                        std=(127.5,) * 3, batch=spec)


@pytest.fixture(scope="module")
def estimator(bundle):
    est = PoseEstimator(bundle, backend="onnxruntime", threads=1, batch=4)
    yield est
    est.close()


class Frames(Source):
    """Frames from memory (copied into the ring like a camera); ``fail_at``: a SourceError
    there; ``rate``: paced like a camera; ``live``: a camera's policy (drop when busy)."""

    def __init__(self, images, count, live=False, rate=None, fail_at=None):
        super().__init__("frames://")
        self.images, self.count, self.live, self.rate, self.fail_at = images, count, live, rate, fail_at
        self._next = time.monotonic()

    def read(self):
        if self.fail_at is not None and self.index >= self.fail_at:
            raise SourceError("frames://: the camera died")
        if self.index >= self.count:
            raise SourceEnded("frames ended")
        if self.rate:
            self._next += 1.0 / self.rate
            time.sleep(max(0.0, self._next - time.monotonic()))
        img = self.images[self.index % len(self.images)]
        buf = self.ring.get(*img.shape[:2])
        np.copyto(buf, img)
        return self._frame(buf)


def images(seed, n=5):
    src = open_source("synthetic://160x120?people=2&seed=%d" % seed)
    return [src.read().image.copy() for _ in range(n)]


class Collect(Sink):
    name = "collect"

    def __init__(self):
        self.got = []

    def handle(self, result):
        self.got.append((result.stream, result.index, result.poses.keypoints.copy()))


def by_stream(got):
    out = {}
    for stream, index, kp in got:
        out.setdefault(stream, []).append((index, kp))
    return out


def test_each_streams_frames_come_back_in_order_as_if_alone(estimator, bundle):
    pics = {name: images(seed) for name, seed in (("a", 1), ("b", 2), ("c", 3))}
    sink = Collect()
    p = Pipeline(estimator, [(n, Frames(pics[n], 20)) for n in pics], [sink], batch_wait_ms=50)
    p.run()
    assert p.error is None and p.frames == 60 and p.summary()["streams"]["b"]["frames"] == 20
    assert p.batches < 60 and p.summary()["mean_batch"] > 1.0  # frames of several streams shared calls
    one = PoseEstimator(os.path.join(os.path.dirname(bundle), "one"), backend="onnxruntime", threads=1)
    for name, frames in by_stream(sink.got).items():
        assert [i for i, _ in frames] == list(range(20))
        for i, kp in frames[:5]:  # the same people as the frame alone through a batch-1 model
            np.testing.assert_allclose(kp, one.infer(pics[name][i % 5]).keypoints, atol=1e-3)
    one.close()


def test_a_stream_whose_source_fails_keeps_the_others_flowing(estimator):
    sink = Collect()
    sources = [("ok1", Frames(images(1), 30)), ("dies", Frames(images(2), 30, fail_at=4)),
               ("ok2", Frames(images(3), 30))]
    p = Pipeline(estimator, sources, [sink])
    p.run()
    got = by_stream(sink.got)
    assert p.error is None
    assert len(got["ok1"]) == len(got["ok2"]) == 30 and len(got["dies"]) == 4
    dead = p.stream("dies")
    assert dead.ended and dead.down and "camera died" in str(dead.error) and dead.state.startswith("failed")
    assert p.stream("ok1").state == "ended" and not p.stream("ok1").down


def test_a_lost_camera_is_down_while_the_others_flow_and_ready_does_not_wait_for_it(estimator, tmp_path):
    status = []
    lost = ReconnectingSource(str(tmp_path / "no-camera.mp4"), min_delay=0.05, max_delay=0.1,
                              on_status=status.append)
    frames = {"a": 0, "b": 0}
    p = Pipeline(estimator, [("a", Frames(images(1), 10 ** 6, live=True, rate=50)),
                                    ("lost", lost), ("b", Frames(images(2), 10 ** 6, live=True, rate=50))],
                        [], on_frame=lambda r: frames.__setitem__(r.stream, frames[r.stream] + 1))
    t = threading.Thread(target=p.run)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not (p.ready and min(frames.values()) >= 10):
            assert time.monotonic() < deadline, (p.summary(), status)
            time.sleep(0.02)
        assert p.stream("lost").down and p.stream("lost").state == "down" and p.stream("lost").frames == 0
        assert any("retry" in s for s in status)
        # batches do not wait for the lost stream: the two live ones still get their rate
        before, t0 = dict(frames), time.monotonic()
        while min(frames[k] - before[k] for k in frames) < 10:
            assert time.monotonic() - t0 < 20
            time.sleep(0.02)
    finally:
        p.stop()
        t.join(30)
    assert not t.is_alive() and p.error is None


def test_a_live_streams_drops_are_its_own(tmp_path):
    # a network slow enough that a flat-out live stream must drop, beside one at 8 frames/s
    spec = BatchSpec(2, True)
    single = tiny_pose_onnx(width=256, height=192, depth=8, channels=32)
    path = write_bundle(str(tmp_path / "heavy"), batched_model(single, spec, "image", [np.zeros((192, 256, 3),
                        np.uint8)])[0], input_size=(256, 192), stride=8, mean=(127.5,) * 3, std=(127.5,) * 3,
                        batch=spec)
    heavy = PoseEstimator(path, backend="onnxruntime", threads=1, batch=2)
    fast = Frames(images(1), 150, live=True)
    slow = Frames(images(2), 12, live=True, rate=8)
    p = Pipeline(heavy, [("fast", fast), ("slow", slow)], [], infer_workers=1, queue_size=4)
    p.run()
    heavy.close()
    f, s = p.stream("fast"), p.stream("slow")
    assert f.capture_drops > 0 and f.frames + f.capture_drops == 150
    assert s.capture_drops == 0 and s.frames == 12  # the slow camera lost nothing to the fast one
    assert p.capture_drops == f.capture_drops


def test_per_stream_hooks_see_their_stream_in_order_before_the_sinks(estimator):
    seen = {}

    def hook(name):
        def on(result):
            assert result.stream == name
            seen.setdefault(name, []).append(result.index)
            result.poses = result.poses  # a tracker would give the people their IDs here
        return on

    p = Pipeline(estimator, [("x", Frames(images(1), 15)), ("y", Frames(images(2), 9))], [], hook=hook)
    p.run()
    assert seen == {"x": list(range(15)), "y": list(range(9))}


def test_per_stream_folders_shared_json_lines_and_labelled_metrics(estimator, tmp_path):
    cfg = sinks_config(write_json=str(tmp_path / "json"), jsonl=str(tmp_path / "poses.jsonl"))
    shared, own = build_stream_sinks(cfg, ["door", "yard"])
    holder = {}
    metrics = PipelineMetrics(lambda: holder.get("p"))
    p = Pipeline(estimator, [("door", Frames(images(1), 7)), ("yard", Frames(images(2), 5))], shared, own)
    holder["p"] = p
    p.run()
    assert sorted(os.listdir(tmp_path / "json")) == ["door", "yard"]
    assert len(os.listdir(tmp_path / "json" / "door")) == 7 and len(os.listdir(tmp_path / "json" / "yard")) == 5
    lines = [json.loads(l) for l in open(tmp_path / "poses.jsonl")]
    assert sorted({l["stream"] for l in lines}) == ["door", "yard"]
    assert [l["frame"] for l in lines if l["stream"] == "yard"] == list(range(5))
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    frames = {s.labels["stream"]: s.value for s in fams["openpose_plus_frames"].samples}
    assert frames == {"door": 7, "yard": 5}
    drops = {(s.labels["where"], s.labels["stream"]) for s in fams["openpose_plus_frames_dropped"].samples}
    assert {("capture", "door"), ("openpose_json", "yard"), ("jsonl", "door")} <= drops
    lat = {s.labels["stream"]: s.value for s in fams["openpose_plus_latency_seconds"].samples
           if s.name.endswith("_count")}
    assert lat == {"door": 7, "yard": 5}
    batch = {s.name: s.value for s in fams["openpose_plus_batch_frames"].samples}
    assert batch["openpose_plus_batch_frames_sum"] == 12
    metrics.carry_over(p)  # a reload: the counts stay
    holder["p"] = None
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    assert {s.labels["stream"]: s.value for s in fams["openpose_plus_frames"].samples} == {"door": 7, "yard": 5}


def test_bad_arguments_are_refused(estimator):
    with pytest.raises(ValueError, match="names must differ"):
        Pipeline(estimator, [("a", Frames(images(1), 1)), ("a", Frames(images(1), 1))])
    with pytest.raises(ValueError, match="batch must be 1..4"):
        Pipeline(estimator, [("a", Frames(images(1), 1))], batch=5)
    with pytest.raises(ValueError, match="unknown stream"):
        Pipeline(estimator, [("a", Frames(images(1), 1))], stream_sinks={"b": []})
    with pytest.raises(ValueError, match="at least one source"):
        Pipeline(estimator, [])


def test_run_takes_several_named_sources(bundle, tmp_path, capsys):
    from openpose_plus.commands import main
    from openpose_plus.commands.run import parse_sources

    assert parse_sources(["synthetic://?people=2", "door=rtsp://cam/live?x=1"]) == [
        ("stream0", "synthetic://?people=2"), ("door", "rtsp://cam/live?x=1")]
    with pytest.raises(ValueError, match="given twice"):
        parse_sources(["a=x", "a=y"])
    out = tmp_path / "json"
    assert main(["run", "left=synthetic://96x64?frames=4&seed=1", "right=synthetic://96x64?frames=6&seed=2",
                 "--bundle", bundle, "--write-json", str(out), "--jsonl", str(tmp_path / "p.jsonl"), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["batch"] == 2 and summary["streams"]["right"]["frames"] == 6
    assert len(os.listdir(out / "left")) == 4 and len(os.listdir(out / "right")) == 6
    # a source that cannot be opened is refused at the start, naming it
    assert main(["run", "synthetic://96x64?frames=3", str(tmp_path / "missing.mp4"), "--bundle", bundle,
                 "--quiet"]) == 1
    assert "missing.mp4" in capsys.readouterr().err


def test_each_stream_is_tracked_by_its_own_tracker(estimator):
    ids = {}
    p = Pipeline(estimator, [("a", Frames(images(1), 12)), ("b", Frames(images(2), 12))], [], track=True,
                        on_frame=lambda r: ids.setdefault(r.stream, []).append(r.poses.ids))
    p.run()
    a, b = p.stream("a").tracker, p.stream("b").tracker
    assert a is not None and b is not None and a is not b and a.stats().frames == b.stats().frames == 12
    assert all(i is not None for v in ids.values() for i in v) and p.summary()["ms"]["track"] > 0
    metrics = PipelineMetrics(lambda: p)
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    births = {s.labels["stream"]: s.value for s in fams["openpose_plus_track_births"].samples}
    assert births == {"a": a.stats().births, "b": b.stats().births}


def test_one_source_is_the_stream_default_in_run_as_in_serve(bundle, tmp_path, capsys):
    """One lone source writes the records serve's single [source] writes: stream ``default``,
    its frames numbered from 0, OpenPose JSON in the folder itself; a named one keeps its name."""
    from openpose_plus.commands import main
    from openpose_plus.commands.run import parse_sources

    assert parse_sources(["synthetic://?people=2"]) == [("default", "synthetic://?people=2")]
    assert parse_sources(["door=synthetic://"]) == [("door", "synthetic://")]
    out, lines = tmp_path / "json", tmp_path / "p.jsonl"
    assert main(["run", "synthetic://96x64?frames=4&seed=1", "--bundle", bundle, "--write-json", str(out),
                 "--jsonl", str(lines), "--quiet"]) == 0
    records = [json.loads(l) for l in lines.read_text().splitlines()]
    assert [(r["stream"], r["frame"]) for r in records] == [("default", i) for i in range(4)]
    assert len([n for n in os.listdir(out) if n.endswith(".json")]) == 4
    assert list(json.loads(capsys.readouterr().err.strip().splitlines()[-1])["streams"]) == ["default"]


def test_sequential_takes_each_stream_in_turn(estimator):
    got = []
    p = Pipeline(estimator, [("x", Frames(images(1), 5)), ("y", Frames(images(2), 3))], [], mode="sequential",
                 on_frame=lambda r: got.append((r.stream, r.index)))
    p.run()
    assert p.error is None and p.infer_workers == 1 and p.summary()["mean_batch"] == 8 / 5
    assert [i for s, i in got if s == "x"] == list(range(5)) and [i for s, i in got if s == "y"] == list(range(3))
    assert got[:2] == [("x", 0), ("y", 0)]  # a frame of each, in turn


def test_a_restart_into_a_shared_json_lines_file_numbers_each_stream_on(estimator, tmp_path):
    out = tmp_path / "p.jsonl"
    with open(out, "w") as f:  # a record from before streams had names counts for every stream
        f.write(json.dumps({"frame": 1, "people": []}) + "\n")
    for _ in range(2):
        Pipeline(estimator, [("a", Frames(images(1), 4)), ("b", Frames(images(2), 3))], [JsonLinesSink(str(out))]).run()
    records = [json.loads(l) for l in out.read_text().splitlines()[1:]]
    for name, count in (("a", 4), ("b", 3)):
        frames = [r["frame"] for r in records if r["stream"] == name]
        assert frames == list(range(2, 2 + 2 * count)), (name, frames)
