"""The daemon with several ``[[sources]]``: one batched stage, each stream's state in STATUS,
/healthz and /metrics, its own JSON folder and preview, READY without the absent camera, MQTT."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon_harness import eventually, free_port, get, serving, stop
from edge_fixtures import tiny_pose_onnx
from openpose_plus.edge.batch import BatchSpec, batched_model
from openpose_plus.edge.bundle import write_bundle
from openpose_plus.edge.service.config import ConfigError, load_config, parse_config


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    spec = BatchSpec(4, True)
    batched, _ = batched_model(tiny_pose_onnx(), spec, "image", [np.zeros((64, 96, 3), np.uint8)])
    return write_bundle(str(tmp_path_factory.mktemp("bundle") / "b"), batched, input_size=(96, 64), stride=8,
                        mean=(127.5,) * 3, std=(127.5,) * 3, batch=spec)


def config(path, bundle, streams, extra=""):
    lines = ['[model]\nbundle = "%s"\nbackend = "onnxruntime"\nthreads = 1\n' % bundle,
             "[daemon]\nstatus_interval = 0.3\nstall_seconds = 5.0\nstop_timeout = 5.0\n"]
    for name, uri in streams:
        lines.append('[[sources]]\nname = "%s"\nuri = "%s"\nreconnect_min = 0.05\nreconnect_max = 0.3\n' % (name, uri))
    path.write_text("\n".join(lines) + extra)
    return str(path)


def metrics(base):
    return {f.name: f for f in text_string_to_metric_families(get(base + "/metrics")[1].decode())}


def test_several_streams_ready_without_the_absent_camera_then_with_it(bundle, tmp_path):
    port = free_port()
    video = tmp_path / "gate.avi"
    cfg = config(tmp_path / "edge.toml", bundle,
                 [("door", "synthetic://160x120?people=2&rate=30&seed=1"),
                  ("yard", "synthetic://160x120?people=1&rate=30&seed=2"), ("gate", str(video))],
                 '[sinks.openpose_json]\ndirectory = "%s"\n[sinks.jsonl]\ntarget = "%s"\n'
                 "[sinks.http]\nenabled = true\nport = %d\n" % (tmp_path / "json", tmp_path / "p.jsonl", port))
    base = "http://127.0.0.1:%d" % port
    with serving(cfg, tmp_path / "notify") as (proc, notify):
        # READY while the gate camera is absent: it has been declared down, the others deliver
        _, ready = notify.wait_for("READY", "1")
        assert "streams 2/3 up" in ready["STATUS"] and "gate:" in ready["STATUS"]
        notify.wait_for("STATUS", "gate: ")  # its retries are named
        with pytest.raises(urllib.error.HTTPError) as err:
            get(base + "/healthz")
        body = err.value.read().decode()
        assert err.value.code == 503 and body.startswith("degraded: 2/3 streams up")
        assert "gate: no frame yet" in body and "door: ok" in body

        def served(path):  # the HTTP sink has handled that stream's first frame (its own thread)
            try:
                return get(base + path)[1]
            except urllib.error.HTTPError:
                return None

        assert json.loads(eventually(lambda: served("/poses?stream=door")))["stream"] == "door"
        assert eventually(lambda: served("/snapshot.jpg?stream=yard"))[:2] == b"\xff\xd8"
        assert json.loads(eventually(lambda: served("/streams") if b"yard" in served("/streams") and
                                     b"door" in served("/streams") else None))["streams"] == ["door", "yard"]
        assert b'fetch("/streams")' in get(base + "/")[1]  # the live page shows one stream, links the others
        with urllib.request.urlopen(base + "/events?stream=yard", timeout=10) as events:
            kind, line = b"", b""
            while not (line.startswith(b"data: ") and not kind):  # a frame (not the skeleton event)
                kind = line[7:].strip() if line.startswith(b"event: ") else (b"" if line == b"\n" else kind)
                line = events.readline()
        assert json.loads(line[6:])["stream"] == "yard"
        fams = metrics(base)
        up = {s.labels["stream"]: s.value for s in fams["openpose_plus_stream_up"].samples}
        assert up == {"door": 1.0, "yard": 1.0, "gate": 0.0}
        # the camera appears (a clip that ends and is reopened): all three up
        writer = cv2.VideoWriter(str(tmp_path / "tmp.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
        for i in range(8):
            writer.write(np.full((64, 96, 3), 20 * i, np.uint8))
        writer.release()
        os.rename(tmp_path / "tmp.avi", video)

        def all_up():
            try:
                status, body = get(base + "/healthz")
            except urllib.error.HTTPError:
                return None
            return body.decode() if status == 200 else None

        assert eventually(all_up, what="/healthz 200 with the gate up").startswith("ok: 3/3 streams up")
        fams = metrics(base)
        frames = {s.labels["stream"]: s.value for s in fams["openpose_plus_frames"].samples}
        assert set(frames) == {"door", "yard", "gate"} and min(frames.values()) > 0
        assert set(s.labels["stream"] for s in fams["openpose_plus_source_reconnects"].samples) == set(frames)
        code, _, err = stop(proc)
    assert code == 0, err[-3000:]
    summary = json.loads(err.split("summary: ")[1].splitlines()[0])
    assert set(summary["streams"]) == {"door", "yard", "gate"}
    assert sorted(os.listdir(tmp_path / "json")) == ["door", "gate", "yard"]
    for name in ("door", "yard", "gate"):
        assert len(os.listdir(tmp_path / "json" / name)) == summary["streams"][name]["frames"] - \
            summary["streams"][name]["sink_drops"]["openpose_json"]
    lines = [json.loads(l) for l in open(tmp_path / "p.jsonl")]
    for name in ("door", "yard"):
        frames = [l["frame"] for l in lines if l["stream"] == name]
        assert frames == sorted(frames) and len(frames) >= 3
    assert "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("[source]\nuri = 'x'\n[[sources]]\nname = 'a'\nuri = 'y'\n", "source: give one [source] or several [[sources]]"),
    ("[[sources]]\nname = 'a'\nuri = 'y'\n[[sources]]\nname = 'a'\nuri = 'z'\n", "sources[1].name: 'a' is already"),
    ("[[sources]]\nname = 'a b'\nuri = 'y'\n", "sources[0].name: must be 1-64 letters"),
    ("[[sources]]\nuri = 'y'\n", "sources[0].name: required"),
    ("[[sources]]\nname = 'a'\n", "sources[0].uri: required"),
    ("[[sources]]\nname = 'a'\nuri = 'y'\nport = 1\n", "sources[0].port: unknown key"),
    ("[[sources]]\nname = 'a'\nuri = 'y'\nreconnect_min = 9.0\nreconnect_max = 1.0\n", "sources[0].reconnect_min"),
    ("[source]\nuri = 'x'\n[sinks.mqtt]\nqos = 3\n", "sinks.mqtt.qos: must be 0, 1 or 2"),
    ("[source]\nuri = 'x'\n[pipeline]\nbatch_wait_ms = -1\n", "pipeline.batch_wait_ms: must be 0..1000"),
])
def test_bad_stream_configs_are_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "edge.toml"
    path.write_text("[model]\nbundle = 'b'\n" + text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(str(path))


def test_streams_from_sources_or_the_one_source_and_overrides_by_index(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text("[model]\nbundle = 'b'\n[[sources]]\nname = 'a'\nuri = 'x'\n[[sources]]\nname = 'b'\nuri = 'y'\n")
    cfg = load_config(str(path), ["sources.1.uri=rtsp://cam/2", "sources.0.reconnect_max=5.0"])
    assert [(s.name, s.uri, s.reconnect_max) for s in cfg.streams()] == [("a", "x", 5.0), ("b", "rtsp://cam/2", 30.0)]
    assert cfg.multi_stream
    with pytest.raises(ConfigError, match="no table 2 in sources"):
        load_config(str(path), ["sources.2.uri=z"])
    one = parse_config({"model": {"bundle": "b"}, "source": {"uri": "csi://0"}})
    assert [(s.name, s.uri) for s in one.streams()] == [("default", "csi://0")] and not one.multi_stream


def test_serve_check_accepts_a_config_with_sources(tmp_path, bundle):
    path = config(tmp_path / "edge.toml", bundle, [("a", "synthetic://"), ("b", "synthetic://")])
    proc = subprocess.run([sys.executable, "-m", "openpose_plus.commands", "serve", "--check", "--config", path],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
