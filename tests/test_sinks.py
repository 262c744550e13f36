"""Sinks: OpenPose JSON, JSON lines (file, UDP), video, HTTP; bounded queues that drop."""
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from openpose_plus.edge.draw import draw_poses, limb_colours
from openpose_plus.edge.openpose_json import (openpose_json_name, read_openpose_json, to_openpose_json,
                                              write_openpose_json)
from openpose_plus.edge.poses import Poses
from openpose_plus.edge.sinks import HttpSink, JsonLinesSink, OpenPoseJsonSink, Result, Sink, SinkWorker, VideoSink
from openpose_plus.edge.skeleton import COCO18, Skeleton


def _poses(n=2, seed=0):
    rng = np.random.default_rng(seed)
    kp = np.zeros((n, 18, 3), np.float32)
    kp[..., 0] = rng.uniform(10, 150, (n, 18))
    kp[..., 1] = rng.uniform(10, 110, (n, 18))
    kp[..., 2] = rng.uniform(0.3, 1.0, (n, 18))
    kp[:, 4] = 0.0  # a missing wrist
    return Poses(kp, np.linspace(0.9, 0.5, n).astype(np.float32), COCO18)


def _result(i=0, image=True, poses=None):
    img = np.full((120, 160, 3), 40, np.uint8) if image else None
    return Result(i, 100.0 + i, poses or _poses(), img, COCO18, {"infer": 1.5})


OPENPOSE_PERSON_KEYS = ["person_id", "pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
                        "hand_right_keypoints_2d", "pose_keypoints_3d", "face_keypoints_3d",
                        "hand_left_keypoints_3d", "hand_right_keypoints_3d"]


def test_openpose_json_has_openposes_exact_shape():
    poses = _poses()
    d = to_openpose_json(poses)
    assert list(d) == ["version", "people"] and d["version"] == 1.3
    assert len(d["people"]) == 2
    person = d["people"][0]
    assert list(person) == OPENPOSE_PERSON_KEYS
    assert person["person_id"] == [-1]
    flat = person["pose_keypoints_2d"]
    assert len(flat) == 18 * 3 and all(isinstance(v, float) for v in flat)
    assert flat[12:15] == [0.0, 0.0, 0.0]  # missing part
    np.testing.assert_allclose(np.reshape(flat, (18, 3))[0], poses.keypoints[0, 0], atol=1e-5)
    assert all(person[k] == [] for k in OPENPOSE_PERSON_KEYS[2:])
    assert to_openpose_json(Poses(np.zeros((0, 18, 3)), np.zeros(0), COCO18)) == {"version": 1.3, "people": []}


def test_openpose_json_files_round_trip(tmp_path):
    path = write_openpose_json(str(tmp_path), 7, _poses(), prefix="cam0_")
    assert os.path.basename(path) == "cam0_000000000007_keypoints.json" == openpose_json_name(7, "cam0_")
    back = read_openpose_json(path, 18)
    np.testing.assert_allclose(back[:, :, :2][back[..., 2] > 0], _poses().keypoints[..., :2][_poses().keypoints[..., 2] > 0], atol=1e-4)
    assert os.listdir(tmp_path) == [os.path.basename(path)]


def test_openpose_json_sink_writes_a_file_per_frame(tmp_path):
    w = SinkWorker(OpenPoseJsonSink(str(tmp_path / "json")), maxsize=64).start()
    for i in range(10):
        assert w.submit(_result(i))
    assert w.close()
    names = sorted(os.listdir(tmp_path / "json"))
    assert names == [openpose_json_name(i) for i in range(10)]
    assert json.load(open(tmp_path / "json" / names[3]))["version"] == 1.3
    first = open(tmp_path / "json" / names[0]).read()
    w = SinkWorker(OpenPoseJsonSink(str(tmp_path / "json")), maxsize=64).start()  # a restart
    w.submit(_result(0, poses=_poses(1)))
    w.close()
    assert sorted(os.listdir(tmp_path / "json"))[-1] == openpose_json_name(10)
    assert open(tmp_path / "json" / names[0]).read() == first  # nothing overwritten


def test_jsonl_to_a_file_and_over_udp(tmp_path):
    path = tmp_path / "out" / "poses.jsonl"
    w = SinkWorker(JsonLinesSink(str(path)), 16).start()
    for i in range(5):
        w.submit(_result(i, image=False))
    w.close()
    lines = [json.loads(l) for l in path.read_text().splitlines()]
    assert [l["frame"] for l in lines] == list(range(5))
    assert len(lines[0]["people"]) == 2 and len(lines[0]["people"][0]["keypoints"]) == 18
    assert lines[0]["ms"] == {"infer": 1.5}
    r = _result(0, image=False)
    r.timestamp = time.monotonic() - 2.0  # captured two seconds ago
    assert abs(r.record()["time"] - (time.time() - 2.0)) < 0.5  # reported as Unix time

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    w = SinkWorker(JsonLinesSink("udp://127.0.0.1:%d" % rx.getsockname()[1]), 16).start()
    w.submit(_result(3, image=False))
    w.close()
    got = json.loads(rx.recv(65536))
    rx.close()
    assert got["frame"] == 3 and got["people"][0]["score"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="udp://HOST:PORT"):
        JsonLinesSink("udp://nowhere").open()


def test_video_sink_writes_annotated_frames(tmp_path):
    path = str(tmp_path / "v" / "out.avi")
    w = SinkWorker(VideoSink(path, fps=10), 16).start()
    for i in range(6):
        w.submit(_result(i))
    w.close()
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    assert len(frames) == 6 and frames[0].shape == (120, 160, 3)
    assert (np.abs(frames[0].astype(int) - 40).sum(axis=2) > 100).sum() > 50  # skeletons drawn
    before = open(path, "rb").read()
    again = VideoSink(path, fps=10)  # a second run next to the first: nothing overwritten
    w = SinkWorker(again, 4).start()
    w.submit(_result(0))
    w.close()
    assert again.path.endswith("out-1.avi") and open(path, "rb").read() == before


def test_draw_uses_a_colour_per_limb():
    img = np.zeros((100, 100, 3), np.uint8)
    kp = np.zeros((1, 18, 3), np.float32)
    kp[0, 1] = (20, 50, 1.0)   # neck
    kp[0, 2] = (80, 50, 1.0)   # right shoulder: limb 0 (neck -> right shoulder)
    draw_poses(img, Poses(kp, np.ones(1, np.float32), COCO18), thickness=3)
    assert tuple(img[50, 50]) == limb_colours(COCO18)[0]
    assert img[10, 10].sum() == 0
    with pytest.raises(ValueError, match="parts"):
        draw_poses(img, Poses(np.zeros((1, 3, 3)), np.ones(1), Skeleton("t", ("a", "b", "c"), ((0, 1),))))


class Blocking(Sink):
    name = "blocking"

    def __init__(self):
        self.release = threading.Event()
        self.seen = []

    def handle(self, result):
        self.release.wait(10)
        self.seen.append(result.index)


class Failing(Sink):
    name = "failing"

    def handle(self, result):
        if result.index % 2:
            raise OSError("disk full")


def test_a_slow_sink_drops_its_own_frames_without_blocking():
    sink = Blocking()
    w = SinkWorker(sink, maxsize=2).start()
    t0 = time.monotonic()
    accepted = [w.submit(_result(i)) for i in range(20)]
    assert time.monotonic() - t0 < 1.0  # never waits for the sink
    assert accepted[:2] == [True, True] and w.dropped >= 15
    sink.release.set()
    w.close()
    assert w.handled == len(sink.seen) == 20 - w.dropped
    assert len(w._free) <= w.maxsize + 1  # image copies come from a pool, not per frame


def test_a_failing_sink_is_counted_and_keeps_going():
    w = SinkWorker(Failing(), maxsize=32).start()
    for i in range(10):
        w.submit(_result(i, image=False))
    w.close()
    assert w.errors == 5 and w.handled == 5 and "disk full" in w.last_error


def test_close_flushes_what_is_queued(tmp_path):
    sink = Blocking()
    w = SinkWorker(sink, maxsize=8).start()
    accepted = [i for i in range(8) if w.submit(_result(i, image=False))]
    threading.Timer(0.2, sink.release.set).start()  # the sink frees up while close() waits
    assert w.close(timeout=10)
    assert sink.seen == accepted and len(accepted) >= 7  # every frame it took, in order


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def test_http_endpoints_on_loopback():
    registry = CollectorRegistry()
    frames = Counter("openpose_plus_test_frames", "frames", registry=registry)
    health = {"ok": True}
    sink = HttpSink("127.0.0.1", 0, registry=registry, health=lambda: (health["ok"], "ok" if health["ok"] else "stalled"),
                    preview_fps=100)
    w = SinkWorker(sink, 4).start()
    try:
        base = "http://127.0.0.1:%d" % sink.port
        assert json.loads(_get(base + "/poses")[2]) == {"frame": None, "people": []}
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(base + "/snapshot.jpg")
        assert err.value.code == 503  # no frame yet
        w.submit(_result(5))
        frames.inc(3)
        deadline = time.monotonic() + 5
        while w.handled < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, ctype, body = _get(base + "/poses")
        assert status == 200 and ctype == "application/json"
        assert json.loads(body)["frame"] == 5 and len(json.loads(body)["people"]) == 2
        assert _get(base + "/healthz")[:1] == (200,)
        health["ok"] = False
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(base + "/healthz")
        assert err.value.code == 503 and b"stalled" in err.value.read()
        status, ctype, body = _get(base + "/metrics")
        fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert fams["openpose_plus_test_frames"].samples[0].value == 3
        status, ctype, jpeg = _get(base + "/snapshot.jpg")
        assert ctype == "image/jpeg" and cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1).shape == (120, 160, 3)
        # MJPEG: read the first part of the stream while frames arrive
        conn = urllib.request.urlopen(base + "/preview.mjpg", timeout=5)
        assert conn.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        feeder_stop = threading.Event()

        def feed():
            i = 6
            while not feeder_stop.is_set():
                w.submit(_result(i))
                i += 1
                time.sleep(0.02)

        t = threading.Thread(target=feed)
        t.start()
        try:
            head = conn.read(200)
            assert head.startswith(b"--openposeplusframe\r\nContent-Type: image/jpeg")
        finally:
            feeder_stop.set()
            t.join()
            conn.close()
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(base + "/nothing")
        assert err.value.code == 404
    finally:
        w.close()
    with pytest.raises(OSError):  # closed with the pipeline: the port is released
        _get(base + "/healthz", 1)


def test_http_port_in_use_is_a_clear_error():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        with pytest.raises(OSError, match="cannot listen on 127.0.0.1:%d" % busy.getsockname()[1]):
            HttpSink("127.0.0.1", busy.getsockname()[1]).open()
    finally:
        busy.close()
