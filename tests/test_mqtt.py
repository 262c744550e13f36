"""The MQTT sink against a real broker: Mosquitto, started here on 127.0.0.1 on a free port."""
from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from openpose_plus.edge.poses import Poses
from openpose_plus.edge.sinks.base import Result
from openpose_plus.edge.skeleton import COCO18

mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (make setup installs it)")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (apt-get install -y mosquitto)")

from openpose_plus.edge.sinks.mqtt import MqttSink  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


class Broker:
    def __init__(self, tmp, port, extra=""):
        self.port = port
        self.conf = tmp / "mosquitto.conf"
        # "user": as root, mosquitto would switch to its own user, who cannot write here.
        self.conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             "persistence_location %s/\nmax_queued_messages 100000\nuser %s\n%s"
                             % (port, tmp, getpass.getuser(), extra))
        self.log = tmp / "mosquitto.log"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        _wait(up, 10, "mosquitto to listen")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # graceful: the broker saves its sessions
            self.proc.wait(10)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path, _free_port()).start()
    yield b
    b.stop()


class Subscriber:
    """A persistent-session subscriber (QoS 1), so messages stored while it was away still arrive."""

    def __init__(self, port, topic, client_id="test-subscriber"):
        self.messages = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, u, f, rc, p=None: (c.subscribe(topic, qos=1), self.connected.set())
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        _wait(self.connected.is_set, 10, "the subscriber to connect")
        time.sleep(0.2)  # the SUBACK: paho has no event for it in this form

    def _on_message(self, client, userdata, msg):
        # A message the broker sends this subscriber again (its PUBACK was lost when the broker
        # stopped) carries DUP: that is QoS 1 between broker and subscriber, not the sink
        # publishing twice, which would arrive without it.
        if msg.dup:
            return
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(), msg.retain))

    def frames(self):
        with self.lock:
            return [json.loads(p)["frame"] for t, p, r in self.messages if t.endswith("/poses")]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _result(i, people=1):
    kp = np.zeros((people, 18, 3), np.float32)
    kp[:, :, 0] = i
    kp[:, :, 2] = 0.9
    poses = Poses(kp, np.full(people, 0.8, np.float32), COCO18)
    return Result(i, time.monotonic(), poses, None, COCO18)


def test_frames_arrive_in_order_once_with_online_then_offline_status(broker):
    sub = Subscriber(broker.port, "opp/#")
    sink = MqttSink("127.0.0.1", broker.port, topic_prefix="opp", stream="door", qos=1, client_id="dev1")
    sink.open()
    _wait(lambda: sink.connected, 10, "the sink to connect")
    for i in range(300):
        sink.handle(_result(i))
    _wait(lambda: len(sub.frames()) == 300, 10, "300 frames at the subscriber")
    assert sub.frames() == list(range(300))
    topic, payload, _ = next(m for m in sub.messages if m[0].endswith("/poses"))
    record = json.loads(payload)
    assert topic == "opp/door/poses" and record["stream"] == "door" and len(record["people"]) == 1
    assert sink.dropped == 0 and sink.published == 300
    sink.close()
    assert sink.acknowledged == 300
    # the broker has the offline status; the subscriber gets it a moment later (its own thread)
    _wait(lambda: [p for t, p, r in sub.messages if t == "opp/status"][-1:] == ["offline"], 10, "offline")
    statuses = [p for t, p, r in sub.messages if t == "opp/status"]
    assert statuses[0] == "online" and statuses[-1] == "offline"
    sub.close()
    late = Subscriber(broker.port, "opp/status", client_id="late")  # retained: what a newcomer sees
    _wait(lambda: late.messages, 5, "the retained status")
    assert late.messages[-1][1:] == ("offline", True)
    late.close()


def test_the_last_will_says_offline_when_the_device_dies(broker, tmp_path):
    sub = Subscriber(broker.port, "opp/status", client_id="watcher")
    code = ("import sys, time\n"
            "from openpose_plus.edge.sinks.mqtt import MqttSink\n"
            "s = MqttSink('127.0.0.1', %d, topic_prefix='opp', client_id='dying', keepalive=1)\n"
            "s.open()\n"
            "while not s.connected: time.sleep(0.01)\n"
            "print('up', flush=True)\n"
            "time.sleep(60)\n" % broker.port)
    import sys
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    _wait(lambda: any(p == "online" for _, p, _ in sub.messages), 5, "online")
    proc.kill()  # no goodbye: the broker publishes the will
    proc.wait()
    _wait(lambda: sub.messages[-1][1] == "offline", 10, "the will")
    sub.close()


def test_broker_away_and_back_loses_only_what_the_sink_counted(broker):
    sub = Subscriber(broker.port, "opp/+/poses")
    sink = MqttSink("127.0.0.1", broker.port, topic_prefix="opp", qos=1, client_id="dev2",
                    reconnect_min=0.1, reconnect_max=0.5)
    sink.open()
    _wait(lambda: sink.connected, 10, "the sink to connect")
    total = 0
    for _ in range(100):
        sink.handle(_result(total))
        total += 1
    _wait(lambda: sink.acknowledged == 100, 10, "the first 100 acknowledged")
    broker.stop()
    _wait(lambda: not sink.connected, 10, "the sink to notice")
    t0 = time.monotonic()
    for _ in range(50):  # the broker is away: these are dropped, counted, and never block
        sink.handle(_result(total))
        total += 1
    assert time.monotonic() - t0 < 0.5
    assert sink.dropped == 50
    broker.start()
    _wait(lambda: sink.connected, 10, "the sink to reconnect")
    for _ in range(100):
        sink.handle(_result(total))
        total += 1
    _wait(lambda: len(sub.frames()) >= total - sink.dropped, 15, "the frames after the broker came back")
    sink.close()
    got = sub.frames()
    assert got == sorted(got) and len(got) == len(set(got)), "out of order or twice"
    assert len(got) == total - sink.dropped and sink.connects == 2
    sub.close()


def test_absent_broker_never_stalls_and_counts(tmp_path):
    sink = MqttSink("127.0.0.1", _free_port(), qos=1, reconnect_min=0.1, reconnect_max=0.2)
    sink.open()
    t0 = time.monotonic()
    for i in range(1000):
        sink.handle(_result(i))
    assert time.monotonic() - t0 < 1.0
    ok, words = sink.health()
    assert sink.dropped == 1000 and not ok and "away" in words
    sink.close()


def test_password_from_a_file_and_bad_settings(tmp_path):
    passwd = tmp_path / "passwd"
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not os.path.exists(tool):
        pytest.skip("mosquitto_passwd is not installed")
    subprocess.run([tool, "-b", "-c", str(passwd), "edge", "s3cret"], check=True)
    b = Broker(tmp_path, _free_port(), extra="password_file %s\n" % passwd)
    b.conf.write_text(b.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    b.start()
    try:
        secret = tmp_path / "mqtt.secret"
        secret.write_text("s3cret\n")
        good = MqttSink("127.0.0.1", b.port, username="edge", password_file=str(secret))
        good.open()
        _wait(lambda: good.connected, 10, "the sink to log in")
        good.close()
        secret.write_text("wrong\n")
        bad = MqttSink("127.0.0.1", b.port, username="edge", password_file=str(secret), reconnect_max=0.2)
        bad.open()
        _wait(lambda: "refused" in bad.last_error, 10, "the refusal")
        assert not bad.connected and "refused" in bad.health()[1]
        bad.close()
    finally:
        b.stop()
    for kwargs, message in (({"qos": 3}, "qos"), ({"port": 0}, "port"), ({"tls_cert": "c.pem"}, "go together")):
        with pytest.raises(ValueError, match=message):
            MqttSink("127.0.0.1", **kwargs)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_with_the_brokers_ca(tmp_path):
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "server.pem")
    b = Broker(tmp_path, _free_port(), extra="cafile %s/ca.pem\ncertfile %s/server.pem\nkeyfile %s/server.key\n"
               % (tmp_path, tmp_path, tmp_path))
    b.start()
    try:
        sink = MqttSink("127.0.0.1", b.port, tls_ca=str(tmp_path / "ca.pem"))
        sink.open()
        _wait(lambda: sink.connected, 10, "a TLS connection")
        sink.close()
        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other",
            "-keyout", "other.key", "-out", "other.pem")
        wrong = MqttSink("127.0.0.1", b.port, tls_ca=str(tmp_path / "other.pem"), reconnect_max=0.2)
        wrong.open()  # a CA that did not sign the broker's certificate: never connected
        time.sleep(1.0)
        assert not wrong.connected
        wrong.close()
    finally:
        b.stop()


def test_the_daemon_publishes_each_stream_to_its_topic_and_reports_the_broker(broker, tmp_path):
    """[sinks.mqtt] in the daemon's config: one client, a topic per stream, its state in health and metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    from daemon_harness import free_port, get, serving, stop
    from edge_fixtures import make_bundle

    sub = Subscriber(broker.port, "site/#", client_id="fleet")
    port = free_port()
    path = tmp_path / "edge.toml"
    path.write_text('[model]\nbundle = "%s"\nbackend = "onnxruntime"\nthreads = 1\n'
                    '[[sources]]\nname = "door"\nuri = "synthetic://96x64?people=1&rate=20"\n'
                    '[[sources]]\nname = "yard"\nuri = "synthetic://96x64?people=2&rate=20&seed=3"\n'
                    '[sinks.mqtt]\nhost = "127.0.0.1"\nport = %d\ntopic_prefix = "site"\nclient_id = "edge-1"\n'
                    '[sinks.http]\nenabled = true\nport = %d\n[daemon]\nstatus_interval = 0.3\n'
                    % (make_bundle(tmp_path), broker.port, port))
    with serving(str(path), tmp_path / "notify") as (proc, notify):
        notify.wait_for("READY", "1")
        _wait(lambda: {t for t, _, _ in sub.messages} >= {"site/door/poses", "site/yard/poses", "site/status"}, 20,
              "both streams' topics and the status")
        status, body = get("http://127.0.0.1:%d/healthz" % port)
        assert status == 200 and "connected to 127.0.0.1:%d" % broker.port in body.decode()
        fams = {f.name: f for f in text_string_to_metric_families(get("http://127.0.0.1:%d/metrics" % port)[1]
                                                                  .decode())}
        assert [s.value for s in fams["openpose_plus_sink_connected"].samples if s.labels["sink"] == "mqtt"] == [1.0]
        code, _, err = stop(proc)
    assert code == 0, err[-3000:]
    for stream in ("door", "yard"):
        frames = [json.loads(p)["frame"] for t, p, _ in sub.messages if t == "site/%s/poses" % stream]
        assert frames == sorted(frames) and len(frames) == len(set(frames)) > 0
        assert all(json.loads(p)["stream"] == stream for t, p, _ in sub.messages if t == "site/%s/poses" % stream)
    assert [p for t, p, _ in sub.messages if t == "site/status"][-1] == "offline"
    sub.close()


def test_run_publishes_with_the_mqtt_flag(broker, tmp_path, capsys):
    from edge_fixtures import make_bundle
    from openpose_plus.commands import main

    sub = Subscriber(broker.port, "openpose-plus/+/poses", client_id="runner")
    assert main(["run", "synthetic://96x64?frames=12", "--bundle", make_bundle(tmp_path), "--quiet",
                 "--mqtt", "127.0.0.1:%d" % broker.port]) == 0
    _wait(lambda: len(sub.frames()) == 12, 10, "12 frames")
    assert sub.frames() == list(range(12)) and {t for t, _, _ in sub.messages} == {"openpose-plus/default/poses"}
    sub.close()
    capsys.readouterr()
    assert main(["run", "synthetic://", "--bundle", "b", "--mqtt", "host:port"]) == 2
    assert "an MQTT broker is HOST[:PORT], got 'host:port'" in capsys.readouterr().err
