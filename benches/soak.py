"""``openpose-plus bench soak``: the daemon left running with clients on it, watched from outside.

The daemon runs as systemd would run it (``serve --config``, ``$NOTIFY_SOCKET`` and
``$WATCHDOG_USEC`` pointing at this process), on a source, with HTTP clients polling
``/poses``, ``/healthz`` and ``/metrics`` and one reading the MJPEG preview. Every
``--sample`` seconds its resident memory, open files and threads are read from ``/proc``;
the watchdog pings are timed as they arrive; at the end it is stopped with SIGTERM and the
frames it says it processed are held against the JSON-lines records it wrote. The table says
whether memory, files and threads stayed flat and whether every frame came out.

A short run is part of the slow tests; the long form is for a person: ``--minutes 60``.
All traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Dict, List, Optional

from openpose_plus.commands._options import at_least

__all__ = ["add_arguments", "run", "soak"]

HELP = "the daemon for N minutes with HTTP clients: memory, files, threads, watchdog, frames in vs out"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default="models/demo", help="model bundle (default models/demo)")
    parser.add_argument("--source", default="synthetic://640x480?people=4", help="source URI")
    positive = at_least(0, float, strict=True)
    parser.add_argument("--minutes", type=positive, default=5.0, help="how long the daemon runs (default 5)")
    parser.add_argument("--clients", type=at_least(0), default=4, help="HTTP clients polling /poses, /healthz, /metrics")
    parser.add_argument("--sample", type=positive, default=5.0, metavar="S", help="seconds between samples")
    parser.add_argument("--watchdog", type=float, default=10.0, metavar="S", help="WatchdogSec to ask for")
    parser.add_argument("--json", metavar="FILE", help="also write the samples and the verdict here")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_sample(pid: int) -> Optional[Dict[str, float]]:
    try:
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024.0
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    return {"rss_mb": rss, "fds": float(fds), "threads": float(threads)}


class _Systemd:
    """The two things systemd gives a Type=notify service: a socket to talk to, and a clock."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.ready_at: Optional[float] = None
        self.pings: List[float] = []
        self.status = ""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, name="notify", daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536).decode("utf-8", "replace")
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            for line in data.splitlines():
                if line == "READY=1" and self.ready_at is None:
                    self.ready_at = now
                elif line == "WATCHDOG=1":
                    self.pings.append(now)
                elif line.startswith("STATUS="):
                    self.status = line[7:]

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


def _client(base: str, paths: List[str], stop: threading.Event, counts: Dict[str, int]) -> None:
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        try:
            with urllib.request.urlopen(base + path, timeout=5) as r:
                r.read()
            counts["ok"] += 1
        except Exception:  # a refused or failed request is counted, the soak goes on
            counts["failed"] += 1
        stop.wait(0.2)


def _mjpeg_reader(base: str, stop: threading.Event, counts: Dict[str, int]) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(base + "/preview.mjpg", timeout=5) as r:
                while not stop.is_set():
                    chunk = r.read(65536)
                    if not chunk:
                        break
                    counts["mjpeg_bytes"] += len(chunk)
        except Exception:
            counts["failed"] += 1
            stop.wait(0.5)


def _write_config(path: str, bundle: str, source: str, port: int, jsonl: str) -> None:
    with open(path, "w") as f:
        f.write('[model]\nbundle = "%s"\nbackend = "onnxruntime"\n\n'
                '[source]\nuri = "%s"\n\n'
                '[sinks.jsonl]\ntarget = "%s"\n\n'
                '[sinks.http]\nenabled = true\naddress = "127.0.0.1"\nport = %d\n\n'
                '[daemon]\nstatus_interval = 1.0\n' % (os.path.abspath(bundle), source, jsonl, port))


def _trend(samples: List[Dict[str, float]], key: str) -> Dict[str, float]:
    """First, last, max, and the growth over the second half (the first half is warm-up)."""
    values = [s[key] for s in samples]
    half = values[len(values) // 2:] or values
    return {"first": values[0], "last": values[-1], "max": max(values), "second_half_growth": half[-1] - half[0]}


def soak(bundle: str, source: str, minutes: float, clients: int = 4, sample: float = 5.0,
         watchdog: float = 10.0, log=sys.stderr) -> Dict[str, object]:
    work = tempfile.mkdtemp(prefix="openpose-plus-soak-")
    port = _free_port()
    jsonl = os.path.join(work, "poses.jsonl")
    config = os.path.join(work, "edge.toml")
    _write_config(config, bundle, source, port, jsonl)
    systemd = _Systemd(os.path.join(work, "notify"))
    env = dict(os.environ, NOTIFY_SOCKET=os.path.join(work, "notify"), WATCHDOG_USEC=str(int(watchdog * 1e6)))
    exe = os.path.join(os.path.dirname(sys.executable), "openpose-plus")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "openpose_plus.commands"]
    stderr_path = os.path.join(work, "daemon.log")
    with open(stderr_path, "w") as err:
        daemon = subprocess.Popen(cmd + ["serve", "--config", config], stdout=subprocess.DEVNULL, stderr=err, env=env)
    start = time.monotonic()
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0, "mjpeg_bytes": 0}
    threads = []
    samples: List[Dict[str, float]] = []
    try:
        deadline = start + 300
        while systemd.ready_at is None and daemon.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if systemd.ready_at is None:
            raise RuntimeError("the daemon never said READY=1: %s" % open(stderr_path).read()[-2000:])
        base = "http://127.0.0.1:%d" % port
        for i in range(clients):
            t = threading.Thread(target=_client, args=(base, ["/poses", "/healthz", "/metrics"], stop, counts),
                                 daemon=True)
            t.start()
            threads.append(t)
        t = threading.Thread(target=_mjpeg_reader, args=(base, stop, counts), daemon=True)
        t.start()
        threads.append(t)
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end and daemon.poll() is None:
            s = _proc_sample(daemon.pid)
            if s is not None:
                s["t"] = time.monotonic() - start
                samples.append(s)
                print("soak: %5.0f s  rss %.1f MB  fds %d  threads %d  %s" % (
                    s["t"], s["rss_mb"], s["fds"], s["threads"], systemd.status), file=log)
            time.sleep(max(0.1, min(sample, end - time.monotonic())))
    finally:
        stop.set()
        for t in threads:
            t.join(6)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = daemon.wait()
        systemd.close()
    text = open(stderr_path).read()
    summary = re.findall(r"summary: (\{.*\})", text)
    frames = int(json.loads(summary[-1])["frames"]) if summary else -1
    records = 0
    if os.path.exists(jsonl):
        with open(jsonl, "rb") as f:
            records = sum(1 for line in f if line.endswith(b"\n"))
    gaps = [b - a for a, b in zip(systemd.pings, systemd.pings[1:])]
    verdict = {
        "minutes": minutes, "exit_code": code, "ready_s": systemd.ready_at - start if systemd.ready_at else None,
        "frames_in": frames, "records_out": records, "http_ok": counts["ok"], "http_failed": counts["failed"],
        "mjpeg_mb": counts["mjpeg_bytes"] / 1e6, "watchdog_pings": len(systemd.pings),
        "watchdog_max_gap_s": max(gaps) if gaps else None,
        "rss_mb": _trend(samples, "rss_mb") if samples else None,
        "fds": _trend(samples, "fds") if samples else None,
        "threads": _trend(samples, "threads") if samples else None,
        "samples": samples, "work_dir": work,
    }
    return verdict


def format_table(v: Dict[str, object]) -> str:
    rows = [("ran", "%.1f min, exit code %s, READY after %.1f s" % (v["minutes"], v["exit_code"], v["ready_s"] or -1))]
    for key, unit in (("rss_mb", "MB"), ("fds", ""), ("threads", "")):
        t = v[key]
        if t:
            rows.append((key.split("_")[0], "first %.1f, last %.1f, max %.1f %s; growth over the second half %+.1f"
                         % (t["first"], t["last"], t["max"], unit, t["second_half_growth"])))
    rows.append(("watchdog", "%d pings, longest gap %.2f s" % (v["watchdog_pings"], v["watchdog_max_gap_s"] or 0)))
    rows.append(("frames", "%d in, %d records out" % (v["frames_in"], v["records_out"])))
    rows.append(("HTTP", "%d requests answered, %d failed, %.1f MB of MJPEG" % (v["http_ok"], v["http_failed"],
                                                                                v["mjpeg_mb"])))
    width = max(len(r[0]) for r in rows)
    return "\n".join("%-*s  %s" % (width, k, val) for k, val in rows)


def run(args: argparse.Namespace) -> int:
    verdict = soak(args.bundle, args.source, args.minutes, args.clients, args.sample, args.watchdog)
    print(format_table(verdict))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(verdict, f, indent=1)
    ok = verdict["exit_code"] == 0 and verdict["frames_in"] == verdict["records_out"] and verdict["frames_in"] > 0
    return 0 if ok else 1
