"""The daemon under a real NOTIFY_SOCKET, as systemd would run it."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon_harness import eventually, free_port, get, serving, stop, write_config
from edge_fixtures import make_bundle
from openpose_plus.edge.service.config import ConfigError, load_config, parse_config


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle"))


def test_ready_watchdog_status_http_then_clean_stop(bundle, tmp_path):
    port = free_port()
    cfg = write_config(tmp_path / "edge.toml", bundle, "synthetic://160x120?people=2&rate=40",
                       sinks={"openpose_json": {"directory": str(tmp_path / "json")},
                              "jsonl": {"target": str(tmp_path / "poses.jsonl")},
                              "http": {"enabled": True, "port": port}})
    with serving(cfg, tmp_path / "notify") as (proc, notify):
        t_ready, ready = notify.wait_for("READY", "1")
        # READY comes after the first frame has been through the pipeline
        assert int(ready["STATUS"].split(" frames")[0].rsplit(" ", 1)[1]) >= 1

        def four_pings():
            pings = [t for t in notify.times("WATCHDOG") if t > t_ready]
            return pings[:4] if len(pings) >= 4 else None

        pings = eventually(four_pings, what="4 watchdog pings after READY")
        # every WATCHDOG_USEC / 2 = 0.2 s while frames flow: well within the 0.4 s systemd allows
        assert np.median(np.diff(pings)) < 0.4, np.diff(pings)
        eventually(lambda: any("fps" in m.get("STATUS", "") for _, m in notify.messages), what="STATUS with fps")
        base = "http://127.0.0.1:%d" % port
        assert get(base + "/healthz")[0] == 200
        poses = json.loads(get(base + "/poses")[1])
        assert poses["frame"] >= 1 and "people" in poses

        def metrics_after_20_frames():
            fams = {f.name: f for f in text_string_to_metric_families(get(base + "/metrics")[1].decode())}
            return fams if fams["openpose_plus_frames"].samples[0].value >= 20 else None

        fams = eventually(metrics_after_20_frames, what="20 frames counted in /metrics")
        assert {s.labels["stage"] for s in fams["openpose_plus_stage_seconds"].samples} >= {"infer", "group"}
        t_term = time.monotonic()
        code, out, err = stop(proc)
    assert code == 0, err[-3000:]
    notify.wait_for("STOPPING", "1", timeout=1, after=t_term)
    # Sinks flushed: every frame out of the pipeline is in both outputs, every file whole.
    # (a live source: a sink that falls behind drops frames, and says how many)
    summary = json.loads(err.split("summary: ")[1].splitlines()[0])
    lines = (tmp_path / "poses.jsonl").read_text().splitlines()
    frames = [json.loads(l)["frame"] for l in lines]
    files = sorted(os.listdir(tmp_path / "json"))
    assert summary["frames"] >= 20
    assert len(frames) == summary["frames"] - summary["sink_drops"]["jsonl"]
    assert len(files) == summary["frames"] - summary["sink_drops"]["openpose_json"]
    for name in files:
        assert json.load(open(tmp_path / "json" / name))["version"] == 1.3
    assert "Traceback" not in err


def test_lost_source_is_retried_with_backoff_then_frames_again(bundle, tmp_path):
    video = tmp_path / "cam.avi"
    out = tmp_path / "poses.jsonl"
    cfg = write_config(tmp_path / "edge.toml", bundle, str(video), sinks={"jsonl": {"target": str(out)}})
    with serving(cfg, tmp_path / "notify") as (proc, notify):
        # no camera yet: STATUS says it is being retried
        _, m = notify.wait_for("STATUS", "retry", timeout=30)
        assert "no such file" in m["STATUS"]
        writer = cv2.VideoWriter(str(tmp_path / "tmp.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
        for i in range(8):
            writer.write(np.full((64, 96, 3), 20 * i, np.uint8))
        writer.release()
        os.rename(tmp_path / "tmp.avi", video)  # the file appears; it ends after 8 frames -> read again
        notify.wait_for("READY", "1", timeout=30)
        notify.wait_for("STATUS", "connected after", timeout=30)
        eventually(lambda: out.exists() and len(out.read_text().splitlines()) >= 20, what="20 frames written")
        code, _, err = stop(proc)
    assert code == 0, err[-3000:]
    frames = [json.loads(l)["frame"] for l in out.read_text().splitlines()]
    assert len(frames) >= 20 and frames == sorted(frames) and max(frames) >= 19  # numbering goes on


def test_sighup_reloads_and_a_bad_reload_keeps_running(bundle, tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    path = tmp_path / "edge.toml"
    cfg = write_config(path, bundle, "synthetic://96x64?people=1&rate=40", sinks={"jsonl": {"target": str(first)}})
    with serving(cfg, tmp_path / "notify") as (proc, notify):
        t0, _ = notify.wait_for("READY", "1")
        write_config(path, bundle, "synthetic://96x64?people=1&rate=40", sinks={"jsonl": {"target": str(second)}})
        t_hup = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        t_rel, m = notify.wait_for("RELOADING", "1", after=t_hup)
        assert int(m["MONOTONIC_USEC"]) > 0
        notify.wait_for("READY", "1", after=t_rel)
        eventually(lambda: second.exists() and second.read_text().count("\n") >= 5, what="5 frames after the reload")
        n_first = first.read_text().count("\n")

        def refused(status, why):  # SIGHUP: READY says the reload was refused and why; frames go on
            t_bad = time.monotonic()
            proc.send_signal(signal.SIGHUP)
            _, m = notify.wait_for("READY", "1", after=t_bad + 1e-6, status=status)
            assert why in m["STATUS"]
            size = second.read_text().count("\n")
            eventually(lambda: second.read_text().count("\n") > size, what="frames after the refused reload")
            assert proc.poll() is None

        # now a broken file: refused, the running pipeline goes on
        path.write_text(path.read_text() + "\n[sinks.http]\nprot = 80\n")
        refused("reload refused", "sinks.http.prot")
        # and a bundle that fails its check: refused too, before the running model is dropped
        write_config(path, str(tmp_path / "no-bundle"), "synthetic://96x64?people=1&rate=40",
                     sinks={"jsonl": {"target": str(second)}})
        refused("reload refused: ", "does not exist")
        code, _, err = stop(proc)
    assert code == 0, err[-3000:]
    assert first.read_text().count("\n") == n_first  # the first sink was flushed and closed at reload


def test_a_hung_pipeline_stops_feeding_the_watchdog(bundle, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / ("%02d.png" % i)), np.full((64, 96, 3), 40 * i, np.uint8))
    os.mkfifo(folder / "05.png")  # reading it blocks forever: a camera driver that hangs
    cfg = write_config(tmp_path / "edge.toml", bundle, str(folder), source={"reopen_on_end": False},
                       sinks={"http": {"enabled": True, "port": free_port()}},
                       daemon={"stall_seconds": 0.8, "stop_timeout": 1.0})
    port = int(open(cfg).read().split("port = ")[1].split()[0])
    with serving(cfg, tmp_path / "notify") as (proc, notify):
        notify.wait_for("READY", "1")
        # no ping for twice WATCHDOG_USEC: systemd would restart it
        eventually(lambda: notify.times("WATCHDOG") and time.monotonic() - notify.times("WATCHDOG")[-1] > 0.8,
                   what="the watchdog no longer fed while the pipeline hangs (stall_seconds = 0.8)")
        with pytest.raises(urllib.error.HTTPError) as err:
            get("http://127.0.0.1:%d/healthz" % port)
        assert err.value.code == 503 and b"no frame for" in err.value.read()
        code, _, err = stop(proc)
    # the stop was asked for: a clean stop (0), though the hung stage was left behind
    assert code == 0 and "did not stop within" in err


@pytest.mark.parametrize("text, message", [
    ("[model]\nbundle = 'b'\n[source]\nuri = 'synthetic://'\n[sinks.http]\nprot = 80\n", "sinks.http.prot: unknown key"),
    ("[model]\nbundle = 'b'\n[source]\nuri = 'synthetic://'\n[pipeline]\nqueue_size = 'two'\n", "pipeline.queue_size: must be an integer"),
    ("[model]\nbundle = 'b'\n[source]\nuri = 'synthetic://'\n[camera]\nx = 1\n", "camera: unknown section"),
    ("[model]\nbundle = 'b'\n", "source.uri: required"),
    ("[model]\nbundle = 'b'\nbackend = 'cuda'\n[source]\nuri = 'x'\n", "model.backend: must be one of auto | tensorrt | onnxruntime, got 'cuda'"),
    ("[model]\nbundle = 'b'\n[source]\nuri = 'x'\n[grouping]\npeak_treshold = 0.1\n", "grouping.peak_treshold: unknown key"),
    ("[model]\nbundle = 'b'\n[source]\nuri = 'x'\n[grouping]\nmax_peaks = 0\n", "grouping: GroupParams.max_peaks"),
    ("[model\nbundle = 'b'\n", "not valid TOML"),
])
def test_bad_config_is_refused_at_start_naming_the_key(tmp_path, text, message):
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))


def test_serve_refuses_a_bad_config_with_exit_status_2(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text("[model]\nbundle = 'b'\n[source]\nuri = 'synthetic://'\n[sinks.http]\nprot = 80\n")
    proc = subprocess.run([sys.executable, "-m", "openpose_plus.commands", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "bad config" in proc.stderr and "sinks.http.prot: unknown key" in proc.stderr


def test_config_defaults_and_check(bundle, tmp_path):
    cfg = parse_config({"model": {"bundle": "/b"}, "source": {"uri": "csi://0"}})
    assert cfg.sinks.http.address == "127.0.0.1" and cfg.pipeline.mode == "pipelined"
    example = os.path.join(os.path.dirname(__file__), "..", "systemd", "edge.toml")
    assert load_config(example).source.uri == "csi://0"  # the shipped example is a valid config
    good = write_config(tmp_path / "ok.toml", bundle, "synthetic://")
    proc = subprocess.run([sys.executable, "-m", "openpose_plus.commands", "serve", "--check", "--config", good],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "ok" in proc.stdout
    bad = write_config(tmp_path / "bad.toml", str(tmp_path / "missing"), "synthetic://")
    proc = subprocess.run([sys.executable, "-m", "openpose_plus.commands", "serve", "--check", "--config", bad],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "model.bundle" in proc.stderr and "does not exist" in proc.stderr


def test_a_bundle_that_fails_its_check_stops_the_start(bundle, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    with open(broken / "model.onnx", "r+b") as f:
        f.truncate(64)
    with serving(write_config(tmp_path / "edge.toml", str(broken), "synthetic://"), tmp_path / "notify") as (proc, _):
        code, err = proc.wait(60), proc.stderr.read()
    assert code == 1 and "model.onnx is 64 bytes" in err


def test_notifier_speaks_to_abstract_sockets_and_reads_the_watchdog(monkeypatch):
    from openpose_plus.edge.service.notify import Notifier

    name = "openpose-plus-test-%d" % os.getpid()
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind("\0" + name)
    rx.settimeout(5)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        monkeypatch.setenv("WATCHDOG_USEC", "3000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        n = Notifier()
        assert n.enabled and n.watchdog_interval() == 1.5
        assert n.ready("first frame") and n.watchdog() and n.stopping()
        assert rx.recv(4096) == b"READY=1\nSTATUS=first frame"
        assert rx.recv(4096) == b"WATCHDOG=1"
        assert rx.recv(4096) == b"STOPPING=1"
        assert n.reloading() and rx.recv(4096).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        n.close()
    finally:
        rx.close()
    monkeypatch.setenv("WATCHDOG_PID", "1")  # the watchdog is someone else's
    assert Notifier().watchdog_interval() is None
    monkeypatch.delenv("NOTIFY_SOCKET")
    outside = Notifier()
    assert not outside.enabled and outside.ready() is False  # outside systemd: a no-op


def test_relative_bundle_paths_are_relative_to_the_config(tmp_path):
    sub = tmp_path / "etc"
    sub.mkdir()
    (sub / "edge.toml").write_text("[model]\nbundle = 'models/b'\n[source]\nuri = 'synthetic://'\n")
    assert load_config(str(sub / "edge.toml")).model.bundle == str(sub / "models" / "b")


def test_sources_fail_clearly_when_a_csi_camera_cannot_be_reached():
    from openpose_plus.edge.sources import SourceError, open_source, availability

    if {s.name: s for s in availability()}["csi://"].ok:
        pytest.skip("this machine can open CSI cameras")
    with pytest.raises(SourceError, match="csi:// needs jetson_utils or an OpenCV built with GStreamer"):
        open_source("csi://0", prefer="opencv")


def test_the_daemon_groups_with_the_bundles_parameters_and_the_configs_changes(bundle, tmp_path):
    import dataclasses

    from openpose_plus.calibration.report import rewrite_bundle
    from openpose_plus.edge.bundle import load_bundle
    from openpose_plus.edge.grouping import GroupParams
    from openpose_plus.edge.service.daemon import Daemon

    tuned = rewrite_bundle(load_bundle(shutil.copytree(bundle, str(tmp_path / "tuned"))), {}, None,
                           grouping={"params": dataclasses.asdict(GroupParams(peak_threshold=0.05, min_parts=4))})
    daemon = Daemon(write_config(tmp_path / "edge.toml", tuned, "synthetic://", grouping={"min_parts": 5}))
    est = daemon._make_estimator(daemon.config)
    try:
        assert est.params == GroupParams(peak_threshold=0.05, min_parts=5)
    finally:
        est.close()
