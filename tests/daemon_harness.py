"""The daemon as systemd runs it, for tests: a NOTIFY_SOCKET to read, a config to write, the
``serve`` process to start, wait on and stop (tests/test_daemon.py, test_faults.py,
test_daemon_streams.py and test_mqtt.py share them).

    with serving(write_config(tmp_path / "edge.toml", bundle, "synthetic://"), tmp_path / "notify") as (proc, notify):
        notify.wait_for("READY", "1")
        code, out, err = stop(proc)

Waits are on conditions (:func:`eventually`, :meth:`NotifySocket.wait_for`), never a sleep
then a count: how much happens in a second depends on the machine's load.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

__all__ = ["free_port", "NotifySocket", "eventually", "write_config", "start", "stop", "get", "serving"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class NotifySocket:
    """What systemd does: bind a datagram socket, hand its path over in NOTIFY_SOCKET, read."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, {key: value})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536).decode()
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key, value=None, timeout=30.0, after=0.0, status=None):
        """The first message at or after ``after`` with ``key`` (holding ``value``), and with
        ``status`` in its STATUS when given (a READY=1 that says why, not an earlier one late)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, m in list(self.messages):
                if t >= after and key in m and (value is None or value in m[key]) and \
                        (status is None or status in m.get("STATUS", "")):
                    return t, m
            time.sleep(0.02)
        raise AssertionError("no %s=%s within %.0f s; got %s" % (key, value, timeout, [m for _, m in self.messages]))

    def times(self, key):
        return [t for t, m in list(self.messages) if key in m]

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def eventually(value, timeout=30.0, what="the condition"):
    """Poll ``value()`` until it is truthy and return it: a wait on a condition, never a
    sleep-then-count (how much happens in a second depends on the machine's load)."""
    deadline = time.monotonic() + timeout
    while True:
        v = value()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s" % (what, timeout))
        time.sleep(0.02)


def write_config(path, bundle, uri, **sections):
    cfg = {"model": {"bundle": bundle, "backend": "onnxruntime", "threads": 1},
           "source": {"uri": uri, "reconnect_min": 0.05, "reconnect_max": 0.5},
           "daemon": {"status_interval": 0.3, "stall_seconds": 1.5, "stop_timeout": 3.0}}
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    lines = []

    def emit(prefix, table):
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if prefix:
            lines.append("[%s]" % prefix)
        for k, v in scalars.items():
            lines.append("%s = %s" % (k, json.dumps(v)))
        for k, v in table.items():
            if isinstance(v, dict):
                emit((prefix + "." if prefix else "") + k, v)

    emit("", cfg)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def start(config, notify, watchdog_usec=400000):
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC=str(watchdog_usec), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "openpose_plus.commands", "serve", "--config", config],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc, sig=signal.SIGTERM, timeout=20):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("daemon did not stop: " + err[-3000:])
    return proc.returncode, out, err


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


@contextlib.contextmanager
def serving(config, notify_path, watchdog_usec=400000):
    """``start`` the daemon on ``config`` under a :class:`NotifySocket` at ``notify_path``; yields
    ``(proc, notify)``. When the block ends, a daemon a failed check left running is killed and
    the socket closed (its messages stay readable)."""
    notify = NotifySocket(notify_path)
    proc = start(config, notify, watchdog_usec)
    try:
        yield proc, notify
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
